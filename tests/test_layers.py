"""gankit.layers against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.layers import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, nf


def test_the_channel_rule_of_the_official_networks():
    assert [nf(stage) for stage in range(1, 10)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert nf(1, fmap_base=512, fmap_max=128) == 128 and nf(5, fmap_base=512, fmap_max=128) == 16


def test_equalized_scales_are_gain_over_root_fan_in():
    conv = EqualizedConv2d(16, 8, 3)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(16 * 3 * 3))
    assert EqualizedConv2d(16, 3, 1, gain=1.0).scale == pytest.approx(1 / 4)
    assert EqualizedLinear(512, 10, gain=math.sqrt(2) / 4).scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(512))
    # the stored weights are N(0, 1); the run-time weights have std gain/√fan_in
    big = EqualizedConv2d(64, 256, 3)
    assert big.weight.std().item() == pytest.approx(1.0, rel=0.02)
    x = torch.randn(2, 16, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1), atol=1e-6)


def test_the_lr_multiplier_keeps_the_output_and_scales_the_step():
    torch.manual_seed(0)
    plain = EqualizedLinear(4, 3)
    torch.manual_seed(0)
    slow = EqualizedLinear(4, 3, lr_multiplier=0.01)
    x = torch.randn(5, 4)
    assert torch.allclose(plain(x), slow(x), atol=1e-5)  # the same function at initialisation
    before = {layer: (layer.weight * layer.scale).detach().clone() for layer in (plain, slow)}
    for layer in (plain, slow):
        with torch.no_grad():
            layer.weight += 0.1  # the same step on the stored weights, as Adam takes
    moved = {layer: ((layer.weight * layer.scale) - before[layer]).abs().mean().item() for layer in (plain, slow)}
    assert moved[slow] == pytest.approx(0.01 * moved[plain], rel=1e-4)


def test_pixel_norm_gives_unit_rms_per_pixel():
    x = torch.randn(3, 16, 4, 4) * 7 + 2
    y = PixelNorm()(x)
    assert torch.allclose(y.square().mean(dim=1), torch.ones(3, 4, 4), atol=1e-5)


def test_minibatch_stddev_matches_a_hand_computation():
    x = torch.randn(8, 3, 2, 2)
    out = MinibatchStdDev(group_size=4)(x)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    # groups: rows n, n + 2, n + 4, n + 6 (M = 2)
    for member in range(2):
        group = x[member::2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[member::2, 3], expected.expand(4, 2, 2), atol=1e-6)


def test_minibatch_stddev_handles_batches_the_group_does_not_divide():
    layer = MinibatchStdDev(group_size=4)
    assert [layer.group_for(n) for n in (1, 3, 4, 6, 7, 8, 9)] == [1, 3, 4, 3, 1, 4, 3]
    for n in (1, 3, 6, 7):
        assert layer(torch.randn(n, 2, 4, 4)).shape == (n, 3, 4, 4)
    whole = MinibatchStdDev(group_size=0)(torch.randn(5, 2, 3, 3))
    assert torch.allclose(whole[:, 2], whole[0, 2, 0, 0].expand(5, 3, 3))  # one value over the whole batch


def test_conditional_batch_norm_starts_as_plain_batch_norm_and_then_depends_on_the_class():
    from gankit.layers import ConditionalBatchNorm2d

    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    layer = ConditionalBatchNorm2d(3, classes=3)
    plain = torch.nn.BatchNorm2d(3, affine=False)
    assert torch.allclose(layer(x, labels), plain(x), atol=1e-6)
    with torch.no_grad():
        layer.scale.weight[1] = 2.0
        layer.shift.weight[1] = 0.5
    out = layer(x, labels)
    normalized = plain(x)
    assert torch.allclose(out[1], normalized[1] * 2.0 + 0.5, atol=1e-6)
    assert torch.allclose(out[0], normalized[0], atol=1e-6)


def test_projection_head_is_psi_plus_the_inner_product_with_the_class_embedding():
    from gankit.layers import ProjectionHead

    torch.manual_seed(0)
    head = ProjectionHead(5, classes=4)
    features = torch.randn(3, 5)
    labels = torch.tensor([3, 0, 3])
    by_hand = head.linear(features).squeeze(1) + (head.embed.weight[labels] * features).sum(1)
    assert torch.allclose(head(features, labels), by_hand)
    assert torch.allclose(head(features, None), head.linear(features).squeeze(1))
    assert not torch.allclose(head(features, labels), head(features, torch.tensor([1, 1, 1])))
