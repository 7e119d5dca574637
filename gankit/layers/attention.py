"""The self-attention block of SAGAN (Zhang, Goodfellow, Metaxas & Odena 2019, §3).

Every position of a feature map attends to every other: with x_i the C
channels at position i of N,

- s_ij = f(x_i)ᵀ g(x_j), f and g 1x1 convolutions from C to C̄ channels;
- β_j,i = exp(s_ij) / Σ_i exp(s_ij), a softmax over the attended positions i;
- o_j = v(Σ_i β_j,i h(x_i)), h a 1x1 convolution from C to C̄ channels and v
  one back from C̄ to C;
- y_i = γ·o_i + x_i, γ a learned scalar that starts at 0, so that the
  network first relies on local evidence and learns to add non-local
  evidence (§3, after eq. 3).

The paper chooses C̄ = C/8 for f, g and h (§3). The authors'
TensorFlow code instead gives h C/2 channels and max-pools the keys and
values 2x2; ``value_channels`` lets a network take C/2, the pooling is not
offered. As in that code and the paper's W·x notation, the convolutions have
no bias.
"""

from __future__ import annotations

import torch
from torch import nn

#: §3: C̄ = C/k with k = 8.
REDUCTION = 8


class SelfAttention2d(nn.Module):
    """SAGAN's self-attention over the positions of a feature map, y = γ·o + x with γ initialized to 0."""

    def __init__(self, channels: int, key_channels: int | None = None, value_channels: int | None = None) -> None:
        super().__init__()
        key_channels = key_channels or max(1, channels // REDUCTION)
        value_channels = value_channels or max(1, channels // REDUCTION)
        self.key = nn.Conv2d(channels, key_channels, 1, bias=False)  # f
        self.query = nn.Conv2d(channels, key_channels, 1, bias=False)  # g
        self.value = nn.Conv2d(channels, value_channels, 1, bias=False)  # h
        self.out = nn.Conv2d(value_channels, channels, 1, bias=False)  # v
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, height, width = x.shape
        keys = self.key(x).flatten(2)  # f(x_i): [N, C̄, positions]
        queries = self.query(x).flatten(2)  # g(x_j)
        values = self.value(x).flatten(2)  # h(x_i)
        scores = torch.bmm(queries.transpose(1, 2), keys)  # s_ij, laid out [N, j, i]
        # eq. 1: softmax over i; in float32, as a bf16 softmax over 1,024 positions loses the small weights
        beta = torch.softmax(scores.float(), dim=-1).to(values.dtype)
        attended = torch.bmm(values, beta.transpose(1, 2))  # Σ_i β_j,i h(x_i): [N, C̄, j]
        o = self.out(attended.view(n, -1, height, width))  # eq. 2: v(...)
        return self.gamma * o + x  # eq. 3
