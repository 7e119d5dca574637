"""SAGAN's residual generator and discriminator (Zhang et al. 2019), as in
the authors' ImageNet 128x128 code, at any power-of-two resolution from 8.

Generator: z → linear → 4x4 map; up blocks (BN, ReLU, nearest x2, conv3x3,
BN, ReLU, conv3x3, with a shortcut of nearest x2 then conv1x1) to the data's
resolution, the batch norms conditional on the class (de Vries et al. 2017)
when the generator is; then BN, ReLU, conv3x3, tanh.

Discriminator: down blocks (ReLU, conv3x3, ReLU, conv3x3, 2x2 average pool,
with a conv1x1-then-pool shortcut; the first block has no leading ReLU and
pools before its shortcut) to 4x4, one more block at 4x4 without
resampling, ReLU, global sum pooling and a linear score, plus the projection
⟨embed(y), φ(x)⟩ of Miyato & Koyama 2018 when it is conditional.

Self-attention (§3) follows the block whose output has a chosen size, in
both networks; the paper's best is 32x32 ("feat32", §5.2).
Spectral normalization of every layer (§4) is the ``spectral_norm``
regularizer, which wraps these networks after they are built.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import BuildContext, Discriminator, Generator, ImageList, UserError, log2_int
from gankit.layers import ConditionalBatchNorm2d, ProjectionHead, SelfAttention2d
from gankit.options import each, help_text, one_of, positive, power_of_two

MIN_RESOLUTION = 8
INITS = ("xavier", "orthogonal")


def _at_least_channels(instance: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    base = getattr(instance, "channels")
    if value < base:
        raise ValueError(f"'{attribute.name}' must be >= channels (got {value} < {base})")


def _check_resolution(context: BuildContext, what: str) -> None:
    if context.resolution < MIN_RESOLUTION:
        raise UserError(f"sagan {what} needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION} (the data's are {context.resolution})")


def _check_attention(sizes: list[int], available: list[int], what: str) -> None:
    missing = sorted(set(sizes) - set(available))
    if missing:
        raise UserError(
            f"the {what} has no {missing[0]}x{missing[0]} feature map for attention (it has {', '.join(map(str, available))})",
            key="attention",
        )


def _feature_sizes(options: _SAGANNetworkOptions, context: BuildContext, what: str) -> list[int]:
    """The sizes of the ``what``'s feature maps in the order it makes them:
    G's from 4 up to the data's resolution, D's from half of it down to 4;
    after the checks both networks make of the data and the options."""
    _check_resolution(context, what)
    if options.conditional and context.num_classes <= 0:
        raise UserError("needs labelled data (data.labels = true)", key="conditional")
    steps = log2_int(context.resolution)
    sizes = [4 * 2**k for k in range(steps - 1)] if what == "generator" else [context.resolution // 2**k for k in range(1, steps - 1)]
    _check_attention(options.attention, sizes, what)
    return sizes


#: Spread of the per-class batch-norm gains around 1.
CLASS_TABLE_STD = 0.02


def init_weights(module: nn.Module, scheme: str) -> None:
    """Convolution and linear weights: Glorot uniform, as the authors' code
    draws them, or orthogonal (Saxe et al. 2014), as BigGAN-PyTorch and
    StudioGAN do; biases zero. The projection's embedding keeps its own
    initialization. The conditional batch norms' per-class gains are drawn
    from N(1, 0.02), not set to exactly 1 as in the authors' code, so that
    the classes differ from the first step, as the usual PyTorch conditional
    batch norm draws them; the shifts stay 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            (nn.init.xavier_uniform_ if scheme == "xavier" else nn.init.orthogonal_)(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, ConditionalBatchNorm2d):
            nn.init.normal_(layer.scale.weight, 1.0, CLASS_TABLE_STD)


def _batch_norm(channels: int, classes: int) -> nn.Module:
    return ConditionalBatchNorm2d(channels, classes) if classes else nn.BatchNorm2d(channels)


