"""Checkpoints: written to a temporary file and renamed, so a crash never
leaves a torn one; rotated; loaded with ``weights_only=True`` so that loading
never unpickles arbitrary objects."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

from gankit.errors import UserError

FORMAT = 1
_NAME = re.compile(r"^checkpoint-(\d{12})\.pt$")


def checkpoint_path(folder: Path, nimg: int) -> Path:
    return folder / f"checkpoint-{nimg:012d}.pt"


def save_atomic(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if _NAME.match(path.name))


def rotate(folder: Path, keep: int) -> None:
    for old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint") from None
    except Exception as error:
        raise UserError(f"{path}: not a readable gankit checkpoint ({error.__class__.__name__}: {str(error).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a gankit checkpoint of format {FORMAT}")
    return state


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
