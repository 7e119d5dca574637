"""Minibatch discrimination and virtual batch normalization (Salimans et al.
2016, §3.2 and §3.5) against hand computations."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.layers import MinibatchDiscrimination, VirtualBatchNorm, WithReferenceBatch

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
# Virtual batch normalization


def _inside(reference_size: int, layer: VirtualBatchNorm) -> VirtualBatchNorm:
    layer.reference_size = reference_size  # what WithReferenceBatch sets
    return layer


def test_virtual_batch_norm_against_a_hand_computation():
    layer = _inside(2, VirtualBatchNorm(1, epsilon=0.0, affine=False))
    # reference {1, 3}: mean 2, E[x²] 5. The example 5 joins it with weight
    # 1/3: mean (2·2 + 5)/3 = 3, E[x²] (2·5 + 25)/3 = 35/3, variance 8/3.
    out = layer(torch.tensor([[1.0], [3.0], [5.0], [2.0]]))
    assert out[:2, 0].tolist() == pytest.approx([-1.0, 1.0])  # the reference batch: its own statistics
    assert out[2, 0].item() == pytest.approx((5 - 3) / math.sqrt(8 / 3))
    # the example 2: mean 2, E[x²] (10 + 4)/3 = 14/3, variance 2/3
    assert out[3, 0].item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(6,), (6, 3, 3)])
def test_each_example_is_batch_normalized_with_the_reference_batch_alone(shape):
    layer = _inside(8, VirtualBatchNorm(6))
    with torch.no_grad():
        layer.weight.uniform_(0.5, 2.0)
        layer.bias.uniform_(-1.0, 1.0)
    reference, examples = torch.randn(8, *shape) * 3 + 1, torch.randn(5, *shape)
    out = layer(torch.cat([reference, examples]))
    for i in range(5):
        # batch normalization of the set {reference batch, x_i}, read at x_i
        joint = torch.cat([reference, examples[i : i + 1]])
        expected = F.batch_norm(joint, None, None, layer.weight, layer.bias, training=True, eps=layer.epsilon)[-1]
        assert torch.allclose(out[8 + i], expected, atol=1e-5)
    # an example's output does not depend on the rest of its batch
    alone = layer(torch.cat([reference, examples[2:3]]))[-1]
    assert torch.allclose(alone, out[8 + 2], atol=1e-6)


def _vbn_network(reference: torch.Tensor) -> WithReferenceBatch:
    body = nn.Sequential(nn.Linear(2, 8), VirtualBatchNorm(8), nn.ReLU(), nn.Linear(8, 2))
    return WithReferenceBatch(body, reference)


def test_the_reference_batch_is_fixed_through_training_and_saved_with_the_weights():
    reference = torch.randn(16, 2)
    network = _vbn_network(reference)
    assert network.body[1].reference_size == 16
    optimizer = torch.optim.Adam(network.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        network(torch.randn(4, 2)).square().mean().backward()
        optimizer.step()
    assert torch.equal(network.reference, reference)  # fixed: no step moves it
    assert network.body[0].weight.grad is not None
    state = network.state_dict()
    assert torch.equal(state["reference"], reference)  # a buffer: checkpoints hold it
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = _vbn_network(torch.randn(16, 2))  # built with another reference, as a fresh process would draw
    z = torch.randn(5, 2)
    assert not torch.allclose(restored(z), network(z))
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.reference, reference)
    assert torch.equal(restored(z), network(z))
    network.eval()
    assert torch.equal(network(z), restored(z))  # no running statistics: eval computes the same


def test_virtual_batch_norm_needs_its_reference_batch():
    with pytest.raises(RuntimeError, match="WithReferenceBatch"):
        VirtualBatchNorm(4)(torch.randn(3, 4))
    with pytest.raises(ValueError, match="no VirtualBatchNorm"):
        WithReferenceBatch(nn.Linear(2, 2), torch.randn(4, 2))
