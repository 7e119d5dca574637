"""Validators for components' attrs options classes.

Their messages start with the quoted attribute name, as attrs' own do, so the
recipe loader can point at the key: ``recipe.toml: train.batch_size: must be
> 0 (got -3)``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

import attrs

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

#: The largest integer a recipe may give any option. Counts, sizes and seeds
#: beyond it are typing mistakes, and torch's int32 indexing ends there too.
MAX_INT = 2**31 - 1
#: The largest image side :func:`power_of_two` accepts by default: one such
#: RGB image is already 3 GiB as float32.
MAX_RESOLUTION = 2**14


def help_text(text: str) -> dict[str, str]:
    """Field metadata with the text ``gankit show`` prints for an option:
    ``attrs.field(default=..., metadata=help_text("..."))``."""
    return {"help": text}


def _check(test: Callable[[Any], bool], expectation: str) -> Validator:
    def validate(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        if value is not None and not test(value):
            raise ValueError(f"'{attribute.name}' must be {expectation} (got {value!r})")

    return validate


def positive() -> Validator:
    return _check(lambda v: v > 0, "> 0")


def non_negative() -> Validator:
    return _check(lambda v: v >= 0, ">= 0")


def in_range(low: float, high: float) -> Validator:
    """``low <= value <= high``."""
    return _check(lambda v: low <= v <= high, f"between {low} and {high}")


def one_of(choices: Collection[Any]) -> Validator:
    return _check(lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def power_of_two(minimum: int = 1, maximum: int = MAX_RESOLUTION) -> Validator:
    """A power of two from ``minimum`` to ``maximum``."""
    return attrs.validators.and_(
        _check(lambda v: v >= minimum and not v & (v - 1), f"a power of two >= {minimum}"),
        _check(lambda v: v <= maximum, f"at most {maximum}"),
    )


def each(validator: Validator) -> Validator:
    """Apply ``validator`` to every item of a sequence value."""

    def validate(instance: Any, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        for item in value or ():
            validator(instance, attribute, item)

    return validate


def _smoothing_range(instance: object, attribute: "attrs.Attribute[float]", value: float) -> None:
    if not 0.0 <= value < 0.5:
        raise ValueError(f"'{attribute.name}' must be >= 0 and < 0.5 (got {value!r})")


def label_smoothing_option() -> Any:
    """The ``label_smoothing`` option of a loss whose discriminator side is
    :func:`gankit.logistic_discriminator_loss`: ``label_smoothing: float =
    label_smoothing_option()``. Below 0.5, else the real target would no
    longer lie above the fake one."""
    return attrs.field(
        default=0.0,
        validator=_smoothing_range,
        metadata=help_text("one-sided label smoothing (Salimans et al. 2016 §3.4): the real target becomes 1 - this; 0 turns it off"),
    )
