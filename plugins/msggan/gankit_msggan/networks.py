"""MSG-GAN's networks (Karnewar & Wang 2020), in the MSG-ProGAN layout.

The generator emits an image after every block through a 1x1 toRGB (the
paper's r) and returns all of them, coarsest first. The discriminator takes
that list (or the real pyramid) and, at every scale below its top one,
merges the image at that scale into its own activations through the combine
function φ (§3, Eqs. 11-13). Its loss therefore sends gradient straight to
every toRGB, and through them to every generator block: the point of the
paper, with no progressive growing.

The layout is that of the authors' PyTorch code for MSG-ProGAN (BMSG-GAN),
built from the ProGAN blocks of :mod:`gankit.layers` (Karras et al. 2018):
equalized learning rate, pixel norm, minibatch standard deviation and the
channel rule min(fmap_base / 2^b, fmap_max) of block b (4x4 is block 1).
Each φ keeps its authors' widths: under lin_cat the discriminator's
activations below the top are half the generator's width and r'(o) the
other half (BMSG-GAN, sourcecode/MSG_GAN/GAN.py); simple and cat_lin keep
ProGAN's widths (cat_lin as msg-stylegan-tf, training/networks_stylegan.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import BuildContext, Discriminator, Generator, ImageList, UserError, image_pyramid, log2_int
from gankit.layers import RELU_GAIN, Blur2d, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, lrelu, nf
from gankit.options import help_text, in_range, one_of, positive

COMBINES = ("simple", "lin_cat", "cat_lin")
CONNECTIONS = ("all", "coarse", "fine", "none")
LIN_CAT_WIDTHS = ("half", "full")


def network_depth(context: BuildContext, what: str) -> int:
    """Blocks from 4x4 up to the data's resolution: log2(resolution) - 1."""
    if context.resolution < 8:
        raise UserError(
            f"msggan {what}: needs images of at least 8x8, to have two scales (the data's are {context.resolution}x{context.resolution})"
        )
    return log2_int(context.resolution) - 1


def _channel_rule(options: MSGGeneratorOptions | MSGDiscriminatorOptions) -> Callable[[int], int]:
    return lambda block: nf(block, options.fmap_base, options.fmap_max)


# --------------------------------------------------------------------------
# Generator


@attrs.define(kw_only=True)
class MSGGeneratorOptions:
    """MSG-GAN's generator (Karnewar & Wang 2020): an image from every block, coarsest first."""

    latent_size: int = attrs.field(
        default=512, validator=positive(), metadata=help_text("size of z, which is put on the sphere of radius sqrt(latent_size)")
    )
    fmap_base: int = attrs.field(
        default=8192,
        validator=positive(),
        metadata=help_text("channels of block b are min(fmap_base / 2^b, fmap_max) (ProGAN's rule; 4x4 is block 1)"),
    )
    fmap_max: int = attrs.field(default=512, validator=positive(), metadata=help_text("cap on any block's channels"))


