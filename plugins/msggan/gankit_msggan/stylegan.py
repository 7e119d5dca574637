"""MSG-StyleGAN's generator (Karnewar & Wang 2020): StyleGAN's
(Karras, Laine & Aila 2019) with a 1x1 toRGB after every block, returning
every image, coarsest first, for MSG-GAN's discriminator to take.

StyleGAN's generator: a mapping network turns z into w (§2); the synthesis
network starts from a learned constant 4x4 input and, after each of its
convolutions, adds per-pixel noise with learned per-channel strengths, a
bias and LeakyReLU, then adaptive instance normalization with a style from
w (Figure 1b). Each block above 4x4 doubles the resolution (nearest
neighbour, conv3x3, [1, 2, 1] blur) and convolves again. The layout and
its details follow the authors' code, msg-stylegan-tf
(training/networks_stylegan.py: G_style, G_mapping, G_synthesis), which is
NVlabs' StyleGAN code with a toRGB output at every block and without
style-mixing regularization; both are options here.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import BuildContext, Generator, ImageList, UserError
from gankit.layers import AdaIN, Blur2d, EqualizedConv2d, MappingNetwork, NoiseInjection, lrelu, nf, truncate
from gankit.options import help_text, in_range, one_of, positive
from gankit_msggan.networks import network_depth

EVAL_NOISE = ("const", "random")


@attrs.define(kw_only=True)
class MSGStyleGeneratorOptions:
    """MSG-StyleGAN's generator (Karnewar & Wang 2020): StyleGAN's, with an image from every block, coarsest first."""

    latent_size: int = attrs.field(default=512, validator=positive(), metadata=help_text("size of z"))
    w_size: int = attrs.field(default=512, validator=positive(), metadata=help_text("size of w, the mapping network's output"))
    mapping_layers: int = attrs.field(default=8, validator=positive(), metadata=help_text("dense layers of the mapping network (8)"))
    mapping_width: int = attrs.field(default=512, validator=positive(), metadata=help_text("width of the mapping network's hidden layers"))
    mapping_lr_multiplier: float = attrs.field(
        default=0.01, validator=positive(), metadata=help_text("learning-rate multiplier of the mapping network (StyleGAN: 0.01)")
    )
    fmap_base: int = attrs.field(
        default=8192,
        validator=positive(),
        metadata=help_text("channels of block b are min(fmap_base / 2^b, fmap_max) (4x4 is block 1)"),
    )
    fmap_max: int = attrs.field(default=512, validator=positive(), metadata=help_text("cap on any block's channels"))
    style_mixing_prob: float = attrs.field(
        default=0.0,
        validator=in_range(0.0, 1.0),
        metadata=help_text("probability of style mixing per training batch (StyleGAN 0.9; MSG-StyleGAN trains without: 0)"),
    )
    w_avg_beta: float = attrs.field(
        default=0.995,
        validator=in_range(0.0, 1.0),
        metadata=help_text("decay of the running average of w kept for the truncation trick, updated in training"),
    )
    truncation_cutoff: int = attrs.field(
        default=8,
        validator=positive(),
        metadata=help_text("layers (two per block, coarsest first) that truncation pulls toward the average w unless told (StyleGAN: 8)"),
    )
    blur: bool = attrs.field(default=True, metadata=help_text("the [1, 2, 1] blur after each upsampling (StyleGAN)"))
    eval_noise: Literal["const", "random"] = attrs.field(
        default="const",
        validator=one_of(EVAL_NOISE),
        metadata=help_text(
            "noise in eval mode (samples, metrics): const reads a fixed noise image per layer, so that a seed gives the "
            "same images; random draws fresh noise as in training"
        ),
    )


class SynthesisLayer(nn.Module):
    """One layer of the synthesis network (Figure 1b): [nearest x2] conv3x3
    [blur], noise, bias, LeakyReLU, AdaIN, in the authors' order. The 4x4
    constant's own layer has no convolution (``in_channels`` None)."""

    def __init__(
        self, in_channels: int | None, out_channels: int, w_size: int, resolution: int, upsample: bool, blur: bool, eval_noise: str
    ) -> None:
        super().__init__()
        self.upsample = upsample
        # no bias in the convolution: the blur sits between it and the bias
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False) if in_channels is not None else None
        self.blur = Blur2d() if upsample and blur else None
        self.noise = NoiseInjection(out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_size)
        self.fixed_noise: torch.Tensor
        self.register_buffer("fixed_noise", torch.randn(1, 1, resolution, resolution))
        self.eval_noise = eval_noise

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.conv is not None:
            x = self.conv(x)
        if self.blur is not None:
            x = self.blur(x)
        noise = self.fixed_noise if not self.training and self.eval_noise == "const" else None
        x = lrelu(self.noise(x, noise) + self.bias.to(x.dtype).view(1, -1, 1, 1))
        return self.adain(x, w)


