"""Progressive Growing of GANs (Karras et al. 2018) for gankit: the growing
generator and discriminator with fade-in, the ``progressive`` scheduler, the
least-squares loss (Mao et al. 2017), and the sliced Wasserstein distance
and MS-SSIM metrics. The shared blocks (equalized learning rate, pixel norm,
minibatch standard deviation) are in :mod:`gankit.layers`; WGAN-GP and the
drift term come from the gankit-wgan plugin."""

from __future__ import annotations

from typing import Any

import gankit
from gankit_progan.losses import LSGANLoss, LSGANOptions
from gankit_progan.metrics import (
    MSSSIM,
    MSSSIMOptions,
    SlicedWasserstein,
    SlicedWassersteinOptions,
    ms_ssim_pairs,
    sliced_wasserstein_distance,
)
from gankit_progan.networks import ProGANDiscriminator, ProGANDiscriminatorOptions, ProGANGenerator, ProGANGeneratorOptions
from gankit_progan.schedule import ProgressiveOptions, ProgressiveScheduler, level_of_detail, stage_at

__all__ = [
    "MSSSIM",
    "LSGANLoss",
    "LSGANOptions",
    "MSSSIMOptions",
    "ProGANDiscriminator",
    "ProGANDiscriminatorOptions",
    "ProGANGenerator",
    "ProGANGeneratorOptions",
    "ProgressiveOptions",
    "ProgressiveScheduler",
    "SlicedWasserstein",
    "SlicedWassersteinOptions",
    "level_of_detail",
    "ms_ssim_pairs",
    "register_components",
    "sliced_wasserstein_distance",
    "stage_at",
]

SMALL = {"fmap_base": 64, "fmap_max": 16}
SMALL_IMAGES = {"type": "shapes", "resolution": 16, "size": 32}


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add(
        "generator", "progan", ProGANGenerator, ProGANGeneratorOptions, example={**SMALL, "latent_size": 16}, example_data=SMALL_IMAGES
    )
    registry.add("discriminator", "progan", ProGANDiscriminator, ProGANDiscriminatorOptions, example=SMALL, example_data=SMALL_IMAGES)
    registry.add(
        "scheduler",
        "progressive",
        ProgressiveScheduler,
        ProgressiveOptions,
        example={"final_resolution": 16, "stabilize_kimg": 0.002, "fade_kimg": 0.002},
    )
    registry.add("loss", "lsgan", LSGANLoss, LSGANOptions)
    registry.add("metric", "swd", SlicedWasserstein, SlicedWassersteinOptions, example={"images": 16}, example_data=SMALL_IMAGES)
    registry.add("metric", "ms_ssim", MSSSIM, MSSSIMOptions, example={"pairs": 8, "reals": True}, example_data=SMALL_IMAGES)
