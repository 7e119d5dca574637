"""Feature matching (Salimans et al. 2016, §3.1) against its equation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit import BuildContext, DOutput, UserError
from gankit.testing import TinyDiscriminator, TinyGenerator, TinyOptions
from gankit_improved import FeatureMatchingLoss, FeatureMatchingOptions


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _out(*features: torch.Tensor) -> DOutput:
    return DOutput(torch.randn(features[0].shape[0]), list(features))


def test_the_loss_is_zero_when_the_feature_means_match_and_the_squared_distance_otherwise():
    loss = FeatureMatchingLoss(FeatureMatchingOptions())
    assert loss.needs_features and loss.needs_reals_in_generator_phase
    real = torch.randn(8, 5)
    shuffled = real[torch.randperm(8)]  # other samples, the same mean
    assert loss.generator_loss(_out(shuffled), _out(real)).item() == pytest.approx(0.0, abs=1e-10)
    fake = real + torch.tensor([1.0, 0.0, -2.0, 0.0, 0.5])  # the mean moves by this vector
    assert loss.generator_loss(_out(fake), _out(real)).item() == pytest.approx(1 + 4 + 0.25)
    l1 = FeatureMatchingLoss(FeatureMatchingOptions(distance="l1"))
    assert l1.generator_loss(_out(fake), _out(real)).item() == pytest.approx((1 + 2 + 0.5) / 5)


def test_the_loss_reads_the_chosen_layer_flattened():
    first, last = torch.randn(6, 2, 3, 3), torch.randn(6, 4)
    moved = first + 0.5
    default = FeatureMatchingLoss(FeatureMatchingOptions())  # layer -1: the last
    assert default.generator_loss(_out(moved, last), _out(first, last)).item() == pytest.approx(0.0, abs=1e-10)
    chosen = FeatureMatchingLoss(FeatureMatchingOptions(layer=0))
    assert chosen.generator_loss(_out(moved, last), _out(first, last)).item() == pytest.approx(18 * 0.25)
    with pytest.raises(UserError, match=r"loss.layer = 2: the discriminator gives 2 intermediate features"):
        FeatureMatchingLoss(FeatureMatchingOptions(layer=2)).generator_loss(_out(first, last), _out(first, last))


def test_its_gradient_reaches_the_generator_through_the_discriminator():
    context = BuildContext(resolution=8)
    generator, discriminator = TinyGenerator(TinyOptions(), context), TinyDiscriminator(TinyOptions(), context)
    loss = FeatureMatchingLoss(FeatureMatchingOptions())
    reals = [torch.rand(8, 3, 8, 8) * 2 - 1]
    with torch.no_grad():
        real_scores, real_features = discriminator(reals, features=True)
    fake_scores, fake_features = discriminator(generator(torch.randn(8, 8)), features=True)
    objective = loss.generator_loss(DOutput(fake_scores, fake_features), DOutput(real_scores, real_features))
    assert objective.item() > 0
    objective.backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_the_discriminator_keeps_the_usual_gan_loss():
    real, fake = torch.randn(7), torch.randn(7)
    d = FeatureMatchingLoss(FeatureMatchingOptions()).discriminator_loss(DOutput(real), DOutput(fake))
    bce = F.binary_cross_entropy_with_logits(real, torch.ones(7)) + F.binary_cross_entropy_with_logits(fake, torch.zeros(7))
    assert d.item() == pytest.approx(bce.item(), rel=1e-6)
    smoothed = FeatureMatchingLoss(FeatureMatchingOptions(label_smoothing=0.1)).discriminator_loss(DOutput(real), DOutput(fake))
    bce = F.binary_cross_entropy_with_logits(real, torch.full((7,), 0.9)) + F.binary_cross_entropy_with_logits(fake, torch.zeros(7))
    assert smoothed.item() == pytest.approx(bce.item(), rel=1e-6)
