"""Historical averaging (Salimans et al. 2016, §3.3): a player's cost gains
‖θ − (1/t) Σ_i θ[i]‖², the distance of its parameters from their own
average over training.

The running average lives in buffers of the network it regularizes: a
:class:`HistoricalMean` module that :meth:`HistoricalAveraging.wrap` attaches
to it. Buffers are part of the network's ``state_dict``, so checkpoints save
the average and resuming restores it, with no change to gankit's loop.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
from torch import nn

from gankit import PenaltyContext, Regularizer, Role, UserError
from gankit.options import help_text, non_negative, one_of

#: The attribute under which the average hangs on the network it regularizes.
ATTRIBUTE = "historical_mean"


class HistoricalMean(nn.Module):
    """The running mean (1/t) Σ_{i<t} θ[i] of ``parameters``, one float32
    buffer per parameter, and t, the number of values averaged (a buffer too).
    It starts at the parameters' initial values (t = 1); :meth:`update` adds
    the current values."""

    def __init__(self, parameters: list[nn.Parameter]) -> None:
        super().__init__()
        # A plain list: the parameters stay the network's own, not this module's.
        # Moving the network to a device or deep-copying it (the EMA generator)
        # keeps the list pointing at the network's parameters.
        self.tracked = list(parameters)
        for index, parameter in enumerate(self.tracked):
            self.register_buffer(f"mean_{index}", parameter.detach().float().clone())
        self.register_buffer("count", torch.tensor(1, dtype=torch.int64))

    def means(self) -> list[torch.Tensor]:
        return [getattr(self, f"mean_{index}") for index in range(len(self.tracked))]

    @torch.no_grad()
    def update(self) -> None:
        """Add the parameters' current values: mean += (θ − mean)/(t + 1)."""
        self.count += 1
        weight = 1.0 / float(self.count)
        for mean, parameter in zip(self.means(), self.tracked, strict=True):
            mean.lerp_(parameter.detach().float(), weight)

    def distance(self) -> torch.Tensor:
        """‖θ − mean‖², summed over every parameter; the mean is a constant."""
        terms = [(parameter.float() - mean).square().sum() for mean, parameter in zip(self.means(), self.tracked, strict=True)]
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def extra_repr(self) -> str:
        return f"parameters={len(self.tracked)}, count={int(self.count)}"


@attrs.define(kw_only=True)
class HistoricalAveragingOptions:
    """Historical averaging (Salimans et al. 2016 §3.3): adds w·‖θ − (1/t)Σ θ[i]‖² to one network's cost."""

    network: Literal["discriminator", "generator"] = attrs.field(
        default="discriminator",
        validator=one_of(("discriminator", "generator")),
        metadata=help_text("whose parameters: the term joins that network's phase; the paper regularizes both, so use one table for each"),
    )
    weight: float = attrs.field(
        default=1.0, validator=non_negative(), metadata=help_text("w, the term's weight (the paper gives none; 1 is its plain sum)")
    )


class HistoricalAveraging(Regularizer):
    """Historical averaging (Salimans et al. 2016 §3.3): adds w·‖θ − (1/t)Σ θ[i]‖² to one network's cost.

    θ[i] are the network's parameters after each of its optimizer steps so
    far, and their initial values: at the k-th step the mean is over the
    k + 1 values θ[0..k], the current one included. The mean enters the term
    as a constant."""

    def __init__(self, options: HistoricalAveragingOptions) -> None:
        self.options = options
        self.role: Role = options.network
        self.phase = "D" if options.network == "discriminator" else "G"
        self.mean: HistoricalMean | None = None

    def wrap(self, module: nn.Module, role: Role) -> nn.Module:
        if role != self.role:
            return module
        if hasattr(module, ATTRIBUTE):
            raise UserError(f"the {role} already has a historical average: use one historical_averaging table per network", key="network")
        # Registered as a submodule: its buffers join the network's state_dict,
        # and so every checkpoint, under "historical_mean.".
        self.mean = HistoricalMean(list(module.parameters()))
        setattr(module, ATTRIBUTE, self.mean)
        return module

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        if self.mean is None:
            raise RuntimeError(f"historical_averaging: penalty before wrap; the {self.role} was not built through this regularizer")
        return self.options.weight * self.mean.distance()

    def after_step(self, module: nn.Module, role: Role) -> None:
        if role == self.role and self.mean is not None:
            self.mean.update()
