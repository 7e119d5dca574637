"""Blocks of Salimans et al. 2016, "Improved Techniques for Training GANs":

- minibatch discrimination (§3.2): each sample's features are compared with
  those of every other sample of its batch, and how close it lies to them
  joins its features, so that a discriminator can tell a collapsed batch
  from a varied one;
- virtual batch normalization (§3.5): each example is normalized with the
  statistics of a reference batch, fixed once at the start, together with
  the example itself, so that its output does not depend on the rest of its
  batch. :class:`WithReferenceBatch` holds the reference batch (a buffer, so
  checkpoints save it) and runs it through the network with every batch;
  :class:`VirtualBatchNorm` layers inside read its statistics.
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


class VirtualBatchNorm(nn.Module):
    """Virtual batch normalization (§3.5) of [N, C] or [N, C, H, W] inputs,
    inside a :class:`WithReferenceBatch`.

    The first R rows of its input are the reference batch, run through the
    network alongside every batch: they are normalized with their own
    statistics (batch normalization), and each following example x with the
    statistics of the reference batch and x together, x weighing 1/(R + 1):
    μ = (R·μ_ref + mean(x))/(R + 1), likewise for E[x²], and σ² = E[x²] − μ²
    (per channel, over the spatial positions too). The statistics are those
    of the reference batch's activations under the current weights, and
    gradients flow through them, as in the paper. Training and evaluation
    compute the same thing: no running statistics."""

    def __init__(self, num_features: int, epsilon: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features, self.epsilon = num_features, epsilon
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        #: R: set by the WithReferenceBatch that holds this layer.
        self.reference_size = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reference_size
        if r <= 0:
            raise RuntimeError("VirtualBatchNorm runs inside a WithReferenceBatch, which puts the reference batch in front of every batch")
        if x.shape[0] < r:
            raise ValueError(f"VirtualBatchNorm: the batch of {x.shape[0]} rows lacks the {r} rows of the reference batch")
        reduce = [0, *range(2, x.dim())]  # the batch and the spatial positions
        own = reduce[1:]  # an example's own spatial positions (none for [N, C])
        values = x.float()
        reference, examples = values[:r], values[r:]
        ref_mean = reference.mean(dim=reduce, keepdim=True)
        ref_square = reference.square().mean(dim=reduce, keepdim=True)
        new = 1.0 / (r + 1)  # the example is one of R + 1
        mean = (1 - new) * ref_mean + new * (examples.mean(dim=own, keepdim=True) if own else examples)
        square = (1 - new) * ref_square + new * (examples.square().mean(dim=own, keepdim=True) if own else examples.square())
        normalized = torch.cat(
            [
                (reference - ref_mean) * torch.rsqrt((ref_square - ref_mean.square()).clamp(min=0.0) + self.epsilon),
                (examples - mean) * torch.rsqrt((square - mean.square()).clamp(min=0.0) + self.epsilon),
            ]
        )
        if self.weight is not None:
            shape = [1, -1] + [1] * (x.dim() - 2)
            normalized = normalized * self.weight.view(shape) + self.bias.view(shape)
        return normalized.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, epsilon={self.epsilon}, affine={self.weight is not None}"


class WithReferenceBatch(nn.Module):
    """Runs ``body`` on the reference batch and the given batch together and
    returns the given batch's rows (virtual batch normalization, §3.5).

    ``reference`` is the network's input for the reference batch (latents,
    for a generator), chosen once when the network is built. It is a buffer:
    checkpoints save it and resuming restores it, so the statistics every
    :class:`VirtualBatchNorm` inside ``body`` uses come from the same inputs
    for the whole training. The paper uses it in the generator; the forward
    pass costs the reference batch's rows on top of every batch."""

    def __init__(self, body: nn.Module, reference: torch.Tensor) -> None:
        super().__init__()
        if reference.dim() < 1 or reference.shape[0] < 1:
            raise ValueError("WithReferenceBatch needs a reference batch of at least one row")
        self.body = body
        self.register_buffer("reference", reference.detach().clone())
        layers = [m for m in body.modules() if isinstance(m, VirtualBatchNorm)]
        if not layers:
            raise ValueError("WithReferenceBatch: the body has no VirtualBatchNorm layer")
        for layer in layers:
            layer.reference_size = reference.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reference.shape[0]
        return self.body(torch.cat([self.reference.to(x.dtype), x]))[r:]
