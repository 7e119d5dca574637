"""The relativistic average hinge loss (Jolicoeur-Martineau 2018), the loss
of MSG-ProGAN in the authors' BMSG-GAN code.

A relativistic discriminator judges whether a real sample is more realistic
than the average fake one, and a fake than the average real one. With
r = D(x_r), f = D(x_f) and the batch means r̄, f̄:

    L_D = E[relu(1 − (r − f̄))] + E[relu(1 + (f − r̄))]
    L_G = E[relu(1 − (f − r̄))] + E[relu(1 + (r − f̄))]

The generator's loss depends on the real scores, so the loop computes them
in the generator phase too (``needs_reals_in_generator_phase``).
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F

from gankit import DOutput, Loss


@attrs.define(kw_only=True)
class RelativisticHingeOptions:
    """The relativistic average hinge loss (Jolicoeur-Martineau 2018), MSG-ProGAN's loss."""


class RelativisticHingeLoss(Loss):
    """The relativistic average hinge loss (Jolicoeur-Martineau 2018), MSG-ProGAN's loss."""

    needs_reals_in_generator_phase = True

    def __init__(self, options: RelativisticHingeOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        r, f = real.scores, fake.scores
        return F.relu(1.0 - (r - f.mean())).mean() + F.relu(1.0 + (f - r.mean())).mean()

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        if real is None:
            raise ValueError("the relativistic hinge loss needs the real scores in the generator phase")
        r, f = real.scores, fake.scores
        return F.relu(1.0 - (f - r.mean())).mean() + F.relu(1.0 + (r - f.mean())).mean()
