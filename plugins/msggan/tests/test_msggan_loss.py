"""The relativistic average hinge loss against a hand computation."""

from __future__ import annotations

import pytest
import torch

from gankit import DOutput
from gankit_msggan import RelativisticHingeLoss, RelativisticHingeOptions


def test_relativistic_average_hinge_matches_a_hand_computation():
    loss = RelativisticHingeLoss(RelativisticHingeOptions())
    real, fake = DOutput(torch.tensor([2.0, 0.0])), DOutput(torch.tensor([-1.0, 1.5]))
    mean_real, mean_fake = 1.0, 0.25
    # D: E[relu(1 − (r − f̄))] + E[relu(1 + (f − r̄))]
    d_real = (max(0, 1 - (2.0 - mean_fake)) + max(0, 1 - (0.0 - mean_fake))) / 2  # (0 + 1.25) / 2
    d_fake = (max(0, 1 + (-1.0 - mean_real)) + max(0, 1 + (1.5 - mean_real))) / 2  # (0 + 1.5) / 2
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d_real + d_fake)
    # G: the mirror image, E[relu(1 − (f − r̄))] + E[relu(1 + (r − f̄))]
    g_fake = (max(0, 1 - (-1.0 - mean_real)) + max(0, 1 - (1.5 - mean_real))) / 2  # (3 + 0.5) / 2
    g_real = (max(0, 1 + (2.0 - mean_fake)) + max(0, 1 + (0.0 - mean_fake))) / 2  # (2.75 + 0.75) / 2
    assert loss.generator_loss(fake, real).item() == pytest.approx(g_fake + g_real)
    assert RelativisticHingeLoss.needs_reals_in_generator_phase


def test_the_generator_gradient_flows_through_the_fake_mean_into_the_real_term():
    loss = RelativisticHingeLoss(RelativisticHingeOptions())
    fake_scores = torch.tensor([0.0, 0.0], requires_grad=True)
    real = DOutput(torch.tensor([0.5, 0.5]))
    loss.generator_loss(DOutput(fake_scores), real).backward()
    # ∂/∂f_i of mean relu(1 − (f − r̄)) is −1/2, and of mean relu(1 + (r − f̄)) is −1/2 as well
    assert fake_scores.grad.tolist() == pytest.approx([-1.0, -1.0])
