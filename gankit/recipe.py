"""TOML recipes: reading, extending, overriding, structuring and writing back.

A recipe names one component per table (``[generator] type = "dcgan"``) and
sets its options; the remaining keys of the table are structured into that
component's attrs options class, unknown keys forbidden. Every mistake is a
:class:`UserError` that names the file, the key path and, where the key is
written in the file, its line.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
import tomli_w
import torch
from cattrs.cols import homogenous_tuple_structure_factory, is_mapping, is_sequence, list_structure_factory
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from gankit.errors import UserError
from gankit.kinds import KINDS, Kind
from gankit.options import MAX_INT, help_text, in_range, non_negative, one_of, positive
from gankit.registry import Component, Registry

KeyPath = tuple[str, ...]

TOP_LEVEL_KEYS = ("extends", "name", *(kind.recipe_key for kind in KINDS.values()), "train")

#: Options of earlier gankit versions, and what a recipe writes instead: a
#: recipe that still sets one is told, not only that the key is unknown.
REMOVED_KEYS: dict[KeyPath, str] = {
    ("train", "tensorboard"): (
        "removed: loggers are now chosen with [loggers] tables; without any a run writes jsonl and tensorboard, "
        "and [loggers.jsonl] alone (no [loggers.tensorboard]) writes no TensorBoard files"
    ),
}


def _device_name(instance: Any, attribute: "attrs.Attribute[Any]", value: str) -> None:
    if value not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", value):
        raise ValueError(f"'{attribute.name}' must be 'auto', 'cpu', 'cuda' or 'cuda:N' (got {value!r})")


@attrs.define(kw_only=True)
class TrainOptions:
    """How long and how a recipe trains."""

    kimg: float = attrs.field(
        default=100.0, validator=positive(), metadata=help_text("training length, in thousands of real images shown to the discriminator")
    )
    minutes: float | None = attrs.field(
        default=None,
        validator=positive(),
        metadata=help_text(
            "a time budget: stop at the end of the tick during which the run's training time, summed over resumes and not "
            "counting metrics, samples and checkpoints, reaches this many minutes (unset: kimg alone ends the run); "
            "--resume with a larger budget goes on"
        ),
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
    on_nonfinite: Literal["stop", "skip", "rollback"] = attrs.field(
        default="stop",
        metadata=help_text(
            "when a loss, a penalty or a weight becomes NaN or infinite: stop (exit 3, the last checkpoint stays good), "
            "skip the step, or rollback to the newest checkpoint with lower learning rates"
        ),
    )
    nonfinite_skip_limit: int = attrs.field(
        default=20, validator=positive(), metadata=help_text("on_nonfinite = skip: consecutive skipped steps before stopping")
    )
    rollback_lr_scale: float = attrs.field(
        default=0.5, validator=in_range(1e-6, 1.0), metadata=help_text("on_nonfinite = rollback: learning rates are multiplied by this")
    )
    rollback_limit: int = attrs.field(
        default=3, validator=positive(), metadata=help_text("on_nonfinite = rollback: rollbacks before stopping")
    )
    loss_limit: float = attrs.field(
        default=1e6,
        validator=positive(),
        metadata=help_text(
            "a loss or penalty past this magnitude has blown up, though finite (a tick's mean; each step's too with on_blowup = nonfinite)"
        ),
    )
    weight_limit: float = attrs.field(
        default=1e5,
        validator=positive(),
        metadata=help_text("a weight of the generator or the discriminator past this magnitude has blown up (checked every tick)"),
    )
    on_blowup: Literal["warn", "nonfinite"] = attrs.field(
        default="warn",
        metadata=help_text(
            "when a loss or a weight passes loss_limit or weight_limit: warn (one line, and a blowup entry in each tick's "
            "log record), or nonfinite: handle it as a NaN, as on_nonfinite says"
        ),
    )
    reuse_fakes: bool = attrs.field(
        default=False,
        metadata=help_text(
            "the G phase reuses the D phase's fakes, generated once with their graph: the same update, one generator "
            "forward less; needs one D step per iteration and no G-phase regularizer"
        ),
    )
    sync_batchnorm: bool = attrs.field(
        default=False,
        metadata=help_text(
            "under torchrun, batch norm takes its statistics over the whole batch (SyncBatchNorm, CUDA only) instead of each process's part"
        ),
    )
    compile: bool = attrs.field(default=False, metadata=help_text("torch.compile the generator and the discriminator"))
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = attrs.field(
        default="default", metadata=help_text("torch.compile's mode: default, reduce-overhead or max-autotune")
    )

    def __attrs_post_init__(self) -> None:
        fields = attrs.fields(TrainOptions)
        one_of(("fp32", "bf16", "fp16"))(self, fields.precision, self.precision)
        one_of(("stop", "skip", "rollback"))(self, fields.on_nonfinite, self.on_nonfinite)
        one_of(("warn", "nonfinite"))(self, fields.on_blowup, self.on_blowup)
        one_of(("default", "reduce-overhead", "max-autotune"))(self, fields.compile_mode, self.compile_mode)

    @property
    def total_nimg(self) -> int:
        """The training length in real images, ``kimg`` rounded to a whole
        image: what the loop counts to and the checks before it plan for."""
        return int(round(self.kimg * 1000))


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
        except (MemoryError, RuntimeError) as error:
            # what preflight's estimate cannot see: a factory that allocates more than there is
            if not _out_of_memory(error):
                raise
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise self.source.error(self.culprit(), f"not enough memory to build this {self.kind.name} ({reason})") from None

    def culprit(self) -> KeyPath:
        """The key that most likely made this component too big: its largest
        integer option set away from its default, else the table itself."""
        candidates = [
            (value, field.name)
            for field in attrs.fields(type(self.options))
            if type(value := getattr(self.options, field.name)) is int and value != field.default
        ]
        return self.path + ((max(candidates)[1],) if candidates else ())

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
# Strict structuring: TOML has types, so a string is never silently an int,
# and it has inf, nan and integers of any size, which no option can use.

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)


def _describe(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a number", list: "an array", dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})"


def _integer(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {_describe(value)}")
    if value > MAX_INT:
        raise ValueError(f"expected an integer of at most {MAX_INT:,} (2**31 - 1), got {value:,}")
    if value < -MAX_INT - 1:
        raise ValueError(f"expected an integer of at least {-MAX_INT - 1:,} (-2**31), got {value:,}")
    return value


def _number(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {_describe(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer past float's range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _exactly(expected: type, name: str) -> None:
    def structure(value: Any, _: type) -> Any:
        if type(value) is not expected:
            raise TypeError(f"expected {name}, got {_describe(value)}")
        return value

    converter.register_structure_hook(expected, structure)


converter.register_structure_hook(int, _integer)
converter.register_structure_hook(float, _number)
_exactly(bool, "true or false")
_exactly(str, "a string")


def _shaped(predicate: Any, make: Any, accepts: type, name: str, length: Any = None) -> None:
    """Containers check the TOML value's shape first: cattrs would iterate a
    string as an array, or fail on an array with ``'list' object has no
    attribute 'items'``."""

    def factory(cl: Any) -> Any:
        inner = make(cl)
        size = length(cl) if length else None

        def structure(value: Any, _: type) -> Any:
            if not isinstance(value, accepts):
                raise TypeError(f"expected {name}, got {_describe(value)}")
            if size is not None and len(value) != size:
                raise ValueError(f"expected an array of {size} values, got {len(value)} ({value!r})")
            return inner(value, cl)

        return structure

    converter.register_structure_hook_factory(predicate, factory)


def _is_fixed_tuple(cl: Any) -> bool:
    return get_origin(cl) is tuple and bool(get_args(cl)) and get_args(cl)[-1] is not Ellipsis


def _sequence_hook(cl: Any) -> Any:
    factory = homogenous_tuple_structure_factory if get_origin(cl) is tuple else list_structure_factory
    return factory(cl, converter)


_shaped(is_sequence, _sequence_hook, list, "an array")
_shaped(_is_fixed_tuple, converter.gen_structure_hetero_tuple, list, "an array", length=lambda cl: len(get_args(cl)))
_shaped(is_mapping, converter.gen_structure_mapping, dict, "a table")


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
            if near:
                hint = f" (did you mean {near[0]}?)"
            elif key in TOP_LEVEL_KEYS:
                hint = f": {_top_level_place(key)}, not a key of this table"
            elif known:
                hint = f"; known keys: {', '.join(known)}"
            else:
                hint = ": this table takes no keys besides type"
            yield path + (key,), f"unknown key{hint}"
        return
    if isinstance(error, (ClassValidationError, IterableValidationError, BaseExceptionGroup)):
        for sub in error.exceptions:
            sub_path = path
            for note in getattr(sub, "__notes__", []):
                if isinstance(note, AttributeValidationNote):
                    sub_path = path + (note.name,)
                elif isinstance(note, IterableValidationNote):  # an array's index or a table's key
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
    if match and isinstance(error, (ValueError, TypeError)):  # an attrs validator, which names its attribute
        yield path + (match.group(1),), match.group(2)
        return
    if "not in literal" in message:
        yield path, message.replace("typing.Literal", "").replace(" not in literal", " is not one of")
        return
    yield path, message


def _top_level_place(key: str) -> str:
    """Where a recipe writes the top-level ``key``."""
    kind = next((kind for kind in KINDS.values() if kind.recipe_key == key), None)
    if kind is None:
        return f"{key} is a table of its own, [{key}]" if key == "train" else f"{key} is set at the top of a recipe, before any table"
    return f"{key} is a table of its own, [{key}.NAME] for each {kind.name}" if kind.named else f"{key} is a table of its own, [{key}]"


def _invalid_error(source: "RecipeSource", table: KeyPath, invalid: _Invalid) -> UserError:
    """The first problem of a table's options, with the replacement of an
    option that earlier gankit versions had (:data:`REMOVED_KEYS`)."""
    relative, message = invalid.problems[0]
    path = table + relative
    if message.startswith("unknown key") and path in REMOVED_KEYS:
        message = f"unknown key: {REMOVED_KEYS[path]}"
    return source.error(path, message)


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
        return UserError(f"{origin}: {dotted(path) if path else '(top level)'}: {message}{where}")


def dotted(path: KeyPath) -> str:
    """A key path as TOML writes it: generator.latent_size, generator."a.b"."""
    return ".".join(part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part, ensure_ascii=False) for part in path)


class _Unreadable(Exception):
    """A recipe file that cannot be read as text; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _recipe_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Unreadable("no such recipe file") from None
    except UnicodeDecodeError as error:
        raise _Unreadable(f"not a recipe: a recipe is UTF-8 text, and byte {error.start} of this file is not (a binary file?)") from None
    except (IsADirectoryError, PermissionError) as error:
        raise _Unreadable(f"cannot read the recipe ({error.__class__.__name__}: {error.strerror})") from None


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = _recipe_text(path)
    except _Unreadable as error:
        raise UserError(f"{path}: {error.reason}") from None
    return parse_toml(text, str(path)), text


