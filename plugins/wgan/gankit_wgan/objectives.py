"""The Wasserstein objective and the regularizers that keep a critic
Lipschitz or a discriminator smooth.

A multi-scale discriminator (MSG-GAN) takes a list of images, one per scale.
Its input is then the whole list: a gradient norm is taken over every scale
together, ‖∇D‖² = Σ_s ‖∂D/∂x_s‖², and the gradient penalty's interpolation
uses the same ε for every scale of a sample, so that x̂ is one point on the
line between the real pyramid and the fake pyramid. With a single scale this
is exactly the paper's penalty. ``scale_reduction = "mean"`` instead takes
one norm per scale and averages the penalties over the S scales, as MSG-GAN
does (Karnewar & Wang 2020): (1/S)·Σ_s (‖∂D/∂x̂_s‖ − 1)² for the gradient
penalty, and (1/S)·Σ_s ‖∂D/∂x_s‖² for R1 (the authors' msg-stylegan-tf,
training/loss.py, D_logistic_simplegp).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch
from torch import nn

from gankit import DOutput, ImageList, Loss, PenaltyContext, Regularizer, UserError
from gankit.options import help_text, non_negative, one_of, positive

SCALE_REDUCTIONS = ("sum", "mean")

# --------------------------------------------------------------------------
# Loss


@attrs.define(kw_only=True)
class WassersteinOptions:
    """The Wasserstein GAN loss (Arjovsky et al. 2017): the critic estimates the earth mover's distance."""


class WassersteinLoss(Loss):
    """The Wasserstein GAN loss (Arjovsky et al. 2017): the critic estimates the earth mover's distance."""

    def __init__(self, options: WassersteinOptions) -> None:
        self.options = options

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        # Arjovsky et al. 2017, Eq. 3: the critic maximises E[D(x)] - E[D(G(z))]
        return fake.scores.mean() - real.scores.mean()

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        return -fake.scores.mean()


# --------------------------------------------------------------------------
# Gradients of D with respect to its inputs


def _discriminator_gradients(
    discriminator: nn.Module, images: ImageList, labels: torch.Tensor | None, scale_reduction: str = "sum"
) -> tuple[torch.Tensor, torch.Tensor]:
    """D's scores at ``images`` and the squared norms of their gradient:
    with ``scale_reduction = "sum"`` one per sample, over every scale
    together, shape [N]; with ``"mean"`` one per scale and sample, shape
    [S, N], for the caller to average its penalty over. The graph is kept,
    so that a penalty on the norm trains D (double backpropagation).

    A scale D does not read (an MSG-GAN D with some connections turned off)
    has no gradient and no Lipschitz constraint to keep: it is left out, so
    that ``"mean"`` averages over the scales D sees."""
    inputs = [image.detach().requires_grad_(True) for image in images]
    scores = discriminator(inputs, labels if getattr(discriminator, "num_classes", 0) else None).reshape(-1)
    gradients = torch.autograd.grad(scores.float().sum(), inputs, create_graph=True, allow_unused=True)
    read = [gradient for gradient in gradients if gradient is not None]
    if not read:
        raise ValueError("the discriminator's scores do not depend on any of its input images, so they have no gradient to penalise")
    per_scale = torch.stack([gradient.float().flatten(1).square().sum(dim=1) for gradient in read])
    return scores, per_scale.sum(dim=0) if scale_reduction == "sum" else per_scale


def _scale_reduction_field() -> Any:
    return attrs.field(
        default="sum",
        validator=one_of(SCALE_REDUCTIONS),
        metadata=help_text(
            "a multi-scale D: sum takes one gradient norm over every scale together; mean averages the penalty of "
            "each scale's own norm over the scales (MSG-GAN); the two agree with one scale"
        ),
    )


def _interpolate(reals: ImageList, fakes: ImageList, epsilon: torch.Tensor) -> ImageList:
    """x̂ = εx + (1 − ε)x̃ at every scale, with one ε per sample for all scales."""
    if len(reals) != len(fakes):
        raise ValueError(f"real and fake lists differ in scales: {len(reals)} vs {len(fakes)}")
    points = []
    for real, fake in zip(reals, fakes):
        weight = epsilon.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
        # under autocast a generator may return bf16 or fp16 images next to float32 reals
        points.append(torch.lerp(fake.detach().to(real.dtype), real.detach(), weight))
    return points


def _uses_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


# --------------------------------------------------------------------------
# Regularizers


@attrs.define(kw_only=True)
class WeightClipOptions:
    """WGAN's weight clipping (Arjovsky et al. 2017, Algorithm 1): clamp the critic's parameters after every step."""

    clip: float = attrs.field(
        default=0.01, validator=positive(), metadata=help_text("c: every critic parameter is clamped to [-c, c] (0.01 in the paper)")
    )


class WeightClip(Regularizer):
    """WGAN's weight clipping (Arjovsky et al. 2017, Algorithm 1): clamp the critic's parameters after every step."""

    phase = "D"

    def __init__(self, options: WeightClipOptions) -> None:
        self.clip = options.clip

    def wrap(self, module: nn.Module, role: str) -> nn.Module:
        if role == "discriminator":
            self.after_step(module, role)  # the critic starts inside the box too
        return module

    @torch.no_grad()
    def after_step(self, module: nn.Module, role: str) -> None:
        if role != "discriminator":
            return
        for parameter in module.parameters():
            parameter.clamp_(-self.clip, self.clip)


