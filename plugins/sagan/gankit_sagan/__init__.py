"""Self-Attention GAN (Zhang, Goodfellow, Metaxas & Odena 2019) for gankit:
its residual generator and discriminator with self-attention, conditional
batch norm and the projection head, and spectral normalization (Miyato et
al. 2018) as a regularizer that wraps both networks. The hinge loss comes
from gankit-dcgan; TTUR is one learning rate per optimizer."""

from __future__ import annotations

from typing import Any

import gankit
from gankit_sagan.networks import SAGANDiscriminator, SAGANDiscriminatorOptions, SAGANGenerator, SAGANGeneratorOptions
from gankit_sagan.spectral_norm import SpectralNorm, SpectralNormOptions, weight_layers

__all__ = [
    "SAGANDiscriminator",
    "SAGANDiscriminatorOptions",
    "SAGANGenerator",
    "SAGANGeneratorOptions",
    "SpectralNorm",
    "SpectralNormOptions",
    "register_components",
    "weight_layers",
]

SMALL = {"channels": 16, "max_channels": 32, "attention": [8]}
SMALL_IMAGES = {"type": "shapes", "resolution": 16, "size": 32}


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add("generator", "sagan", SAGANGenerator, SAGANGeneratorOptions, example=SMALL, example_data=SMALL_IMAGES)
    registry.add("discriminator", "sagan", SAGANDiscriminator, SAGANDiscriminatorOptions, example=SMALL, example_data=SMALL_IMAGES)
    registry.add("regularizer", "spectral_norm", SpectralNorm, SpectralNormOptions)
