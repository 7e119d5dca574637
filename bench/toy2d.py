"""Mode coverage on the 2D Gaussian mixtures: does a technique find every
mode, and are its samples on them?

Each toy recipe is trained for the same number of generator steps with
several seeds (the recipe's ``train.seed`` and ``data.seed``), and its EMA
generator is scored by ``mode_coverage`` (2,500 samples, high quality within
3σ of the nearest centre; Srivastava et al. 2017, Lin et al. 2018). The table
gives modes captured, the high-quality percentage and the KL of the mode
histogram from uniform as mean ± sd over seeds, the seeds that captured every
mode, and the wall time of one run. Runs are sequential: on a small CPU,
parallel runs only share the same cores.

    python bench/toy2d.py [--g-steps 2000] [--seeds 5] [--recipes toy_ring8_wgangp ...] [--out bench/results/toy2d.json [--resume]]

Seeds run in the outer loop, so a benchmark cut short still has every
recipe's first seeds; ``--resume`` keeps the runs already in ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from gankit import Run, default_registry, environment, load_recipe

from reporting import toy2d_section

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("toy_ring8_wgangp", "toy_grid25_wgangp", "toy_grid25_gan", "toy_grid25_wgan_clip")


def run_once(name: str, seed: int, g_steps: int) -> dict[str, float]:
    path = REPO / "recipes" / f"{name}.toml"
    registry = default_registry()
    recipe = load_recipe(path, registry)
    # the budget is generator steps; kimg counts the real samples the critic sees
    d_steps = getattr(recipe.scheduler.options, "d_steps", 1)
    kimg = g_steps * recipe.train.batch_size * d_steps / 1000
    overrides = [
        f"train.seed={seed}",
        f"data.seed={seed}",
        f"train.kimg={kimg}",
        f"train.tick_kimg={kimg}",
        "train.sample_ticks=0",
        "train.checkpoint_ticks=0",
        "train.metric_ticks=0",
    ]
    started = time.perf_counter()
    record = Run.in_memory(path, overrides).train()
    seconds = time.perf_counter() - started
    score = record["metrics"]["mode_coverage"]
    return {
        "modes": score["modes"],
        "of_modes": score["of_modes"],
        "high_quality": score["high_quality"],
        "kl": score.get("kl", math.inf),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--g-steps", type=int, default=2000, help="generator steps per run (the fixed budget)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--out", type=Path, help="also write every run's scores to this JSON file")
    parser.add_argument("--resume", action="store_true", help="keep the runs already written to --out and run only the missing seeds")
    args = parser.parse_args()
    if args.resume and not args.out:
        parser.error("--resume needs --out")

    command = shlex.join(["python", "bench/toy2d.py", *sys.argv[1:]])
    record: dict[str, Any] = {"kind": "toy2d", "g_steps": args.g_steps, "runs": {}}
    if args.resume and args.out.exists():
        record = json.loads(args.out.read_text())
        if record.get("g_steps") != args.g_steps:
            parser.error(f"{args.out} holds runs of {record.get('g_steps')} generator steps, not {args.g_steps}")
    results: dict[str, list[dict[str, float]]] = record["runs"]
    for name in args.recipes:
        results.setdefault(name, [])
    record.update(command=command, date=datetime.date.today().isoformat(), environment=environment())
    for seed in range(args.seeds):
        for name in args.recipes:
            if seed < len(results[name]):
                continue
            score = run_once(name, seed, args.g_steps)
            results[name].append(score)
            print(
                f"{name} seed {seed}: {score['modes']}/{score['of_modes']} modes, {100 * score['high_quality']:.1f}% high "
                f"quality, KL {score['kl']:.3f}, {score['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            if args.out:  # after every run, so that a long benchmark cut short keeps what it measured
                args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(toy2d_section(record)))


if __name__ == "__main__":
    main()
