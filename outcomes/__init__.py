"""What the outcome tests measure and bound, in one place that both the
tests and ``bench/outcome_spread.py`` import.

An outcome test trains for a short while and bounds what it measures (a
distance to the data, modes found, a class accuracy). Each module here holds
one outcome's recipe, its measurement (``outcome(seed)`` or
``NAME_outcome(seed)``) and its bounds, set from the spread over seeds and
thread counts that ``bench/outcome_spread.py`` measures; :data:`OUTCOMES`
lists them. This package is neither gankit's public API nor part of any
plugin: it is the repository's test support, beside ``recipes/``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from gankit import ImageList, generate, to_float_images
from gankit.testing import sliced_wasserstein

#: recipes/, which several outcomes train as they are
RECIPES = Path(__file__).resolve().parents[1] / "recipes"

#: name: (module of this package, outcome function, bounds)
OUTCOMES: dict[str, tuple[str, str, str]] = {
    "dcgan": ("dcgan_shapes", "outcome", "BOUNDS"),
    "msggan": ("msggan", "outcome", "BOUNDS"),
    "ring8": ("toy2d", "ring8_outcome", "RING8_BOUNDS"),
    "mbd": ("toy2d", "mbd_outcome", "MBD_BOUNDS"),
    "fm": ("toy2d", "fm_outcome", "FM_BOUNDS"),
    "msg_stylegan": ("msg_stylegan", "outcome", "BOUNDS"),
    "sagan": ("sagan", "outcome", "BOUNDS"),
    "cgan_hues": ("cgan_hues", "hue_outcome", "HUE_BOUNDS"),
    "acgan": ("acgan", "outcome", "BOUNDS"),
    "sgan_hues": ("sgan_hues", "hue_outcome", "HUE_BOUNDS"),
    "digits": ("digits", "outcome", "BOUNDS"),
}


def outcome_of(name: str) -> tuple[Callable[[int], dict[str, float]], Bounds]:
    """The measurement and the bounds of the outcome ``name`` of :data:`OUTCOMES`."""
    module, function, bounds = OUTCOMES[name]
    loaded = importlib.import_module(f"outcomes.{module}")
    return getattr(loaded, function), getattr(loaded, bounds)


def write_hue_classes(root: Path, classes: int = 6, per_class: int = 100, size: int = 16) -> Path:
    """PNG images in one sub-folder per class (``images`` data with
    ``labels = true``), each class shown by its hue alone (k / classes of the
    colour wheel) at a random brightness with pixel noise: labelled data
    whose classes a conditional generator can draw within seconds, so that
    a test measures its use of the label, not its drawing."""
    import colorsys

    import numpy as np
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    for k in range(classes):
        folder = root / f"hue{round(360 * k / classes):03d}"
        folder.mkdir(parents=True)
        rgb = torch.tensor(colorsys.hsv_to_rgb(k / classes, 1.0, 1.0))
        for i in range(per_class):
            brightness = 0.5 + 0.5 * torch.rand(1, generator=rng)
            image = rgb[:, None, None] * brightness + 0.05 * torch.randn(3, size, size, generator=rng)
            pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(np.ascontiguousarray(pixels)).save(folder / f"{i:03d}.png")
    return root


def labelled_images_data(root: Path, resolution: int) -> str:
    """The body of a recipe's ``[data]`` table that reads the class folders
    at ``root`` (as :func:`write_hue_classes` writes them) with their labels,
    held in memory and read in the training process."""
    return f'type = "images"\npath = "{root.as_posix()}"\nresolution = {resolution}\nlabels = true\nin_memory = "yes"\nworkers = 0'


#: An outcome test's bounds: statistic -> (comparison, value). The values
#: come from the statistic's spread over seeds and thread counts, measured
#: with ``bench/outcome_spread.py``, with a stated margin.
Bounds = dict[str, tuple[str, float]]

_COMPARISONS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}


def train_and_measure_swd(run: Any, labels: torch.Tensor | None = None) -> tuple[list[float], list[float], list[float]]:
    """Train ``run`` (an in-memory :class:`gankit.Run`), measuring how far its
    EMA generator's samples are from the data, scale by scale (the
    discriminator's input list): the sliced Wasserstein distance of 512
    samples (fixed latents; ``labels`` for a conditional generator) to 512
    real images before training and after it, and the distance between two
    sets of 512 real images, the floor a generator can reach. Outcome tests
    bound ratios of these."""
    trainer = run.trainer
    trainer.dataset.prepare()

    def reals(indices: range) -> ImageList:
        return trainer.D.prepare_reals(to_float_images(trainer.dataset.__getitems__(list(indices))[0]))

    reference, other = reals(range(1000, 1512)), reals(range(512))
    z = trainer.G.sample_latents(512, "cpu", torch.Generator().manual_seed(1))

    def distances() -> list[float]:
        return [sliced_wasserstein(fake, real) for fake, real in zip(generate(trainer.G_ema, z, labels, 128), reference, strict=True)]

    before = distances()
    noise_floor = [sliced_wasserstein(a, b) for a, b in zip(other, reference, strict=True)]
    run.train()
    return before, distances(), noise_floor


def swd_statistics(before: float, after: float, noise_floor: float) -> dict[str, float]:
    """What the outcome tests bound of one scale's :func:`train_and_measure_swd`
    distances: the distances, ``after_over_before``, and ``gap_left``, the part
    of the distance above the noise floor that training did not close."""
    return {
        "before": before,
        "after": after,
        "noise_floor": noise_floor,
        "after_over_before": after / before,
        "gap_left": (after - noise_floor) / (before - noise_floor),
    }


def assert_outcome(statistics: dict[str, float], bounds: Bounds) -> None:
    """Assert every bounded statistic, reporting all of them on failure."""
    failed = [
        f"{name} = {statistics[name]:.4g}, expected {op} {value:g}"
        for name, (op, value) in bounds.items()
        if not _COMPARISONS[op](float(statistics[name]), float(value))
    ]
    assert not failed, "; ".join(failed) + f" (all statistics: {statistics})"
