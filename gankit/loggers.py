"""The built-in loggers: log.jsonl and TensorBoard."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import attrs
import torch

from gankit.contracts import Logger


@attrs.define(kw_only=True)
class JsonlOptions:
    """One JSON line per tick in the run folder's log.jsonl: kimg, losses, mean scores, img/s, sec/kimg, memory, lr, metrics."""


class JsonlLogger(Logger):
    """One JSON line per tick in the run folder's log.jsonl: kimg, losses, mean scores, img/s, sec/kimg, memory, lr, metrics.

    Every line is strict JSON: a number that is not finite (a NaN loss, an
    infinite score) is written as ``null``, since JSON has no NaN or
    Infinity and most readers other than Python's reject them.
    """

    def __init__(self, options: JsonlOptions) -> None:
        self.path: Path | None = None

    def open(self, run_dir: Path, resolved_recipe: dict[str, Any], resumed: bool) -> None:
        self.path = run_dir / "log.jsonl"

    def log(self, record: dict[str, Any]) -> None:
        assert self.path is not None, "open() first"
        # opened per line and flushed on close: a crash loses no finished tick
        with open(self.path, "a") as log:
            log.write(json.dumps(_finite(record), allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def drop_ticks_after(path: Path, tick: int) -> None:
    """Drop the lines of a log.jsonl after ``tick``: a resumed run logs the
    ticks after its checkpoint again, and each tick should appear once. A
    torn last line (a kill mid-write) goes too, so that every line stays JSON."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not (isinstance(record, dict) and isinstance(record.get("tick"), int) and record["tick"] > tick):
            # written again as the logger writes it: older logs have bare NaN
            kept.append(json.dumps(_finite(record), allow_nan=False) + "\n")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text("".join(kept))
    os.replace(partial, path)  # a kill now leaves the old log or the new one, never half of it


@attrs.define(kw_only=True)
class TensorBoardOptions:
    """Scalars and sample grids under the run folder's tensorboard/: tensorboard --logdir runs."""


class TensorBoardLogger(Logger):
    """Scalars and sample grids under the run folder's tensorboard/: tensorboard --logdir runs.
    The step is the number of real images shown."""

    def __init__(self, options: TensorBoardOptions) -> None:
        self.writer: Any = None
        self.folder: Path | None = None
        self.resumed = False

    def open(self, run_dir: Path, resolved_recipe: dict[str, Any], resumed: bool) -> None:
        self.folder, self.resumed = run_dir / "tensorboard", resumed

    def _writer(self, step: int) -> Any:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when a run has a folder

            # a resumed run logs again from its checkpoint on: purge_step hides
            # the events written after it, so that TensorBoard shows each step once
            self.writer = SummaryWriter(str(self.folder), purge_step=step if self.resumed else None)
        return self.writer

    def log(self, record: dict[str, Any]) -> None:
        step = round(record["kimg"] * 1000)
        writer = self._writer(step)
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("tick", "kimg"):
                writer.add_scalar(key, value, step)
        for name, values in record.get("metrics", {}).items():
            for key, value in values.items():
                if isinstance(value, (int, float)) and key != "seconds":
                    writer.add_scalar(f"metrics/{name}/{key}", value, step)

    def log_picture(self, name: str, picture: torch.Tensor, kimg: float) -> None:
        self._writer(round(kimg * 1000)).add_image(name, picture, round(kimg * 1000))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
