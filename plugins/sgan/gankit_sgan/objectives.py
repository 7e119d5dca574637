"""SGAN's objective besides the lower stack's adversarial loss, which is the
recipe's loss on the top of the stack (Huang et al. 2017; weights from the authors' code).

Per stack i the generator minimizes L_adv_i + λ_cond·L_cond_i + λ_ent·L_ent_i:
- L_adv_1: D1 on G1's features against the encoder's features of real
  images, non-saturating;
- L_cond_1 = CE(E_fc4(h1_hat), y), L_cond_0 = MSE(E_fc3(G0(h1, z0)), h1):
  each stack's output must give back its condition through the encoder;
- L_ent_i = MSE(Q_i(output_i), z_i): a variational bound on the conditional
  entropy of the output given the condition, so that the noise is not ignored.
The D phase trains D1 and both Q heads. One regularizer per phase.
"""

from __future__ import annotations

from typing import Literal

import attrs
import torch
import torch.nn.functional as F

import gankit
from gankit.options import help_text, non_negative, one_of
from gankit_sgan.networks import SGANDiscriminator, SGANGenerator, StackOutputs


@attrs.define(kw_only=True)
class SGANLossesOptions:
    """SGAN's conditional and entropy losses (with the Q heads) and the upper stack's adversarial game, in one phase."""

    phase: Literal["D", "G"] = attrs.field(default="G", validator=one_of(("D", "G")), metadata=help_text("D or G: one table per phase"))
    adversarial_weight: float = attrs.field(default=1.0, validator=non_negative(), metadata=help_text("stack 1's adversarial loss"))
    conditional_weight: float = attrs.field(default=1.0, validator=non_negative(), metadata=help_text("λ_cond: both conditional losses"))
    entropy_weight: float = attrs.field(default=10.0, validator=non_negative(), metadata=help_text("λ_ent: both entropy losses"))
    stack0_conditional_scale: float = attrs.field(
        default=1.0,
        validator=non_negative(),
        metadata=help_text(
            "multiplies stack 0's conditional loss on top of λ_cond: an MSE in the encoder's feature space, whose size "
            "depends on that encoder (1: the paper)"
        ),
    )


def _mse(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(estimate.float(), target.float())


def conditional_losses(discriminator: SGANDiscriminator, last: StackOutputs, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """L_cond of each stack: G1's features must be classified as
    their label; G0's image must be encoded back to the features it was fed."""
    return {
        "cond1": F.cross_entropy(discriminator.classify_features(last.h1_hat).float(), last.labels),
        "cond0": _mse(discriminator.encode(images), last.h1_in.detach()),
    }


def entropy_losses(discriminator: SGANDiscriminator, last: StackOutputs, features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """L_ent of both stacks, a variational bound on the conditional entropy: Q_i must recover z_i from stack i's output."""
    _, q1 = discriminator.upper(features)
    return _mse(q1, last.z1) + _mse(discriminator.lower_q(images), last.z0)


class SGANLosses(gankit.Regularizer):
    """SGAN's conditional and entropy losses (with the Q heads) and the upper stack's adversarial game, in one phase."""

    def __init__(self, options: SGANLossesOptions) -> None:
        self.options = options
        self.phase = options.phase
        self.terms: dict[str, torch.Tensor] = {}  # the last step's terms, unweighted, detached

    def penalty(self, ctx: gankit.PenaltyContext) -> torch.Tensor | None:
        generator, discriminator = ctx.generator, ctx.discriminator
        ours = isinstance(generator, SGANGenerator), isinstance(discriminator, SGANDiscriminator)
        if not any(ours):
            return None  # other networks have no stacks: nothing to add
        if not all(ours):
            raise gankit.UserError("regularizer sgan_losses needs the sgan generator and the sgan discriminator together")
        assert isinstance(generator, SGANGenerator) and isinstance(discriminator, SGANDiscriminator)
        if not discriminator.encoder_ready:
            raise gankit.UserError(
                "discriminator sgan: its encoder was not trained before the GAN: Discriminator.prepare_from_data was not "
                "called (gankit's loop calls it; a hand-written loop must too)"
            )
        last = generator.last
        if last is None:
            return None
        if last.h1_hat.shape[1] != discriminator.options.encoder_features:
            raise gankit.UserError(
                f"generator.features ({last.h1_hat.shape[1]}) must equal discriminator.encoder_features "
                f"({discriminator.options.encoder_features})"
            )
        o = self.options
        images = ctx.fakes[-1]
        if self.phase == "D":
            with torch.no_grad():
                real_features = discriminator.encode(ctx.reals[-1])
            generator.feed_real_features(real_features)  # G0's input in the independent phase
            real_score, _ = discriminator.upper(real_features)
            fake_features = last.h1_hat.detach()
            fake_score, _ = discriminator.upper(fake_features)
            # D1's game: the encoder's features of real images against G1's
            adversarial = F.softplus(-real_score.float()).mean() + F.softplus(fake_score.float()).mean()
            entropy = entropy_losses(discriminator, last, fake_features, images)
            self.terms = {"adv1": adversarial.detach(), "ent": entropy.detach()}
            return o.adversarial_weight * adversarial + o.entropy_weight * entropy
        fake_score, _ = discriminator.upper(last.h1_hat)
        adversarial = F.softplus(-fake_score.float()).mean()  # non-saturating
        conditional = conditional_losses(discriminator, last, images)
        entropy = entropy_losses(discriminator, last, last.h1_hat, images)
        self.terms = {"adv1": adversarial.detach(), "ent": entropy.detach(), **{k: v.detach() for k, v in conditional.items()}}
        weighted_conditional = conditional["cond1"] + o.stack0_conditional_scale * conditional["cond0"]
        return o.adversarial_weight * adversarial + o.conditional_weight * weighted_conditional + o.entropy_weight * entropy