_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)\s*$")


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(text, origin, str(error)) from None


def _syntax_error(text: str, origin: str, message: str) -> UserError:
    """The TOML parser's complaint as a recipe error: the key written on the
    line it stopped at, and what is wrong with it in gankit's words where
    the parser's text does not say (a key set twice, a non-ASCII bare key)."""
    position = _POSITION.search(message)
    if position is None:
        return UserError(f"{origin}: TOML syntax error: {message}")
    number, reason = int(position.group(1)), message[: position.start()]
    lines = text.splitlines()
    line = lines[number - 1].split("#", 1)[0].strip() if number <= len(lines) else ""
    table: KeyPath = ()
    for earlier in lines[: number - 1]:
        if header := _HEADER.match(earlier):
            table = _split_key(header.group(1))
    if line.startswith("["):
        written = line.strip("[] \t").split("]", 1)[0].strip()
        path, what = _split_key(written), "table name"
    elif "=" in line:
        written = line.split("=", 1)[0].strip()
        path, what = table + _split_key(written), "key"
    else:
        return UserError(f"{origin}: TOML syntax error: {reason} (line {number})")
    first = _find_line("\n".join(lines[: number - 1]), path)
    if not written.isascii():
        explanation = (
            f"not a {what} gankit knows: a bare {what} holds only ASCII letters, digits, '-' and '_', as every "
            f"{what} of a recipe does (docs/recipes.md lists them)"
        )
    elif reason.startswith("Cannot overwrite a value") and first:
        explanation = f"set twice: line {first} sets it already, and a key is set once"
    elif reason.startswith("Cannot declare") and first:
        explanation = f"the table [{dotted(path)}] is declared twice (first at line {first}): put its keys under one header"
    else:
        explanation = f"TOML syntax error: {reason}"
    return UserError(f"{origin}: {dotted(path)}: {explanation} (line {number})")


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
        try:
            _recipe_text(base_path)
        except _Unreadable as error:
            raise UserError(f"{origin}: extends: {str(base_path)!r}: {error.reason}" + _line_suffix(text, ("extends",))) from None
        base = load_source(base_path, (), (*_chain, resolved))
        source.data, source.origins, source.texts = base.data, base.origins, {**base.texts, origin: text}
    _record(source.origins, data, origin)
    source.data = _merge(source.data, data)
    for override in overrides:
        key_path, value = _parse_override(override)
        origin = f"--set {override}"
        table = source.data
        for depth, key in enumerate(key_path[:-1]):
            child = table.get(key)
            if not isinstance(child, dict):
                if child is not None:
                    raise UserError(f"{origin}: {dotted(key_path[: depth + 1])} is not a table")
                child = table[key] = {}
                source.origins[key_path[: depth + 1]] = origin  # a table the override made is its to answer for
            table = child
        if key_path[-1] == "type" and len(key_path) > 1 and value != table.get("type", key_path[-2]):
            # another component, as when a recipe extends a base: the file's options for the old one would not fit
            for key in [key for key in table if not source.origins.get(key_path[:-1] + (key,), "").startswith("--set ")]:
                del table[key]
        table[key_path[-1]] = value
        source.origins[key_path] = origin
        if isinstance(value, Mapping):
            _record(source.origins, value, origin, key_path)
    return source