@attrs.define(kw_only=True)
class GradientPenaltyOptions:
    """WGAN-GP's gradient penalty (Gulrajani et al. 2017, Eq. 3) at random interpolates of real and fake samples."""

    weight: float = attrs.field(default=10.0, validator=non_negative(), metadata=help_text("λ (10 in every experiment of the paper)"))
    target: float = attrs.field(
        default=1.0,
        validator=positive(),
        metadata=help_text("γ: penalise (‖∇‖ − γ)²/γ² (Karras et al. 2018 used γ = 750 on CIFAR-10); 1 is the paper's penalty"),
    )
    one_sided: bool = attrs.field(
        default=False,
        metadata=help_text("penalise only norms above γ: max(0, ‖∇‖ − γ)² (Gulrajani et al. 2017, Appendix, 'one-sided penalty')"),
    )
    scale_reduction: Literal["sum", "mean"] = _scale_reduction_field()


class GradientPenalty(Regularizer):
    """WGAN-GP's gradient penalty (Gulrajani et al. 2017, Eq. 3) at random interpolates of real and fake samples."""

    phase = "D"

    def __init__(self, options: GradientPenaltyOptions) -> None:
        self.options = options

    def wrap(self, module: nn.Module, role: str) -> nn.Module:
        # Gulrajani et al. 2017 §4: batch norm maps a batch jointly, so the
        # penalty on each sample's gradient is no longer valid.
        if role == "discriminator" and _uses_batch_norm(module):
            raise UserError(
                "gradient_penalty: the discriminator uses batch norm, which a per-sample gradient penalty is not valid for; "
                'use layer norm or none (for dcgan: discriminator.norm = "layer")'
            )
        return module

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor:
        reals = ctx.reals
        epsilon = ctx.uniform(reals[-1].shape[0])  # ε ~ U[0, 1] per sample (Algorithm 1, line 4)
        points = _interpolate(reals, ctx.fakes, epsilon)
        # Class labels pass through unchanged: x̂ is judged as the real sample's class.
        _, squared_norm = _discriminator_gradients(ctx.discriminator, points, ctx.real_labels, self.options.scale_reduction)
        # "mean": squared_norm is [S, N], and the term's mean runs over scales too
        return self.options.weight * gradient_penalty_term(squared_norm, self.options.target, self.options.one_sided)


def gradient_penalty_term(squared_norm: torch.Tensor, target: float = 1.0, one_sided: bool = False) -> torch.Tensor:
    """E[(‖∇‖ − γ)²] / γ², or E[max(0, ‖∇‖ − γ)²] / γ² when one-sided, from
    per-sample squared gradient norms (of any shape: the mean is over all). The 1e-12 keeps the square root's own
    gradient finite where a norm is exactly 0."""
    excess = (squared_norm + 1e-12).sqrt() - target
    if one_sided:
        excess = excess.clamp(min=0.0)
    return excess.square().mean() / target**2


@attrs.define(kw_only=True)
class DriftOptions:
    """ProGAN's drift term (Karras et al. 2018, Appendix A.1): ε_drift·E[D(x)²] keeps the critic's output near 0."""

    weight: float = attrs.field(default=0.001, validator=non_negative(), metadata=help_text("ε_drift (0.001 in the paper)"))


class Drift(Regularizer):
    """ProGAN's drift term (Karras et al. 2018, Appendix A.1): ε_drift·E[D(x)²] keeps the critic's output near 0."""

    phase = "D"

    def __init__(self, options: DriftOptions) -> None:
        self.weight = options.weight

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor:
        if ctx.real_out is None:
            raise ValueError("drift needs the discriminator's scores on the real batch")
        return self.weight * ctx.real_out.scores.square().mean()


@attrs.define(kw_only=True)
class R1Options:
    """The R1 penalty (Mescheder et al. 2018, Eq. 9): γ/2·E[‖∇D(x)‖²] on real data, over every input scale."""

    gamma: float = attrs.field(default=10.0, validator=non_negative(), metadata=help_text("γ (10 in Mescheder et al. 2018 on CelebA-HQ)"))
    interval: int = attrs.field(
        default=1,
        validator=positive(),
        metadata=help_text(
            "lazy regularization (Karras et al. 2020, §3.1): apply every k-th D step with weight × k; 1 applies it every step"
        ),
    )
    scale_reduction: Literal["sum", "mean"] = _scale_reduction_field()


class R1(Regularizer):
    """The R1 penalty (Mescheder et al. 2018, Eq. 9): γ/2·E[‖∇D(x)‖²] on real data, over every input scale."""

    phase = "D"

    def __init__(self, options: R1Options) -> None:
        self.options = options

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        interval = self.options.interval
        if ctx.step % interval:
            return None
        _, squared_norm = _discriminator_gradients(ctx.discriminator, ctx.reals, ctx.real_labels, self.options.scale_reduction)
        # "mean": the mean of [S, N] is msg-stylegan-tf's average over scales.
        # Applied once every `interval` steps, scaled up so that its
        # expected contribution per step is unchanged.
        return (self.options.gamma / 2.0) * squared_norm.mean() * interval
