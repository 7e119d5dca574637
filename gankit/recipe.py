"""TOML recipes: reading, extending, overriding, structuring and writing back.

A recipe names one component per table (``[generator] type = "dcgan"``) and
sets its options; the remaining keys of the table are structured into that
component's attrs options class, unknown keys forbidden. Every mistake is a
:class:`UserError` that names the file, the key path and, where the key is
written in the file, its line.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
import tomli_w
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from gankit.errors import UserError
from gankit.kinds import KINDS, Kind
from gankit.options import help_text, in_range, non_negative, one_of, positive
from gankit.registry import Component, Registry

KeyPath = tuple[str, ...]

TOP_LEVEL_KEYS = ("extends", "name", *(kind.recipe_key for kind in KINDS.values()), "train")


def _device_name(instance: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    if value not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", value):
        raise ValueError(f"'{attribute.name}' must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {value!r})")


@attrs.define(kw_only=True)
class TrainOptions:
    """How long and how a recipe trains."""

    kimg: float = attrs.field(
        default=100.0, validator=positive(), metadata=help_text("training length, in thousands of real images shown to the discriminator")
    )
    batch_size: int = attrs.field(
        default=64, validator=positive(), metadata=help_text("images per step (a scheduler may change it per stage)")
    )
    seed: int = attrs.field(default=0, metadata=help_text("seeds weights, latents, data order and the sample grid"))
    device: str = attrs.field(
        default="auto", validator=_device_name, metadata=help_text("auto (cuda when there is one), cpu, cuda or cuda:N")
    )
    precision: Literal["fp32", "bf16", "fp16"] = attrs.field(
        default="fp32", metadata=help_text("fp32, bf16 (autocast) or fp16 (autocast with a gradient scaler)")
    )
    channels_last: bool = attrs.field(default=False, metadata=help_text("keep networks and images in channels-last memory format"))
    deterministic: bool = attrs.field(default=False, metadata=help_text("use deterministic kernels only, for bit-exact reruns and resumes"))
    ema_halflife_kimg: float = attrs.field(
        default=10.0,
        validator=non_negative(),
        metadata=help_text("half-life of the generator's exponential moving average, in kimg (0: a copy)"),
    )
    ema_rampup: float = attrs.field(
        default=0.05,
        validator=non_negative(),
        metadata=help_text("EMA half-life ramps up as this fraction of the images shown so far (0: off)"),
    )
    tick_kimg: float = attrs.field(
        default=4.0, validator=positive(), metadata=help_text("kimg between ticks: a log line, and the unit of the intervals below")
    )
    sample_ticks: int = attrs.field(
        default=5, validator=non_negative(), metadata=help_text("ticks between sample grids (0: only at the end)")
    )
    checkpoint_ticks: int = attrs.field(
        default=10, validator=non_negative(), metadata=help_text("ticks between checkpoints (0: only at the end)")
    )
    keep_checkpoints: int = attrs.field(default=3, validator=positive(), metadata=help_text("how many of the newest checkpoints to keep"))
    metric_ticks: int = attrs.field(
        default=50, validator=non_negative(), metadata=help_text("ticks between metric evaluations (0: only at the end)")
    )
    samples: int = attrs.field(default=64, validator=in_range(1, 1024), metadata=help_text("images in each sample grid"))
    out_dir: str = attrs.field(default="runs", metadata=help_text("where run folders are made"))

    def __attrs_post_init__(self) -> None:
        one_of(("fp32", "bf16", "fp16"))(self, attrs.fields(TrainOptions).precision, self.precision)


@attrs.define
class ComponentSpec:
    """A component as a recipe names it, with its structured options."""

    kind: Kind
    name: str  # as written, maybe "dist:name"
    component: Component
    options: Any
    path: KeyPath
    source: "RecipeSource" = attrs.field(repr=False, eq=False)

    def build(self, argument: Any = None) -> Any:
        """Call the factory (with the BuildContext of a network or the
        parameters of an optimizer); a :class:`UserError` it raises is
        reported at this table's file, key and line."""
        try:
            return self.kind.call_factory(self.component.factory, self.options, argument)
        except UserError as error:
            raise self.source.error(self.path + ((error.key,) if error.key else ()), error.message) from None

    def to_table(self, converter: cattrs.Converter) -> dict[str, Any]:
        return {"type": self.name, **converter.unstructure(self.options)}


