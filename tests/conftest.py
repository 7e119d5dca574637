from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

# A plugin a third party might ship: tiny networks and a loss, registered
# through an entry point like any other.
GOOD_PLUGIN = """
import gankit
from gankit.testing import TinyDiscriminator, TinyGenerator, TinyLoss, TinyOptions

@gankit.hookimpl
def register_components(registry):
    registry.add("generator", "toy", TinyGenerator, TinyOptions)
    registry.add("discriminator", "toy", TinyDiscriminator, TinyOptions)
    registry.add("loss", "toyloss", TinyLoss, TinyOptions)
"""

BROKEN_PLUGIN = """
raise RuntimeError("this plugin is broken on purpose")
"""


def make_distribution(site: Path, dist: str, module: str, code: str, version: str = "1.2.3") -> Path:
    """A distribution as pip leaves it: a module and a dist-info folder with
    an entry point in the ``gankit`` group."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[gankit]\n{module} = {module}\n")
    return site


@pytest.fixture
def plugin_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    make_distribution(site, "gankit-toyplugin", "toyplugin", GOOD_PLUGIN)
    make_distribution(site, "gankit-broken", "brokenplugin", BROKEN_PLUGIN, version="0.0.1")
    return site


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    """The installed plugins plus the tiny test networks, as the CLI's registry."""
    import gankit.registry
    from gankit.testing import testing_registry

    monkeypatch.setattr(gankit.registry, "_default", testing_registry())
    return testing_registry()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (recipe.toml beside its folder run/), trained once
    for the whole session: a test copies it before damaging or resuming it."""
    from tiny_recipes import TINY_RECIPE

    from gankit import Run, testing

    folder = tmp_path_factory.mktemp("trained")
    (folder / "recipe.toml").write_text(TINY_RECIPE)
    run = Run.start(folder / "recipe.toml", run_dir=folder / "run", registry=testing.testing_registry(), progress="none")
    run.train()
    return folder / "run"
