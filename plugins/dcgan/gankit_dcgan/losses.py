"""The classic GAN objectives, on discriminator logits.

With D(x) = sigmoid(s) for a score (logit) s, the log-probabilities are
log D(x) = -softplus(-s) and log(1 - D(x)) = -softplus(s); softplus keeps
them finite where the sigmoid saturates.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from gankit import DOutput, Loss, logistic_discriminator_loss
from gankit.options import label_smoothing_option


@attrs.define(kw_only=True)
class _LogisticOptions:
    label_smoothing: float = label_smoothing_option()


class _LogisticLoss(Loss):
    """D's side of both classic losses: the logistic loss of Eq. 1, with
    one-sided label smoothing; they differ in G's side alone."""

    def __init__(self, options: _LogisticOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        return logistic_discriminator_loss(real.scores, fake.scores, self.options.label_smoothing)


@attrs.define(kw_only=True)
class MinimaxOptions(_LogisticOptions):
    """The original minimax GAN loss (Goodfellow et al. 2014, Eq. 1)."""


class MinimaxLoss(_LogisticLoss):
    """The original minimax GAN loss (Goodfellow et al. 2014, Eq. 1)."""

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        # Eq. 1, G's side: minimise E[log(1 - D(G(z)))] = -E[softplus(f)].
        # Its gradient vanishes where D rejects fakes confidently (§3).
        return -F.softplus(fake.scores).mean()


@attrs.define(kw_only=True)
class NonSaturatingOptions(_LogisticOptions):
    """The non-saturating GAN loss: G maximises log D(G(z)) (Goodfellow et al. 2014 §3)."""


class NonSaturatingLoss(_LogisticLoss):
    """The non-saturating GAN loss: G maximises log D(G(z)) (Goodfellow et al. 2014 §3)."""

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
