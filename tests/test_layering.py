"""gankit's layers and its public API, checked from the source.

The core is layered errors/options/layers/images -> contracts -> registry,
recipe, datasets, metrics -> loop, preflight -> runs -> cli: a module imports (at its
top) only modules of its own layer or below, with no circle. Plugins,
benchmarks and scripts import only the public API: ``gankit`` and the
modules of ``gankit.PUBLIC_MODULES``. Plugins never import each other, and
benchmarks use a plugin's package by its public names only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tiny_recipes import REPO

from gankit import PUBLIC_MODULES

GANKIT = REPO / "gankit"

PUBLIC = {"gankit", *PUBLIC_MODULES}

#: Plugins' tests run gankit's commands as a user types them (``main([...])``).
PLUGIN_TESTS_ALSO = {"gankit.cli"}

#: recipe_reference.py writes docs/recipes.md from the core's own tables (the
#: kinds, TrainOptions, the first-party distributions): it documents private
#: modules, so it reads them. Every other script is held to the public API.
SCRIPTS_ALSO = {"recipe_reference.py": {"gankit.cli", "gankit.kinds", "gankit.recipe", "gankit.registry"}}

#: gankit_dcgan -> dcgan: each plugin's package and its folder under plugins/
PLUGIN_PACKAGES = {path.parent.name: path.parent.parent.name for path in (REPO / "plugins").glob("*/gankit_*/__init__.py")}

#: what a benchmark must not import: the suite's modules
TEST_MODULES = {"tests", "conftest", "tiny_recipes", "fake_plugins"} | {p.stem for p in REPO.glob("plugins/*/tests/*.py")}

LAYERS = [
    {"gankit.errors", "gankit.options", "gankit.layers", "gankit.images", "gankit.distributed", "gankit.objectives"},
    {"gankit.contracts", "gankit.hookspecs", "gankit.pictures"},
    {
        "gankit.kinds",
        "gankit.registry",
        "gankit.recipe",
        "gankit.checkpoint",
        "gankit.sampling",
        "gankit.loggers",
        "gankit.builtin",
        "gankit.networks",
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


def _is_module(name: str) -> bool:
    top, *rest = name.split(".")
    base = REPO / "plugins" / PLUGIN_PACKAGES[top] if top in PLUGIN_PACKAGES else REPO
    path = base.joinpath(top, *rest)
    return path.with_suffix(".py").is_file() or path.is_dir()


def _imports(path: Path, top_level_only: bool, roots: frozenset[str] = frozenset({"gankit"})) -> set[str]:
    """The modules under ``roots`` that ``path`` imports; ``from gankit import
    x`` counts as gankit.x when x is a module."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in roots}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in roots:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if _is_module(candidate) else node.module)
    return found


def _private(path: Path, allowed: set[str]) -> list[str]:
    return sorted(module for module in _imports(path, top_level_only=False) if module not in PUBLIC | allowed)


def test_plugins_import_only_the_public_api_and_never_each_other():
    offenders = []
    for path in sorted((REPO / "plugins").rglob("*.py")):
        relative = path.relative_to(REPO / "plugins")
        is_test = relative.parts[1] == "tests"
        problems = _private(path, PLUGIN_TESTS_ALSO if is_test else set())
        if not is_test:  # a plugin's tests may build another's components; its code never imports them
            own = "gankit_" + relative.parts[0]
            problems += sorted(m for m in _imports(path, False, frozenset(PLUGIN_PACKAGES)) if m.split(".")[0] != own)
        if problems:
            offenders.append(f"plugins/{relative}: {', '.join(problems)}")
    assert not offenders, "import these from gankit's public API (gankit.PUBLIC_MODULES) instead:\n" + "\n".join(offenders)


def test_benchmarks_and_scripts_import_only_the_public_api():
    offenders = []
    for path in sorted([*(REPO / "bench").glob("*.py"), *(REPO / "scripts").glob("*.py")]):
        allowed = SCRIPTS_ALSO.get(path.name, set()) if path.parent.name == "scripts" else set()
        problems = _private(path, allowed)
        # a plugin's package by its public names, never one of its modules
        problems += sorted(m for m in _imports(path, False, frozenset(PLUGIN_PACKAGES)) if "." in m)
        problems += sorted(_imports(path, False, frozenset(TEST_MODULES)))
        if "spec_from_file_location" in path.read_text():
            problems.append("a file loaded as a module")
        if problems:
            offenders.append(f"{path.relative_to(REPO)}: {', '.join(problems)}")
    assert not offenders, "benchmarks and scripts use gankit.PUBLIC_MODULES and plugins' public names:\n" + "\n".join(offenders)


def test_the_docs_point_to_the_one_list_of_public_modules():
    for module in PUBLIC_MODULES:
        assert _is_module(module), module
    for doc in ("README.md", "docs/architecture.md", "docs/plugins.md"):
        assert "gankit.PUBLIC_MODULES" in (REPO / doc).read_text(), f"{doc} does not point to gankit.PUBLIC_MODULES"


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
