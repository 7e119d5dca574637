"""The ``progressive`` scheduler: ProGAN's growth schedule (Karras et al.
2018, §2 and Appendix A.1).

Training starts at ``start_resolution`` and stabilizes there; then it
alternates a fade phase (the next resolution's blocks blend in while α goes
from 0 to 1) and a stabilize phase, until ``final_resolution``, where it
stays. The stage is a function of the images shown alone, so a resumed run
continues exactly. The one piece of state is the phase of the previous
iteration, which decides when the optimizers are reset: the official code
clears Adam's moments whenever its level of detail enters a new integer
interval, which is at the start of every fade and of every stabilization.
"""

from __future__ import annotations

import math
from typing import Any

import attrs

from gankit import Progress, Scheduler, Stage, StepPlan, log2_int
from gankit.options import MAX_RESOLUTION, help_text, non_negative, positive, power_of_two


def _per_resolution(instance: Any, attribute: "attrs.Attribute[Any]", value: dict[str, Any]) -> None:
    for key, item in value.items():
        if not key.isdigit() or not 4 <= int(key) <= MAX_RESOLUTION or int(key) & (int(key) - 1):
            raise ValueError(
                f"'{attribute.name}' keys must be resolutions, powers of two >= 4 and <= {MAX_RESOLUTION} such as \"256\" (got {key!r})"
            )
        if not item > 0:
            raise ValueError(f"'{attribute.name}' values must be > 0 (got {item!r} for {key})")


@attrs.define(kw_only=True)
class ProgressiveOptions:
    """ProGAN's growth schedule (Karras et al. 2018): stabilize, then fade in each next resolution."""

    start_resolution: int = attrs.field(default=4, validator=power_of_two(4), metadata=help_text("the resolution training starts at"))
    final_resolution: int = attrs.field(
        default=1024, validator=power_of_two(4), metadata=help_text("the resolution the networks grow to: the data's")
    )
    stabilize_kimg: float = attrs.field(
        default=800.0,
        validator=non_negative(),
        metadata=help_text("thousands of images at each resolution once it has faded in, and at the start (800 in the paper)"),
    )
    fade_kimg: float = attrs.field(
        default=800.0,
        validator=non_negative(),
        metadata=help_text("thousands of images while a new resolution fades in (800 in the paper)"),
    )
    batch_sizes: dict[str, int] = attrs.field(
        factory=lambda: {"256": 14, "512": 6, "1024": 3},
        validator=_per_resolution,
        metadata=help_text(
            "minibatch per resolution, the others use train.batch_size (paper: 16 up to 128, then {256 = 14, 512 = 6, 1024 = 3})"
        ),
    )
    lr_scales: dict[str, float] = attrs.field(
        factory=dict,
        validator=_per_resolution,
        metadata=help_text(
            "multiplies the optimizers' learning rates at these resolutions, e.g. {1024 = 1.5} (the official v2 preset's 0.0015 at 1024)"
        ),
    )
    reset_optimizers: bool = attrs.field(
        default=True,
        metadata=help_text("clear the optimizers' state at the start of every fade and every stabilization, as the official code does"),
    )
    d_steps: int = attrs.field(
        default=1, validator=positive(), metadata=help_text("discriminator steps per generator step (n_critic: 1 in ProGAN)")
    )

    def __attrs_post_init__(self) -> None:
        if self.final_resolution < self.start_resolution:
            raise ValueError(f"'final_resolution' must be >= start_resolution ({self.final_resolution} < {self.start_resolution})")


def stage_at(options: ProgressiveOptions, nimg: int) -> tuple[Stage, int]:
    """The stage after ``nimg`` real images, and the phase: 0 is the first
    stabilization, odd phases are fades, even ones stabilizations.

    At the first image of a fade α is 0, so the networks still compute
    exactly what the previous stage did."""
    # in whole images, so that a phase boundary falls on the image it names
    stabilize, fade = round(options.stabilize_kimg * 1000), round(options.fade_kimg * 1000)
    growths = log2_int(options.final_resolution) - log2_int(options.start_resolution)
    resolution, phase = options.start_resolution, 0
    elapsed = nimg - stabilize  # images into the first fade
    for _ in range(growths):
        if elapsed < 0:
            return Stage(resolution, 1.0), phase
        resolution *= 2
        if elapsed < fade:
            return Stage(resolution, elapsed / fade), phase + 1
        elapsed -= fade + stabilize
        phase += 2
    return Stage(resolution, 1.0), phase


def level_of_detail(stage: Stage, final_resolution: int) -> float:
    """The official code's lod for a stage: log2(R/r) + 1 − α, so that
    α = 1 − frac(lod) while fading and lod = 0 at full resolution."""
    return math.log2(final_resolution / stage.resolution) + (1.0 - stage.alpha if stage.alpha < 1.0 else 0.0)


class ProgressiveScheduler(Scheduler):
    """ProGAN's growth schedule (Karras et al. 2018): stabilize, then fade in each next resolution."""

    def __init__(self, options: ProgressiveOptions) -> None:
        self.options = options
        self.phase: int | None = None  # of the previous plan; None before the first

    def plan(self, progress: Progress) -> StepPlan:
        stage, phase = stage_at(self.options, progress.nimg)
        reset = self.options.reset_optimizers and self.phase is not None and phase != self.phase
        self.phase = phase
        key = str(stage.resolution)
        return StepPlan(
            d_steps=self.options.d_steps,
            g_steps=1,
            batch_size=self.options.batch_sizes.get(key),
            stage=stage,
            lr_scale=self.options.lr_scales.get(key, 1.0),
            reset_optimizers=reset,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.phase = state.get("phase")
