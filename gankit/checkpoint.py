"""Checkpoints: written to a temporary file and renamed, so a crash never
leaves a torn one; rotated; loaded with ``weights_only=True`` so that loading
never unpickles arbitrary objects."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gankit.errors import UserError

FORMAT = 1
_NAME = re.compile(r"^checkpoint-(\d{12})\.pt$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# what Trainer.state_dict writes, and the type of each (stage may also be None)
_LAYOUT: dict[str, type] = {
    "recipe": str,
    "context": dict,
    "generator": dict,
    "discriminator": dict,
    "generator_ema": dict,
    "optimizers": dict,
    "scalers": dict,
    "scheduler": dict,
    "progress": dict,
    "stage": dict,
    "rng": dict,
}
_COUNTERS = ("nimg", "d_steps", "g_steps", "tick", "tick_start_nimg", "batch_size")


def checkpoint_path(folder: Path, nimg: int) -> Path:
    return folder / f"checkpoint-{nimg:012d}.pt"


def save_atomic(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        # a half-written file is no checkpoint, and on a full disk it holds the space a retry needs
        partial.unlink(missing_ok=True)
        raise


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if _NAME.match(path.name))


def rotate(folder: Path, keep: int) -> None:
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state in a checkpoint file, checked to hold every entry a run
    reads, with counters that are whole numbers; anything else is a
    :class:`UserError` naming the file."""
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint") from None
    if empty:
        raise UserError(f"{path}: not a readable gankit checkpoint (the file is empty: its write never finished)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise UserError(f"{path}: not a readable gankit checkpoint ({_reason(error)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a gankit checkpoint of format {FORMAT}")
    missing = [key for key in _LAYOUT if key not in state]
    if missing:
        raise UserError(f"{path}: not a complete gankit checkpoint (missing {', '.join(missing)})")
    for key, kind in _LAYOUT.items():
        if not isinstance(state[key], kind) and not (key == "stage" and state[key] is None):
            raise UserError(f"{path}: {key} is a {type(state[key]).__name__}, expected a {kind.__name__}")
    for key in _COUNTERS:
        value = state["progress"].get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UserError(f"{path}: progress.{key} is {value!r}, expected a whole number of at least 0")
    return state


@contextlib.contextmanager
def restoring(path: Path, into: str) -> Iterator[None]:
    """Turn what loading a checkpoint's state into built networks raises (a
    missing entry, a tensor of the wrong shape) into a :class:`UserError`
    that names the file and ``into``, what it was loaded into."""
    try:
        yield
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:
        raise UserError(f"{path}: does not fit {into}: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    """``error`` in one line: torch's multi-line messages shortened to what
    is wrong, without its colours or its advice to load with
    ``weights_only=False`` (which would run code from the file)."""
    text = _ANSI.sub("", str(error))
    if "WeightsUnpickler error:" in text:
        refused = text.split("WeightsUnpickler error:", 1)[1].split(". ", 1)[0].strip()
        return f"it holds Python objects, which gankit never unpickles: {refused}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0].startswith("Error(s) in loading state_dict for"):
        # torch lists every mismatched tensor, one per line: the first says enough
        owner = lines[0].removeprefix("Error(s) in loading state_dict for").strip(" :")
        first = lines[1].rstrip(".") if len(lines) > 1 else "mismatched"
        more = f"; {len(lines) - 2} more like it" if len(lines) > 2 else ""
        lines = [f"{owner}: {first}{more}"]
    reason = lines[0] if lines else ""
    return f"{error.__class__.__name__}: {reason}" if reason else error.__class__.__name__


def find(run_or_checkpoint: Path) -> Path:
    """The checkpoint a path names: itself, or a run folder's newest."""
    path = Path(run_or_checkpoint)
    if path.is_file():
        return path
    if path.is_dir():
        found = list_checkpoints(path / "checkpoints") or list_checkpoints(path)
        if found:
            return found[-1]
        raise UserError(f"{path}: no checkpoint in this run folder (checkpoints/ is empty or missing)")
    raise UserError(f"{path}: no such run folder or checkpoint file")
