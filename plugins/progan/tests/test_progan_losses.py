"""The least-squares GAN loss (Mao et al. 2017) against a hand computation."""

from __future__ import annotations

import pytest
import torch

from gankit import DOutput
from gankit_progan import LSGANLoss, LSGANOptions


def test_lsgan_in_the_0_1_coding_matches_a_hand_computation():
    loss = LSGANLoss(LSGANOptions())
    real, fake = DOutput(torch.tensor([1.0, 0.5, 2.0])), DOutput(torch.tensor([0.0, -1.0, 0.5]))
    # Eq. 9: ½·mean((D(x) − 1)²) + ½·mean(D(G(z))²); ½·mean((D(G(z)) − 1)²)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0 + 0.25 + 1) / 3 + 0.5 * (0 + 1 + 0.25) / 3)
    assert loss.generator_loss(fake, None).item() == pytest.approx(0.5 * (1 + 4 + 0.25) / 3)


def test_lsgan_with_the_pearson_coding():
    loss = LSGANLoss(LSGANOptions(a=-1.0, b=1.0, c=0.0))  # Eq. 8: b − c = 1, b − a = 2
    real, fake = DOutput(torch.tensor([0.0, 3.0])), DOutput(torch.tensor([1.0, -1.0]))
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (1 + 4) / 2 + 0.5 * (4 + 0) / 2)
    assert loss.generator_loss(fake, None).item() == pytest.approx(0.5 * (1 + 1) / 2)


def test_lsgan_gradients_push_scores_to_their_targets():
    loss = LSGANLoss(LSGANOptions())
    fake = DOutput(torch.tensor([0.2, 0.8], requires_grad=True))
    (grad,) = torch.autograd.grad(loss.generator_loss(fake, None), fake.scores)
    assert torch.allclose(grad, (fake.scores.detach() - 1.0) / 2)  # d/ds ½·mean((s − 1)²)