class MSGGenerator(Generator):
    """MSG-GAN's generator (Karnewar & Wang 2020): an image from every block, coarsest first."""

    def __init__(self, options: MSGGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        self.options = options
        self.depth = network_depth(context, "generator")
        self.latent_size, self.num_classes = options.latent_size, 0
        channels = _channel_rule(options)
        self.first_channels = channels(1)
        # The 4x4 block starts with a 4x4 transposed convolution of the 1x1
        # latent (BMSG-GAN): a dense map to 4·4·C whose bias is shared by the
        # 16 pixels of a channel, with the transposed convolution's fan-in
        # (the latent size) and gain √2.
        self.latent_to_4x4 = EqualizedLinear(options.latent_size, 16 * channels(1), gain=RELU_GAIN, bias=False)
        self.bias_4x4 = nn.Parameter(torch.zeros(channels(1)))
        self.conv_4x4 = EqualizedConv2d(channels(1), channels(1), 3)
        self.up_blocks = nn.ModuleList(
            nn.ModuleList([EqualizedConv2d(channels(block - 1), channels(block), 3), EqualizedConv2d(channels(block), channels(block), 3)])
            for block in range(2, self.depth + 1)
        )
        # r (§3): a linear 1x1 convolution after every block, no tanh. Gain 1,
        # as ProGAN's toRGB (Karras et al. 2018); BMSG-GAN uses √2.
        self.to_rgb = nn.ModuleList(EqualizedConv2d(channels(block), context.channels, 1, gain=1.0) for block in range(1, self.depth + 1))
        self.norm = PixelNorm()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        # z on the hypersphere of radius √d (BMSG-GAN's normalize_latents)
        z = z * (math.sqrt(self.latent_size) / z.norm(dim=1, keepdim=True).clamp(min=1e-8))
        x = self.latent_to_4x4(z).view(-1, self.first_channels, 4, 4) + self.bias_4x4.view(1, -1, 1, 1)
        # 4x4 block: transposed conv, LeakyReLU, conv3x3, LeakyReLU, PixelNorm
        x = self.norm(lrelu(self.conv_4x4(lrelu(x))))
        images = [self.to_rgb[0](x)]
        for (conv1, conv2), to_rgb in zip(self.up_blocks, self.to_rgb[1:], strict=True):
            # up blocks: nearest x2, then twice [conv3x3, LeakyReLU, PixelNorm]
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = self.norm(lrelu(conv1(x)))
            x = self.norm(lrelu(conv2(x)))
            images.append(to_rgb(x))
        return images


# --------------------------------------------------------------------------
# Discriminator


@attrs.define(kw_only=True)
class MSGDiscriminatorOptions:
    """MSG-GAN's discriminator (Karnewar & Wang 2020): the image at every scale enters through φ."""

    combine: Literal["simple", "lin_cat", "cat_lin"] = attrs.field(
        default="simple",
        validator=one_of(COMBINES),
        metadata=help_text("φ (Eqs. 11-13): simple [o; a], lin_cat [r'(o); a] or cat_lin r'([o; a]), r' a 1x1 convolution"),
    )
    connections: Literal["all", "coarse", "fine", "none"] = attrs.field(
        default="all",
        validator=one_of(CONNECTIONS),
        metadata=help_text(
            "the scales below the top whose image enters D: all (MSG-GAN), the coarser or the finer half, "
            "or none (a plain single-scale D); for ablations"
        ),
    )
    fmap_base: int = attrs.field(
        default=8192,
        validator=positive(),
        metadata=help_text("channels of block b are min(fmap_base / 2^b, fmap_max) (ProGAN's rule; 4x4 is block 1)"),
    )
    fmap_max: int = attrs.field(default=512, validator=positive(), metadata=help_text("cap on any block's channels"))
    lin_cat_width: Literal["half", "full"] = attrs.field(
        default="half",
        validator=one_of(LIN_CAT_WIDTHS),
        metadata=help_text(
            "combine = lin_cat only: half splits a block's input nf(b) between D's activations a and r'(o), "
            "nf(b)/2 each (BMSG-GAN); full keeps a at ProGAN's nf(b) and adds nf(b) more from r'(o), 2·nf(b) in all"
        ),
    )
    mbstd_group_size: int = attrs.field(
        default=0,
        validator=in_range(0, 1 << 20),
        metadata=help_text("minibatch stddev group; 0: the whole batch (BMSG-GAN's MSG-ProGAN); MSG-StyleGAN uses 4"),
    )
    mbstd_every_block: bool = attrs.field(
        default=False,
        metadata=help_text(
            "minibatch stddev at the start of every block, after φ, as MSG-StyleGAN does; otherwise only in the final block"
        ),
    )
    blur: bool = attrs.field(
        default=False,
        metadata=help_text(
            "StyleGAN's downsampling, as MSG-StyleGAN's discriminator: a [1, 2, 1] blur before each block's second conv3x3, "
            "then the 2x2 mean, then LeakyReLU; otherwise ProGAN's conv3x3, LeakyReLU, 2x2 mean"
        ),
    )

    def __attrs_post_init__(self) -> None:
        if self.lin_cat_width != "half" and self.combine != "lin_cat":
            raise ValueError(f"'lin_cat_width' applies only to combine = 'lin_cat' (got combine {self.combine!r})")


class Combine(nn.Module):
    """φ (Karnewar & Wang 2020, Eqs. 11-13): merge the image o at a scale
    with the discriminator's activations a at that scale.

    ``channels`` is a's width. ``projection`` is r'(o)'s width under
    lin_cat, as wide as a unless given (BMSG-GAN gives each half of the
    block's input; see :func:`lin_cat_split`)."""

    def __init__(self, kind: str, image_channels: int, channels: int, projection: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        if projection is not None and kind != "lin_cat":
            raise ValueError(f"only lin_cat takes a projection width (got combine {kind!r})")
        if kind == "simple":  # Eq. 11: [o; a]
            self.out_channels = image_channels + channels
        elif kind == "lin_cat":  # Eq. 12: [r'(o); a]; r' linear with a bias, as BMSG-GAN's fromRGB converters
            width = channels if projection is None else projection
            self.project = EqualizedConv2d(image_channels, width, 1)
            self.out_channels = width + channels
        elif kind == "cat_lin":
            # Eq. 13: r'([o; a]) back to a's width. msg-stylegan-tf
            # (training/networks_stylegan.py, D_basic's "combine" scope) uses a
            # 1x1 convolution with no bias there: the block's first
            # convolution, right after it, has one.
            self.project = EqualizedConv2d(image_channels + channels, channels, 1, bias=False)
            self.out_channels = channels
        else:
            raise ValueError(f"unknown combine function {kind!r}; expected one of {', '.join(COMBINES)}")

    def forward(self, image: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        if self.kind == "simple":
            return torch.cat([image, activations], dim=1)
        if self.kind == "lin_cat":
            return torch.cat([self.project(image), activations], dim=1)
        return self.project(torch.cat([image, activations], dim=1))


def lin_cat_split(width: int) -> tuple[int, int]:
    """The widths (a, r'(o)) that share a block input of ``width`` under
    lin_cat with ``lin_cat_width = "half"``: half each, as BMSG-GAN's
    discriminator (sourcecode/MSG_GAN/GAN.py) builds them for ProGAN's
    power-of-two widths. Neither is ever 0, so a width of 1 gives 1 + 1."""
    return max(1, width - width // 2), max(1, width // 2)


def connected_blocks(depth: int, connections: str) -> set[int]:
    """The blocks below the top (1 = 4x4, ``depth`` = the data's resolution)
    whose image enters the discriminator: all of them, the coarser or the
    finer half, or none. With an odd number of them the middle one belongs
    to both halves."""
    below_top = list(range(1, depth))
    if connections == "all":
        return set(below_top)
    if connections == "none":
        return set()
    half = (len(below_top) + 1) // 2
    return set(below_top[:half]) if connections == "coarse" else set(below_top[-half:])


class MSGDiscriminator(Discriminator):
    """MSG-GAN's discriminator (Karnewar & Wang 2020): the image at every scale enters through φ."""

    def __init__(self, options: MSGDiscriminatorOptions, context: BuildContext) -> None:
        super().__init__()
        self.options = options
        self.depth = network_depth(context, "discriminator")
        self.resolution, self.num_classes = context.resolution, 0
        self.nf = _channel_rule(options)
        self.connected = connected_blocks(self.depth, options.connections)
        mbstd_channels = 1 if options.mbstd_every_block else 0

        # The top scale never goes through φ, so fromRGB gives its full width.
        self.from_rgb = EqualizedConv2d(context.channels, self._activation_width(self.depth), 1)
        self.combines = nn.ModuleDict()
        self.blocks = nn.ModuleList()
        # Blocks from the data's resolution down to 8x8: conv3x3, LeakyReLU,
        # conv3x3, LeakyReLU, 2x2 average pooling. ProGAN's widths nf(b), then
        # a's width at the next scale down: nf(b - 1), or half of it where
        # lin_cat's r'(o) supplies the other half (BMSG-GAN).
        for block in range(self.depth, 1, -1):
            width = self._add_combine(block, context.channels)
            self.blocks.append(
                nn.ModuleList(
                    [
                        EqualizedConv2d(width + mbstd_channels, self.nf(block), 3),
                        EqualizedConv2d(self.nf(block), self._activation_width(block - 1), 3),
                    ]
                )
            )
        # The final 4x4 block: minibatch stddev, conv3x3, conv4x4, linear.
        width = self._add_combine(1, context.channels)
        self.mbstd = MinibatchStdDev(options.mbstd_group_size)
        self.blur = Blur2d() if options.blur else None
        self.final_conv = EqualizedConv2d(width + 1, self.nf(1), 3)
        self.final_4x4 = EqualizedConv2d(self.nf(1), self.nf(1), 4, padding=0)
        self.output = EqualizedLinear(self.nf(1), 1, gain=1.0)

    def _splits(self, block: int) -> bool:
        """Whether lin_cat at ``block`` shares nf(b) between a and r'(o)."""
        return block in self.connected and self.options.combine == "lin_cat" and self.options.lin_cat_width == "half"

    def _activation_width(self, block: int) -> int:
        """The width of a, the discriminator's activations at ``block``'s scale, before φ."""
        return lin_cat_split(self.nf(block))[0] if self._splits(block) else self.nf(block)

    def _add_combine(self, block: int, image_channels: int) -> int:
        """Add φ at ``block`` when its scale is connected; returns the width
        that the block's first layer then takes."""
        if block not in self.connected:
            return self._activation_width(block)
        projection = lin_cat_split(self.nf(block))[1] if self._splits(block) else None
        combine = Combine(self.options.combine, image_channels, self._activation_width(block), projection)
        self.combines[str(block)] = combine
        return combine.out_channels

    def prepare_reals(self, images: torch.Tensor) -> ImageList:
        # §3: the real image at every scale is the full one, 2x2-average-pooled
        return image_pyramid(images, self.depth)

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        if len(images) != self.depth:
            raise ValueError(
                f"msggan discriminator: expected {self.depth} scales (4x4 to {self.resolution}x{self.resolution}), got {len(images)}"
            )
        image_at = dict(zip(range(1, self.depth + 1), images, strict=True))
        x = lrelu(self.from_rgb(image_at[self.depth]))
        activations = []
        for block, (conv1, conv2) in zip(range(self.depth, 1, -1), self.blocks, strict=True):
            x = self._enter(block, image_at, x)
            if self.options.mbstd_every_block:
                x = self.mbstd(x)
            x = lrelu(conv1(x))
            if self.blur is None:
                x = F.avg_pool2d(lrelu(conv2(x)), 2)
            else:
                # Karras et al. 2019 §2: low-pass filter before downsampling;
                # msg-stylegan-tf (D_basic, Conv1_down) pools before the activation
                x = lrelu(F.avg_pool2d(conv2(self.blur(x)), 2))
            activations.append(x)
        x = self._enter(1, image_at, x)
        x = lrelu(self.final_conv(self.mbstd(x)))
        x = lrelu(self.final_4x4(x)).flatten(1)
        activations.append(x)
        scores = self.output(x).squeeze(1)
        return (scores, activations) if features else scores

    def _enter(self, block: int, image_at: dict[int, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        combine = self.combines[str(block)] if str(block) in self.combines else None
        return x if combine is None else combine(image_at[block], x)