def _parse_override(override: str) -> tuple[KeyPath, Any]:
    key, sep, raw = override.partition("=")
    key_path = _parse_key(key)
    if not sep or key_path is None:
        raise UserError(
            f"--set {override}: expected KEY.PATH=VALUE, such as train.kimg=10, data.path=/data/faces or "
            'generator."a.b"=1 for a key with a dot'
        )
    try:  # a TOML value: 10, 1e-3, true, [0.0, 0.99], "text"
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word or path is a string
    return key_path, value


def _parse_key(text: str) -> KeyPath | None:
    """A dotted key as TOML reads it, so that a quoted part may hold a dot."""
    try:
        table: Any = tomllib.loads(f"{text} = 0")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(table, dict):
        ((name, table),) = table.items()
        path.append(name)
    return tuple(path)


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
            raise _invalid_error(source, path, invalid) from None
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
        raise _invalid_error(source, ("train",), invalid) from None

    name = data.get("name") or (source.path.stem if source.path else "recipe")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name):
        raise source.error(("name",), f"expected a short name of letters, digits, '.', '-' or '_', got {name!r}")
    return Recipe(name=name, components=components, train=train, source=source)


def _out_of_memory(error: BaseException) -> bool:
    text = str(error)
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in text or "out of memory" in text


# --------------------------------------------------------------------------
# Resuming: which keys may change (kinds.OnResume)

