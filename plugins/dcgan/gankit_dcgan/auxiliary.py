"""The auxiliary classifier of AC-GAN (Odena, Olah & Shlens 2017, §3).

D gives, besides its score, a distribution over classes P(C | X). With
L_C = E[log P(C = c | X_real)] + E[log P(C = c | X_fake)], the paper trains D
to maximize L_S + L_C and G to maximize L_C - L_S, L_S being the adversarial
log-likelihood: each network's usual loss plus a cross-entropy term. One
regularizer table per phase adds that term; the discriminator's
``auxiliary_classifier`` option gives it the head. A discriminator with no
``class_logits`` method (another network family) gets no term.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import attrs
import torch
import torch.nn.functional as F

import gankit
from gankit.options import help_text, non_negative, one_of


@runtime_checkable
class ClassifyingDiscriminator(Protocol):
    """A discriminator with an auxiliary classifier: logits [N, classes]
    from the features its ``forward(..., features=True)`` returns."""

    def class_logits(self, features: list[torch.Tensor]) -> torch.Tensor: ...


@attrs.define(kw_only=True)
class AuxiliaryClassifierOptions:
    """AC-GAN's class term (Odena et al. 2017): the cross-entropy of D's auxiliary classifier, in one phase."""

    phase: Literal["D", "G"] = attrs.field(
        default="D",
        validator=one_of(("D", "G")),
        metadata=help_text("D: the classifier learns the labels of the data; G: G's images must be classified as the class asked for"),
    )
    weight: float = attrs.field(default=1.0, validator=non_negative(), metadata=help_text("weight of the cross-entropy term"))
    fakes: bool = attrs.field(
        default=False,
        metadata=help_text(
            "D phase: train the classifier on the generated images under their asked labels too, as the paper's L_C does; "
            "false: on real images only"
        ),
    )


class AuxiliaryClassifier(gankit.Regularizer):
    """AC-GAN's class term (Odena et al. 2017): the cross-entropy of D's auxiliary classifier, in one phase."""

    needs_features = True  # the head reads the features of D's pass in the phase

    def __init__(self, options: AuxiliaryClassifierOptions) -> None:
        self.options = options
        self.phase = options.phase

    def penalty(self, ctx: gankit.PenaltyContext) -> torch.Tensor | None:
        discriminator = ctx.discriminator
        if not isinstance(discriminator, ClassifyingDiscriminator):
            return None  # a network family without the head: nothing to add, as with sgan_losses
        needs_fake_labels = self.phase == "G" or self.options.fakes
        if needs_fake_labels and ctx.fake_labels is None:
            raise gankit.UserError(
                f"regularizer auxiliary_classifier in the {self.phase} phase{' with fakes = true' if self.phase == 'D' else ''} "
                "needs a conditional generator (generator.conditional = true)"
            )
        if self.phase == "G":
            # the generator's side of L_C: its images, classified as asked
            return self.options.weight * _cross_entropy(discriminator, ctx.fake_out, ctx.fake_labels)
        if ctx.real_labels is None:
            raise gankit.UserError("regularizer auxiliary_classifier needs labelled data (data.labels = true)")
        assert ctx.real_out is not None  # the D phase always scores the reals
        term = _cross_entropy(discriminator, ctx.real_out, ctx.real_labels)
        if self.options.fakes:
            term = term + _cross_entropy(discriminator, ctx.fake_out, ctx.fake_labels)
        return self.options.weight * term


def _cross_entropy(discriminator: ClassifyingDiscriminator, output: gankit.DOutput, labels: torch.Tensor) -> torch.Tensor:
    """-E[log P(C = c | X)], from the features of D's pass over X."""
    if output.features is None:
        raise ValueError("regularizer auxiliary_classifier needs D's features: its loop must honour Regularizer.needs_features")
    return F.cross_entropy(discriminator.class_logits(output.features).float(), labels)
