"""MSG-GAN (Karnewar & Wang 2020) for gankit: a generator that emits an
image at every block, a discriminator that takes all of them through the
combine function φ, and the relativistic average hinge loss
(Jolicoeur-Martineau 2018) of the authors' MSG-ProGAN code; and
MSG-StyleGAN's generator, StyleGAN's (Karras et al. 2019) with an image from
every block. WGAN-GP, R1 and the non-saturating loss, which the paper also
trains with, come from the gankit-wgan and gankit-dcgan plugins: their
penalties iterate over every scale of the list."""

from __future__ import annotations

from typing import Any

import gankit
from gankit_msggan.losses import RelativisticHingeLoss, RelativisticHingeOptions
from gankit_msggan.networks import (
    Combine,
    MSGDiscriminator,
    MSGDiscriminatorOptions,
    MSGGenerator,
    MSGGeneratorOptions,
    connected_blocks,
    lin_cat_split,
)
from gankit_msggan.stylegan import MSGStyleGenerator, MSGStyleGeneratorOptions, mix_styles

__all__ = [
    "Combine",
    "MSGDiscriminator",
    "MSGDiscriminatorOptions",
    "MSGGenerator",
    "MSGGeneratorOptions",
    "MSGStyleGenerator",
    "MSGStyleGeneratorOptions",
    "RelativisticHingeLoss",
    "RelativisticHingeOptions",
    "connected_blocks",
    "lin_cat_split",
    "mix_styles",
    "register_components",
]

SMALL = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16}
SMALL_DISCRIMINATOR = {"fmap_base": 64, "fmap_max": 16}
SMALL_IMAGES = {"type": "shapes", "resolution": 16, "size": 32}
SMALL_STYLE = {"fmap_base": 64, "fmap_max": 16, "latent_size": 16, "w_size": 16, "mapping_width": 16, "mapping_layers": 2}


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add("generator", "msggan", MSGGenerator, MSGGeneratorOptions, example=SMALL, example_data=SMALL_IMAGES)
    registry.add(
        "discriminator", "msggan", MSGDiscriminator, MSGDiscriminatorOptions, example=SMALL_DISCRIMINATOR, example_data=SMALL_IMAGES
    )
    registry.add("loss", "relativistic_hinge", RelativisticHingeLoss, RelativisticHingeOptions)
    registry.add("generator", "msg_stylegan", MSGStyleGenerator, MSGStyleGeneratorOptions, example=SMALL_STYLE, example_data=SMALL_IMAGES)
