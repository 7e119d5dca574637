"""The ProGAN generator and discriminator (Karras et al. 2018, Table 2 and
the official networks), built to the data's resolution and grown by
``set_stage``.

**α and lod.** At a stage (r, α) both networks work at resolution r. While
the block of resolution r fades in (α < 1), the generator makes
lerp(upsample(toRGB_{r/2}(h_{r/2})), toRGB_r(block_r(h_{r/2})), α) and the
discriminator computes lerp(fromRGB_{r/2}(avgpool(x)),
block_r(fromRGB_r(x)), α) (§2, Figure 2). α rises from 0 to 1, so α = 0 is
exactly the previous stage. The official code counts the other way: a level
of detail lod that falls from log2(R/4) to 0 as training goes on, with the
new block weighted by 1 − frac(lod); so α = 1 − frac(lod).

**Images at the data's resolution.** As in the official code, the networks
exchange images at the data's resolution R at every stage: the generator's
image is upsampled (nearest) from r to R, and the discriminator
average-pools its input from R to r. This is not only cosmetic. A gradient
penalty measures ‖∇D‖ with respect to the R×R input, which is ‖∇D_r‖·r/R
for the r×r network, so the official WGAN-GP holds the low-resolution
critic to a gradient norm of R/r, not 1. Working at R reproduces that
exactly, and the samples and metrics see what the official code shows.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import BuildContext, Discriminator, Generator, ImageList, Stage, UserError, downsample_to, log2_int
from gankit.layers import RELU_GAIN, EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, lrelu, nf
from gankit.options import help_text, in_range, positive

MAX_RESOLUTION = 1024


def upsample_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Nearest-neighbour upsampling by a power of two, as the official
    code's ``upscale2d`` (which tiles each pixel)."""
    n, c, h, w = images.shape
    factor = resolution // w
    if factor == 1:
        return images
    # a broadcast, not F.interpolate: its backward is a plain sum, deterministic on CUDA too
    return images[:, :, :, None, :, None].expand(n, c, h, factor, w, factor).reshape(n, c, h * factor, w * factor)


def _final_log2(context: BuildContext, what: str) -> int:
    if context.resolution < 4 or context.resolution > MAX_RESOLUTION:
        raise UserError(
            f"{what} progan grows from 4x4 up to {MAX_RESOLUTION}x{MAX_RESOLUTION}; the data is {context.resolution}x{context.resolution}"
        )
    return log2_int(context.resolution)


def _checked_stage(stage: Stage, resolution: int) -> Stage:
    if stage.resolution < 4 or stage.resolution > resolution or stage.resolution & (stage.resolution - 1):
        raise UserError(
            f"the schedule asks for a {stage.resolution}x{stage.resolution} stage, but the progan networks are built for the data's "
            f"{resolution}x{resolution}: set scheduler.final_resolution = {resolution}"
        )
    if not 0.0 <= stage.alpha <= 1.0:
        raise ValueError(f"a stage's alpha must be in [0, 1], got {stage.alpha}")
    return stage


