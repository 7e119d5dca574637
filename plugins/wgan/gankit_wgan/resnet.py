"""The residual generator and critic of WGAN-GP's CIFAR-10 experiments
(Gulrajani et al. 2017, Appendix F and the paper's ``gan_cifar_resnet.py``).

Residual blocks are pre-activation: [norm], ReLU, conv3x3, [norm], ReLU,
conv3x3, added to a shortcut that is the identity or a 1x1 convolution with
the same resampling. The generator's blocks upsample (nearest) before their
first convolution and use batch norm; the critic's blocks average-pool after
their second convolution and use no normalization, which a gradient penalty
on each sample's gradient requires (§4).
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import BuildContext, Discriminator, Generator, ImageList, UserError, log2_int
from gankit.options import help_text, one_of, positive

#: ``init``'s choices: "paper" draws the weights as the paper's code does,
#: "pytorch" keeps torch's own defaults (how these networks were drawn before)
INITS = ("paper", "pytorch")


def _init_option() -> Any:
    return attrs.field(
        default="paper",
        validator=one_of(INITS),
        metadata=help_text(
            "paper: the weights of the paper's code (He-uniform residual convolutions, Glorot-uniform shortcuts, "
            "output layers and linears, zero biases); pytorch: torch's defaults"
        ),
    )


@attrs.define(kw_only=True)
class ResNetGeneratorOptions:
    """WGAN-GP's CIFAR-10 ResNet generator (Gulrajani et al. 2017, Appendix F)."""

    latent_size: int = attrs.field(default=128, validator=positive(), metadata=help_text("size of z (128 in the paper)"))
    channels: int = attrs.field(
        default=128, validator=positive(), metadata=help_text("channels of every residual block (128 in the paper)")
    )
    init: str = _init_option()


@attrs.define(kw_only=True)
class ResNetDiscriminatorOptions:
    """WGAN-GP's CIFAR-10 ResNet critic (Gulrajani et al. 2017, Appendix F)."""

    channels: int = attrs.field(
        default=128, validator=positive(), metadata=help_text("channels of every residual block (128 in the paper)")
    )
    init: str = _init_option()


def _check_resolution(context: BuildContext, what: str) -> None:
    if context.resolution < 8:
        raise UserError(f"{what}: the wgangp_resnet networks need images of at least 8x8 (got {context.resolution}x{context.resolution})")


def init_as_the_paper(module: nn.Module) -> None:
    """Draw the weights as the paper's code (``gan_cifar_resnet.py`` on its
    ``tflib``) does: the 3x3 convolutions of the residual paths He-uniform,
    std sqrt(4 / (fan_in + fan_out)); shortcuts, the generator's output
    convolution and both linear layers Glorot-uniform, std
    sqrt(2 / (fan_in + fan_out)); every bias zero. In torch's terms, Xavier-
    uniform with gain sqrt(2) and 1. torch's defaults draw the residual
    convolutions about 2.4 times smaller (std sqrt(1 / (3 fan_in)))."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)  # Glorot
            nn.init.zeros_(layer.bias)
    for block in module.modules():
        if isinstance(block, (UpBlock, DownBlock, PlainBlock)):
            for conv in (block.conv1, block.conv2):
                nn.init.xavier_uniform_(conv.weight, gain=2**0.5)  # He, over the mean of the fans


class UpBlock(nn.Module):
    """BN, ReLU, nearest x2, conv3x3, BN, ReLU, conv3x3; shortcut nearest x2 then conv1x1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.BatchNorm2d(channels), nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        return self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest")) + h


class DownBlock(nn.Module):
    """ReLU, conv3x3, ReLU, conv3x3, 2x2 mean pool; shortcut conv1x1 then
    mean pool. The first block of the critic sees the image itself, so it has
    no leading ReLU and its shortcut pools before the 1x1 convolution
    (``OptimizedResBlockDisc1`` in the paper's code)."""

    def __init__(self, in_channels: int, channels: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = F.avg_pool2d(self.conv2(F.relu(h)), 2)
        shortcut = self.shortcut(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.shortcut(x), 2)
        return shortcut + h


class PlainBlock(nn.Module):
    """ReLU, conv3x3, ReLU, conv3x3 with an identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class ResNetGenerator(Generator):
    """WGAN-GP's CIFAR-10 ResNet generator (Gulrajani et al. 2017, Appendix F)."""

    def __init__(self, options: ResNetGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        _check_resolution(context, "generator")
        self.latent_size, self.num_classes = options.latent_size, 0
        self.channels = options.channels
        self.project = nn.Linear(options.latent_size, 4 * 4 * options.channels)
        # Three up blocks take 4x4 to 32x32; other resolutions get as many as they need.
        self.blocks = nn.Sequential(*(UpBlock(options.channels) for _ in range(log2_int(context.resolution) - 2)))
        self.norm = nn.BatchNorm2d(options.channels)
        self.to_rgb = nn.Conv2d(options.channels, context.channels, 3, padding=1)
        if options.init == "paper":
            init_as_the_paper(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        h = self.project(z).view(-1, self.channels, 4, 4)
        h = F.relu(self.norm(self.blocks(h)))
        return [torch.tanh(self.to_rgb(h))]


class ResNetDiscriminator(Discriminator):
    """WGAN-GP's CIFAR-10 ResNet critic (Gulrajani et al. 2017, Appendix F)."""

    def __init__(self, options: ResNetDiscriminatorOptions, context: BuildContext) -> None:
        super().__init__()
        _check_resolution(context, "discriminator")
        self.resolution, self.num_classes = context.resolution, 0
        channels = options.channels
        # Two down blocks take 32x32 to 8x8, then two plain blocks at 8x8.
        downs = log2_int(context.resolution) - 3
        blocks: list[nn.Module] = [DownBlock(context.channels, channels, first=True)]
        blocks += [DownBlock(channels, channels) for _ in range(downs - 1)]
        blocks += [PlainBlock(channels), PlainBlock(channels)]
        self.blocks = nn.ModuleList(blocks)
        self.output = nn.Linear(channels, 1)
        if options.init == "paper":
            init_as_the_paper(self)

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        h = images[-1]
        activations = []
        for block in self.blocks:
            h = block(h)
            activations.append(h)
        pooled = F.relu(h).mean(dim=(2, 3))  # global mean pooling
        scores = self.output(pooled).squeeze(1)
        return (scores, activations) if features else scores