#: [train] keys a resumed run keeps: the seed drew its data order and latents so far.
TRAIN_FIXED_ON_RESUME = ("seed",)

_FIXED_BECAUSE = {
    "generator": "it shapes the networks the run's checkpoints hold",
    "discriminator": "it shapes the networks the run's checkpoints hold",
    "dataset": "the run has trained on its data, and resolved.toml must go on reproducing the run",
    "scheduler": "the run is part-way through its schedule",
}


@attrs.frozen
class Change:
    """A key whose value differs between a run's recipe and the recipe it is resumed with."""

    path: KeyPath
    before: Any  # None: not set
    after: Any

    def __str__(self) -> str:
        return f"{dotted(self.path)} = {_inline(self.after)} (was {_inline(self.before)})"


def resume_changes(before: Recipe, after: Recipe) -> list[Change]:
    """What ``after`` changes in a run's recipe ``before``. A change that a
    resumed run cannot make raises a :class:`UserError` that names its key,
    where it was set, and every other such key."""
    old, new = _leaves(before.resolved()), _leaves(after.resolved())
    changes = {path: Change(path, old.get(path), new.get(path)) for path in {**old, **new} if old.get(path) != new.get(path)}
    refused: dict[KeyPath, str] = {}
    for path in changes:
        if found := _fixed_on_resume(path, before, after):
            refused.setdefault(*found)
    if refused:
        (path, why), *others = refused.items()
        change = changes.get(path)
        values = f" ({_inline(change.before)} in the run, {_inline(change.after)} asked for)" if change else ""
        also = f"; nor can {', '.join(dotted(other) for other, _ in others)}" if others else ""
        raise after.error(path, f"cannot change when resuming{values}: {why}{also}; start a new run to change it")
    return list(changes.values())


def _fixed_on_resume(path: KeyPath, before: Recipe, after: Recipe) -> tuple[KeyPath, str] | None:
    """The key to blame when the key at ``path`` cannot change on resume (it,
    or a component added or removed), and why; None when it can change."""
    if path[0] == "train":
        return (path, "it drew the data order and the latents of the training so far") if path[1] in TRAIN_FIXED_ON_RESUME else None
    kind = next((kind for kind in KINDS.values() if kind.recipe_key == path[0]), None)
    if kind is None or kind.on_resume == "free":
        return None
    if kind.on_resume == "fixed":
        return path, _FIXED_BECAUSE.get(kind.name, f"the run's checkpoints were made with its {kind.name}")
    if kind.named and path[1] not in before.components[path[0]]:
        return path[:2], f"the run has no {kind.name} {path[1]!r}, and its checkpoints were made without it"
    if kind.named and path[1] not in after.components[path[0]]:
        return path[:2], f"the run's checkpoints were made with its {kind.name} {path[1]!r}"
    if path[2 if kind.named else 1 :] == ("type",):
        return path, f"the run's checkpoints hold the state of its {kind.name}"
    return None


def _leaves(table: Mapping[str, Any], prefix: KeyPath = ()) -> dict[KeyPath, Any]:
    found: dict[KeyPath, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            found.update(_leaves(value, prefix + (key,)))
        else:
            found[prefix + (key,)] = value
    return found


def _inline(value: Any) -> str:
    """A value as TOML writes it inline (JSON's scalars and arrays are TOML's)."""
    return "not set" if value is None else json.dumps(value)
