"""Building blocks of Karras et al. 2018 (ProGAN) that other techniques reuse:
equalized learning rate (§4.1), pixelwise feature normalization (§4.2) and
minibatch standard deviation (§3), plus the channel rule of the official
networks. MSG-GAN's networks are built from these too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: He's gain for ReLU-like activations; toRGB and the last layer use 1.
RELU_GAIN = math.sqrt(2.0)

#: LeakyReLU slope of every ProGAN layer (Appendix A.1), kept by MSG-GAN.
LEAK = 0.2


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU with ProGAN's slope of 0.2."""
    return F.leaky_relu(x, LEAK)


def nf(stage: int, fmap_base: int = 8192, fmap_max: int = 512) -> int:
    """Feature maps at ``stage`` (the block of resolution 2^(stage+1), so 4x4
    is stage 1): min(fmap_base / 2^stage, fmap_max), as in the official
    networks. With the defaults: 512 up to 32x32, then 256, 128, 64, 32, 16."""
    return max(1, min(int(fmap_base / 2.0**stage), fmap_max))


class EqualizedLinear(nn.Module):
    """A dense layer with equalized learning rate (§4.1): weights drawn from
    N(0, 1) and scaled at run time by gain/√fan_in, so that Adam's
    scale-invariant steps change every layer at the same rate.

    ``lr_multiplier`` scales that rate: the stored weights are divided by it
    and the run-time scale multiplied by it (StyleGAN's mapping network uses
    0.01)."""

    def __init__(self, in_features: int, out_features: int, gain: float = RELU_GAIN, lr_multiplier: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.scale = gain / math.sqrt(in_features) * lr_multiplier
        self.lr_multiplier = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_multiplier if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, scale={self.scale:.4g}"


class EqualizedConv2d(nn.Module):
    """A convolution with equalized learning rate (§4.1): fan_in = k²·C_in.
    Padding keeps the size unless given."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int | None = None,
        gain: float = RELU_GAIN,
        lr_multiplier: float = 1.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size) / lr_multiplier)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size) * lr_multiplier
        self.lr_multiplier = lr_multiplier
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_multiplier if self.bias is not None else None
        return F.conv2d(x, self.weight * self.scale, bias, padding=self.padding)

    def extra_repr(self) -> str:
        out_channels, in_channels, k, _ = self.weight.shape
        return f"{in_channels}, {out_channels}, kernel_size={k}, padding={self.padding}, scale={self.scale:.4g}"


class PixelNorm(nn.Module):
    """Pixelwise feature vector normalization (§4.2): each pixel's feature
    vector is scaled to unit root mean square, x / √(mean_c x² + ε)."""

    def __init__(self, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.epsilon)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (§3): the standard deviation of every
    feature at every position over a group of samples, averaged to one number
    per group and appended as one constant feature map.

    Groups follow the official code: the batch is split into G groups-worth
    of rows, sample n belonging with samples n ± M, n ± 2M, ... (M = N/G).
    ``group_size`` 0 uses the whole batch as one group. A batch that the
    group size does not divide uses the largest divisor of N below it, so
    that the last, smaller batch of an evaluation still works."""

    def __init__(self, group_size: int = 4, epsilon: float = 1e-8) -> None:
        super().__init__()
        self.group_size = group_size
        self.epsilon = epsilon

    def group_for(self, batch: int) -> int:
        if self.group_size <= 0 or self.group_size >= batch:
            return batch
        return max(size for size in range(1, self.group_size + 1) if batch % size == 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        group = self.group_for(n)
        y = x.float().reshape(group, n // group, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over each group
        y = (y + self.epsilon).sqrt().mean(dim=(1, 2, 3))  # one number per group: [M]
        y = y.to(x.dtype).reshape(1, n // group, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)
        return torch.cat([x, y], dim=1)
