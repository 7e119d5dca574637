"""Feature matching (Salimans et al. 2016, §3.1): the generator matches the
statistics of the real data in an intermediate layer of the discriminator
instead of maximizing the discriminator's output."""

from __future__ import annotations

from typing import Literal

import attrs
import torch

from gankit import DOutput, Loss, UserError, logistic_discriminator_loss
from gankit.options import help_text, label_smoothing_option, one_of


@attrs.define(kw_only=True)
class FeatureMatchingOptions:
    """Feature matching (Salimans et al. 2016 §3.1): G minimizes ‖E f(x) − E f(G(z))‖², f an intermediate D layer."""

    layer: int = attrs.field(
        default=-1,
        metadata=help_text(
            "which of the discriminator's intermediate features is f: an index into the list it returns (-1: the last, nearest the score)"
        ),
    )
    distance: Literal["squared_l2", "l1"] = attrs.field(
        default="squared_l2",
        validator=one_of(("squared_l2", "l1")),
        metadata=help_text(
            "squared_l2: ‖E f(x) − E f(G(z))‖₂², the paper's; l1: the mean absolute difference of the means, the paper's CIFAR-10 code"
        ),
    )
    label_smoothing: float = label_smoothing_option()


class FeatureMatchingLoss(Loss):
    """Feature matching (Salimans et al. 2016 §3.1): G minimizes ‖E f(x) − E f(G(z))‖², f an intermediate D layer.

    The discriminator keeps the usual GAN objective (Goodfellow et al. 2014,
    Eq. 1: the binary cross-entropy of real against fake on its logits);
    only the generator's objective changes."""

    needs_features = True
    needs_reals_in_generator_phase = True  # E f(x): D's features of the last real batch

    def __init__(self, options: FeatureMatchingOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        # Goodfellow et al. 2014, Eq. 1, with one-sided label smoothing (§3.4)
        return logistic_discriminator_loss(real.scores, fake.scores, self.options.label_smoothing)

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        if real is None or real.features is None or fake.features is None:
            raise ValueError("feature matching needs the discriminator's features on the real and the fake batch")
        f_real, f_fake = self._layer(real.features), self._layer(fake.features)
        # §3.1: the first moments of f over each batch; the real one is a
        # constant for G (computed without gradients by the loop)
        difference = f_real.detach().flatten(1).mean(dim=0) - f_fake.flatten(1).mean(dim=0)
        if self.options.distance == "l1":
            return difference.abs().mean()
        return difference.square().sum()

    def _layer(self, features: list[torch.Tensor]) -> torch.Tensor:
        index = self.options.layer
        if not -len(features) <= index < len(features):
            # found only now, when the discriminator first answers: the message names the key itself
            raise UserError(
                f"loss.layer = {index}: the discriminator gives {len(features)} intermediate features"
                f" (indices 0 to {len(features) - 1}, or -1 for the last)"
            )
        return features[index]
