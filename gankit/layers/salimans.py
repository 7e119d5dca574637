"""Minibatch discrimination (§3.2 of Salimans et al. 2016, "Improved
Techniques for Training GANs"): each sample's features are compared with
those of every other sample of its batch, and how close it lies to them
joins its features, so that a discriminator can tell a collapsed batch from
a varied one.
"""

from __future__ import annotations

import torch
from torch import nn


class MinibatchDiscrimination(nn.Module):
    """Minibatch discrimination (§3.2): f(x_i) ∈ R^A, appended with
    o(x_i) ∈ R^B, how close x_i lies to the other samples of its batch.

    M_i = f(x_i)·T with T ∈ R^{A×B×C}; c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖_L1);
    o(x_i)_b = Σ_{j≠i} c_b(x_i, x_j). The sum leaves out j = i, as the
    paper's code does: that term is exp(0) = 1 for every sample, a constant
    the next layer's bias absorbs. Input [N, A, ...] (flattened after the
    batch dimension), output [N, A + B].

    The statistic belongs to whatever batch the layer is given, so a
    discriminator called on the real and the fake batch separately (as
    gankit's loop calls it) compares reals with reals and fakes with fakes,
    as in the paper."""

    def __init__(self, in_features: int, kernels: int = 100, kernel_dim: int = 5) -> None:
        super().__init__()
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        # Each of the B·C columns of T starts at unit norm, as the paper's
        # weight-normalized T does (before its code's data-dependent
        # initialization), so the first L1 distances follow the features'
        # scale whatever A is.
        T = torch.randn(in_features, kernels, kernel_dim)
        self.T = nn.Parameter(T / T.norm(dim=0, keepdim=True))

    def closeness(self, x: torch.Tensor) -> torch.Tensor:
        """o(x_i) for every sample: [N, B], in float32."""
        f = x.flatten(1)
        m = (f @ self.T.flatten(1).to(f.dtype)).float().view(-1, self.kernels, self.kernel_dim)  # M_i: [N, B, C]
        per_kernel = m.transpose(0, 1)  # [B, N, C]
        l1 = torch.cdist(per_kernel, per_kernel, p=1.0)  # ‖M_{i,b} − M_{j,b}‖_L1: [B, N, N]
        c = torch.exp(-l1)
        return c.sum(dim=2).t() - 1.0  # Σ_j c_b(x_i, x_j) without j = i, whose term is exp(0) = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = x.flatten(1)
        return torch.cat([f, self.closeness(f).to(f.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"A={self.in_features}, B={self.kernels}, C={self.kernel_dim}"
