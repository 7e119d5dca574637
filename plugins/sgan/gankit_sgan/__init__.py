"""Stacked Generative Adversarial Networks (Huang, Li, Poursaeed, Hopcroft
and Belongie, CVPR 2017) for gankit: the frozen encoder trained on the
labelled data, the stacked generator, the per-stack discriminators with
their Q heads, the conditional and entropy losses, and the schedule from
independent to joint training."""

from __future__ import annotations

from typing import Any

import gankit
from gankit_sgan.encoder import Encoder, EncoderSettings, cached_encoder, train_encoder
from gankit_sgan.networks import (
    SGANDiscriminator,
    SGANDiscriminatorOptions,
    SGANGenerator,
    SGANGeneratorOptions,
    StackOutputs,
)
from gankit_sgan.objectives import SGANLosses, SGANLossesOptions, conditional_losses, entropy_losses
from gankit_sgan.pictures import stack_picture
from gankit_sgan.schedule import StackedSchedule, StackedScheduleOptions

__all__ = [
    "Encoder",
    "EncoderSettings",
    "SGANDiscriminator",
    "SGANDiscriminatorOptions",
    "SGANGenerator",
    "SGANGeneratorOptions",
    "SGANLosses",
    "SGANLossesOptions",
    "StackOutputs",
    "StackedSchedule",
    "StackedScheduleOptions",
    "cached_encoder",
    "conditional_losses",
    "entropy_losses",
    "register_components",
    "stack_picture",
    "train_encoder",
]

# networks built for the contract suite's small shapes data
_SMALL_NETWORKS: dict[str, Any] = {"g1_width": 64, "z0_width": 32, "g0_channels": 32, "features": 32}
_SMALL_DISCRIMINATOR: dict[str, Any] = {
    "channels": 16,
    "d1_width": 32,
    "encoder_widths": [8, 16],
    "encoder_features": 32,
    "encoder_epochs": 1,
    "encoder_cache": False,
}


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add("generator", "sgan", SGANGenerator, SGANGeneratorOptions, example=_SMALL_NETWORKS)
    registry.add("discriminator", "sgan", SGANDiscriminator, SGANDiscriminatorOptions, example=_SMALL_DISCRIMINATOR)
    registry.add("regularizer", "sgan_losses", SGANLosses, SGANLossesOptions)
    registry.add("scheduler", "sgan_stacked", StackedSchedule, StackedScheduleOptions)
