"""SGAN's two training phases (Huang et al. 2017): first the
stacks train independently (G0 fed the encoder's features of real images),
then jointly (G0 fed G1's features, end to end)."""

from __future__ import annotations

import attrs

import gankit
from gankit.options import help_text, non_negative, positive
from gankit_sgan.networks import INDEPENDENT, JOINT


@attrs.define(kw_only=True)
class StackedScheduleOptions:
    """Independent training of the stacks for independent_kimg, then joint training."""

    independent_kimg: float = attrs.field(
        default=100.0, validator=non_negative(), metadata=help_text("real images shown, in thousands, before joint training")
    )
    d_steps: int = attrs.field(default=1, validator=positive(), metadata=help_text("discriminator steps per iteration"))
    g_steps: int = attrs.field(default=1, validator=positive(), metadata=help_text("generator steps per iteration"))


class StackedSchedule(gankit.Scheduler):
    """Independent training of the stacks for independent_kimg, then joint training."""

    def __init__(self, options: StackedScheduleOptions) -> None:
        self.options = options

    def plan(self, progress: gankit.Progress) -> gankit.StepPlan:
        # a function of nimg alone: a resumed run continues in the right phase
        phase = INDEPENDENT if progress.nimg < self.options.independent_kimg * 1000 else JOINT
        return gankit.StepPlan(d_steps=self.options.d_steps, g_steps=self.options.g_steps, stage=gankit.Stage(phase=phase))
