"""Faults around checkpoints and run folders end in one line a person can act
on: a bad checkpoint file, a full disk, a kill between a checkpoint and later
ticks, a NaN in the log, a run that stopped before its first checkpoint."""

from __future__ import annotations

import errno
import json
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from tiny_recipes import TINY_RECIPE

from gankit import Run
from gankit import checkpoint as ckpt
from gankit.cli import main
from gankit.datasets.shapes import ShapesDataset
from gankit.loggers import JsonlLogger, JsonlOptions


def _strict_json(line: str) -> dict:
    """json.loads, which by default accepts the NaN and Infinity that JSON has not."""

    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=reject)


def _ticks(run_dir: Path) -> list[int]:
    return [_strict_json(line)["tick"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def _error_line(err: str) -> str:
    assert "Traceback" not in err, err
    (line,) = [line for line in err.splitlines() if line.startswith("gankit: error:")]
    return line


# -- 1. a bad checkpoint file --------------------------------------------------


class NotAllowed:
    pass


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _missing_keys(path: Path) -> None:
    torch.save({"format": ckpt.FORMAT}, path)


def _wrong_shapes(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    for key in ("generator", "discriminator", "generator_ema"):
        state[key] = {name: torch.zeros(3, *tensor.shape) for name, tensor in state[key].items()}
    torch.save(state, path)


def _wrong_types(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    state["progress"]["nimg"] = "lots"
    torch.save(state, path)


def _code(path: Path) -> None:
    torch.save({"format": ckpt.FORMAT, "payload": NotAllowed()}, path)


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (_empty, "empty"),
        (_missing_keys, "not a complete gankit checkpoint (missing recipe, context, generator"),
        (_wrong_shapes, "size mismatch"),
        (_wrong_types, "progress.nimg"),
        (_code, "NotAllowed"),
    ],
)
@pytest.mark.parametrize("command", ["resume", "sample"])
def test_a_bad_checkpoint_is_one_line_naming_the_file(tiny_run, tmp_path, registry, capsys, damage, says, command):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    path = ckpt.find(run_dir)
    damage(path)
    if command == "resume":
        code = main(["run", "--resume", str(run_dir), "--set", "train.kimg=0.08", "--progress", "lines"])
    else:
        code = main(["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "grid.png")])
    line = _error_line(capsys.readouterr().err)
    assert code == 2
    assert str(path) in line and says in line
    assert "weights_only" not in line and "\x1b" not in line  # torch's advice to unpickle anyway, and its colours


LOADED: list[str] = []


def record_loading() -> None:
    LOADED.append("a hostile checkpoint ran code")


class Hostile:
    """What a hostile checkpoint pickles: loading it would call record_loading."""

    def __reduce__(self):
        return (record_loading, ())


def _raw_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "payload": Hostile()}))


def _raw_pickle_protocol_2(path: Path) -> None:
    path.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "payload": Hostile()}, protocol=2))


def _torch_save_payload(path: Path) -> None:
    torch.save({"format": ckpt.FORMAT, "payload": Hostile()}, path)


