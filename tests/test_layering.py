"""gankit's layers and its public API, checked from the source.

The core is layered errors/options/layers/images -> contracts -> registry,
recipe, datasets, metrics -> loop, preflight -> runs -> cli: a module imports (at its
top) only modules of its own layer or below, with no circle. Plugins and
benchmarks import only the public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tiny_recipes import REPO

GANKIT = REPO / "gankit"

#: What a plugin or benchmark may import: the package itself and these modules.
PUBLIC = {"gankit", "gankit.options", "gankit.layers", "gankit.metrics", "gankit.testing", "gankit.cli", "gankit.distributed"}

LAYERS = [
    {"gankit.errors", "gankit.options", "gankit.layers", "gankit.images", "gankit.distributed"},
    {"gankit.contracts", "gankit.hookspecs", "gankit.pictures"},
    {
        "gankit.kinds",
        "gankit.registry",
        "gankit.recipe",
        "gankit.checkpoint",
        "gankit.sampling",
        "gankit.loggers",
        "gankit.builtin",
        "gankit",
    },
    {"gankit.loop", "gankit.preflight"},
    {"gankit.runs"},
    {"gankit.cli", "gankit.testing", "gankit.__main__"},
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    for index, layer in enumerate(LAYERS):
        # a package's modules (gankit.metrics.features) sit in its layer unless listed
        if module in layer:
            return index
    if module.startswith("gankit.layers."):
        return 0
    if module.startswith(("gankit.datasets", "gankit.metrics")):
        return 2
    raise AssertionError(f"{module} is in no layer of tests/test_layering.py: place it")


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """gankit modules ``path`` imports; ``from gankit import x`` counts as
    gankit.x when x is a module."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "gankit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "gankit":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (REPO / Path(*candidate.split("."))).with_suffix(".py").is_file() or (
                    REPO / Path(*candidate.split("."))
                ).is_dir()
                found.add(candidate if is_module else node.module)
    return found


def test_no_plugin_or_benchmark_imports_a_private_module():
    offenders = []
    for path in sorted([*(REPO / "plugins").rglob("*.py"), *(REPO / "bench").glob("*.py")]):
        private = sorted(module for module in _imports(path, top_level_only=False) if module not in PUBLIC)
        if private:
            offenders.append(f"{path.relative_to(REPO)}: {', '.join(private)}")
    assert not offenders, "import these from gankit's public API instead:\n" + "\n".join(offenders)


def test_the_core_is_layered_without_circles():
    graph = {_module_name(path): _imports(path, top_level_only=True) for path in GANKIT.rglob("*.py")}
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in graph.items()
        for target in targets
        if target in graph and _layer(target) > _layer(module)
    ]
    assert not upward, "\n".join(upward)

    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in visiting:
            raise AssertionError("import circle: " + " -> ".join([*visiting[visiting.index(module) :], module]))
        if module in done or module not in graph:
            return
        visiting.append(module)
        for target in sorted(graph[module]):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_listing_components_imports_neither_the_loop_nor_heavy_libraries():
    code = (
        "import sys\n"
        "from gankit.cli import main\n"
        "main(['list'])\n"
        "heavy = ('gankit.loop', 'gankit.runs', 'torchvision.models', 'torch.utils.tensorboard', 'scipy')\n"
        "print('IMPORTED', [m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout
    assert "IMPORTED []" in out, out.splitlines()[-1]
