"""The classic GAN objectives, on discriminator logits.

With D(x) = sigmoid(s) for a score (logit) s, the log-probabilities are
log D(x) = -softplus(-s) and log(1 - D(x)) = -softplus(s); softplus keeps
them finite where the sigmoid saturates.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from gankit import DOutput, Loss
from gankit.options import help_text


def _smoothing_range(instance: object, attribute: "attrs.Attribute[float]", value: float) -> None:
    if not 0.0 <= value < 0.5:
        raise ValueError(f"'{attribute.name}' must be >= 0 and < 0.5 (got {value!r})")


def _logistic_discriminator_loss(real: torch.Tensor, fake: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Goodfellow et al. 2014, Eq. 1, D's side: minimise
    -E[log D(x)] - E[log(1 - D(G(z)))], the binary cross-entropy with target
    1 for reals and 0 for fakes.

    One-sided label smoothing (Salimans et al. 2016 §3.4): the real target
    becomes t = 1 - label_smoothing; the fake target stays 0."""
    target = 1.0 - label_smoothing
    real_term = target * F.softplus(-real) + (1.0 - target) * F.softplus(real)
    fake_term = F.softplus(fake)
    return real_term.mean() + fake_term.mean()


@attrs.define(kw_only=True)
class MinimaxOptions:
    """The original minimax GAN loss (Goodfellow et al. 2014, Eq. 1)."""

    label_smoothing: float = attrs.field(
        default=0.0,
        validator=_smoothing_range,
        metadata=help_text("one-sided label smoothing (Salimans et al. 2016 §3.4): the real target becomes 1 - this; 0 turns it off"),
    )


class MinimaxLoss(Loss):
    """The original minimax GAN loss (Goodfellow et al. 2014, Eq. 1)."""

    def __init__(self, options: MinimaxOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        return _logistic_discriminator_loss(real.scores, fake.scores, self.options.label_smoothing)

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        # Eq. 1, G's side: minimise E[log(1 - D(G(z)))] = -E[softplus(f)].
        # Its gradient vanishes where D rejects fakes confidently (§3).
        return -F.softplus(fake.scores).mean()


@attrs.define(kw_only=True)
class NonSaturatingOptions:
    """The non-saturating GAN loss: G maximises log D(G(z)) (Goodfellow et al. 2014 §3)."""

    label_smoothing: float = attrs.field(
        default=0.0,
        validator=_smoothing_range,
        metadata=help_text("one-sided label smoothing (Salimans et al. 2016 §3.4): the real target becomes 1 - this; 0 turns it off"),
    )


class NonSaturatingLoss(Loss):
    """The non-saturating GAN loss: G maximises log D(G(z)) (Goodfellow et al. 2014 §3)."""

    def __init__(self, options: NonSaturatingOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        return _logistic_discriminator_loss(real.scores, fake.scores, self.options.label_smoothing)

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        # §3: "train G to maximize log D(G(z))", i.e. minimise
        # -E[log D(G(z))] = E[softplus(-f)]; strong gradients early in learning.
        return F.softplus(-fake.scores).mean()


@attrs.define(kw_only=True)
class HingeOptions:
    """The hinge GAN loss (Lim & Ye 2017; Miyato et al. 2018 §4)."""


class HingeLoss(Loss):
    """The hinge GAN loss (Lim & Ye 2017; Miyato et al. 2018 §4)."""

    def __init__(self, options: HingeOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        # D: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
        return F.relu(1.0 - real.scores).mean() + F.relu(1.0 + fake.scores).mean()

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        # G: -E[D(G(z))]
        return -fake.scores.mean()
