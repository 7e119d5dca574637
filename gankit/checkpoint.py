"""Checkpoints: written to a temporary file and renamed, so a crash never
leaves a torn one; rotated; loaded with ``weights_only=True`` so that loading
never unpickles arbitrary objects."""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import pickletools
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gankit.errors import UserError

FORMAT = 1
_NAME = re.compile(r"^checkpoint-(\d{12})\.pt$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FULL = (errno.ENOSPC, errno.EDQUOT)
# what torch.save itself pickles into a checkpoint: anything else named in the file is someone's code
_TORCH_GLOBALS = re.compile(r"^(torch\.|collections\.OrderedDict$)")

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
    """Write ``state`` to ``path`` through a hidden partial file, or leave
    nothing. A full disk (or quota) raises :class:`OSError` with ``ENOSPC``,
    however torch reported it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException as error:
        # a half-written file is no checkpoint, and on a full disk it holds the space a retry needs
        partial.unlink(missing_ok=True)
        if isinstance(error, Exception) and is_disk_full(error):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised while handling, says the
    disk or the quota is full: torch.save reports a full disk as a
    RuntimeError of its zip writer ("unexpected pos") raised while handling
    the OSError of the write."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _FULL:
            return True
        seen.add(id(current))
        # ``raise ... from None`` (a message already written for it) ends the chain
        current = current.__cause__ if current.__cause__ is not None or current.__suppress_context__ else current.__context__
    return False


def state_nbytes(state: Any) -> int:
    """About how many bytes a checkpoint of ``state`` takes: its tensors'."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_nbytes(value) for value in state.values())
    if isinstance(state, (list, tuple)):
        return sum(state_nbytes(value) for value in state)
    return 0


def free_bytes(folder: Path) -> int | None:
    """The bytes free to this user on the disk that holds ``folder`` (or its nearest existing parent)."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free
            except OSError:
                return None
    return None


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
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of a file it then refuses: the refusal says enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: refused: {_pickled_contents(path)}; gankit never unpickles such a file") from None
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


def _pickled_contents(path: Path) -> str:
    """What a file that torch's safe loader refused holds, read with
    pickletools, which runs nothing: the Python objects its pickle names."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((member for member in archive.namelist() if member.endswith("data.pkl")), None)
                data = archive.read(name) if name else b""
            kind = "a torch.save file"
        else:
            data = path.read_bytes()
            kind = "a raw Python pickle, not a checkpoint torch.save writes"
        names = _pickle_globals(data)
    except Exception:  # a pickle too damaged to list: what it would load is unknown, and refused all the same
        return "it holds a pickle that is not a gankit checkpoint's"
    foreign = [name for name in names if not _TORCH_GLOBALS.match(name)]
    if not foreign:
        return f"it is {kind}, which torch's safe loader cannot read"
    listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
    return f"it is {kind}, holding Python objects ({listed}) whose loading would run their code"


def _pickle_globals(data: bytes) -> list[str]:
    """The classes and functions a pickle names, in order, each once."""
    names: list[str] = []
    strings: list[str] = []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name in ("GLOBAL", "INST"):
            found = str(argument).replace(" ", ".")
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found = f"{strings[-2]}.{strings[-1]}"
        else:
            if isinstance(argument, str):
                strings.append(argument)
            continue
        found = "".join(char if char.isprintable() else "?" for char in found[:100])  # the file's text, on one line
        if found not in names:
            names.append(found)
    return names


def _reason(error: BaseException) -> str:
    """``error`` in one line: torch's multi-line messages shortened to what
    is wrong, without its colours or its advice to load with
    ``weights_only=False`` (which would run code from the file)."""
    text = _ANSI.sub("", str(error))
    if "weights_only" in text:
        return f"{error.__class__.__name__}: torch's safe loader refused it"
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