@attrs.define
class Recipe:
    """A structured recipe, every option filled in. ``components`` holds,
    for each kind's recipe key, its one ComponentSpec, or for a named kind a
    dict of them by name."""

    name: str
    components: dict[str, Any]
    train: TrainOptions
    source: "RecipeSource"

    def __getattr__(self, key: str) -> Any:  # recipe.generator, recipe.regularizers, ...
        try:
            return object.__getattribute__(self, "components")[key]
        except (AttributeError, KeyError):
            raise AttributeError(key) from None

    def resolved(self) -> dict[str, Any]:
        """Every option with defaults filled in and overrides applied: given
        back to ``gankit run``, it reproduces the run."""
        table: dict[str, Any] = {"name": self.name}
        for kind in KINDS.values():
            found = self.components[kind.recipe_key]
            if kind.named:
                table[kind.recipe_key] = {name: spec.to_table(converter) for name, spec in found.items()}
            else:
                table[kind.recipe_key] = found.to_table(converter)
        table["train"] = converter.unstructure(self.train)
        return drop_none(table)

    def resolved_toml(self) -> str:
        return tomli_w.dumps(self.resolved())

    def error(self, path: KeyPath, message: str) -> UserError:
        return self.source.error(path, message)


# --------------------------------------------------------------------------
# Strict structuring: TOML has types, so a string is never silently an int.

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _strict(expected: type, accepts: tuple[type, ...], name: str) -> None:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) and expected is not bool:
            raise TypeError(f"expected {name}, got a boolean ({value!r})")
        if not isinstance(value, accepts):
            raise TypeError(f"expected {name}, got {_describe(value)}")
        return expected(value)

    converter.register_structure_hook(expected, structure)


def _describe(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array", dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"


_strict(int, (int,), "an integer")
_strict(float, (int, float), "a number")
_strict(bool, (bool,), "true or false")
_strict(str, (str,), "a string")


def structure_options(data: Mapping[str, Any], options_class: type) -> Any:
    """Structure ``data`` into ``options_class``; raises :class:`_Invalid`
    with (relative key path, message) pairs."""
    try:
        return converter.structure(dict(data), options_class)
    except Exception as error:  # cattrs raises groups of anything the hooks raise
        problems = list(_problems(error, (), options_class))
        raise _Invalid(problems or [((), str(error))]) from None


class _Invalid(Exception):
    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


_QUOTED_NAME = re.compile(r"^'(\w+)' (.*)$", re.S)


def _problems(error: BaseException, path: KeyPath, cls: type | None) -> Any:
    if isinstance(error, ForbiddenExtraKeysError):
        known = [field.name for field in attrs.fields(error.cl)] if attrs.has(error.cl) else []
        for key in sorted(error.extra_fields):
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]}?)" if near else f"; known keys: {', '.join(known)}"
            yield path + (key,), f"unknown key{hint}"
        return
    if isinstance(error, (ClassValidationError, IterableValidationError, BaseExceptionGroup)):
        for sub in error.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", []):
                if hasattr(note, "name"):
                    sub_path = path + (note.name,)
                elif hasattr(note, "index"):
                    sub_path = path + (str(note.index),)
            yield from _problems(sub, sub_path, None)
        return
    if isinstance(error, KeyError):
        yield path + (str(error.args[0]),), "required key is missing"
        return
    message = str(error)
    if message.startswith("Required field"):
        yield path, message
        return
    match = _QUOTED_NAME.match(message)
    if match:  # an attrs validator, which names its attribute
        yield path + (match.group(1),), match.group(2)
        return
    if "not in literal" in message:
        yield path, message.replace("typing.Literal", "").replace(" not in literal", " is not one of")
        return
    yield path, message


