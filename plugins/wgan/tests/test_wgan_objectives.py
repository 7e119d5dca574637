"""The Wasserstein loss and the regularizers against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gankit import BuildContext, Discriminator, DOutput, PenaltyContext, UserError
from gankit.testing import TinyGenerator, TinyOptions
from gankit_wgan import (
    R1,
    Drift,
    DriftOptions,
    GradientPenalty,
    GradientPenaltyOptions,
    R1Options,
    WassersteinLoss,
    WassersteinOptions,
    WeightClip,
    WeightClipOptions,
)


class QuadraticCritic(Discriminator):
    """D(x) = Σ_s ½·c_s·‖x_s‖² (+ an optional per-class offset). Its gradient
    at scale s is c_s·x_s, known in closed form."""

    def __init__(self, coefficients: list[float], num_classes: int = 0) -> None:
        super().__init__()
        self.coefficients = coefficients
        self.num_classes = num_classes
        self.seen_labels: list[torch.Tensor | None] = []
        self.offset = nn.Parameter(torch.zeros(max(num_classes, 1)))

    def forward(self, images, labels=None, features=False):
        self.seen_labels.append(labels)
        scores = sum(0.5 * c * x.flatten(1).square().sum(1) for c, x in zip(self.coefficients, images))
        if self.num_classes:
            scores = scores + self.offset[labels]
        return scores


def _context(discriminator, reals, fakes, labels=None, step=0, real_scores=None):
    generator = TinyGenerator(TinyOptions(), BuildContext(resolution=8))
    real_out = DOutput(real_scores if real_scores is not None else torch.zeros(reals[-1].shape[0]))
    fake_out = DOutput(torch.zeros(fakes[-1].shape[0]))
    return PenaltyContext(discriminator, generator, reals, fakes, labels, labels, real_out, fake_out, step)


def _pyramid(n: int, seed: int) -> list[torch.Tensor]:
    rng = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=rng) for size in (4, 8, 16)]


def test_wasserstein_loss_is_the_difference_of_mean_scores():
    loss = WassersteinLoss(WassersteinOptions())
    real, fake = DOutput(torch.tensor([1.0, 3.0])), DOutput(torch.tensor([-2.0, 0.0]))
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(-1.0 - 2.0)
    assert loss.generator_loss(fake, None).item() == pytest.approx(1.0)


@pytest.mark.parametrize("target, one_sided", [(1.0, False), (750.0, False), (1.0, True), (3.0, True)])
def test_gradient_penalty_matches_the_closed_form_over_every_scale(target, one_sided):
    coefficients = [0.5, 1.0, 2.0]
    critic = QuadraticCritic(coefficients)
    reals, fakes = _pyramid(6, 1), _pyramid(6, 2)
    penalty = GradientPenalty(GradientPenaltyOptions(weight=10.0, target=target, one_sided=one_sided))

    context = _context(critic, reals, fakes)
    torch.manual_seed(7)
    value = penalty.penalty(context)
    torch.manual_seed(7)
    epsilon = torch.rand(6)  # the penalty's draw: one ε per sample, the same at every scale

    # ∇_s D(x̂) = c_s·x̂_s with x̂_s = ε·x_s + (1 − ε)·x̃_s, and the norm is over all scales together
    squared = torch.zeros(6)
    for c, real, fake in zip(coefficients, reals, fakes):
        e = epsilon.view(-1, 1, 1, 1)
        point = e * real + (1 - e) * fake
        squared += (c * point).flatten(1).square().sum(1)
    excess = squared.sqrt() - target
    if one_sided:
        excess = excess.clamp(min=0)
    expected = 10.0 * (excess.square().mean() / target**2)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_of_a_linear_critic_is_lambda_times_norm_minus_one_squared():
    class Linear(Discriminator):
        def __init__(self):
            super().__init__()
            self.weights = nn.ParameterList([nn.Parameter(torch.full((3, s, s), 0.1)) for s in (4, 8)])

        def forward(self, images, labels=None, features=False):
            return sum((w * x).flatten(1).sum(1) for w, x in zip(self.weights, images))

    critic = Linear()
    reals, fakes = _pyramid(5, 3)[:2], _pyramid(5, 4)[:2]
    norm = math.sqrt(0.01 * (3 * 16 + 3 * 64))  # ‖∇‖ is the same everywhere: the weights' norm
    value = GradientPenalty(GradientPenaltyOptions()).penalty(_context(critic, reals, fakes))
    assert value.item() == pytest.approx(10.0 * (norm - 1.0) ** 2, rel=1e-5)
    value.backward()  # double backpropagation trains the critic
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in critic.weights)


def test_gradient_penalty_passes_class_labels_through_unchanged():
    critic = QuadraticCritic([1.0], num_classes=4)
    labels = torch.tensor([3, 0, 2])
    GradientPenalty(GradientPenaltyOptions()).penalty(_context(critic, [torch.randn(3, 2)], [torch.randn(3, 2)], labels=labels))
    assert torch.equal(critic.seen_labels[-1], labels)


def test_gradient_penalty_takes_low_precision_fakes_beside_float32_reals():
    # under bf16 autocast a generator may return bf16 images; the reals stay float32
    critic = QuadraticCritic([1.0])
    reals, fakes = [torch.randn(4, 3, 4, 4)], [torch.randn(4, 3, 4, 4).to(torch.bfloat16)]
    value = GradientPenalty(GradientPenaltyOptions()).penalty(_context(critic, reals, fakes))
    assert value.dtype == torch.float32 and torch.isfinite(value)


def test_gradient_penalty_refuses_a_batch_norm_critic():
    class WithBatchNorm(Discriminator):
        def __init__(self):
            super().__init__()
            self.norm = nn.BatchNorm2d(3)

    with pytest.raises(UserError, match="batch norm"):
        GradientPenalty(GradientPenaltyOptions()).wrap(WithBatchNorm(), "discriminator")
    generator = nn.Sequential(nn.BatchNorm2d(3))  # the generator's batch norm is its own business
    assert GradientPenalty(GradientPenaltyOptions()).wrap(generator, "generator") is generator


def test_weight_clipping_keeps_every_critic_parameter_in_bounds():
    critic = nn.Sequential(nn.Linear(4, 32), nn.LayerNorm(32), nn.Linear(32, 1))
    generator = nn.Linear(4, 4)
    with torch.no_grad():
        generator.weight.fill_(5.0)
    clip = WeightClip(WeightClipOptions(clip=0.02))
    clip.wrap(critic, "discriminator")
    assert all(p.abs().max() <= 0.02 for p in critic.parameters())  # from the first step on
    optimizer = torch.optim.SGD(critic.parameters(), lr=10.0)
    for _ in range(3):
        optimizer.zero_grad()
        critic(torch.randn(8, 4)).sum().backward()
        optimizer.step()
        assert any(p.abs().max() > 0.02 for p in critic.parameters())  # the step left the box ...
        clip.after_step(critic, "discriminator")
        assert all(p.abs().max() <= 0.02 for p in critic.parameters())  # ... and clipping brought it back
    assert any(p.abs().max() == 0.02 for p in critic.parameters())
    clip.after_step(generator, "generator")
    assert generator.weight.max() == 5.0  # only the critic is clipped


def test_drift_is_epsilon_times_the_mean_squared_real_score():
    scores = torch.tensor([1.0, -2.0, 3.0])
    term = Drift(DriftOptions()).penalty(_context(QuadraticCritic([1.0]), [torch.zeros(3, 2)], [torch.zeros(3, 2)], real_scores=scores))
    assert term.item() == pytest.approx(0.001 * (1 + 4 + 9) / 3)


@pytest.mark.parametrize("interval", [1, 4])
def test_r1_is_gamma_over_two_times_the_squared_gradient_norm_and_lazy_steps_scale_it(interval):
    coefficients = [1.0, 3.0]
    critic = QuadraticCritic(coefficients)
    reals = _pyramid(4, 5)[:2]
    r1 = R1(R1Options(gamma=10.0, interval=interval))
    squared = sum((c * x).flatten(1).square().sum(1) for c, x in zip(coefficients, reals))
    every_step = 5.0 * squared.mean()
    for step in range(8):
        term = r1.penalty(_context(critic, reals, reals, step=step))
        if step % interval:
            assert term is None
        else:
            # applied on one step in `interval`, weighted by `interval`: the same on average
            assert term.item() == pytest.approx(interval * every_step.item(), rel=1e-5)


def test_r1_with_scale_reduction_mean_averages_each_scales_squared_norm_over_the_scales():
    # msg-stylegan-tf (training/loss.py, D_logistic_simplegp): γ/2 · mean over
    # the S scales of E‖∂D/∂x_s‖², where the default sums them: S times less
    coefficients = [1.0, 3.0, 0.5]
    critic = QuadraticCritic(coefficients)
    reals = _pyramid(4, 5)
    per_scale = [(c * x).flatten(1).square().sum(1).mean() for c, x in zip(coefficients, reals)]
    mean = R1(R1Options(gamma=10.0, scale_reduction="mean")).penalty(_context(critic, reals, reals))
    summed = R1(R1Options(gamma=10.0)).penalty(_context(critic, reals, reals))
    assert mean.item() == pytest.approx(5.0 * sum(per_scale).item() / 3, rel=1e-5)
    assert summed.item() == pytest.approx(3 * mean.item(), rel=1e-5)
    single = R1(R1Options(scale_reduction="mean")).penalty(_context(critic, reals[:1], reals[:1]))
    assert single.item() == pytest.approx(R1(R1Options()).penalty(_context(critic, reals[:1], reals[:1])).item())


def test_gradient_penalty_with_scale_reduction_mean_averages_one_penalty_per_scale():
    # MSG-GAN's multi-scale penalty: (1/S) Σ_s (‖∂D/∂x̂_s‖ − 1)², a norm per scale
    coefficients = [0.5, 1.0, 2.0]
    critic = QuadraticCritic(coefficients)
    reals, fakes = _pyramid(6, 1), _pyramid(6, 2)
    penalty = GradientPenalty(GradientPenaltyOptions(weight=10.0, scale_reduction="mean"))
    context = _context(critic, reals, fakes)
    torch.manual_seed(7)
    value = penalty.penalty(context)
    torch.manual_seed(7)
    e = torch.rand(6).view(-1, 1, 1, 1)  # the penalty's draw
    terms = [
        ((c * (e * real + (1 - e) * fake)).flatten(1).norm(dim=1) - 1).square().mean() for c, real, fake in zip(coefficients, reals, fakes)
    ]
    assert value.item() == pytest.approx(10.0 * sum(terms).item() / 3, rel=1e-5)
    torch.manual_seed(7)
    joint = GradientPenalty(GradientPenaltyOptions(weight=10.0)).penalty(context)
    assert not math.isclose(joint.item(), value.item(), rel_tol=1e-2)  # a different term, not a rescaling


class FinestScaleCritic(QuadraticCritic):
    """An MSG-GAN D with its multi-scale connections off: only the full-resolution image reaches its score."""

    def forward(self, images, labels=None, features=False):
        return super().forward(images[-1:])


@pytest.mark.parametrize("scale_reduction", ["sum", "mean"])
def test_the_penalties_leave_out_a_scale_the_discriminator_does_not_read(scale_reduction):
    critic = FinestScaleCritic([2.0])
    reals, fakes = _pyramid(6, 1), _pyramid(6, 2)
    penalties = (GradientPenalty(GradientPenaltyOptions(scale_reduction=scale_reduction)), R1(R1Options(scale_reduction=scale_reduction)))
    for penalty in penalties:
        torch.manual_seed(7)
        every_scale = penalty.penalty(_context(critic, reals, fakes))
        torch.manual_seed(7)
        finest_alone = penalty.penalty(_context(critic, reals[-1:], fakes[-1:]))
        assert every_scale.item() == pytest.approx(finest_alone.item(), rel=1e-6)
        assert every_scale.item() > 0


def test_a_penalty_on_a_discriminator_that_reads_no_image_says_so():
    class Constant(QuadraticCritic):
        def forward(self, images, labels=None, features=False):
            return self.offset[0].expand(images[-1].shape[0])

    with pytest.raises(ValueError, match="do not depend on any of its input images"):
        GradientPenalty(GradientPenaltyOptions()).penalty(_context(Constant([1.0]), _pyramid(2, 1), _pyramid(2, 2)))
