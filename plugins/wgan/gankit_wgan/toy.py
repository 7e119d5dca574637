"""2D toy distributions for measuring mode coverage and the mode-coverage
metric; the MLPs that learn them are in ``gankit.networks``, which
gankit-improved extends too.

The three distributions are those of WGAN-GP's toy experiments
(Gulrajani et al. 2017, ``gan_toy.py`` of the paper's code), including their
final division. A sample is a point of shape [2]: a "resolution 1" dataset in
gankit's terms, whose picture is a scatter plot.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import attrs
import numpy as np
import torch

from gankit import BuildContext, Dataset, ImageList, Metric, MetricContext, UserError, generate, seeded_latents
from gankit.options import help_text, in_range, non_negative, one_of, positive

DISTRIBUTIONS = ("ring8", "grid25", "swissroll")


@attrs.frozen
class Mixture:
    """Centres and per-axis standard deviation of a Gaussian mixture, in the
    data's final (divided) coordinates."""

    centres: torch.Tensor  # [K, 2]
    std: float


def mixture(distribution: str) -> Mixture | None:
    """The mixture behind ``distribution``; None for the swiss roll, which has no modes."""
    if distribution == "ring8":
        # gan_toy.py: 2·{(±1,0), (0,±1), (±1/√2, ±1/√2)}, σ 0.02, then / 1.414
        s = 1.0 / math.sqrt(2.0)
        unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]
        return Mixture(torch.tensor(unit, dtype=torch.float64) * 2.0 / 1.414, 0.02 / 1.414)
    if distribution == "grid25":
        # gan_toy.py: centres (2i, 2j) for i, j in -2..2, σ 0.05, then / 2.828
        grid = [(2.0 * i, 2.0 * j) for i in range(-2, 3) for j in range(-2, 3)]
        return Mixture(torch.tensor(grid, dtype=torch.float64) / 2.828, 0.05 / 2.828)
    return None


