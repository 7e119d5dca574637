"""train.minutes: a run stops at the end of the tick that reaches its time
budget, checkpointed and logged, and a resume with a larger budget goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_recipes import TINY_RECIPE

from gankit import Run, testing
from gankit.checkpoint import list_checkpoints
from gankit.cli import main
from gankit.runs import remaining_seconds


def _ticks(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    file = tmp_path / "tiny.toml"
    file.write_text(TINY_RECIPE.replace("kimg = 0.064", "kimg = 100").replace("[train]\n", "[train]\nminutes = 0.000001\n"))
    return file


def test_a_run_stops_at_the_end_of_the_tick_that_reaches_its_budget(recipe: Path, tmp_path: Path) -> None:
    run = Run.start(recipe, run_dir=tmp_path / "run", registry=testing.testing_registry(), progress="none")
    record = run.train()
    trainer = run.trainer
    assert trainer is not None and trainer.finished and trainer.out_of_time
    # one tick of 16 images, not one step: the tick is finished before the budget is looked at
    assert trainer.nimg == 16 and record["tick"] == 1
    assert record["stopped"].startswith("train.minutes") and trainer.train_seconds > 0
    assert [path.name for path in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["checkpoint-000000000016.pt"]
    assert (tmp_path / "run" / "samples" / "fakes-000000000016.png").is_file()

    # the same budget again: nothing left to train
    again = Run.resume(tmp_path / "run", registry=testing.testing_registry(), progress="none")
    again.train()
    assert again.trainer is not None and again.trainer.nimg == 16

    # a larger budget goes on from where it stopped, to train.kimg
    longer = Run.resume(tmp_path / "run", ["train.minutes=100", "train.kimg=0.064"], registry=testing.testing_registry(), progress="none")
    longer.train()
    assert longer.trainer is not None and longer.trainer.nimg == 64 and not longer.trainer.out_of_time
    ticks = _ticks(tmp_path / "run")
    assert [tick["kimg"] for tick in ticks] == [0.016, 0.032, 0.048, 0.064]
    times = [tick["train_s"] for tick in ticks]
    assert times == sorted(times)  # summed over the resumes


def test_the_command_line_says_why_it_stopped_and_how_to_go_on(recipe: Path, tmp_path: Path, capsys, registry) -> None:
    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--progress", "lines"]) == 0
    err = capsys.readouterr().err
    assert "stopped at the end of the tick that reached train.minutes (1e-06 minutes of training), at 0.016 of 100 kimg" in err
    assert f"gankit run --resume {tmp_path / 'run'} --set train.minutes=2e-06" in err


def test_the_eta_follows_whichever_limit_comes_first() -> None:
    record = {"kimg": 10.0, "sec_per_kimg": 6.0, "train_s": 60.0}
    assert remaining_seconds(record, 110_000, None) == 600.0  # 100 kimg at 6 s each
    assert remaining_seconds(record, 110_000, 5.0) == 240.0  # 5 minutes, one of them spent
    assert remaining_seconds(record, 20_000, 5.0) == 60.0  # kimg first
