"""Small networks that plugins build on or register as they are; this module
is part of gankit's public API.

The MLP generator and critic of WGAN-GP's toy experiments (Gulrajani et al.
2017, ``gan_toy.py`` of the paper's code) learn 2D points: a "resolution 1"
sample of shape [2]. gankit-wgan registers them as ``mlp``, and
gankit-improved's critic with minibatch discrimination extends the critic,
so they live here, where both may import them: plugins never import each
other.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import nn

from gankit.contracts import BuildContext, Discriminator, Generator
from gankit.errors import UserError
from gankit.images import ImageList
from gankit.options import help_text, positive

__all__ = ["MLPDiscriminator", "MLPDiscriminatorOptions", "MLPGenerator", "MLPGeneratorOptions"]


@attrs.define(kw_only=True)
class MLPGeneratorOptions:
    """The MLP generator of WGAN-GP's toy experiments: ReLU hidden layers, a linear output."""

    latent_size: int = attrs.field(default=2, validator=positive(), metadata=help_text("size of z (2 in gan_toy.py)"))
    hidden: int = attrs.field(default=512, validator=positive(), metadata=help_text("units per hidden layer (512 in gan_toy.py)"))
    layers: int = attrs.field(default=3, validator=positive(), metadata=help_text("hidden layers (3 in gan_toy.py)"))


@attrs.define(kw_only=True)
class MLPDiscriminatorOptions:
    """The MLP critic of WGAN-GP's toy experiments: ReLU hidden layers, a linear score."""

    hidden: int = attrs.field(default=512, validator=positive(), metadata=help_text("units per hidden layer (512 in gan_toy.py)"))
    layers: int = attrs.field(default=3, validator=positive(), metadata=help_text("hidden layers (3 in gan_toy.py)"))


def _require_points(context: BuildContext, what: str) -> None:
    if context.resolution != 1:
        raise UserError(
            f'{what}: the mlp networks take 2D points (data.type = "toy2d"), not {context.resolution}x{context.resolution} images'
        )


def _relu_stack(inputs: int, hidden: int, layers: int) -> nn.Sequential:
    stack: list[nn.Module] = []
    for index in range(layers):
        stack += [nn.Linear(inputs if index == 0 else hidden, hidden), nn.ReLU()]
    return nn.Sequential(*stack)


class MLPGenerator(Generator):
    """The MLP generator of WGAN-GP's toy experiments: ReLU hidden layers, a linear output."""

    def __init__(self, options: MLPGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        _require_points(context, "generator")
        self.latent_size, self.num_classes = options.latent_size, 0
        self.body = _relu_stack(options.latent_size, options.hidden, options.layers)
        self.output = nn.Linear(options.hidden, context.channels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        return [self.output(self.body(z))]


class MLPDiscriminator(Discriminator):
    """The MLP critic of WGAN-GP's toy experiments: ReLU hidden layers, a linear score."""

    def __init__(self, options: MLPDiscriminatorOptions, context: BuildContext) -> None:
        super().__init__()
        _require_points(context, "discriminator")
        self.resolution, self.num_classes = 1, 0
        self.body = _relu_stack(context.channels, options.hidden, options.layers)
        self.output = nn.Linear(options.hidden, 1)

    def prepare_reals(self, images: torch.Tensor) -> ImageList:
        return [images]

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        hidden = self.body(images[-1])
        scores = self.output(hidden).squeeze(1)
        return (scores, [hidden]) if features else scores
