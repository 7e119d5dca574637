"""DCGAN networks (Radford et al. 2016) and the classic GAN losses for gankit:
minimax and non-saturating (Goodfellow et al. 2014) and hinge (Lim & Ye 2017;
Miyato et al. 2018); AC-GAN's auxiliary classifier term (Odena et al. 2017)."""

from __future__ import annotations

from typing import Any

import gankit
from gankit_dcgan.auxiliary import AuxiliaryClassifier, AuxiliaryClassifierOptions
from gankit_dcgan.losses import (
    HingeLoss,
    HingeOptions,
    MinimaxLoss,
    MinimaxOptions,
    NonSaturatingLoss,
    NonSaturatingOptions,
)
from gankit_dcgan.networks import (
    DCGANDiscriminator,
    DCGANDiscriminatorOptions,
    DCGANGenerator,
    DCGANGeneratorOptions,
)

__all__ = [
    "AuxiliaryClassifier",
    "AuxiliaryClassifierOptions",
    "DCGANDiscriminator",
    "DCGANDiscriminatorOptions",
    "DCGANGenerator",
    "DCGANGeneratorOptions",
    "HingeLoss",
    "HingeOptions",
    "MinimaxLoss",
    "MinimaxOptions",
    "NonSaturatingLoss",
    "NonSaturatingOptions",
    "register_components",
]


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add("generator", "dcgan", DCGANGenerator, DCGANGeneratorOptions)
    registry.add("discriminator", "dcgan", DCGANDiscriminator, DCGANDiscriminatorOptions)
    registry.add("loss", "minimax", MinimaxLoss, MinimaxOptions)
    registry.add("loss", "nonsaturating", NonSaturatingLoss, NonSaturatingOptions)
    registry.add("loss", "hinge", HingeLoss, HingeOptions)
    registry.add("regularizer", "auxiliary_classifier", AuxiliaryClassifier, AuxiliaryClassifierOptions)
