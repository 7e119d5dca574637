"""How much gankit's generic loop costs next to a hand-written PyTorch loop.

Both train the same DCGAN modules (recipes/dcgan_shapes.toml's) on the same
in-memory `shapes` batches for the same number of iterations: one D step and
one G step with the non-saturating loss and Adam, then an EMA update. The
hand-written loop is what one would write without a framework. Trials
alternate between the two and the median is reported.

    python bench/loop_overhead.py [--iterations 300] [--trials 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit import Recipe, Run, default_registry, load_recipe, to_float_images, update_ema

REPO = Path(__file__).resolve().parents[1]


def _recipe(iterations: int, batch: int, device: str) -> Recipe:
    overrides = [
        f"train.kimg={iterations * batch / 1000}",
        f"train.batch_size={batch}",
        f"train.device={device}",
        f"train.tick_kimg={iterations * batch / 1000}",
        "train.sample_ticks=0",
        "train.checkpoint_ticks=0",
        "train.ema_rampup=0",
    ]
    return load_recipe(REPO / "recipes" / "dcgan_shapes.toml", default_registry(), overrides)


def gankit_loop(iterations: int, batch: int, device: str) -> float:
    run = Run.in_memory(_recipe(iterations, batch, device), progress="none")
    run.trainer.dataset.prepare()
    start = time.perf_counter()
    run.train()
    return iterations * batch / (time.perf_counter() - start)


def plain_loop(iterations: int, batch: int, device: str) -> float:
    """The same modules and data, trained by hand."""
    torch.manual_seed(0)
    trainer = Run.in_memory(_recipe(iterations, batch, device)).trainer  # only to build the same modules
    G, D, dataset = trainer.G, trainer.D, trainer.dataset
    dataset.prepare()
    G_ema = copy.deepcopy(G).eval()
    opt_g, opt_d = trainer.optimizers["generator"], trainer.optimizers["discriminator"]
    dev = torch.device(trainer.device)
    beta = 0.5 ** (batch / (trainer.options.ema_halflife_kimg * 1000))
    order = torch.randperm(len(dataset))
    start = time.perf_counter()
    for step in range(iterations):
        indices = order[(step * batch) % (len(dataset) - batch) :][:batch].tolist()
        images, _ = dataset.__getitems__(indices)
        reals = to_float_images(images.to(dev))
        z = torch.randn(batch, G.latent_size, device=dev)
        with torch.no_grad():
            fakes = G(z)[-1]
        d_loss = F.softplus(-D([reals])).mean() + F.softplus(D([fakes])).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        for p in D.parameters():
            p.requires_grad_(False)
        z = torch.randn(batch, G.latent_size, device=dev)
        g_loss = F.softplus(-D(G(z))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        update_ema(G_ema, G, beta)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return iterations * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    plain_loop(20, args.batch, args.device)  # warm-up: allocator, kernels
    results: dict[str, list[float]] = {"plain PyTorch": [], "gankit": []}
    for _ in range(args.trials):
        results["plain PyTorch"].append(plain_loop(args.iterations, args.batch, args.device))
        results["gankit"].append(gankit_loop(args.iterations, args.batch, args.device))
    plain, ours = statistics.median(results["plain PyTorch"]), statistics.median(results["gankit"])
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, DCGAN 32x32 (dcgan_shapes), "
        f"batch {args.batch}, {args.iterations} iterations, median of {args.trials}"
    )
    print()
    print("| loop          | img/s (median) | trials                 |")
    print("|---------------|---------------:|------------------------|")
    for name, values in results.items():
        print(f"| {name:<13} | {statistics.median(values):14.1f} | {', '.join(f'{v:.0f}' for v in values):<22} |")
    print()
    print(f"gankit / plain img/s ratio: {ours / plain:.3f}")


if __name__ == "__main__":
    main()