def drop_none(value: Any) -> Any:
    """TOML has no null: leave out what is None."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [drop_none(v) for v in value]
    return value


# --------------------------------------------------------------------------
# Reading files, with where every key came from


@attrs.define
class RecipeSource:
    """The merged table of a recipe, its base recipes and overrides, and the
    file each key came from, for error messages."""

    path: Path | None
    data: dict[str, Any]
    origins: dict[KeyPath, str] = attrs.Factory(dict)
    texts: dict[str, str] = attrs.Factory(dict)

    def where(self, path: KeyPath) -> tuple[str, int | None]:
        for length in range(len(path), 0, -1):
            origin = self.origins.get(path[:length])
            if origin is not None:
                return origin, _find_line(self.texts.get(origin, ""), path[:length])
        origin = str(self.path) if self.path else "<recipe>"
        return origin, None

    def error(self, path: KeyPath, message: str) -> UserError:
        origin, line = self.where(path)
        where = f" (line {line})" if line else ""
        key = ".".join(path) if path else "(top level)"
        return UserError(f"{origin}: {key}: {message}{where}")


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such recipe file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: cannot read the recipe ({error.__class__.__name__}: {error})") from None
    return parse_toml(text, str(path)), text


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{origin}: TOML syntax error: {error}") from None


def _record(origins: dict[KeyPath, str], table: Mapping[str, Any], origin: str, prefix: KeyPath = ()) -> None:
    for key, value in table.items():
        origins[prefix + (key,)] = origin
        if isinstance(value, Mapping):
            _record(origins, value, origin, prefix + (key,))


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``top`` over ``base``. A component table that names another
    ``type`` replaces the base's table whole: its options would not fit."""
    merged = dict(base)
    for key, value in top.items():
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping) and ("type" not in value or value.get("type") == old.get("type")):
            merged[key] = _merge(dict(old), value)
        else:
            merged[key] = value
    return merged


def load_source(path: Path, overrides: Sequence[str] = (), _chain: tuple[Path, ...] = ()) -> RecipeSource:
    """Read ``path``, the recipes it extends, and ``--set`` overrides."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        raise UserError(f"{path}: extends: recipes extend each other in a loop ({' -> '.join(str(p) for p in (*_chain, resolved))})")
    data, text = read_toml(path)
    origin = str(path)
    source = RecipeSource(path=path, data={}, texts={origin: text})
    extends = data.pop("extends", None)
    if extends is not None:
        if not isinstance(extends, str):
            raise source.error(("extends",), f"expected the path of a base recipe (a string), got {_describe(extends)}")
        base_path = (path.parent / extends) if not Path(extends).is_absolute() else Path(extends)
        if not base_path.is_file():
            raise UserError(f"{origin}: extends: no such recipe {str(base_path)!r}" + _line_suffix(text, ("extends",)))
        base = load_source(base_path, (), (*_chain, resolved))
        source.data, source.origins, source.texts = base.data, base.origins, {**base.texts, origin: text}
    _record(source.origins, data, origin)
    source.data = _merge(source.data, data)
    for override in overrides:
        key_path, value = _parse_override(override)
        table = source.data
        for depth, key in enumerate(key_path[:-1]):
            child = table.get(key)
            if not isinstance(child, dict):
                if child is not None:
                    raise UserError(f"--set {override}: {'.'.join(key_path[: depth + 1])} is not a table")
                child = table[key] = {}
            table = child
        table[key_path[-1]] = value
        source.origins[key_path] = f"--set {override}"
        if isinstance(value, Mapping):
            _record(source.origins, value, f"--set {override}", key_path)
    return source


def _parse_override(override: str) -> tuple[KeyPath, Any]:
    key, sep, raw = override.partition("=")
    key_path = tuple(part.strip() for part in key.split("."))
    if not sep or not all(key_path):
        raise UserError(f"--set {override}: expected KEY.PATH=VALUE, such as train.kimg=10 or data.path=/data/faces")
    try:  # a TOML value: 10, 1e-3, true, [0.0, 0.99], "text"
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word or path is a string
    return key_path, value


def _line_suffix(text: str, path: KeyPath) -> str:
    line = _find_line(text, path)
    return f" (line {line})" if line else ""


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_\-\.\"' ]+?)\s*=")


def _split_key(text: str) -> KeyPath:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def _find_line(text: str, path: KeyPath) -> int | None:
    """The line where ``path`` is written: its assignment, or else the table
    header of its deepest written ancestor."""
    table: KeyPath = ()
    best: tuple[int, int] | None = None  # (depth matched, line)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            full = table
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            full = table + _split_key(assign.group(1))
        depth = 0
        while depth < min(len(full), len(path)) and full[depth] == path[depth]:
            depth += 1
        if depth == len(full) or depth == len(path):
            if best is None or depth > best[0]:
                best = (depth, number)
    return best[1] if best else None


# --------------------------------------------------------------------------
# From table to Recipe


def load_recipe(path: Path | str, registry: Registry, overrides: Sequence[str] = ()) -> Recipe:
    """Read, merge and structure a recipe; every mistake raises
    :class:`UserError` naming the file, key path and line."""
    source = load_source(Path(path), overrides)
    return structure_recipe(source, registry)


def recipe_from_text(text: str, origin: str, registry: Registry) -> Recipe:
    """Structure a resolved recipe kept as text, such as a checkpoint's."""
    data = parse_toml(text, origin)
    source = RecipeSource(path=None, data=data, texts={origin: text})
    _record(source.origins, data, origin)
    return structure_recipe(source, registry)


