"""The built-in loggers: log.jsonl and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import torch

from gankit.contracts import Logger


@attrs.define(kw_only=True)
class JsonlOptions:
    """One JSON line per tick in the run folder's log.jsonl: kimg, losses, mean scores, img/s, sec/kimg, memory, lr, metrics."""


class JsonlLogger(Logger):
    """One JSON line per tick in the run folder's log.jsonl: kimg, losses, mean scores, img/s, sec/kimg, memory, lr, metrics."""

    def __init__(self, options: JsonlOptions) -> None:
        self.path: Path | None = None

    def open(self, run_dir: Path, resolved_recipe: dict[str, Any], resumed: bool) -> None:
        self.path = run_dir / "log.jsonl"

    def log(self, record: dict[str, Any]) -> None:
        assert self.path is not None, "open() first"
        # opened per line and flushed on close: a crash loses no finished tick
        with open(self.path, "a") as log:
            log.write(json.dumps(record) + "\n")


@attrs.define(kw_only=True)
class TensorBoardOptions:
    """Scalars and sample grids under the run folder's tensorboard/: tensorboard --logdir runs."""


class TensorBoardLogger(Logger):
    """Scalars and sample grids under the run folder's tensorboard/: tensorboard --logdir runs.
    The step is the number of real images shown."""

    def __init__(self, options: TensorBoardOptions) -> None:
        self.writer: Any = None

    def open(self, run_dir: Path, resolved_recipe: dict[str, Any], resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when a run has a folder

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        step = round(record["kimg"] * 1000)
        for key, value in record.items():
            if isinstance(value, (int, float)) and key not in ("tick", "kimg"):
                self.writer.add_scalar(key, value, step)
        for name, values in record.get("metrics", {}).items():
            for key, value in values.items():
                if isinstance(value, (int, float)) and key != "seconds":
                    self.writer.add_scalar(f"metrics/{name}/{key}", value, step)

    def log_picture(self, name: str, picture: torch.Tensor, kimg: float) -> None:
        self.writer.add_image(name, picture, round(kimg * 1000))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