@pytest.mark.parametrize(
    ("write", "holds"),
    [
        (_raw_pickle, "a raw Python pickle, not a checkpoint torch.save writes"),
        (_raw_pickle_protocol_2, "a raw Python pickle, not a checkpoint torch.save writes"),
        (_torch_save_payload, "a torch.save file"),
    ],
)
def test_a_hostile_checkpoint_is_refused_in_one_line_that_never_advises_unsafe_loading(tiny_run, tmp_path, registry, capsys, write, holds):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    path = ckpt.find(run_dir)
    write(path)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        code = main(["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "grid.png")])
    err = capsys.readouterr().err
    assert code == 2 and not LOADED and not warned, [str(w.message) for w in warned]
    (line,) = err.strip().splitlines()
    assert line.startswith(f"gankit: error: {path}: refused: it is {holds}, holding Python objects "), line
    assert "record_loading" in line and "gankit never unpickles such a file" in line, line
    assert "weights_only" not in err and "will likely succeed" not in err


def test_a_raw_pickle_checkpoint_is_one_line_from_the_command_line(tmp_path):
    path = tmp_path / "checkpoint-000000000064.pt"
    _raw_pickle(path)
    done = subprocess.run(
        [sys.executable, "-m", "gankit", "sample", str(path), "--out", str(tmp_path / "grid.png")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()  # no torch warning about the pickle's protocol
    assert line.startswith(f"gankit: error: {path}: refused: it is a raw Python pickle") and "weights_only" not in line, line
    assert not (tmp_path / "grid.png").exists()


# -- 2. the disk fills during a checkpoint write ------------------------------------


def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, registry, capsys, monkeypatch):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE.replace("[train]", "[train]\ncheckpoint_ticks = 2"))
    real_save, saves = torch.save, []

    def fill_the_disk(state, handle) -> None:
        saves.append(handle)
        if len(saves) == 1:
            return real_save(state, handle)
        handle.write(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", fill_the_disk)
    run_dir = tmp_path / "run"
    code = main(["run", str(tmp_path / "recipe.toml"), "--run-dir", str(run_dir), "--progress", "lines"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and len(saves) == 2
    good = ckpt.checkpoint_path(run_dir / "checkpoints", 32)
    assert str(run_dir) in line and "disk is full" in line and f"last good checkpoint is {good.name}" in line
    assert ckpt.list_checkpoints(run_dir / "checkpoints") == [good]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [good.name]  # no .partial left
    assert ckpt.load(good)["progress"]["nimg"] == 32


class _DiskWithRoom:
    """A file on a disk with ``room`` bytes left: past them every write fails
    as a full disk's does, so that torch.save fails as it does there (a
    RuntimeError of its zip writer raised while handling the OSError)."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def _fill_the_disk_after(monkeypatch, good_saves: int) -> list[int]:
    real_save, saves = torch.save, []

    def save(state, handle) -> None:
        saves.append(1)
        real_save(state, handle if len(saves) <= good_saves else _DiskWithRoom(handle, 4096))

    monkeypatch.setattr(torch, "save", save)
    return saves


def _assert_the_full_disk_line(line: str, run_dir: Path, good: Path) -> None:
    folder = run_dir / "checkpoints"
    assert line.startswith(f"gankit: error: {folder}: the disk is full"), line
    assert "a checkpoint needs about " in line and " free there, and " in line, line  # the space to free, and what is free
    assert f"the last good checkpoint is {good.name} (gankit run --resume {run_dir}" in line, line
    assert "enforce fail" not in line and "unexpected pos" not in line
    assert sorted(p.name for p in folder.iterdir()) == [good.name]  # no .partial left
    assert ckpt.load(good)["progress"]["nimg"] == 32


def test_a_disk_that_fills_inside_torch_save_is_one_line_on_run_and_on_resume(tmp_path, registry, capsys, monkeypatch):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE.replace("[train]", "[train]\ncheckpoint_ticks = 2"))
    run_dir = tmp_path / "run"
    good = ckpt.checkpoint_path(run_dir / "checkpoints", 32)
    saves = _fill_the_disk_after(monkeypatch, good_saves=1)
    code = main(["run", str(tmp_path / "recipe.toml"), "--run-dir", str(run_dir), "--progress", "lines"])
    assert code == 2 and len(saves) == 2
    _assert_the_full_disk_line(_error_line(capsys.readouterr().err), run_dir, good)

    # the disk is still full: the resumed run fails the same way, and its checkpoint is still there
    code = main(["run", "--resume", str(run_dir), "--progress", "lines"])
    assert code == 2 and len(saves) == 3
    _assert_the_full_disk_line(_error_line(capsys.readouterr().err), run_dir, good)


def test_a_full_disk_while_writing_the_log_on_resume_is_one_line(tmp_path, registry, capsys, monkeypatch):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE.replace("[train]", "[train]\ncheckpoint_ticks = 2"))
    run_dir = tmp_path / "run"
    _fill_the_disk_after(monkeypatch, good_saves=1)
    main(["run", str(tmp_path / "recipe.toml"), "--run-dir", str(run_dir), "--progress", "lines"])
    capsys.readouterr()

    def no_room(self, record) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(JsonlLogger, "log", no_room)
    code = main(["run", "--resume", str(run_dir), "--progress", "lines"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith(f"gankit: error: {run_dir}: the disk is full; a checkpoint needs about "), line
    assert "the last good checkpoint is checkpoint-000000000032.pt" in line, line


# -- 3. a kill between a checkpoint and later ticks -----------------------------------


def test_resume_after_a_kill_logs_every_tick_once(tmp_path, registry):
    text = TINY_RECIPE.replace("kimg = 0.064", "kimg = 0.08").replace("[train]", "[train]\ncheckpoint_ticks = 2")
    (tmp_path / "recipe.toml").write_text(text)
    run_dir = tmp_path / "run"
    Run.start(tmp_path / "recipe.toml", run_dir=run_dir, progress="none").train()
    # as SIGKILL at tick 3 would leave it: only tick 2's checkpoint, ticks 3 to 5 logged, the last line torn
    for path in ckpt.list_checkpoints(run_dir / "checkpoints")[1:]:
        path.unlink()
    with open(run_dir / "log.jsonl", "a") as log:
        log.write('{"tick": 6, "kimg": 0.0')
    resumed = Run.resume(run_dir, progress="none")
    assert resumed.trainer.tick == 2
    resumed.train()
    assert _ticks(run_dir) == [1, 2, 3, 4, 5]


# -- 4. non-finite numbers in log.jsonl ---------------------------------------------


def test_non_finite_numbers_are_logged_as_null(tmp_path):
    logger = JsonlLogger(JsonlOptions())
    logger.open(tmp_path, {}, resumed=False)
    logger.log({"tick": 1, "kimg": 0.016, "loss/D": float("nan"), "loss/G": float("inf"), "metrics": {"fid": {"fid": float("-inf")}}})
    logger.close()
    (record,) = [_strict_json(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert record == {"tick": 1, "kimg": 0.016, "loss/D": None, "loss/G": None, "metrics": {"fid": {"fid": None}}}


# -- 5. a run that stopped before its first checkpoint ------------------------------------


def test_a_run_that_stopped_before_its_first_checkpoint_starts_again(tmp_path, registry, capsys, monkeypatch):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE)
    run_dir = tmp_path / "run"
    command = ["run", str(tmp_path / "recipe.toml"), "--run-dir", str(run_dir), "--progress", "lines"]

    def ctrl_c(self: ShapesDataset) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ShapesDataset, "prepare", ctrl_c)
        assert main(command) == 130
    assert (run_dir / "resolved.toml").is_file()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 2
    line = _error_line(capsys.readouterr().err)
    assert "before its first checkpoint" in line and f"--run-dir {run_dir}" in line

    assert main(command) == 0, capsys.readouterr().err
    assert ckpt.list_checkpoints(run_dir / "checkpoints") and _ticks(run_dir) == [1, 2, 3, 4]


def test_a_folder_killed_before_its_first_checkpoint_is_cleared_and_started(tmp_path, registry, capsys):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE)
    run_dir = tmp_path / "run"
    command = ["run", str(tmp_path / "recipe.toml"), "--run-dir", str(run_dir), "--progress", "lines"]
    assert main(command) == 0
    # as SIGKILL before the first checkpoint leaves it: env.json, log lines, samples, a torn .partial
    for path in (run_dir / "checkpoints").iterdir():
        path.unlink()
    (run_dir / "checkpoints" / ".checkpoint-000000000016.pt.partial").write_bytes(b"torn")
    assert main(command) == 0, capsys.readouterr().err
    assert _ticks(run_dir) == [1, 2, 3, 4]  # the old lines are gone, not doubled
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["checkpoint-000000000064.pt"]


def test_a_run_with_a_checkpoint_is_never_started_over(tiny_run, tmp_path, registry, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    before = sorted(p.name for p in run_dir.rglob("*"))
    assert main(["run", str(tiny_run.parent / "recipe.toml"), "--run-dir", str(run_dir)]) == 2
    assert f"--resume {run_dir}" in _error_line(capsys.readouterr().err)
    assert sorted(p.name for p in run_dir.rglob("*")) == before
