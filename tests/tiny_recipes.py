"""The smallest recipes the core's tests train: tiny networks on 8x8 shapes.

A module of its own, not conftest.py, so that importing it never depends on
which of the suite's conftest files Python saw first."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]

TINY_RECIPE = """\
name = "tiny"

[generator]
type = "tiny"

[discriminator]
type = "tiny"

[loss]
type = "tiny"

[data]
type = "shapes"
resolution = 8
size = 64

[train]
kimg = 0.064
batch_size = 8
tick_kimg = 0.016
device = "cpu"
samples = 16

[loggers.jsonl]
"""


# TINY_RECIPE with the networks and loss of the temporary toy plugin
TOY_RECIPE = TINY_RECIPE.replace('type = "tiny"', 'type = "toy"', 2).replace('type = "tiny"', 'type = "toyloss"')


def bench_module(name: str) -> ModuleType:
    """bench/NAME.py imported as a module, with bench/ on the path for its own imports."""
    sys.path.insert(0, str(REPO / "bench"))
    try:
        spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "bench"))
