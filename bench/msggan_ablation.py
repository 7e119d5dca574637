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

The defaults test the paper's central claim, that multi-scale gradients let
a GAN train at a resolution without growing it progressively: every scale
(MSG-GAN) against the full-resolution image alone, the same generator,
steps and seeds, the two arms interleaved seed by seed. The budget is what
this 2-core CPU allows for 3 seeds of each arm in about half an hour, with
another job on the second core: 30 kimg (1,875 steps of batch 16) at about
100 img/s, then SWD on 512 images (about a minute). That is early training
by the paper's measure (millions of images): read the outcome as what MSG
does in a GAN's first two thousand steps at 64x64.

Runs are sequential and use one intra-op thread: on a small shared CPU,
OpenMP's spinning workers make these small convolutions many times slower,
and parallel runs only share the same cores.

    python bench/msggan_ablation.py [--kimg 30] [--seeds 3] [--swd-images 512] [--variants all none] [--out FILE.json]

On CIFAR-10, the same claim by FID-5k after a time budget instead: each
arm of a CIFAR-10 MSG recipe trained by bench/cifar10.py for the same
minutes, seeds interleaved (all 0, none 0, all 1, none 1, ...), every
training before any scoring. The "all" arm is the recipe as it is, so its
runs are the recipe's own CIFAR-10 record; the others are its variants
(``+connections-none``). Each piece is resumable as bench/cifar10.py's are.

    python bench/msggan_ablation.py --cifar10 msggan_cifar10_cpu [--seeds 2] [--minutes 10 20 30] [--variants all none] [--work DIR]
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit import Run, environment

from reporting import msggan_ablation_section

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
        "--kimg", type=float, default=30.0, help="real images shown per run, in thousands (the same steps for every variant)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--swd-images", type=int, default=512, help="real and generated images for SWD (16384 in the paper)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["all", "none"],
        choices=list(VARIANTS),
        help="connections (coarse, fine: the ablation)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, help="also write every run's scores to this JSON file")
    parser.add_argument("--cifar10", metavar="RECIPE", help="the CIFAR-10 MSG recipe whose arms train for --minutes (bench/cifar10.py)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0, 30.0], help="with --cifar10: the milestones")
    parser.add_argument("--work", type=Path, help="with --cifar10: bench/cifar10.py's --work (its default if not given)")
    args = parser.parse_args()
    if args.cifar10:
        cifar10_arms(args.cifar10, args.variants, args.seeds, args.minutes, args.work)
        return
    torch.set_num_threads(args.threads)

    command = shlex.join(["python", "bench/msggan_ablation.py", *sys.argv[1:]])
    record: dict[str, Any] = {
        "kind": "msggan_ablation",
        "command": command,
        "date": datetime.date.today().isoformat(),
        "environment": {**environment(), "threads": args.threads},
        "kimg": args.kimg,
        "swd_images": args.swd_images,
        "seeds": args.seeds,
        "variants": {connections: VARIANTS[connections] for connections in args.variants},
        "runs": {connections: [] for connections in args.variants},
    }
    for seed in range(args.seeds):  # seed-major, so that a slower spell of the machine hits every variant alike
        for connections in args.variants:
            score = run_once(connections, seed, args.kimg, args.swd_images)
            record["runs"][connections].append(score)
            levels = ", ".join(f"{key} {value:.1f}" for key, value in score.items() if key.startswith("swd_"))
            print(f"{connections} seed {seed}: {levels}; {score['seconds']:.0f} s", file=sys.stderr, flush=True)
            if args.out:  # after every run, so that a benchmark cut short keeps what it measured
                args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(msggan_ablation_section(record)))


def cifar10_arms(recipe: str, variants: list[str], seeds: int, minutes: list[float], work: Path | None = None) -> None:
    import cifar10

    def arguments(connections: str, seed: int) -> list[str]:
        milestones = ["--minutes", *(f"{value:g}" for value in minutes)]
        change = ["--variant", f"connections-{connections}", "--set", f'discriminator.connections="{connections}"']
        arm = [] if connections == "all" else change
        folders = [] if work is None else ["--work", str(work)]
        return [recipe, "--seed", str(seed), *milestones, *folders, *arm]

    for seed in range(seeds):  # every training first, one at a time, arms interleaved
        for connections in variants:
            cifar10.main([*arguments(connections, seed), "--train-only"])
    for seed in range(seeds):
        for connections in variants:
            cifar10.main([*arguments(connections, seed), "--score-only"])


if __name__ == "__main__":
    main()
