"""Which of MSG-GAN's multi-scale connections matter? The connection ablation
of Karnewar & Wang 2020 on the built-in shapes at 64x64.

Four discriminators that differ only in which generator scales they see:
every scale (MSG-GAN), the coarse half (4x4, 8x8) or the fine half (16x16,
32x32) besides the full-resolution image, or the full-resolution image
alone. The generator is the same in all four. Each is trained from
``recipes/msggan_shapes.toml`` for the same number of steps, with the same
seeds (``train.seed``; the data stays the same), and scored by the sliced
Wasserstein distance of gankit-progan (``swd``: Laplacian-pyramid patches,
x1e3 per level, Karras et al. 2018) on the final EMA generator. The table
gives each level and their average as mean ± sd over seeds.

The default budget was picked by measurement on a 2-core CPU shared with
other work: training ran at about 25 img/s, and SWD took about 1 minute a
run on 512 images and 4 on 2,048. 4 kimg (250 steps) and 256 images keep the
12 runs of 4 variants x 3 seeds to about 40 minutes there. That is early
training, and SWD on 256 images is noisy: read the sd.

Runs are sequential and use one intra-op thread: on a small shared CPU,
OpenMP's spinning workers make these small convolutions many times slower,
and parallel runs only share the same cores.

    python bench/msggan_ablation.py [--kimg 4] [--seeds 3] [--swd-images 256] [--variants all coarse fine none] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from gankit import Run

from reporting import mean_sd

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "msggan_shapes.toml"
VARIANTS = {
    "all": "all scales (MSG-GAN)",
    "coarse": "coarse only (4, 8)",
    "fine": "fine only (16, 32)",
    "none": "none (64 only)",
}


def run_once(connections: str, seed: int, kimg: float, swd_images: int) -> dict[str, float]:
    overrides = [
        f"discriminator.connections={json.dumps(connections)}",
        f"train.seed={seed}",
        f"train.kimg={kimg}",
        f"train.tick_kimg={kimg}",
        "train.sample_ticks=0",
        "train.checkpoint_ticks=0",
        "train.metric_ticks=0",
        'train.device="cpu"',
        f"metrics.swd.images={swd_images}",
    ]
    started = time.perf_counter()
    record = Run.in_memory(RECIPE, overrides).train()
    swd = record["metrics"]["swd"]
    scores = {key: float(value) for key, value in swd.items() if key.startswith("swd_")}
    return {**scores, "seconds": time.perf_counter() - started, "steps": record["g_steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--kimg", type=float, default=4.0, help="real images shown per run, in thousands (the same steps for every variant)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--swd-images", type=int, default=256, help="real and generated images for SWD (16384 in the paper)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, help="also write every run's scores to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results: dict[str, list[dict[str, float]]] = {}
    for seed in range(args.seeds):  # seed-major, so that a slower spell of the machine hits every variant alike
        for connections in args.variants:
            score = run_once(connections, seed, args.kimg, args.swd_images)
            results.setdefault(connections, []).append(score)
            levels = ", ".join(f"{key} {value:.1f}" for key, value in score.items() if key.startswith("swd_"))
            print(f"{connections} seed {seed}: {levels}; {score['seconds']:.0f} s", file=sys.stderr, flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))

    levels = [key for key in next(iter(results.values()))[0] if key.startswith("swd_")]
    steps = int(next(iter(results.values()))[0]["steps"])
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"recipes/msggan_shapes.toml at 64x64, {args.kimg:g} kimg ({steps} steps of each network) per run, "
        f"seeds 0..{args.seeds - 1}; SWD x1e3 of the final EMA generator, {args.swd_images} images, mean ± sd over seeds (lower is better)"
    )
    print()
    print("| connections | " + " | ".join(levels) + " | s/run |")
    print("|---|" + "---:|" * (len(levels) + 1))
    for connections, runs in results.items():
        cells = [mean_sd([run[level] for run in runs], 1) for level in levels]
        print(f"| {VARIANTS[connections]} | " + " | ".join(cells) + f" | {statistics.mean(run['seconds'] for run in runs):.0f} |")


if __name__ == "__main__":
    main()