def structure_recipe(source: RecipeSource, registry: Registry) -> Recipe:
    data = source.data
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            near = difflib.get_close_matches(key, TOP_LEVEL_KEYS, n=1, cutoff=0.6)
            hint = f"did you mean {near[0]}?" if near else "top-level keys are " + ", ".join(TOP_LEVEL_KEYS)
            raise source.error((key,), f"unknown key ({hint})")

    def spec(kind: Kind, table: Any, path: KeyPath, default_type: str | None = None) -> ComponentSpec:
        if not isinstance(table, Mapping):
            raise source.error(path, f'expected a table naming a {kind.name} (type = "..."), got {_describe(table)}')
        table = dict(table)
        name = table.pop("type", default_type)
        if name is None:
            raise source.error(path + ("type",), f"missing: which {kind.name}? `gankit list {kind.name}` shows them")
        if not isinstance(name, str):
            raise source.error(path + ("type",), f"expected a {kind.name} name (a string), got {_describe(name)}")
        try:
            component = registry.get(kind.name, name)
        except UserError as error:
            raise source.error(path + ("type",), error.message) from None
        try:
            options = structure_options(table, component.options)
        except _Invalid as invalid:
            relative, message = invalid.problems[0]
            raise source.error(path + relative, message) from None
        return ComponentSpec(kind=kind, name=name, component=component, options=options, path=path, source=source)

    components: dict[str, Any] = {}
    for kind in KINDS.values():
        key = kind.recipe_key
        if not kind.named:
            if key not in data and kind.default is None:
                raise source.error((key,), f"missing: the recipe needs a [{key}] table naming a {kind.name}")
            components[key] = spec(kind, data.get(key, kind.default), (key,))
            continue
        tables = data.get(key, kind.default or {})
        if not isinstance(tables, Mapping):
            raise source.error((key,), f"expected a table of {kind.name}s, such as [{key}.NAME], got {_describe(tables)}")
        if kind.keys is not None:  # fixed keys, each defaulting on its own
            tables = {**(kind.default or {}), **tables}
            for name in tables:
                if name not in kind.keys:
                    raise source.error((key, name), f"unknown key: {key} are set for {' and '.join(repr(k) for k in kind.keys)}")
        components[key] = {
            name: spec(kind, table, (key, name), default_type=name if kind.key_is_type else None) for name, table in tables.items()
        }

    train_table = data.get("train", {})
    if not isinstance(train_table, Mapping):
        raise source.error(("train",), f"expected a table, got {_describe(train_table)}")
    try:
        train = structure_options(train_table, TrainOptions)
    except _Invalid as invalid:
        relative, message = invalid.problems[0]
        raise source.error(("train",) + relative, message) from None

    name = data.get("name") or (source.path.stem if source.path else "recipe")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name):
        raise source.error(("name",), f"expected a short name of letters, digits, '.', '-' or '_', got {name!r}")
    return Recipe(name=name, components=components, train=train, source=source)
