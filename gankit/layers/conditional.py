"""Blocks for class-conditional networks.

- Conditional batch normalization (de Vries et al. 2017, "Modulating early
  visual processing by language", §3): batch normalization whose per-channel
  scale γ and shift β are looked up from the class, γ_y·x̂ + β_y, with x̂
  normalized over the batch without an affine of its own. As in SAGAN's and
  BigGAN's generators the lookup is an embedding, γ initialized to 1 and β
  to 0, so that at initialization it is plain batch normalization.
- The projection discriminator's head (Miyato & Koyama 2018, eq. 3):
  D(x, y) = ψ(φ(x)) + embed(y)ᵀ φ(x), with φ(x) the discriminator's pooled
  features and ψ a linear layer.
"""

from __future__ import annotations

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """Batch normalization with a class-dependent scale and shift (γ_y x̂ + β_y)."""

    def __init__(self, channels: int, classes: int, momentum: float = 0.1, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False, momentum=momentum, eps=epsilon)
        self.scale = nn.Embedding(classes, channels)
        self.shift = nn.Embedding(classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale = self.scale(labels)[:, :, None, None]
        shift = self.shift(labels)[:, :, None, None]
        return self.norm(x) * scale + shift


class ProjectionHead(nn.Module):
    """ψ(φ) + embed(y)ᵀφ (Miyato & Koyama 2018, eq. 3) on pooled features φ of
    shape [N, features]; returns one score per sample, shape [N]. Without
    labels (``labels=None``) only ψ(φ) remains, the unconditional head."""

    def __init__(self, features: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(classes, features)
        # the SN-GAN projection code draws the embedding like the linear weights
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        score = self.linear(features).squeeze(1)
        if labels is not None:
            score = score + (self.embed(labels) * features).sum(dim=1)
        return score
