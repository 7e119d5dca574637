"""What a recognizability score means: held-out real images of a recipe's
data, spoiled in known ways, scored by the `recognizability` metric as a
generator's images are.

A perfect generator would draw the held-out images themselves (relative
recognizability 1); each row spoils them a little more: a mirror image, a
darker copy, a slight blur, pixel noise, a smooth random warp that bends
the outlines by up to a given share of the image's width, random pen
strokes instead of the images, and the data's own images of no class where
it draws them (shapes of no kind). The table shows where the metric draws its line.

    python bench/recognizability_calibration.py [--recipe recipes/quickstart.toml]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit import Dataset, Generator, ImageList, MetricContext, default_registry, load_recipe, to_float_images
from gankit.metrics import real_halves

REPO = Path(__file__).resolve().parents[1]
Spoil = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def warp(share: float) -> Spoil:
    """Displace every pixel along a smooth random field (5x5 control points,
    bicubic) by up to ``share`` of the image's width."""

    def spoil(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        n, _, size, _ = images.shape
        # grid_sample's coordinates span the image with 2 units, so 2 x share units is share of its width
        field = (torch.rand(n, 2, 5, 5, generator=rng) * 2 - 1) * 2 * share
        field = F.interpolate(field, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
        line = torch.linspace(-1, 1, size)
        y, x = torch.meshgrid(line, line, indexing="ij")
        return F.grid_sample(images, torch.stack([x, y], -1)[None] + field, padding_mode="border", align_corners=True)

    return spoil


def noise(sd: float) -> Spoil:
    return lambda images, rng: (images + sd * torch.randn(images.shape, generator=rng)).clamp(-1, 1)


def blur(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Half the image, half its 3x3 box-filtered copy."""
    return 0.5 * images + 0.5 * F.avg_pool2d(F.pad(images, [1] * 4, mode="replicate"), 3, stride=1)


def strokes(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """In place of each image, two or three random curved pen strokes,
    white on black and about as wide as a digit's (quadratic Bezier curves
    through points in the image's middle 70 %): scribbles of no class."""
    n, channels, size, _ = images.shape
    line = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(line, line, indexing="ij")
    pixels = torch.stack([x, y], -1).reshape(1, -1, 2)  # [1, size^2, 2]
    t = torch.linspace(0, 1, 32)[None, :, None]
    ink = torch.zeros(n, size * size)
    count = torch.randint(2, 4, (n,), generator=rng)
    for stroke in range(3):
        p0, p1, p2 = (0.15 + 0.7 * torch.rand(n, 1, 2, generator=rng) for _ in range(3))
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # [n, 32, 2]
        distance = torch.cdist(pixels.expand(n, -1, -1), curve).min(dim=2).values * size  # in pixels
        drawn = (1.6 - distance).clamp(0, 1) * (stroke < count)[:, None]
        ink = torch.maximum(ink, drawn)
    return (ink.reshape(n, 1, size, size) * 2 - 1).expand(-1, channels, -1, -1).contiguous()


SPOILS: dict[str, Spoil] = {
    "the held-out images themselves": lambda images, rng: images,
    "mirrored": lambda images, rng: images.flip(-1),
    "10 % darker": lambda images, rng: (images + 1) * 0.9 - 1,
    "slightly blurred (half a 3x3 box filter)": blur,
    "pixel noise, sd 2.5 % of the range": noise(0.05),
    "pixel noise, sd 5 % of the range": noise(0.1),
    **{f"warped by up to {share:.0%} of the width": warp(share) for share in (0.02, 0.04, 0.06, 0.1, 0.15)},
    "random strokes in place of the images (2-3 curved pen strokes, white on black)": strokes,
}


class Spoiled(Generator):
    """Draws the held-out real images the metric scores as real ones,
    spoiled by ``spoil``; the data's own unrecognizable images if it is None."""

    def __init__(self, dataset: Dataset, spoil: Spoil | None, images: int) -> None:
        super().__init__()
        self.latent_size, self.dataset, self.spoil = 1, dataset, spoil
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # gives the module a device
        self.scored = real_halves(len(dataset), images)[1]  # the real images the metric scores

    def sample_latents(self, n: int, device: str | torch.device = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.arange(n, dtype=torch.float32, device=device)[:, None]

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        rng = torch.Generator().manual_seed(int(z[0, 0]))
        if self.spoil is None:
            return [to_float_images(self.dataset.unrecognizable(z.shape[0], rng))]
        images = to_float_images(self.dataset.__getitems__([self.scored[int(i)] for i in z[:, 0]])[0])
        return [self.spoil(images, rng)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "quickstart.toml")
    parser.add_argument("--images", type=int, default=1024)
    args = parser.parse_args(argv)
    registry = default_registry()
    dataset = load_recipe(args.recipe, registry).data.build().without_mirrors()  # as metrics see it
    dataset.prepare()
    metric_entry = registry.get("metric", "recognizability")
    metric = metric_entry.factory(metric_entry.options(images=args.images))
    rows = []
    own = dataset.unrecognizable(1, torch.Generator().manual_seed(0)) is not None
    for name, spoil in [*SPOILS.items(), *([("the data's own images of no class (Dataset.unrecognizable)", None)] if own else [])]:
        scores = metric.evaluate(MetricContext(Spoiled(dataset, spoil, args.images), dataset, torch.device("cpu"), 64, 0))
        rows.append((name, scores))
        print(f"  {name}: relative {scores['relative']:.3f}", file=sys.stderr)
    print(f"data: {args.recipe.name}'s; {scores['protocol']}; classifier accuracy {scores['classifier_accuracy']:.3f}\n")
    print("| real images | confident | on the manifold | recognizable | relative |")
    print("|---|---:|---:|---:|---:|")
    for name, scores in rows:
        figures = " | ".join(f"{scores[key]:.3f}" for key in ("confident", "on_manifold", "recognizable", "relative"))
        print(f"| {name} | {figures} |")
    print(f"\n`python {shlex.join(['bench/recognizability_calibration.py', *sys.argv[1:]])}`")


if __name__ == "__main__":
    main()
