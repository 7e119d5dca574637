"""A DCGAN trained without gankit, scored by gankit's recognizability: does
gankit's loop hold the shapes DCGAN (recipes/dcgan_shapes.toml, once the quickstart) back?

The networks follow pytorch/examples' DCGAN at recipes/dcgan_shapes.toml's
width (32 channels at 16x16, doubled each step towards 4x4), with its
N(0, 0.02) weights, Adam 2e-4 with beta1 0.5 and the plain BCE loss (no
label smoothing), one D and one G step per batch of 32. The images are the
dcgan_shapes' (`shapes` at 32x32 with mirrored copies). The final generator,
in eval mode, is scored like a run's EMA generator.

    python bench/independent_dcgan.py [--seeds 0 1] [--kimg 80]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from gankit import Generator, ImageList, MetricContext, default_registry, load_recipe, to_float_images

REPO = Path(__file__).resolve().parents[1]
LATENT = 100


def networks(width: int) -> tuple[nn.Sequential, nn.Sequential]:
    G = nn.Sequential(
        nn.ConvTranspose2d(LATENT, width * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 4), nn.ReLU(True),
        nn.ConvTranspose2d(width * 4, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.ReLU(True),
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
        nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh(),
    )  # fmt: skip
    D = nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 2, width * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(width * 4, 1, 4, 1, 0, bias=False),
    )  # fmt: skip

    def init(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)

    G.apply(init)
    D.apply(init)
    return G, D


class Wrapped(Generator):
    """The hand-written generator as gankit's metrics call one."""

    def __init__(self, net: nn.Sequential) -> None:
        super().__init__()
        self.net, self.latent_size = net, LATENT

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        return [self.net(z[:, :, None, None])]


def train_and_score(seed: int, kimg: float, batch: int = 32, width: int = 32) -> dict[str, float]:
    dataset = load_recipe(REPO / "recipes" / "dcgan_shapes.toml", default_registry(), []).data.build()
    dataset.prepare()
    images = to_float_images(dataset.__getitems__(list(range(len(dataset))))[0])
    torch.manual_seed(seed)
    G, D = networks(width)
    opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)
    start = time.perf_counter()
    for _ in range(int(kimg * 1000 / batch)):
        reals = images[torch.randint(len(images), (batch,))]
        fakes = G(torch.randn(batch, LATENT, 1, 1))
        loss_d = bce(D(reals).view(-1), ones) + bce(D(fakes.detach()).view(-1), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = bce(D(fakes).view(-1), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    seconds = time.perf_counter() - start
    recognizability = default_registry().get("metric", "recognizability")
    context = MetricContext(Wrapped(G).eval(), dataset, torch.device("cpu"), 64, seed)
    scores = recognizability.factory(recognizability.options()).evaluate(context)
    return {"seed": seed, "relative": float(scores["relative"]), "classes_drawn": int(scores["classes_drawn"]), "train_seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--kimg", type=float, default=80.0)
    args = parser.parse_args(argv)
    rows = [train_and_score(seed, args.kimg) for seed in args.seeds]
    print("| seed | relative recognizability | classes drawn | training s |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['seed']} | {row['relative']:.3f} | {row['classes_drawn']} | {row['train_seconds']:.0f} |")
    print(f"\nmedian relative recognizability {statistics.median(r['relative'] for r in rows):.3f}")
    print("command: python bench/independent_dcgan.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
