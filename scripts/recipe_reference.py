"""Write docs/recipes.md, the reference of every recipe table, from gankit's
registry and TrainOptions.

    python scripts/recipe_reference.py           # (re)write docs/recipes.md
    python scripts/recipe_reference.py --check   # exit 1 when it is stale

The tables come from gankit.kinds.KINDS and the components from the
registry, restricted to the distributions that ship with gankit
(gankit.registry.FIRST_PARTY), so that the file does not depend on which
third-party plugins are installed. The output is deterministic: sorted, with
no dates and no paths of this machine.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import tomli_w

from gankit.cli import option_rows
from gankit.kinds import KINDS, Kind
from gankit.recipe import TOP_LEVEL_KEYS, TrainOptions
from gankit.registry import FIRST_PARTY, Component, Registry, default_registry

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "recipes.md"
COMMAND = "python scripts/recipe_reference.py"

_CALLS = {
    "options": "factory(options)",
    "options+context": "factory(options, context)",
    "parameters+options": "factory(parameters, options)",
}


def _contract_name(contract: type) -> str:
    """The shortest public path of a contract class: gankit.Loss, torch.optim.Optimizer."""
    import importlib

    parts = contract.__module__.split(".")
    for end in range(1, len(parts) + 1):
        module = importlib.import_module(".".join(parts[:end]))
        if getattr(module, contract.__qualname__, None) is contract:
            return f"{module.__name__}.{contract.__qualname__}"
    return f"{contract.__module__}.{contract.__qualname__}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{_cell(text)}`"


def _toml(value: Any) -> str:
    """``value`` as TOML writes it inline: true, "text", [0.5, 0.999], {256 = 14}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return {"inf": "inf", "-inf": "-inf", "nan": "nan"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _default(value: Any) -> str:
    if value is attrs.NOTHING:
        return "required"
    return "not set" if value is None else _code(_toml(value))


def _options_table(options: type) -> list[str]:
    rows = option_rows(options)
    if not rows:
        return ["No options."]
    lines = ["| option | type | default | description |", "|---|---|---|---|"]
    for name, type_name, default, help_ in rows:
        lines.append(f"| `{name}` | {_code(type_name)} | {_default(default)} | {_cell(help_)} |")
    return lines


def _toml_block(table: dict[str, Any]) -> list[str]:
    return ["```toml", *tomli_w.dumps(table).strip().splitlines(), "```"]


def _heading(kind: Kind) -> str:
    key = kind.recipe_key
    if kind.keys is not None:
        return " and ".join(f"`[{key}.{name}]`" for name in kind.keys)
    return f"`[{key}.NAME]`" if kind.named else f"`[{key}]`"


def _takes(kind: Kind) -> list[str]:
    key, contract, name = kind.recipe_key, _contract_name(kind.contract), kind.name
    typed = "`type` names it, the other keys are its options."
    if kind.keys is not None:
        what = f"One {name} for each of {' and '.join(f'`{k}`' for k in kind.keys)}, each in its own sub-table: {typed}"
    elif kind.named:
        what = f"Any number of {name}s, each in its own sub-table `[{key}.NAME]`: {typed}"
        if kind.key_is_type:
            what += f" Without `type` the sub-table's name is the {name}'s,"
            what += f" so the same {name} can be used twice under two names with `type` set."
    else:
        what = f"One {name}: {typed}"
    article = "An" if name[0] in "aeiou" else "A"
    built = f"{article} {name} is a `{contract}`, built as `{_CALLS[kind.call]}`"
    lines = [what, "", f"{built}; `gankit list {name}` shows every installed one."]
    lines.append("")
    if kind.default is None:
        lines.append("When absent: none." if kind.named else f"Required: a recipe without `[{key}]` is an error.")
    elif kind.keys is not None:
        lines += ["When absent, and for each sub-table left out:", "", *_toml_block({key: kind.default})]
    else:
        lines += ["When absent:", "", *_toml_block({key: kind.default})]
        if kind.named:
            lines += ["", f"A recipe with a `[{key}]` table uses exactly the {kind.name}s it lists; `{key} = {{}}` uses none."]
    return lines


def _component(component: Component, registry: Registry) -> list[str]:
    name = registry.recipe_name(component)
    lines = [f"### `{name}`", "", f"From {component.dist}." + (f" {component.summary}" if component.summary else ""), ""]
    return lines + _options_table(component.options)


def _first_party_registry() -> Registry:
    registry = default_registry()
    loaded = {plugin.dist for plugin in registry.plugins if plugin.error is None}
    failed = sorted(f"{plugin.dist} ({plugin.error})" for plugin in registry.plugins if plugin.error and plugin.dist in FIRST_PARTY)
    missing = sorted(FIRST_PARTY - loaded)
    if failed or missing:
        raise SystemExit(
            f"recipe_reference: gankit's own distributions must all load to write the reference; not loaded: {', '.join(failed or missing)}"
            " (pip install -e . and each of plugins/*; unset GANKIT_ONLY_PLUGINS and GANKIT_BLOCK_PLUGINS)"
        )
    return registry


def render(registry: Registry | None = None) -> str:
    """The text of docs/recipes.md."""
    registry = registry or _first_party_registry()
    kinds = list(KINDS.values())
    documented = {"name", "extends", "train", *(kind.recipe_key for kind in kinds)}
    if documented != set(TOP_LEVEL_KEYS):
        raise SystemExit(f"recipe_reference: recipes take the keys {sorted(TOP_LEVEL_KEYS)}, this script documents {sorted(documented)}")
    tables = ", ".join(f"`[{kind.recipe_key}]`" for kind in kinds)
    out = [
        "# Recipe reference",
        "",
        f"<!-- Generated by scripts/recipe_reference.py; do not edit. Regenerate with: {COMMAND} -->",
        "",
        f"A recipe is a TOML file with the top-level keys `name` and `extends` and the tables {tables} and `[train]`.",
        "A component table names its component with `type` and sets its options with the other keys: types are strict",
        "(a string is never read as a number) and an unknown key is an error that names the file, key and line.",
        'Where two distributions register the same name, `type = "dist:name"` picks one (docs/plugins.md, "Name clashes").',
        "",
        "This reference lists the components of the distributions that ship with gankit",
        f"({', '.join(sorted(FIRST_PARTY))}); `gankit list` and `gankit show KIND NAME` show every installed one,",
        "third-party plugins included, and `gankit check RECIPE --print` prints a recipe with every default filled in.",
        "",
        "## `name`",
        "",
        "The run's name: run folders are `OUT_DIR/NNNNN-NAME` (`train.out_dir`). Letters, digits, `.`, `-` and `_`.",
        "When absent: the recipe file's name without `.toml`.",
        "",
        "## `extends`",
        "",
        "The path of a base recipe, relative to this file. This recipe's tables are merged over the base's, key by key;",
        "a component table that names another `type` replaces the base's table whole, since its options would not fit.",
        "`--set KEY.PATH=VALUE` overrides apply last. When absent: no base.",
    ]
    for kind in kinds:
        out += ["", f"## {_heading(kind)}", "", *_takes(kind)]
        components = sorted((c for c in registry.components(kind.name) if c.dist in FIRST_PARTY), key=lambda c: (c.name, c.dist))
        for component in components:
            out += ["", *_component(component, registry)]
    out += [
        "",
        "## `[train]`",
        "",
        f"{' '.join((TrainOptions.__doc__ or '').split())} Every key is optional; `gankit show train` prints them too.",
        "",
        *_options_table(TrainOptions),
    ]
    return "\n".join(out) + "\n"


def check(path: Path = OUTPUT) -> str | None:
    """Why ``path`` is not what :func:`render` writes, or None when it is."""
    expected = render()
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{path.name} is missing: run `{COMMAND}`"
    if current != expected:
        return f"{path.name} is stale (it differs from what gankit's registry and TrainOptions give): run `{COMMAND}`"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/recipes.md from gankit's registry and TrainOptions.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when docs/recipes.md differs from what it would write")
    args = parser.parse_args(argv)
    if args.check:
        problem = check()
        if problem:
            print(f"recipe_reference: {problem}", file=sys.stderr)
            return 1
        print(f"recipe_reference: {OUTPUT.name} is up to date", file=sys.stderr)
        return 0
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"recipe_reference: wrote docs/{OUTPUT.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