def _normalize(norm: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return norm(x, labels) if isinstance(norm, ConditionalBatchNorm2d) else norm(x)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class UpBlock(nn.Module):
    """(C)BN, ReLU, nearest x2, conv3x3, (C)BN, ReLU, conv3x3; shortcut nearest x2 then conv1x1."""

    def __init__(self, in_channels: int, out_channels: int, classes: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = _batch_norm(in_channels, classes), _batch_norm(out_channels, classes)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(_up(F.relu(_normalize(self.norm1, x, labels))))
        h = self.conv2(F.relu(_normalize(self.norm2, h, labels)))
        return h + self.shortcut(_up(x))


class DownBlock(nn.Module):
    """ReLU, conv3x3, ReLU, conv3x3, [2x2 average pool]; the shortcut is a
    conv1x1 then the pool when the block resamples or changes the width, the
    identity otherwise. The first block sees the image, so it has no leading
    ReLU and pools before its conv1x1."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = True, first: bool = False) -> None:
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if downsample or in_channels != out_channels else None

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._pool(self.conv2(F.relu(self.conv1(x if self.first else F.relu(x)))))
        if self.shortcut is None:
            return h + x
        shortcut = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return h + shortcut


# --------------------------------------------------------------------------
# Generator


@attrs.define(kw_only=True)
class _SAGANNetworkOptions:
    """The options G and D share: their widths, where self-attention sits,
    conditioning and initialization. G's width rule mirrors D's."""

    channels: int = attrs.field(
        default=64,
        validator=positive(),
        metadata=help_text(
            "channels of the block nearest the data: G's last up block (at the data's resolution), D's first down block "
            "(at half of it); doubled per halving towards 4x4 (64 for ImageNet 128)"
        ),
    )
    max_channels: int = attrs.field(
        default=1024,
        validator=[positive(), _at_least_channels],
        metadata=help_text("cap on the channels of any block (1024 for ImageNet 128: G's 1024, 1024, 512, 256, 128, 64; D's the reverse)"),
    )
    attention: list[int] = attrs.field(
        factory=lambda: [32],
        validator=each(power_of_two(4)),
        metadata=help_text(
            "sizes of the feature maps followed by self-attention, 4 up to the data's resolution (G) or half of it (D); "
            "[] for none (§5.2: 32)"
        ),
    )
    conditional: bool = attrs.field(
        default=False,
        metadata=help_text(
            "class-conditional (needs labelled data): G's batch norms take per-class gains and shifts; D is a projection "
            "discriminator (Miyato & Koyama 2018), adding ⟨embed(y), φ(x)⟩"
        ),
    )
    init: Literal["xavier", "orthogonal"] = attrs.field(
        default="xavier",
        validator=one_of(INITS),
        metadata=help_text("weight initialization: xavier (Glorot uniform, the authors' code) or orthogonal (BigGAN-PyTorch, StudioGAN)"),
    )


@attrs.define(kw_only=True)
class SAGANGeneratorOptions(_SAGANNetworkOptions):
    """SAGAN's residual generator with self-attention and, when conditional, class-conditional batch norm."""

    latent_size: int = attrs.field(
        default=128, validator=positive(), metadata=help_text("size of z, drawn from N(0, I) (128 in the authors' code)")
    )


class SAGANGenerator(Generator):
    """SAGAN's residual generator with self-attention and, when conditional, class-conditional batch norm."""

    def __init__(self, options: SAGANGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        sizes = _feature_sizes(options, context, "generator")  # 4, 8, ..., resolution
        resolution = context.resolution
        self.latent_size = options.latent_size
        self.num_classes = context.num_classes if options.conditional else 0

        def width(size: int) -> int:
            return min(options.channels * resolution // size, options.max_channels)

        self.project = nn.Linear(options.latent_size, width(4) * 4 * 4)
        self.start = width(4)
        layers: list[nn.Module] = [SelfAttention2d(width(4))] if 4 in options.attention else []
        for size in sizes[1:]:
            layers.append(UpBlock(width(size // 2), width(size), self.num_classes))
            if size in options.attention:
                layers.append(SelfAttention2d(width(size)))
        self.blocks = nn.ModuleList(layers)
        # the authors' code ends with an unconditional batch norm
        self.norm = nn.BatchNorm2d(width(resolution))
        self.to_rgb = nn.Conv2d(width(resolution), context.channels, 3, padding=1)
        init_weights(self, options.init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        if self.num_classes and labels is None:
            raise ValueError("this generator is conditional: pass labels")
        h = self.project(z).view(-1, self.start, 4, 4)
        for block in self.blocks:
            h = block(h, labels) if isinstance(block, UpBlock) else block(h)
        return [torch.tanh(self.to_rgb(F.relu(self.norm(h))))]


# --------------------------------------------------------------------------
# Discriminator


@attrs.define(kw_only=True)
class SAGANDiscriminatorOptions(_SAGANNetworkOptions):
    """SAGAN's residual discriminator with self-attention and, when conditional, the projection head."""


class SAGANDiscriminator(Discriminator):
    """SAGAN's residual discriminator with self-attention and, when conditional, the projection head."""

    def __init__(self, options: SAGANDiscriminatorOptions, context: BuildContext) -> None:
        super().__init__()
        sizes = _feature_sizes(options, context, "discriminator")  # resolution / 2, ..., 4
        resolution = context.resolution
        self.resolution = resolution
        self.num_classes = context.num_classes if options.conditional else 0

        def width(size: int) -> int:
            return min(options.channels * (resolution // 2) // size, options.max_channels)

        layers: list[nn.Module] = []
        in_channels = context.channels
        for index, size in enumerate(sizes):
            layers.append(DownBlock(in_channels, width(size), first=index == 0))
            if size in options.attention:
                layers.append(SelfAttention2d(width(size)))
            in_channels = width(size)
        layers.append(DownBlock(in_channels, in_channels, downsample=False))  # the authors' last block, at 4x4
        self.blocks = nn.ModuleList(layers)
        self.head = ProjectionHead(in_channels, self.num_classes) if self.num_classes else nn.Linear(in_channels, 1)
        init_weights(self, options.init)

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        h = images[-1]
        activations: list[torch.Tensor] = []
        for block in self.blocks:
            h = block(h)
            activations.append(h)
        pooled = F.relu(h).sum(dim=(2, 3))  # global sum pooling, as the authors' code
        if self.num_classes:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels")
            scores = self.head(pooled, labels)
        else:
            scores = self.head(pooled).squeeze(1)
        return (scores, activations) if features else scores
