"""Objectives that more than one plugin's loss shares, exported from
:mod:`gankit`."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def logistic_discriminator_loss(real: torch.Tensor, fake: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Goodfellow et al. 2014, Eq. 1, D's side, on D's logits: minimise
    -E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(score), the binary
    cross-entropy with target 1 for reals and 0 for fakes. softplus keeps
    log D(x) = -softplus(-s) and log(1 - D(x)) = -softplus(s) finite where
    the sigmoid saturates.

    One-sided label smoothing (Salimans et al. 2016 §3.4): the real target
    becomes t = 1 - ``label_smoothing``; the fake target stays 0."""
    target = 1.0 - label_smoothing
    real_term = target * F.softplus(-real) + (1.0 - target) * F.softplus(real)
    fake_term = F.softplus(fake)
    return real_term.mean() + fake_term.mean()
