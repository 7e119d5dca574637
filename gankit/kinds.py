"""The component kinds, one record each: the contract a component fulfils,
where a recipe names it, and how its factory is called."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import torch

from gankit.contracts import Dataset, Discriminator, Generator, Logger, Loss, Metric, Regularizer, Scheduler

#: How a kind's factory is called: with its options alone; with options and
#: the data's BuildContext (networks); with the parameters to optimize and
#: options (torch.optim's own order).
Call = Literal["options", "options+context", "parameters+options"]

#: What ``gankit run --resume --set ...`` may change in a kind's table:
#: anything ("free": what is only evaluated or logged); the options but not
#: which components there are or their types ("options": the checkpoint holds
#: their state); nothing ("fixed": they made the checkpoint's networks, data
#: and schedule so far, and resolved.toml must keep reproducing the run).
OnResume = Literal["free", "options", "fixed"]


@attrs.frozen
class Kind:
    name: str
    contract: type
    recipe_key: str  # the recipe's table: [generator], or [regularizers.NAME] when ``named``
    call: Call = "options"
    #: Any number of components, each in its own named sub-table.
    named: bool = False
    #: In a named table, a sub-table without ``type`` names its component by its key ([regularizers.drift]).
    key_is_type: bool = False
    #: The table a recipe gets when it has none (for a named kind: the sub-tables).
    default: dict[str, Any] | None = None
    #: For a named kind whose keys are fixed (optimizers: one per network).
    keys: tuple[str, ...] | None = None
    on_resume: OnResume = "free"

    def call_factory(self, factory: Callable[..., Any], options: Any, argument: Any = None) -> Any:
        """Build a component: ``argument`` is the BuildContext of a network
        or the parameters of an optimizer."""
        if self.call == "parameters+options":
            return factory(argument, options)
        if self.call == "options+context":
            return factory(options, argument)
        return factory(options)


ROLES = ("generator", "discriminator")

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("generator", Generator, "generator", call="options+context", on_resume="fixed"),
        Kind("discriminator", Discriminator, "discriminator", call="options+context", on_resume="fixed"),
        Kind("loss", Loss, "loss", on_resume="options"),
        Kind("regularizer", Regularizer, "regularizers", named=True, key_is_type=True, on_resume="options"),
        Kind("scheduler", Scheduler, "scheduler", default={"type": "alternating"}, on_resume="fixed"),
        Kind("metric", Metric, "metrics", named=True, key_is_type=True),
        Kind("dataset", Dataset, "data", on_resume="fixed"),
        Kind(
            "optimizer",
            torch.optim.Optimizer,
            "optimizers",
            call="parameters+options",
            named=True,
            default={role: {"type": "adam"} for role in ROLES},
            keys=ROLES,
            on_resume="options",
        ),
        Kind("logger", Logger, "loggers", named=True, key_is_type=True, default={"jsonl": {}, "tensorboard": {}}),
    )
}
