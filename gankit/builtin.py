"""gankit's own components, registered through the same ``gankit`` entry point
a third party uses: optimizers, the ``alternating`` scheduler, the
``images``, ``shapes`` and ``mnist`` datasets, the ``fid``, ``kid``, ``precision_recall``
and ``recognizability`` metrics and the ``jsonl`` and ``tensorboard`` loggers."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs
import torch

from gankit.contracts import Progress, Scheduler, StepPlan
from gankit.hookspecs import hookimpl
from gankit.options import help_text, non_negative, one_of, positive

# --------------------------------------------------------------------------
# Optimizers: torch.optim with the options a recipe sets


@attrs.define(kw_only=True)
class AdamOptions:
    """Adam (Kingma & Ba 2015), torch.optim.Adam."""

    lr: float = attrs.field(default=2e-4, validator=positive(), metadata=help_text("learning rate"))
    betas: tuple[float, float] = attrs.field(default=(0.5, 0.999), metadata=help_text("(beta1, beta2); GANs often use beta1 = 0 or 0.5"))
    eps: float = attrs.field(default=1e-8, validator=positive(), metadata=help_text("added to the denominator"))
    weight_decay: float = attrs.field(default=0.0, validator=non_negative(), metadata=help_text("L2 penalty"))

    @betas.validator
    def _betas_in_range(self, attribute: attrs.Attribute, value: tuple[float, float]) -> None:
        if not all(0.0 <= beta < 1.0 for beta in value):
            raise ValueError(f"'betas' must each be in [0, 1) (got {list(value)})")


def adam(params: Iterable[torch.nn.Parameter], options: AdamOptions) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015), torch.optim.Adam."""
    return torch.optim.Adam(params, lr=options.lr, betas=options.betas, eps=options.eps, weight_decay=options.weight_decay)


@attrs.define(kw_only=True)
class RMSpropOptions:
    """RMSprop (Tieleman & Hinton 2012), torch.optim.RMSprop."""

    lr: float = attrs.field(default=5e-5, validator=positive(), metadata=help_text("learning rate (5e-5 in WGAN, Arjovsky et al. 2017)"))
    alpha: float = attrs.field(
        default=0.99, validator=non_negative(), metadata=help_text("smoothing constant of the squared-gradient average")
    )
    eps: float = attrs.field(default=1e-8, validator=positive(), metadata=help_text("added to the denominator"))
    momentum: float = attrs.field(default=0.0, validator=non_negative(), metadata=help_text("momentum factor"))
    weight_decay: float = attrs.field(default=0.0, validator=non_negative(), metadata=help_text("L2 penalty"))


def rmsprop(params: Iterable[torch.nn.Parameter], options: RMSpropOptions) -> torch.optim.Optimizer:
    """RMSprop (Tieleman & Hinton 2012), torch.optim.RMSprop."""
    return torch.optim.RMSprop(
        params, lr=options.lr, alpha=options.alpha, eps=options.eps, momentum=options.momentum, weight_decay=options.weight_decay
    )


@attrs.define(kw_only=True)
class SGDOptions:
    """Stochastic gradient descent, torch.optim.SGD."""

    lr: float = attrs.field(default=1e-2, validator=positive(), metadata=help_text("learning rate"))
    momentum: float = attrs.field(default=0.0, validator=non_negative(), metadata=help_text("momentum factor"))
    nesterov: bool = attrs.field(default=False, metadata=help_text("Nesterov momentum (needs momentum > 0)"))
    weight_decay: float = attrs.field(default=0.0, validator=non_negative(), metadata=help_text("L2 penalty"))

    def __attrs_post_init__(self) -> None:
        if self.nesterov and self.momentum <= 0:
            raise ValueError(f"'nesterov' needs momentum > 0 (got momentum {self.momentum})")


def sgd(params: Iterable[torch.nn.Parameter], options: SGDOptions) -> torch.optim.Optimizer:
    """Stochastic gradient descent, torch.optim.SGD."""
    return torch.optim.SGD(params, lr=options.lr, momentum=options.momentum, nesterov=options.nesterov, weight_decay=options.weight_decay)


# --------------------------------------------------------------------------
# Scheduler