class SynthesisNetwork(nn.Module):
    """g (Figure 1b): per-layer styles ws [N, layers, w_size] to an image
    from every block, coarsest first, through a linear 1x1 toRGB each
    (MSG-GAN's r, §3)."""

    def __init__(self, options: MSGStyleGeneratorOptions, depth: int, image_channels: int) -> None:
        super().__init__()
        channels = [nf(block, options.fmap_base, options.fmap_max) for block in range(1, depth + 1)]
        self.num_layers = 2 * depth
        # the learned constant input, initialised to ones (the authors' code)
        self.const = nn.Parameter(torch.ones(1, channels[0], 4, 4))
        w_size, noise = options.w_size, options.eval_noise
        layers = [
            SynthesisLayer(None, channels[0], w_size, 4, upsample=False, blur=False, eval_noise=noise),
            SynthesisLayer(channels[0], channels[0], w_size, 4, upsample=False, blur=False, eval_noise=noise),
        ]
        for block in range(2, depth + 1):
            resolution, width = 2 ** (block + 1), channels[block - 1]
            layers.append(
                SynthesisLayer(channels[block - 2], width, w_size, resolution, upsample=True, blur=options.blur, eval_noise=noise)
            )
            layers.append(SynthesisLayer(width, width, w_size, resolution, upsample=False, blur=False, eval_noise=noise))
        self.layers = nn.ModuleList(layers)
        # gain 1 and a bias, as StyleGAN's toRGB
        self.to_rgb = nn.ModuleList(EqualizedConv2d(width, image_channels, 1, gain=1.0) for width in channels)

    def forward(self, ws: torch.Tensor) -> ImageList:
        x = self.const.to(ws.dtype).expand(ws.shape[0], -1, -1, -1)
        images = []
        for block, to_rgb in enumerate(self.to_rgb):
            x = self.layers[2 * block](x, ws[:, 2 * block])
            x = self.layers[2 * block + 1](x, ws[:, 2 * block + 1])
            images.append(to_rgb(x))
        return images


def mix_styles(ws: torch.Tensor, ws_other: torch.Tensor, crossover: int) -> torch.Tensor:
    """Style mixing (Karras et al. 2019, §3.1): layers before ``crossover``
    keep ``ws``, the rest take ``ws_other``."""
    return torch.cat([ws[:, :crossover], ws_other[:, crossover:]], dim=1)


class MSGStyleGenerator(Generator):
    """MSG-StyleGAN's generator (Karnewar & Wang 2020): StyleGAN's, with an image from every block, coarsest first."""

    def __init__(self, options: MSGStyleGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        self.options = options
        self.depth = network_depth(context, "generator")
        self.latent_size, self.num_classes = options.latent_size, 0
        self.mapping = MappingNetwork(
            options.latent_size, options.w_size, options.mapping_layers, options.mapping_width, options.mapping_lr_multiplier
        )
        self.synthesis = SynthesisNetwork(options, self.depth, context.channels)
        self.num_layers = self.synthesis.num_layers
        # w̄ for the truncation trick (Appendix B): a running mean of w over training,
        # saved with the weights and copied, not averaged, into the EMA generator
        self.w_avg: torch.Tensor
        self.register_buffer("w_avg", torch.zeros(options.w_size))
        self.truncation_psi, self.truncation_cutoff = 1.0, options.truncation_cutoff

    def set_truncation(self, psi: float, cutoff: int | None = None) -> int | None:
        if not math.isfinite(psi):
            raise UserError(f"truncation ψ must be a finite number, got {psi}")
        if cutoff is not None and cutoff < 1:
            raise UserError(f"truncation cutoff: expected a number of layers of at least 1, got {cutoff}")
        self.truncation_psi = float(psi)
        self.truncation_cutoff = self.options.truncation_cutoff if cutoff is None else cutoff
        return min(self.truncation_cutoff, self.num_layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        w = self.mapping(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - self.options.w_avg_beta)
        ws = w.unsqueeze(1).expand(-1, self.num_layers, -1)
        p = self.options.style_mixing_prob
        if self.training and p > 0 and torch.rand(()).item() < p:
            # one crossover for the whole batch, uniform in [1, layers), as the authors' code
            crossover = int(torch.randint(1, self.num_layers, ()).item())
            w_other = self.mapping(torch.randn_like(z))
            ws = mix_styles(ws, w_other.unsqueeze(1).expand(-1, self.num_layers, -1), crossover)
        if self.truncation_psi != 1.0:
            ws = truncate(ws, self.w_avg, self.truncation_psi, self.truncation_cutoff)
        return self.synthesis(ws)
