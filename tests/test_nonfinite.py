"""What a run does when a loss, a penalty or a weight becomes NaN or
infinite (train.on_nonfinite), and the other ways a run must end cleanly:
a second Ctrl-C, two processes in one run folder, TensorBoard after a resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from tiny_recipes import TINY_RECIPE

from gankit import NonFinite, Run
from gankit import checkpoint as ckpt
from gankit.errors import UserError
from gankit.recipe import load_recipe
from gankit.runs import Interrupted, lock_run_dir

# 16 steps of batch 8 in ticks of 2 steps, a checkpoint every tick
RECIPE = TINY_RECIPE.replace("kimg = 0.064", "kimg = 0.128").replace("[train]", "[train]\ncheckpoint_ticks = 1\nkeep_checkpoints = 20")


def _start(tmp_path: Path, registry, *overrides: str, name: str = "run") -> Run:
    path = tmp_path / "recipe.toml"
    path.write_text(RECIPE)
    return Run.start(load_recipe(path, registry, list(overrides)), run_dir=tmp_path / name, progress="none")


def _poison_generator_at(run: Run, d_step: int, times: int = 1) -> list[int]:
    """After D step ``d_step``, fill a generator weight with NaN (``times``
    times at most): the next fakes, and so the next D loss, are NaN."""
    poisoned: list[int] = []

    def poison(trainer) -> None:
        if trainer.d_steps == d_step and len(poisoned) < times:
            poisoned.append(trainer.nimg)
            with torch.no_grad():
                next(trainer.G.parameters()).fill_(float("nan"))

    run.trainer.step_callbacks.append(poison)
    return poisoned


def _all_finite(path: Path) -> bool:
    state = ckpt.load(path)
    return all(torch.isfinite(t).all() for key in ("generator", "discriminator", "generator_ema") for t in state[key].values())


def _strict_log(run_dir: Path) -> list[dict]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"log.jsonl holds a bare {constant}")

    return [json.loads(line, parse_constant=refuse) for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_stop_names_the_step_and_term_and_no_checkpoint_holds_the_nan(tmp_path, registry):
    run = _start(tmp_path, registry)
    _poison_generator_at(run, d_step=9)  # tick 5 is under way; checkpoints of ticks 1-4 exist
    with pytest.raises(NonFinite) as stop:
        run.train()
    assert "D step 9: loss/D = nan" in stop.value.where
    assert "the last good checkpoint is checkpoint-000000000064.pt" in stop.value.where
    assert stop.value.kimg == 0.08
    written = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in written][-1] == "checkpoint-000000000064.pt"
    assert all(_all_finite(path) for path in written)
    assert [entry["tick"] for entry in _strict_log(tmp_path / "run")] == [1, 2, 3, 4]


def test_weights_that_turn_nan_after_the_last_loss_never_reach_a_checkpoint(tmp_path, registry):
    run = _start(tmp_path, registry)
    _poison_generator_at(run, d_step=16)  # the very last step: no loss sees it, the final checkpoint would
    with pytest.raises(NonFinite) as stop:
        run.train()
    assert "weights: generator.linear.weight holds NaN" in stop.value.where
    assert all(_all_finite(path) for path in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints"))


def test_the_command_line_exits_3_with_one_line(tmp_path, registry, capsys):
    from gankit.cli import main

    (tmp_path / "recipe.toml").write_text(RECIPE)
    # a learning rate no network survives: the weights overflow within a few steps
    args = ["run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "run"), "--progress", "lines"]
    overflowing = [f'optimizers.{role}={{type = "adam", lr = 1e38}}' for role in ("discriminator", "generator")]
    code = main([*args, "--set", overflowing[0], "--set", overflowing[1]])
    err = capsys.readouterr().err
    assert code == 3, err
    (line,) = [line for line in err.splitlines() if line.startswith("gankit: error:")]
    assert "training stopped at" in line and " step " in line and "Traceback" not in err


def test_skip_leaves_out_the_bad_step_and_counts_it(tmp_path, registry, monkeypatch):
    run = _start(tmp_path, registry, "train.on_nonfinite=skip")
    loss = run.trainer.loss
    honest = loss.discriminator_loss
    calls = []

    def once_nan(real, fake):
        calls.append(1)
        value = honest(real, fake)
        return value * float("nan") if len(calls) == 5 else value

    monkeypatch.setattr(loss, "discriminator_loss", once_nan)
    record = run.train()
    assert run.trainer.finished
    log = _strict_log(tmp_path / "run")
    assert [entry.get("nonfinite_skipped", 0) for entry in log] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert all(not isinstance(value, float) or value == value for value in record.values())  # no NaN averaged in
    assert all(_all_finite(path) for path in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints"))


def test_skip_cannot_step_past_weights_already_lost(tmp_path, registry):
    run = _start(tmp_path, registry, "train.on_nonfinite=skip")
    _poison_generator_at(run, d_step=9)
    with pytest.raises(NonFinite, match="weights: generator"):
        run.train()


def test_rollback_returns_to_the_last_checkpoint_with_lower_learning_rates(tmp_path, registry, capsys):
    run = _start(tmp_path, registry, "train.on_nonfinite=rollback", "train.rollback_lr_scale=0.25")
    poisoned = _poison_generator_at(run, d_step=9)
    base = run.trainer.optimizers["discriminator"].param_groups[0]["lr"]
    run.train()
    assert poisoned == [72] and run.trainer.finished
    assert "rolled back to checkpoint-000000000064.pt (0.064 kimg) with learning rates x0.25" in capsys.readouterr().err
    log = _strict_log(tmp_path / "run")
    assert [entry["tick"] for entry in log] == list(range(1, 9))  # each tick once
    assert log[3]["lr"]["discriminator"] == base and log[4]["lr"]["discriminator"] == base * 0.25
    newest = ckpt.find(tmp_path / "run")
    assert _all_finite(newest)
    # the lowered rates are part of the run's state: a resume keeps them
    resumed = Run.resume(tmp_path / "run", ["train.kimg=0.144"], progress="none")
    assert resumed.trainer.lr_factor == 0.25
    assert resumed.train()["lr"]["discriminator"] == base * 0.25


def test_rollback_gives_up_after_its_limit(tmp_path, registry):
    run = _start(tmp_path, registry, "train.on_nonfinite=rollback", "train.rollback_limit=2")
    _poison_generator_at(run, d_step=9, times=10)
    with pytest.raises(NonFinite, match="after 2 rollbacks; the last good checkpoint is checkpoint-000000000064.pt"):
        run.train()


def test_a_second_ctrl_c_says_what_is_lost_and_the_checkpoint_is_still_written(tmp_path, registry, capsys):
    run = _start(tmp_path, registry)

    def two_signals(trainer) -> None:
        if trainer.d_steps == 5:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    run.trainer.step_callbacks.append(two_signals)
    with pytest.raises(Interrupted):
        run.train()
    err = capsys.readouterr().err
    assert "already stopping: a checkpoint at 0.04 kimg is written" in err
    assert "loses the progress since checkpoint-000000000032.pt" in err
    assert ckpt.find(tmp_path / "run").name == "checkpoint-000000000040.pt"


def test_a_third_ctrl_c_stops_at_once(tmp_path, registry):
    run = _start(tmp_path, registry)

    def three_signals(trainer) -> None:
        if trainer.d_steps == 5:
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGINT)

    run.trainer.step_callbacks.append(three_signals)
    with pytest.raises(KeyboardInterrupt):
        run.train()
    assert ckpt.find(tmp_path / "run").name == "checkpoint-000000000032.pt"


def test_a_run_folder_in_use_is_refused(tmp_path, registry):
    run = _start(tmp_path, registry, "train.kimg=0.032")
    run.train()
    held = lock_run_dir(tmp_path / "run")  # as another process training in it would hold it
    try:
        with pytest.raises(UserError, match=f"in use by gankit process {os.getpid()}"):
            Run.resume(tmp_path / "run", ["train.kimg=0.064"], progress="none")
    finally:
        held.close()
    Run.resume(tmp_path / "run", ["train.kimg=0.064"], progress="none").train()


def test_tensorboard_shows_each_step_once_after_a_resume(tmp_path, registry):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _start(tmp_path, registry, "train.checkpoint_ticks=2", "loggers.tensorboard={}")

    def crash_at_tick_three(record: dict) -> None:
        if record["tick"] == 3:  # logged, but its checkpoint (every second tick) never written
            raise RuntimeError("the machine went away")

    run.trainer.tick_callbacks.append(crash_at_tick_three)
    with pytest.raises(RuntimeError):
        run.train()
    Run.resume(tmp_path / "run", progress="none").train()  # from tick 2: tick 3 is logged again
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("loss/D")]
    assert steps == sorted(set(steps)) == [16 * tick for tick in range(1, 9)]


# -- a finite blow-up: train.loss_limit, train.weight_limit, train.on_blowup ---------------

_BLOWING_UP = [f'optimizers.{role}={{type = "adam", lr = 1e6}}' for role in ("discriminator", "generator")]


def _run_cli(tmp_path: Path, *overrides: str) -> tuple[int, str]:
    from gankit.cli import main

    (tmp_path / "recipe.toml").write_text(RECIPE)
    args = ["run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "run"), "--progress", "lines"]
    return main([*args, *(arg for override in overrides for arg in ("--set", override))])


def test_a_finite_blowup_warns_once_and_every_tick_record_names_it(tmp_path, registry, capsys):
    # Adam at lr 1e6: the losses reach about 1e14 and stay finite
    code = _run_cli(tmp_path, *_BLOWING_UP)
    err = capsys.readouterr().err
    assert code == 0, err
    (warning,) = [line for line in err.splitlines() if line.startswith("gankit: warning:")]
    assert "past train.loss_limit = 1e+06" in warning and "training has likely blown up" in warning, warning
    assert "train.on_blowup = nonfinite" in warning
    log = _strict_log(tmp_path / "run")
    assert len(log) == 8 and all("past train." in entry["blowup"] for entry in log)
    assert any(abs(entry["loss/G"]) > 1e12 for entry in log)


def test_a_sane_run_records_no_blowup(tiny_run):
    assert not any("blowup" in entry for entry in _strict_log(tiny_run))


def test_on_blowup_nonfinite_stops_a_finite_blowup_with_exit_3(tmp_path, registry, capsys):
    code = _run_cli(tmp_path, *_BLOWING_UP, "train.on_blowup=nonfinite")
    err = capsys.readouterr().err
    assert code == 3, err
    (line,) = [line for line in err.splitlines() if line.startswith("gankit: error:")]
    assert "training stopped at" in line and " step 0: " in line and "past train.loss_limit = 1e+06" in line, line
    assert "Traceback" not in err and "gankit: warning:" not in err


def test_on_blowup_nonfinite_rolls_back_weights_past_their_limit(tmp_path, registry, capsys):
    run = _start(tmp_path, registry, "train.on_blowup=nonfinite", "train.on_nonfinite=rollback", "train.weight_limit=1000")
    blown: list[int] = []

    def blow_up(trainer) -> None:
        if trainer.d_steps == 9 and not blown:  # finite, and far past the limit
            blown.append(trainer.nimg)
            with torch.no_grad():
                next(trainer.G.parameters()).mul_(1e6).add_(1e4)

    run.trainer.step_callbacks.append(blow_up)
    run.train()
    assert blown == [72] and run.trainer.finished
    err = capsys.readouterr().err
    assert "past train." in err and "rolled back to checkpoint-000000000064.pt" in err, err
    for path in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints"):
        state = ckpt.load(path)
        assert max(float(t.abs().max()) for key in ("generator", "discriminator") for t in state[key].values()) < 1000
