from __future__ import annotations

import subprocess
import sys

import pytest

import gankit
from gankit.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"gankit {gankit.__version__}"


@pytest.mark.parametrize("command", ["run", "check", "list", "show", "plugins", "sample"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "usage: gankit" in capsys.readouterr().out


def test_list_with_kind_and_pattern(capsys, registry):
    assert main(["list", "dataset"]) == 0
    out = capsys.readouterr().out
    assert "shapes" in out and "images" in out and "[gankit]" in out
    assert main(["list", "optimizer", "*prop"]) == 0
    assert capsys.readouterr().out.startswith("rmsprop")
    assert main(["list", "loss", "*nothing*"]) == 1


def test_list_everything_groups_by_kind(capsys, registry):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "optimizer:\n" in out and "scheduler:\n" in out and "  alternating" in out


def test_show_prints_options_defaults_and_docs(capsys, registry):
    assert main(["show", "scheduler", "alternating"]) == 0
    out = capsys.readouterr().out
    assert "d_steps: int = 1" in out and "n_critic" in out
    assert main(["show", "dataset", "images"]) == 0
    assert "path: str (required)" in capsys.readouterr().out


def test_show_unknown_component_is_a_user_error(capsys, registry):
    assert main(["show", "optimizer", "adamw"]) == 2
    err = capsys.readouterr().err
    assert "unknown optimizer 'adamw' (did you mean adam" in err and "Traceback" not in err


def test_plugins_lists_the_builtin_distribution(capsys, registry):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"gankit {gankit.__version__}" in out and "scheduler     alternating" in out


def test_console_script_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "gankit.cli", "list", "scheduler"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "alternating" in result.stdout


def test_run_needs_a_recipe_or_resume(capsys):
    assert main(["run"]) == 2
    assert "give a recipe" in capsys.readouterr().err
