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


def test_show_train_lists_the_train_table():
    out = subprocess.run(
        [sys.executable, "-m", "gankit.cli", "show", "train"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert out.startswith("train") and "kimg: float = 100.0" in out and "batch_size: int = 64" in out


def test_a_reader_that_goes_away_ends_the_output_quietly():
    process = subprocess.Popen(
        [sys.executable, "-m", "gankit.cli", "show", "train"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    process.stdout.close()  # like `| head -0`: gone before anything is written
    err = process.stderr.read()
    assert process.wait(timeout=120) == 1 and "Traceback" not in err and "Error" not in err, err
