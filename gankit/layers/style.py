"""Building blocks of StyleGAN (Karras, Laine & Aila, CVPR 2019) that other
techniques reuse: the mapping network (§2), adaptive instance normalization
with styles from w (§2, Eq. 1), per-pixel noise inputs with learned
per-channel strengths (§2, §3.2), the [1, 2, 1] blur that low-pass filters
activations around resampling (§2, after Zhang 2019), and the truncation
trick in W (Appendix B).

Where the paper leaves a detail open, the blocks follow the authors' code
(NVlabs/stylegan, training/networks_stylegan.py): the style's scale is
parametrised as 1 + y_s so that a fresh layer starts as plain instance
normalization, the noise strengths start at 0, and the mapping network's
layers learn 100 times more slowly (learning-rate multiplier 0.01).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gankit.layers.progan import RELU_GAIN, EqualizedLinear, PixelNorm, lrelu

#: The binomial filter of StyleGAN's resampling blur; normalised to sum to 1.
BLUR_TAPS = (1.0, 2.0, 1.0)


class Blur2d(nn.Module):
    """The separable [1, 2, 1] ⊗ [1, 2, 1] / 16 low-pass filter, applied to
    every channel alone with zero padding: StyleGAN blurs right after each
    upsampling and right before each downsampling (§2), to avoid aliasing."""

    def __init__(self) -> None:
        super().__init__()
        taps = torch.tensor(BLUR_TAPS)
        kernel = torch.outer(taps, taps)
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        kernel = self.kernel.to(x.dtype).expand(channels, 1, -1, -1)
        return F.conv2d(x, kernel, padding=kernel.shape[-1] // 2, groups=channels)


class NoiseInjection(nn.Module):
    """A noise input (§2, Figure 1b, "B"): one single-channel image of
    N(0, 1) noise per sample, added to every channel with a learned
    per-channel strength that starts at 0, so a fresh network ignores it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``noise`` is [N or 1, 1, H, W]; None draws it fresh."""
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.weight.to(x.dtype).view(1, -1, 1, 1) * noise.to(x.dtype)


def instance_norm(x: torch.Tensor, epsilon: float = 1e-8) -> torch.Tensor:
    """(x − μ(x)) / σ(x) over each feature map of each sample, computed in
    float32 as the authors' code does under mixed precision."""
    y = x.float()
    y = y - y.mean(dim=(2, 3), keepdim=True)
    y = y * torch.rsqrt(y.square().mean(dim=(2, 3), keepdim=True) + epsilon)
    return y.to(x.dtype)


class AdaIN(nn.Module):
    """Adaptive instance normalization (§2, Eq. 1):
    AdaIN(x_i, y) = y_s,i · (x_i − μ(x_i)) / σ(x_i) + y_b,i, where the style
    y = (y_s, y_b) is a learned affine map ("A") of w. The scale is
    1 + the affine output, so that it starts near 1 (the authors' code)."""

    def __init__(self, channels: int, w_size: int) -> None:
        super().__init__()
        # gain 1: the style is linear in w (the authors' style_mod)
        self.affine = EqualizedLinear(w_size, 2 * channels, gain=1.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(w).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return instance_norm(x) * (scale + 1) + shift


class MappingNetwork(nn.Module):
    """The mapping network f: Z → W (§2, Figure 1b): z normalised to unit
    root mean square (pixel norm of a vector), then ``layers`` equalized
    dense layers with LeakyReLU 0.2. ``lr_multiplier`` slows their learning
    (0.01 in StyleGAN, Appendix C)."""

    def __init__(self, latent_size: int, w_size: int, layers: int = 8, width: int = 512, lr_multiplier: float = 0.01) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"a mapping network needs at least one layer, got {layers}")
        sizes = [latent_size] + [width] * (layers - 1) + [w_size]
        self.norm = PixelNorm()
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, gain=RELU_GAIN, lr_multiplier=lr_multiplier) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.norm(z)
        for layer in self.layers:
            x = lrelu(layer(x))
        return x


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick in W (Appendix B): w' = w̄ + ψ(w − w̄) for the first
    ``cutoff`` layers of ``ws`` [N, layers, w_size] (all of them when None),
    leaving the finer layers as they are (StyleGAN truncates the 8 coarsest).
    ψ = 1 changes nothing; ψ = 0 gives w̄ itself."""
    truncated = torch.lerp(w_avg.to(ws.dtype), ws, psi)
    if cutoff is None or cutoff >= ws.shape[1]:
        return truncated
    return torch.cat([truncated[:, :cutoff], ws[:, cutoff:]], dim=1)
