"""A critic for the 2D toy mixtures with minibatch discrimination
(Salimans et al. 2016, §3.2): the toy MLP critic of ``gankit.networks``
(gankit-wgan's ``mlp``) with the layer put between its last hidden layer
and its score."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import nn

from gankit import BuildContext, ImageList
from gankit.layers import MinibatchDiscrimination
from gankit.networks import MLPDiscriminator, MLPDiscriminatorOptions
from gankit.options import help_text, positive


@attrs.define(kw_only=True)
class MinibatchMLPOptions(MLPDiscriminatorOptions):
    """The toy MLP critic with minibatch discrimination (Salimans et al. 2016 §3.2) before its score."""

    kernels: int = attrs.field(
        default=100, validator=positive(), metadata=help_text("B, the closeness features added (100 in the paper's code)")
    )
    kernel_dim: int = attrs.field(
        default=5, validator=positive(), metadata=help_text("C, the size of each kernel's projection (5 in the paper's code)")
    )


class MinibatchMLPDiscriminator(MLPDiscriminator):
    """The toy MLP critic with minibatch discrimination (Salimans et al. 2016 §3.2) before its score."""

    def __init__(self, options: MinibatchMLPOptions, context: BuildContext) -> None:
        super().__init__(MLPDiscriminatorOptions(hidden=options.hidden, layers=options.layers), context)
        # §3.2: f(x_i) is the last hidden layer; its closeness to the rest of
        # the batch joins it, and the score reads both
        self.minibatch = MinibatchDiscrimination(options.hidden, options.kernels, options.kernel_dim)
        self.output = nn.Linear(options.hidden + options.kernels, 1)

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        hidden = self.body(images[-1])
        scores = self.output(self.minibatch(hidden)).squeeze(1)
        return (scores, [hidden]) if features else scores
