"""The least-squares GAN loss (Mao et al. 2017), which ProGAN also trains
with (Karras et al. 2018, Appendix B)."""

from __future__ import annotations

import attrs
import torch

from gankit import DOutput, Loss
from gankit.options import help_text


@attrs.define(kw_only=True)
class LSGANOptions:
    """The least-squares GAN loss (Mao et al. 2017, Eq. 2): D regresses reals to b and fakes to a; G pushes fakes to c."""

    a: float = attrs.field(default=0.0, metadata=help_text("target of fakes for D (0 in the 0-1 coding, Eq. 9)"))
    b: float = attrs.field(default=1.0, metadata=help_text("target of reals for D"))
    c: float = attrs.field(default=1.0, metadata=help_text("the value G wants D to believe for fakes"))


class LSGANLoss(Loss):
    """The least-squares GAN loss (Mao et al. 2017, Eq. 2): D regresses reals to b and fakes to a; G pushes fakes to c."""

    def __init__(self, options: LSGANOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        # Eq. 2: ½E[(D(x) − b)²] + ½E[(D(G(z)) − a)²]
        return 0.5 * (real.scores - self.options.b).square().mean() + 0.5 * (fake.scores - self.options.a).square().mean()

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        # Eq. 2: ½E[(D(G(z)) − c)²]
        return 0.5 * (fake.scores - self.options.c).square().mean()
