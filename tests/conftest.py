from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fake_plugins import BROKEN_PLUGIN, GOOD_PLUGIN, make_distribution


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
