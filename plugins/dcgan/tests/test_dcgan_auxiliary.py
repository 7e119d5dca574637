"""AC-GAN's auxiliary classifier (Odena et al. 2017) on the DCGAN
discriminator: the head reads the summed last features, each phase's term is
the cross-entropy the paper's L_C names, and a short training teaches the
head the classes of images it has never seen."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit import BuildContext, DOutput, PenaltyContext, Run, UserError
from gankit.testing import TinyPyramidDiscriminator, TinyPyramidOptions, one_thread
from gankit_dcgan import (
    AuxiliaryClassifier,
    AuxiliaryClassifierOptions,
    DCGANDiscriminator,
    DCGANDiscriminatorOptions,
    DCGANGenerator,
    DCGANGeneratorOptions,
)
from outcomes import assert_outcome
from outcomes.acgan import BOUNDS, RECIPE, outcome

CLASSES = 6
CONTEXT = BuildContext(resolution=16, num_classes=CLASSES)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def discriminator(**options: object) -> DCGANDiscriminator:
    return DCGANDiscriminator(DCGANDiscriminatorOptions(base_channels=16, **options), CONTEXT)


def generator() -> DCGANGenerator:
    return DCGANGenerator(DCGANGeneratorOptions(base_channels=16, conditional=True, conditioning="batchnorm"), CONTEXT)


def scored(D: torch.nn.Module, images: list[torch.Tensor]) -> DOutput:
    """D's output with its features, as the loop gives it to a regularizer that needs them."""
    scores, features = D(images, features=True)
    return DOutput(scores.reshape(-1), features)


def penalty_context(D: torch.nn.Module, G: DCGANGenerator, phase: str, conditional: bool = True) -> PenaltyContext:
    reals = [torch.rand(8, 3, 16, 16) * 2 - 1]
    real_labels, fake_labels = torch.arange(8) % CLASSES, torch.arange(8).flip(0) % CLASSES
    fakes = G(torch.randn(8, G.latent_size), fake_labels)
    if phase == "D":
        fakes = [image.detach() for image in fakes]
    real_out = scored(D, reals) if phase == "D" else None
    real_labels, fake_labels = (real_labels, fake_labels) if conditional else (None, None)
    return PenaltyContext(D, G, reals, fakes, real_labels, fake_labels, real_out, scored(D, fakes), 0)


def test_class_logits_are_a_linear_head_on_the_summed_last_features() -> None:
    D = discriminator(auxiliary_classifier=True).eval()
    _, activations = D([torch.rand(4, 3, 16, 16) * 2 - 1], features=True)
    logits = D.class_logits(activations)
    assert logits.shape == (4, CLASSES)
    torch.testing.assert_close(logits, D.classifier(activations[-1].sum(dim=(2, 3))))


def test_the_head_reads_the_pass_d_makes_anyway() -> None:
    """Three passes through D's blocks a step, as without the classifier: the
    reals and the fakes in the D phase, the fakes in the G phase."""
    run = Run.in_memory(RECIPE, ["train.kimg=0.064", "train.device=cpu", "metrics={}"], progress="none")
    passes = []
    run.trainer.D.blocks[0].register_forward_hook(lambda *_: passes.append(1))
    run.train()
    assert len(passes) == 3 * run.trainer.g_steps == 6


def test_the_head_needs_labels_and_a_label_free_input() -> None:
    with pytest.raises(UserError, match="labelled data") as error:
        DCGANDiscriminator(DCGANDiscriminatorOptions(auxiliary_classifier=True), BuildContext(resolution=16, num_classes=0))
    assert error.value.key == "auxiliary_classifier"
    with pytest.raises(UserError, match="conditioning = concat"):
        discriminator(auxiliary_classifier=True, conditional=True)  # concat: the features see the label
    discriminator(auxiliary_classifier=True, conditional=True, conditioning="projection")


@pytest.mark.parametrize("fakes", [False, True], ids=["real-only", "real-and-fake"])
def test_the_d_phase_term_is_the_cross_entropy_of_the_classes_the_data_has(fakes: bool) -> None:
    D = discriminator(auxiliary_classifier=True).eval()  # eval: the same logits on every call
    ctx = penalty_context(D, generator(), "D")
    term = AuxiliaryClassifier(AuxiliaryClassifierOptions(phase="D", weight=2.0, fakes=fakes)).penalty(ctx)
    expected = F.cross_entropy(D.class_logits(scored(D, ctx.reals).features), ctx.real_labels)
    if fakes:
        expected = expected + F.cross_entropy(D.class_logits(scored(D, ctx.fakes).features), ctx.fake_labels)
    torch.testing.assert_close(term, 2.0 * expected)
    term.backward()
    assert D.classifier.weight.grad is not None and D.classifier.weight.grad.abs().sum() > 0


def test_the_g_phase_term_moves_the_generator_towards_the_asked_class() -> None:
    D, G = discriminator(auxiliary_classifier=True).eval(), generator()
    D.requires_grad_(False)  # as the loop freezes D in the G phase
    ctx = penalty_context(D, G, "G")
    term = AuxiliaryClassifier(AuxiliaryClassifierOptions(phase="G")).penalty(ctx)
    torch.testing.assert_close(term, F.cross_entropy(D.class_logits(scored(D, ctx.fakes).features), ctx.fake_labels))
    term.backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad)


def test_a_missing_head_or_label_is_an_error_and_other_networks_get_no_term() -> None:
    G = generator()
    with pytest.raises(UserError, match="discriminator.auxiliary_classifier = true"):
        AuxiliaryClassifier(AuxiliaryClassifierOptions()).penalty(penalty_context(discriminator(), G, "D"))
    with pytest.raises(UserError, match="conditional generator"):
        ctx = penalty_context(discriminator(auxiliary_classifier=True), G, "G", conditional=False)
        AuxiliaryClassifier(AuxiliaryClassifierOptions(phase="G")).penalty(ctx)
    with pytest.raises(UserError, match="labelled data"):
        ctx = penalty_context(discriminator(auxiliary_classifier=True), G, "D", conditional=False)
        AuxiliaryClassifier(AuxiliaryClassifierOptions(phase="D")).penalty(ctx)
    other = TinyPyramidDiscriminator(TinyPyramidOptions(scales=1), BuildContext(resolution=16))
    assert AuxiliaryClassifier(AuxiliaryClassifierOptions()).penalty(penalty_context(other, G, "D")) is None


@one_thread()
def test_a_short_training_teaches_the_head_the_classes_of_unseen_shapes() -> None:
    assert_outcome(outcome(seed=0), BOUNDS)
