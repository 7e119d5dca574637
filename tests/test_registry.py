from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_recipes import TOY_RECIPE

import gankit.registry
from gankit.cli import main
from gankit.errors import UserError
from gankit.recipe import recipe_from_text
from gankit.registry import BLOCK_ENV, ONLY_ENV, Registry
from gankit.testing import TinyGenerator, TinyOptions


def _registry_from(site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Load only the distributions in ``site`` (the plugin modules import from it)."""
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    registry.load_entry_points(
        ep for dist in importlib.metadata.distributions(path=[str(site)]) for ep in dist.entry_points if ep.group == "gankit"
    )
    return registry


def test_add_and_get():
    registry = Registry()
    registry.add("generator", "tiny", TinyGenerator, TinyOptions)
    component = registry.get("generator", "tiny")
    assert component.factory is TinyGenerator and component.options is TinyOptions
    assert component.summary == "A linear map from the latent to one sample, for contract tests."
    assert registry.get("generator", f"{component.dist}:tiny") is component


def test_unknown_name_suggests_nearest_and_the_list_command():
    registry = Registry()
    registry.add("generator", "msggan", TinyGenerator, TinyOptions)
    registry.add("generator", "progan", TinyGenerator, TinyOptions)
    with pytest.raises(UserError) as error:
        registry.get("generator", "msgan")
    assert "did you mean msggan" in error.value.message
    assert "gankit list generator" in error.value.message


def test_options_must_be_attrs_and_kind_known():
    registry = Registry()
    with pytest.raises(TypeError):
        registry.add("generator", "x", TinyGenerator, dict)
    with pytest.raises(ValueError):
        registry.add("painter", "x", TinyGenerator, TinyOptions)


def test_same_name_from_two_distributions_is_an_error_naming_both():
    registry = Registry()
    for dist in ("gankit-one", "gankit-two"):
        registry.register_plugin(_plugin_adding("generator", "twin"), dist)
    with pytest.raises(UserError) as error:
        registry.get("generator", "twin")
    assert "gankit-one" in error.value.message and "gankit-two" in error.value.message
    assert registry.get("generator", "gankit-two:twin").dist == "gankit-two"
    assert len(registry.clashes()) == 1


def _plugin_adding(kind: str, name: str) -> object:
    import gankit

    class Plugin:
        @staticmethod
        @gankit.hookimpl
        def register_components(registry):
            registry.add(kind, name, TinyGenerator, TinyOptions)

    return Plugin


def test_temporary_distribution_is_discovered_and_broken_one_reported(plugin_site: Path, monkeypatch: pytest.MonkeyPatch):
    registry = _registry_from(plugin_site, monkeypatch)
    assert registry.get("generator", "toy").dist == "gankit-toyplugin"
    plugins = {p.dist: p for p in registry.plugins}
    assert plugins["gankit-toyplugin"].version == "1.2.3" and plugins["gankit-toyplugin"].error is None
    assert "broken on purpose" in plugins["gankit-broken"].error
    with pytest.raises(UserError) as error:
        registry.get("generator", "nothere")
    assert "gankit-broken" in error.value.message  # the failure is named where it may be the cause


def test_discovered_on_sys_path(plugin_site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    registry = Registry()
    registry.load_entry_points()
    assert registry.get("loss", "toyloss").dist == "gankit-toyplugin"
    assert registry.get("dataset", "shapes").dist == "gankit"


def test_block_and_only_environment_variables(plugin_site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(BLOCK_ENV, "gankit-broken")
    registry = _registry_from(plugin_site, monkeypatch)
    assert {p.dist for p in registry.plugins} == {"gankit-toyplugin"}
    monkeypatch.delenv(BLOCK_ENV)
    monkeypatch.setenv(ONLY_ENV, "brokenplugin")  # entry-point names work too
    registry = _registry_from(plugin_site, monkeypatch)
    assert {p.dist for p in registry.plugins} == {"gankit-broken"}


def test_a_plugin_that_fails_half_way_leaves_nothing_behind():
    import gankit

    class HalfBroken:
        @staticmethod
        @gankit.hookimpl
        def register_components(registry):
            registry.add("generator", "half", TinyGenerator, TinyOptions)
            raise RuntimeError("oops")

    registry = Registry()
    with pytest.raises(RuntimeError):
        registry.register_plugin(HalfBroken, "gankit-half")
    registry._forget("gankit-half")
    assert registry.components("generator", "half") == []


def _cli(args: list[str], site: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), **env}
    return subprocess.run(
        [sys.executable, "-m", "gankit.cli", *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=300
    )


def test_broken_plugin_is_reported_and_does_not_stop_a_run(plugin_site: Path, tmp_path: Path):
    listing = _cli(["plugins"], plugin_site, tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "gankit-broken 0.0.1" in listing.stdout and "FAILED TO LOAD" in listing.stdout and "broken on purpose" in listing.stdout
    assert "gankit-toyplugin 1.2.3" in listing.stdout and "generator     toy" in listing.stdout

    (tmp_path / "toy.toml").write_text(TOY_RECIPE)
    run = _cli(["run", "toy.toml", "--run-dir", "out"], plugin_site, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert (tmp_path / "out" / "log.jsonl").is_file()


def test_a_third_party_clash_never_breaks_a_recipe_using_the_first_party_name(
    plugin_site: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.syspath_prepend(str(plugin_site))
    registry = Registry()
    registry.load_entry_points()  # the installed gankit-dcgan, and the toy networks the recipe trains
    # Not a fake distribution: importing conftest's helper breaks when a plugin's conftest was loaded first.
    registry.register_plugin(_plugin_adding("loss", "hinge"), "gankit-x")
    recipe = recipe_from_text(TOY_RECIPE.replace('type = "toyloss"', 'type = "hinge"'), "recipe.toml", registry)
    assert recipe.loss.component.dist == "gankit-dcgan"
    assert registry.get("loss", "gankit-x:hinge").dist == "gankit-x"
    assert [len(group) for group in registry.clashes()] == [2]

    monkeypatch.setattr(gankit.registry, "_default", registry)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "warning: loss 'hinge' is registered by gankit-dcgan and gankit-x; 'hinge' stays gankit-dcgan's" in out
    assert "the other must be written gankit-x:hinge" in out
    assert main(["list", "loss"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("hinge ") and line.endswith("[gankit-dcgan]") for line in lines)
    assert any(line.startswith("gankit-x:hinge ") and line.endswith("[gankit-x]") for line in lines)


def test_a_name_only_third_parties_share_stays_ambiguous_even_beside_a_first_party_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    registry = Registry()
    for dist in ("gankit-x", "other-y"):
        registry.register_plugin(_plugin_adding("loss", "fresh"), dist)
    with pytest.raises(UserError) as error:
        registry.get("loss", "fresh")
    assert "'gankit-x:fresh' or 'other-y:fresh'" in error.value.message
    for dist in ("gankit-dcgan", "gankit-x", "other-y"):
        registry.register_plugin(_plugin_adding("loss", "shared"), dist)
    assert registry.get("loss", "shared").dist == "gankit-dcgan"
    for dist in ("gankit-dcgan", "gankit-wgan"):  # two first-party ones: neither can win
        registry.register_plugin(_plugin_adding("generator", "twin"), dist)
    with pytest.raises(UserError):
        registry.get("generator", "twin")

    monkeypatch.setattr(gankit.registry, "_default", registry)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "warning: loss 'fresh' is registered by gankit-x and other-y; no one keeps the short name" in out
    assert "'shared' stays gankit-dcgan's, the others must be written gankit-x:shared, other-y:shared" in out
