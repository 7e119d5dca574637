"""WGAN (Arjovsky et al. 2017) and WGAN-GP (Gulrajani et al. 2017) for
gankit: the Wasserstein loss; weight clipping, the gradient penalty, ProGAN's
drift term and R1 as regularizers; the 2D toy distributions with their MLPs
and the mode-coverage metric; and the CIFAR-10 ResNet of WGAN-GP."""

from __future__ import annotations

from typing import Any

import gankit
from gankit.networks import MLPDiscriminator, MLPDiscriminatorOptions, MLPGenerator, MLPGeneratorOptions
from gankit_wgan.objectives import (
    R1,
    Drift,
    DriftOptions,
    GradientPenalty,
    GradientPenaltyOptions,
    R1Options,
    WassersteinLoss,
    WassersteinOptions,
    WeightClip,
    WeightClipOptions,
    gradient_penalty_term,
)
from gankit_wgan.resnet import ResNetDiscriminator, ResNetDiscriminatorOptions, ResNetGenerator, ResNetGeneratorOptions
from gankit_wgan.toy import (
    ModeCoverage,
    ModeCoverageOptions,
    Toy2dDataset,
    Toy2dOptions,
    mixture,
    mode_coverage,
)

__all__ = [
    "R1",
    "Drift",
    "DriftOptions",
    "GradientPenalty",
    "GradientPenaltyOptions",
    "MLPDiscriminator",
    "MLPDiscriminatorOptions",
    "MLPGenerator",
    "MLPGeneratorOptions",
    "ModeCoverage",
    "ModeCoverageOptions",
    "R1Options",
    "ResNetDiscriminator",
    "ResNetDiscriminatorOptions",
    "ResNetGenerator",
    "ResNetGeneratorOptions",
    "Toy2dDataset",
    "Toy2dOptions",
    "WassersteinLoss",
    "WassersteinOptions",
    "WeightClip",
    "WeightClipOptions",
    "gradient_penalty_term",
    "mixture",
    "mode_coverage",
    "register_components",
]

TOY_DATA = {"type": "toy2d", "distribution": "ring8"}
SMALL_IMAGES = {"type": "shapes", "resolution": 16, "size": 32}


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add("loss", "wasserstein", WassersteinLoss, WassersteinOptions)
    registry.add("regularizer", "weight_clip", WeightClip, WeightClipOptions)
    registry.add("regularizer", "gradient_penalty", GradientPenalty, GradientPenaltyOptions)
    registry.add("regularizer", "drift", Drift, DriftOptions)
    registry.add("regularizer", "r1", R1, R1Options)
    registry.add("dataset", "toy2d", Toy2dDataset, Toy2dOptions)
    registry.add("generator", "mlp", MLPGenerator, MLPGeneratorOptions, example={"hidden": 16}, example_data=TOY_DATA)
    registry.add("discriminator", "mlp", MLPDiscriminator, MLPDiscriminatorOptions, example={"hidden": 16}, example_data=TOY_DATA)
    registry.add("metric", "mode_coverage", ModeCoverage, ModeCoverageOptions, example={"samples": 200}, example_data=TOY_DATA)
    registry.add("generator", "wgangp_resnet", ResNetGenerator, ResNetGeneratorOptions, example={"channels": 16}, example_data=SMALL_IMAGES)
    registry.add(
        "discriminator",
        "wgangp_resnet",
        ResNetDiscriminator,
        ResNetDiscriminatorOptions,
        example={"channels": 16},
        example_data=SMALL_IMAGES,
    )