def sample_distribution(distribution: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of ``distribution``, float64 of shape [n, 2]."""
    found = mixture(distribution)
    if found is not None:
        centres = found.centres.numpy()
        return centres[rng.integers(len(centres), size=n)] + rng.standard_normal((n, 2)) * found.std
    # The swiss roll of scikit-learn's make_swiss_roll (noise 0.25), columns 0
    # and 2, divided by 7.5, as gan_toy.py uses it.
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.random(n))
    height = 21.0 * rng.random(n)
    roll = np.stack([t * np.cos(t), height, t * np.sin(t)], axis=1) + 0.25 * rng.standard_normal((n, 3))
    return roll[:, [0, 2]] / 7.5


# --------------------------------------------------------------------------
# Dataset


@attrs.define(kw_only=True)
class Toy2dOptions:
    """WGAN-GP's 2D toy data (Gulrajani et al. 2017): ring8, grid25 or swissroll, sampled fresh for every batch."""

    distribution: Literal["ring8", "grid25", "swissroll"] = attrs.field(
        default="ring8", validator=one_of(DISTRIBUTIONS), metadata=help_text("ring8 (8 Gaussians), grid25 (25 Gaussians) or swissroll")
    )
    seed: int = attrs.field(
        default=0, validator=non_negative(), metadata=help_text("seeds the samples; batch b depends only on (seed, position)")
    )


#: Virtual length of a toy dataset; samples are drawn per batch, never stored.
_TOY_LENGTH = 2**40


class Toy2dDataset(Dataset):
    """WGAN-GP's 2D toy data (Gulrajani et al. 2017): ring8, grid25 or swissroll, sampled fresh for every batch."""

    # Read in order: every batch is a fresh draw, seeded by its position.
    shuffle: ClassVar[bool] = False

    def __init__(self, options: Toy2dOptions) -> None:
        self.options = options
        self.context = BuildContext(resolution=1, channels=2, num_classes=0)
        self.mixture = mixture(options.distribution)

    def __len__(self) -> int:
        return _TOY_LENGTH

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # Seeded by the batch's first position, so a resumed run draws the
        # batches it would have drawn.
        rng = np.random.default_rng([self.options.seed, indices[0] if indices else 0, len(indices)])
        points = torch.from_numpy(sample_distribution(self.options.distribution, len(indices), rng)).float()
        return points, torch.zeros(len(indices), dtype=torch.int64)

    def picture(self, images: ImageList, nrow: int | None = None) -> torch.Tensor:
        return scatter_plot(images[-1], self.mixture)


def scatter_plot(points: torch.Tensor, found: Mixture | None, size: int = 512, extent: float = 2.2) -> torch.Tensor:
    """Points (blue) over the mixture's centres (red crosses) with their 3σ
    circles, on [-extent, extent]²; a float RGB image [3, size, size] in [0, 1]."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)

    def pixel(x: float, y: float) -> tuple[float, float]:
        return ((x + extent) / (2 * extent) * (size - 1), (extent - y) / (2 * extent) * (size - 1))

    for value in (-2, -1, 0, 1, 2):  # light axes every unit
        (px, py) = pixel(value, value)
        draw.line([(px, 0), (px, size)], fill=(235, 235, 235))
        draw.line([(0, py), (size, py)], fill=(235, 235, 235))
    for x, y in points.detach().float().cpu().reshape(-1, 2).tolist():
        if math.isfinite(x) and math.isfinite(y):
            px, py = pixel(x, y)
            draw.ellipse([px - 1.2, py - 1.2, px + 1.2, py + 1.2], fill=(40, 90, 200))
    if found is not None:
        radius = 3 * found.std / (2 * extent) * (size - 1)
        for x, y in found.centres.tolist():
            px, py = pixel(x, y)
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], outline=(220, 40, 40))
            draw.line([(px - 4, py), (px + 4, py)], fill=(220, 40, 40))
            draw.line([(px, py - 4), (px, py + 4)], fill=(220, 40, 40))
    array = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return array.permute(2, 0, 1).float() / 255.0


# --------------------------------------------------------------------------
# Networks


# --------------------------------------------------------------------------
# Metric


@attrs.define(kw_only=True)
class ModeCoverageOptions:
    """Modes captured, high-quality fraction and KL from uniform on a toy2d mixture (VEEGAN; PacGAN)."""

    samples: int = attrs.field(
        default=2500, validator=positive(), metadata=help_text("generated points scored (2,500 in VEEGAN and PacGAN)")
    )
    threshold_std: float = attrs.field(
        default=3.0, validator=in_range(0.1, 100.0), metadata=help_text("a point is high quality within this many σ of its nearest centre")
    )


@attrs.frozen
class Coverage:
    modes: int
    high_quality: float
    kl: float
    histogram: list[int]


def mode_coverage(points: torch.Tensor, found: Mixture, threshold_std: float = 3.0) -> Coverage:
    """The VEEGAN/PacGAN protocol (Srivastava et al. 2017 §5.1; Lin et al.
    2018 §5): a point is high quality when it lies within ``threshold_std``·σ
    of its nearest centre; a mode is captured when it is the nearest centre of
    at least one high-quality point. The KL is that of the histogram of
    high-quality points over the modes from the uniform distribution,
    Σ p log(p K), with 0 log 0 = 0; it is log K when one mode takes them all,
    and infinite when no point is of high quality."""
    points = points.detach().double().cpu().reshape(-1, 2)
    distances = torch.cdist(points, found.centres)
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= threshold_std * found.std
    histogram = torch.bincount(nearest[good], minlength=len(found.centres))
    total = int(histogram.sum())
    if total == 0:
        kl = math.inf
    else:
        p = histogram.double() / total
        nonzero = p > 0
        kl = float((p[nonzero] * (p[nonzero] * len(found.centres)).log()).sum())
    return Coverage(modes=int((histogram > 0).sum()), high_quality=float(good.double().mean()), kl=kl, histogram=histogram.tolist())


class ModeCoverage(Metric):
    """Modes captured, high-quality fraction and KL from uniform on a toy2d mixture (VEEGAN; PacGAN)."""

    def __init__(self, options: ModeCoverageOptions) -> None:
        self.options = options

    def evaluate(self, ctx: MetricContext) -> dict[str, float | int | str]:
        found = getattr(ctx.dataset, "mixture", None)
        if found is None:
            raise UserError('mode_coverage needs a Gaussian mixture: data.type = "toy2d" with distribution ring8 or grid25')
        z, _ = seeded_latents(ctx.generator, self.options.samples, ctx.seed)
        points = generate(ctx.generator, z.to(ctx.device), None, ctx.batch_size)[-1]
        coverage = mode_coverage(points, found, self.options.threshold_std)
        result: dict[str, float | int | str] = {
            "modes": coverage.modes,
            "of_modes": len(found.centres),
            "high_quality": round(coverage.high_quality, 4),
            "protocol": f"{self.options.samples} samples, high quality within {self.options.threshold_std:g} sigma of the nearest centre",
        }
        if math.isfinite(coverage.kl):  # undefined when no point is of high quality
            result["kl"] = round(coverage.kl, 4)
        return result
