"""Run folders: one per training, numbered, never overwritten."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import gankit
from gankit.errors import UserError

_NUMBERED = re.compile(r"^(\d{5})-")


def is_writer() -> bool:
    """Only the first process writes the run folder (rank 0 under torchrun)."""
    return int(os.environ.get("RANK", "0")) == 0


def new_run_dir(out_dir: Path, name: str) -> Path:
    """``out_dir/NNNNN-name``, numbered after the highest run already there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for entry in out_dir.iterdir() if (m := _NUMBERED.match(entry.name))]
    number = max(numbers, default=-1) + 1
    while True:
        path = out_dir / f"{number:05d}-{name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another run took the number first
            number += 1


def claim_run_dir(path: Path) -> Path:
    """A folder the user named: it must be new or empty."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path}: the run folder exists and is not empty; gankit never overwrites a run (resume it with --resume {path})")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(seed: int, device: torch.device, plugins: dict[str, str]) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "gankit": gankit.__version__,
        "plugins": plugins,
        "numpy": importlib.metadata.version("numpy"),
        "git": _git_hash(),
        "seed": seed,
        "device": str(device),
        "command": sys.argv,
    }


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
