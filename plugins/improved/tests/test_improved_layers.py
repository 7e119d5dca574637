"""Minibatch discrimination (Salimans et al. 2016, §3.2) against hand
computations."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.layers import MinibatchDiscrimination

E = math.exp


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# --------------------------------------------------------------------------
# Minibatch discrimination


def test_minibatch_discrimination_against_a_hand_computation():
    layer = MinibatchDiscrimination(2, kernels=2, kernel_dim=2)
    with torch.no_grad():
        layer.T.zero_()
        layer.T[:, 0, :] = torch.eye(2)  # kernel 0: M_i,0 = x_i
        layer.T[:, 1, 0] = 1.0  # kernel 1: M_i,1 = (x_i1 + x_i2, 0)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # L1 distances, kernel 0: |x0 - x1| = 2, |x0 - x2| = 1, |x1 - x2| = 1;
    # kernel 1 on the sums (1, 1, 2): 0, 1, 1. o(x_i)_b = Σ_{j≠i} exp(−L1).
    expected = torch.tensor(
        [
            [E(-2) + E(-1), E(0) + E(-1)],
            [E(-2) + E(-1), E(0) + E(-1)],
            [E(-1) + E(-1), E(-1) + E(-1)],
        ]
    )
    out = layer(x)
    assert out.shape == (3, 2 + 2)
    assert torch.equal(out[:, :2], x)  # f(x_i) passes through, o(x_i) is appended
    assert torch.allclose(out[:, 2:], expected, atol=1e-6)


def test_minibatch_discrimination_tells_a_collapsed_batch_from_a_diverse_one():
    layer = MinibatchDiscrimination(16, kernels=100, kernel_dim=5)
    diverse = torch.randn(32, 16)
    collapsed = diverse[:1].expand(32, 16)
    o_diverse, o_collapsed = layer.closeness(diverse), layer.closeness(collapsed)
    # every other sample is at distance 0: each kernel sums exp(0) over N − 1 of them
    assert torch.allclose(o_collapsed, torch.full((32, 100), 31.0))
    # varied samples are far apart in most kernels: little closeness
    assert o_diverse.mean() < 0.1 * 31, o_diverse.mean()
    # the statistic of one sample depends on its batch, not only on itself
    assert not torch.allclose(layer(diverse)[0], layer(collapsed)[0])
    assert torch.equal(layer.closeness(diverse[:1]), torch.zeros(1, 100))  # alone: no other sample, and no self term
    copies = collapsed.clone().requires_grad_(True)
    layer(copies).sum().backward()  # zero distances: the L1's gradient there is finite (0)
    assert torch.isfinite(copies.grad).all() and torch.isfinite(layer.T.grad).all()


def test_minibatch_discrimination_flattens_and_passes_gradients():
    layer = MinibatchDiscrimination(3 * 2 * 2, kernels=4, kernel_dim=3)
    x = torch.randn(5, 3, 2, 2, requires_grad=True)
    out = layer(x)
    assert out.shape == (5, 12 + 4)
    out[:, 12:].sum().backward()
    assert layer.T.grad is not None and layer.T.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(layer(torch.randn(5, 12)).float()).all()


# --------------------------------------------------------------------------