@attrs.define(kw_only=True)
class AlternatingOptions:
    """Alternate D and G steps at a fixed ratio, with an optional linear learning-rate decay."""

    d_steps: int = attrs.field(default=1, validator=positive(), metadata=help_text("discriminator (critic) steps per iteration: n_critic"))
    g_steps: int = attrs.field(default=1, validator=positive(), metadata=help_text("generator steps per iteration"))
    lr_decay: Literal["constant", "linear"] = attrs.field(
        default="constant",
        validator=one_of(("constant", "linear")),
        metadata=help_text("constant, or linear to 0 (WGAN-GP's CIFAR-10 schedule)"),
    )
    decay_g_steps: int | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(positive()),
        metadata=help_text("with linear decay: the generator step at which the learning rate reaches 0 (unset: the end of training)"),
    )


class AlternatingScheduler(Scheduler):
    """Alternate D and G steps at a fixed ratio, with an optional linear learning-rate decay."""

    def __init__(self, options: AlternatingOptions) -> None:
        self.options = options

    def plan(self, progress: Progress) -> StepPlan:
        lr_scale = 1.0
        if self.options.lr_decay == "linear" and self.options.decay_g_steps:
            lr_scale = max(0.0, 1.0 - progress.g_steps / self.options.decay_g_steps)
        elif self.options.lr_decay == "linear":
            lr_scale = max(0.0, 1.0 - progress.nimg / progress.total_nimg)
        return StepPlan(d_steps=self.options.d_steps, g_steps=self.options.g_steps, lr_scale=lr_scale)


# --------------------------------------------------------------------------


def _example_image_folder(folder: Path) -> dict[str, Any]:
    """A tiny labelled folder of PNGs, for the contract suite."""
    from PIL import Image

    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for index in range(4):
            Image.new("RGB", (20, 16), colour).save(folder / label / f"{index}.png")
    return {"path": str(folder), "resolution": 16, "labels": True}


def _example_mnist_folder(folder: Path) -> dict[str, Any]:
    """Twenty tiny MNIST digits in the idx files torchvision writes, for the contract suite."""
    from gankit.datasets.mnist import write_idx

    raw = folder / "MNIST" / "raw"
    digits = torch.zeros(20, 28, 28, dtype=torch.uint8)
    for index in range(20):
        digits[index, 4 + index % 10 : 24, 10 + index % 7 : 14 + index % 7] = 255
    write_idx(raw, digits, torch.arange(20) % 10)
    return {"path": str(folder), "resolution": 16}


def _example_metric(folder: Path) -> dict[str, Any]:
    """A stand-in feature network written to the folder, so the contract
    suite scores metrics without the Inception weights; few images, no cache."""
    from gankit.metrics import save_stand_in_extractor

    return {"extractor": str(save_stand_in_extractor(folder / "stand_in_extractor.pt")), "n_fake": 32, "cache": False}


def _example_kid(folder: Path) -> dict[str, Any]:
    return {**_example_metric(folder), "subsets": 4, "subset_size": 16}


@hookimpl
def register_components(registry: Any) -> None:
    from gankit.datasets import ImagesDataset, ImagesOptions, MnistDataset, MnistOptions, ShapesDataset, ShapesOptions
    from gankit.loggers import JsonlLogger, JsonlOptions, TensorBoardLogger, TensorBoardOptions
    from gankit.metrics import (
        FIDOptions,
        FrechetInceptionDistance,
        KernelInceptionDistance,
        KIDOptions,
        PrecisionRecall,
        PrecisionRecallOptions,
    )
    from gankit.metrics.recognizability import Recognizability, RecognizabilityOptions

    registry.add("optimizer", "adam", adam, AdamOptions)
    registry.add("optimizer", "rmsprop", rmsprop, RMSpropOptions)
    registry.add("optimizer", "sgd", sgd, SGDOptions)
    registry.add("scheduler", "alternating", AlternatingScheduler, AlternatingOptions)
    registry.add("dataset", "shapes", ShapesDataset, ShapesOptions, example={"resolution": 16, "size": 64})
    registry.add("dataset", "images", ImagesDataset, ImagesOptions, example=_example_image_folder)
    registry.add("dataset", "mnist", MnistDataset, MnistOptions, example=_example_mnist_folder)
    registry.add("metric", "fid", FrechetInceptionDistance, FIDOptions, example=_example_metric)
    registry.add("metric", "kid", KernelInceptionDistance, KIDOptions, example=_example_kid)
    registry.add("metric", "precision_recall", PrecisionRecall, PrecisionRecallOptions, example=_example_metric)
    registry.add(
        "metric",
        "recognizability",
        Recognizability,
        RecognizabilityOptions,
        example={"images": 16, "epochs": 1, "width": 4, "cache": False},
    )
    registry.add("logger", "jsonl", JsonlLogger, JsonlOptions)
    registry.add("logger", "tensorboard", TensorBoardLogger, TensorBoardOptions)
