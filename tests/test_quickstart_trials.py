"""bench/quickstart_trials.py --smoke: each trial's patch still applies to the
quickstart's networks and loop, the patched run trains with finite losses,
and it trains differently from the recipe, so that the README's trial rows
can be measured again."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest
from tiny_recipes import REPO


@pytest.fixture
def trials() -> ModuleType:
    spec = importlib.util.spec_from_file_location("quickstart_trials", REPO / "bench" / "quickstart_trials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_quickstart_trial_patches_a_run_that_trains_differently(trials):
    done = subprocess.run(
        [sys.executable, "bench/quickstart_trials.py", "--trials", "all", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(trials.TRIALS) >= 16
    for name in trials.TRIALS:
        assert f"| {name} | 0 |" in done.stdout
    assert "command: python bench/quickstart_trials.py --trials all --smoke" in done.stdout


def test_a_patch_that_changes_nothing_is_caught(trials):
    trials.TRIALS["no_op"] = trials.Trial("changes nothing", lambda run: None)
    with pytest.raises(SystemExit, match="no_op"):
        trials.main(["--trials", "no_op", "--smoke"])
