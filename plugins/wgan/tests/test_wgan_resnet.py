"""WGAN-GP's CIFAR-10 ResNet has the paper's layout (Appendix F)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit import BuildContext, UserError
from gankit_wgan import ResNetDiscriminator, ResNetDiscriminatorOptions, ResNetGenerator, ResNetGeneratorOptions
from gankit_wgan.resnet import DownBlock, PlainBlock, UpBlock

CIFAR = BuildContext(resolution=32, channels=3)


def test_the_generator_has_three_up_blocks_with_batch_norm_to_32x32():
    generator = ResNetGenerator(ResNetGeneratorOptions(), CIFAR)
    assert generator.project.in_features == 128 and generator.project.out_features == 128 * 4 * 4
    assert [type(b) for b in generator.blocks] == [UpBlock] * 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in generator.modules()) == 3 * 2 + 1
    images = generator(torch.randn(2, 128))
    assert len(images) == 1 and images[0].shape == (2, 3, 32, 32)
    assert images[0].abs().max() <= 1  # tanh


def test_the_critic_has_two_down_and_two_plain_blocks_and_no_normalization():
    critic = ResNetDiscriminator(ResNetDiscriminatorOptions(), CIFAR)
    assert [type(b) for b in critic.blocks] == [DownBlock, DownBlock, PlainBlock, PlainBlock]
    assert critic.blocks[0].first and not critic.blocks[1].first
    norms = (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)
    assert not any(isinstance(m, norms) for m in critic.modules())
    scores, features = critic([torch.randn(2, 3, 32, 32)], features=True)
    assert scores.shape == (2,)
    assert [f.shape[-1] for f in features] == [16, 8, 8, 8] and all(f.shape[1] == 128 for f in features)


def test_other_resolutions_get_as_many_blocks_as_they_need_and_tiny_ones_are_refused():
    context = BuildContext(resolution=64, channels=3)
    assert len(ResNetGenerator(ResNetGeneratorOptions(channels=8), context).blocks) == 4
    assert sum(isinstance(b, DownBlock) for b in ResNetDiscriminator(ResNetDiscriminatorOptions(channels=8), context).blocks) == 3
    with pytest.raises(UserError, match="at least 8x8"):
        ResNetDiscriminator(ResNetDiscriminatorOptions(), BuildContext(resolution=4))


def test_the_first_down_block_pools_before_its_shortcut_convolution():
    block = DownBlock(3, 4, first=True)
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        for conv in (block.conv1, block.conv2):
            conv.weight.zero_()
            conv.bias.zero_()
    # with the main path silenced, the output is the 1x1 convolution of the pooled input
    expected = block.shortcut(nn.functional.avg_pool2d(x, 2))
    assert torch.allclose(block(x), expected, atol=1e-6)


def _std_of_paper_code(layer: nn.Module, he: bool) -> float:
    """tflib's uniform std: sqrt(4 / (fan_in + fan_out)) for He, sqrt(2 / ...) for Glorot."""
    weight = layer.weight
    field = weight[0, 0].numel() if weight.dim() == 4 else 1
    fan_in, fan_out = weight.shape[1] * field, weight.shape[0] * field
    return ((4.0 if he else 2.0) / (fan_in + fan_out)) ** 0.5


def test_the_weights_are_drawn_as_the_papers_code_draws_them():
    torch.manual_seed(0)
    generator = ResNetGenerator(ResNetGeneratorOptions(), CIFAR)
    critic = ResNetDiscriminator(ResNetDiscriminatorOptions(), CIFAR)
    residual = [conv for net in (generator, critic) for block in net.blocks for conv in (block.conv1, block.conv2)]
    others = [generator.project, generator.to_rgb, critic.output]
    others += [block.shortcut for net in (generator, critic) for block in net.blocks if hasattr(block, "shortcut")]
    assert len(residual) == 14 and len(others) == 3 + 3 + 2
    for layers, he in ((residual, True), (others, False)):
        for layer in layers:
            expected = _std_of_paper_code(layer, he)
            # uniform in +-sqrt(3) std; a layer of few weights (critic.output: 128) measures its std loosely
            assert layer.weight.std().item() == pytest.approx(expected, rel=0.25 if layer.weight.numel() < 1000 else 0.05)
            assert layer.weight.abs().max().item() <= expected * 3**0.5
            assert not layer.bias.any()
    # torch's defaults, kept as a choice, draw the residual convolutions smaller and the biases non-zero
    default = ResNetGenerator(ResNetGeneratorOptions(init="pytorch"), CIFAR)
    conv = default.blocks[0].conv1
    assert conv.weight.std().item() == pytest.approx((1 / (3 * 128 * 9)) ** 0.5, rel=0.05)
    assert conv.bias.any()
    with pytest.raises(ValueError, match="init"):
        ResNetDiscriminatorOptions(init="he")