class _UpBlock(nn.Module):
    """Nearest x2, then two conv3x3, each followed by LeakyReLU and PixelNorm (Table 2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)
        self.norm = PixelNorm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = upsample_to(x, 2 * x.shape[-1])
        x = self.norm(lrelu(self.conv0(x)))
        return self.norm(lrelu(self.conv1(x)))


class _DownBlock(nn.Module):
    """Two conv3x3 with LeakyReLU, the second to the next block's width, then
    2x2 average pooling (Table 2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = lrelu(self.conv1(lrelu(self.conv0(x))))
        return F.avg_pool2d(x, 2)


@attrs.define(kw_only=True)
class ProGANGeneratorOptions:
    """ProGAN's generator (Karras et al. 2018, Table 2): grows from 4x4 with fade-in."""

    latent_size: int = attrs.field(default=512, validator=positive(), metadata=help_text("size of z (512 in the paper)"))
    fmap_base: int = attrs.field(
        default=8192, validator=positive(), metadata=help_text("the block at 2^(s+1) pixels has min(fmap_base / 2^s, fmap_max) channels")
    )
    fmap_max: int = attrs.field(default=512, validator=positive(), metadata=help_text("the most channels of any block"))
    normalize_latent: bool = attrs.field(
        default=True, metadata=help_text("pixel-normalize z before the first layer (Table 2, official normalize_latents)")
    )


class ProGANGenerator(Generator):
    """ProGAN's generator (Karras et al. 2018, Table 2): grows from 4x4 with fade-in."""

    def __init__(self, options: ProGANGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        final_log2 = _final_log2(context, "generator:")
        self.options = options
        self.latent_size, self.num_classes = options.latent_size, 0
        self.resolution = context.resolution

        def width(log2_resolution: int) -> int:
            return nf(log2_resolution - 1, options.fmap_base, options.fmap_max)

        # The paper's 4x4 convolution of the 1x1 latent is a dense layer to
        # 4·4·C; the official code gives it gain √2/4 and one bias per channel.
        self.dense = EqualizedLinear(options.latent_size, 16 * width(2), gain=RELU_GAIN / 4, bias=False)
        self.dense_bias = nn.Parameter(torch.zeros(width(2)))
        self.conv = EqualizedConv2d(width(2), width(2), 3)
        self.blocks = nn.ModuleList(_UpBlock(width(r - 1), width(r)) for r in range(3, final_log2 + 1))
        # toRGB: 1x1, linear, gain 1 (official code), one per resolution
        self.to_rgb = nn.ModuleList(EqualizedConv2d(width(r), context.channels, 1, gain=1.0) for r in range(2, final_log2 + 1))
        self.norm = PixelNorm()
        self.stage = Stage(context.resolution, 1.0)

    def set_stage(self, stage: Stage) -> None:
        self.stage = _checked_stage(stage, self.resolution)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        if self.options.normalize_latent:
            z = self.norm(z)  # §4.2: z on the hypersphere of radius √latent_size
        x = self.dense(z).view(z.shape[0], -1, 4, 4) + self.dense_bias.view(1, -1, 1, 1)
        x = self.norm(lrelu(x))
        x = self.norm(lrelu(self.conv(x)))
        level = log2_int(self.stage.resolution) - 2  # 0 at 4x4
        previous = x
        for block in self.blocks[:level]:
            previous, x = x, block(x)
        image = self.to_rgb[level](x)
        if level > 0 and self.stage.alpha < 1.0:
            # §2 and Figure 2 (b): the new block fades in over the previous toRGB, upsampled
            coarse = self.to_rgb[level - 1](previous)
            image = torch.lerp(upsample_to(coarse, image.shape[-1]), image, self.stage.alpha)
        # float32 like the real batch, also under autocast, so that losses and penalties can mix the two
        return [upsample_to(image.float(), self.resolution)]


@attrs.define(kw_only=True)
class ProGANDiscriminatorOptions:
    """ProGAN's discriminator (Karras et al. 2018, Table 2): mirrors the generator, with minibatch stddev."""

    fmap_base: int = attrs.field(
        default=8192, validator=positive(), metadata=help_text("the block at 2^(s+1) pixels has min(fmap_base / 2^s, fmap_max) channels")
    )
    fmap_max: int = attrs.field(default=512, validator=positive(), metadata=help_text("the most channels of any block"))
    mbstd_group_size: int = attrs.field(
        default=4,
        validator=in_range(0, 1 << 16),
        metadata=help_text("minibatch stddev group (§3): 4 in the official code, 16 in its v1 preset; 0 the whole batch"),
    )


class ProGANDiscriminator(Discriminator):
    """ProGAN's discriminator (Karras et al. 2018, Table 2): mirrors the generator, with minibatch stddev."""

    def __init__(self, options: ProGANDiscriminatorOptions, context: BuildContext) -> None:
        super().__init__()
        final_log2 = _final_log2(context, "discriminator:")
        self.resolution, self.num_classes = context.resolution, 0

        def width(log2_resolution: int) -> int:
            return nf(log2_resolution - 1, options.fmap_base, options.fmap_max)

        # fromRGB: 1x1 followed by LeakyReLU, one per resolution
        self.from_rgb = nn.ModuleList(EqualizedConv2d(context.channels, width(r), 1) for r in range(2, final_log2 + 1))
        self.blocks = nn.ModuleList(_DownBlock(width(r), width(r - 1)) for r in range(3, final_log2 + 1))
        # 4x4: minibatch stddev, conv3x3, dense, dense to the score (gain 1)
        self.mbstd = MinibatchStdDev(options.mbstd_group_size)
        self.conv = EqualizedConv2d(width(2) + 1, width(2), 3)
        self.dense = EqualizedLinear(16 * width(2), nf(0, options.fmap_base, options.fmap_max))
        self.output = EqualizedLinear(nf(0, options.fmap_base, options.fmap_max), 1, gain=1.0)
        self.stage = Stage(context.resolution, 1.0)

    def set_stage(self, stage: Stage) -> None:
        self.stage = _checked_stage(stage, self.resolution)

    def prepare_reals(self, images: torch.Tensor) -> ImageList:
        """The real batch as the generator of this stage makes it: pooled to
        the stage's resolution r, faded as (1 − α)·upsample(avgpool(x)) + α·x
        (the official code's FadeLOD), and upsampled back to the data's
        resolution. At α = 0 the discriminator sees exactly what the previous
        stage's generator could make."""
        resolution, alpha = self.stage.resolution, self.stage.alpha
        x = downsample_to(images, resolution)
        if alpha < 1.0 and resolution > 4:
            x = torch.lerp(upsample_to(F.avg_pool2d(x, 2), resolution), x, alpha)
        return [upsample_to(x, self.resolution)]

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        image = images[-1]
        if image.shape[-1] != self.resolution:
            raise ValueError(
                f"the progan discriminator takes {self.resolution}x{self.resolution} images, got {image.shape[-1]}x{image.shape[-1]}"
            )
        image = downsample_to(image, self.stage.resolution)
        level = log2_int(self.stage.resolution) - 2  # 0 at 4x4
        x = lrelu(self.from_rgb[level](image))
        activations = []
        for index in range(level - 1, -1, -1):
            x = self.blocks[index](x)
            if index == level - 1 and self.stage.alpha < 1.0:
                # Figure 2 (b), mirrored: the new block fades in over the previous fromRGB of the pooled image
                skip = lrelu(self.from_rgb[level - 1](F.avg_pool2d(image, 2)))
                x = torch.lerp(skip, x, self.stage.alpha)
            activations.append(x)
        x = lrelu(self.conv(self.mbstd(x)))
        x = lrelu(self.dense(x.flatten(1)))
        activations.append(x)
        scores = self.output(x).squeeze(1)
        return (scores, activations) if features else scores
