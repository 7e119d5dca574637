"""Train a recipe as a user would, score its final EMA generator, and keep
the figures, the command, the machine and a sample grid for docs/results.md.

    python bench/recipe_results.py quickstart [--seeds 0 1 2] [--metric recognizability] [--set KEY=VALUE ...]
    python bench/recipe_results.py msggan_shapes --minutes 30 --set train.kimg=1000 --metric recognizability

Each seed trains recipes/NAME.toml with ``train.seed`` set to it (the data
stay the recipe's) into a temporary run folder, with the recipe's own
metrics and any named by ``--metric`` evaluated once at the end. With
``--minutes``, each training stops at the end of the tick that reaches that
many minutes of training (``train.minutes``; or at the recipe's kimg, if
sooner), and the metrics and the sample grid are those of
the EMA generator where it got to: "what does this recipe draw in 30
minutes on this machine". The first
seed's last sample grid is copied to docs/results/NAME.png, and the real
images the run drew beside it to docs/results/NAME-reals.png. The record
goes to bench/results/recipe-NAME.json; ``python scripts/results_page.py``
then remakes docs/results.md from every record. Runs are sequential: on a
small CPU, parallel runs only share the same cores and every time doubles.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from gankit import Run, default_registry, load_recipe

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
GRIDS = REPO / "docs" / "results"


def _numbers(scores: dict[str, Any]) -> dict[str, Any]:
    """A metric's numbers and its protocol; the seconds it took stay out of the figures."""
    return {key: value for key, value in scores.items() if key != "seconds"}


def training_figures(run_dir: Path, last: dict[str, Any], since_kimg: float = 0.0) -> dict[str, Any]:
    """How far a run got and how fast, from its log: kimg, generator steps and
    training seconds at its last tick, the median img/s and the peak memory of
    the ticks after ``since_kimg`` (a resumed piece's own). A ``last`` record
    without kimg (a resume whose budget was already spent) reads the log's last tick."""
    ticks = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    if "kimg" not in last:
        last = ticks[-1]
    piece = [tick for tick in ticks if tick["kimg"] > since_kimg] or ticks[-1:]
    return {
        "kimg": round(last["kimg"], 3),
        "g_steps": last["g_steps"],
        "train_seconds": round(last.get("train_s", last["elapsed_s"]), 1),
        "img_per_s": round(statistics.median(tick["img_per_s"] for tick in piece), 1),
        "peak_memory_mb": max(tick["memory_mb"] for tick in piece),
    }


def run_once(recipe: Path, overrides: list[str], seed: int, work: Path, minutes: float | None = None) -> dict[str, Any]:
    run_dir = work / f"seed{seed}"
    budget = [f"train.minutes={minutes:g}"] if minutes is not None else []
    run = Run.start(recipe, [*overrides, *budget, f"train.seed={seed}"], run_dir=run_dir, progress="lines")
    last = run.train()  # a run stopped by train.minutes is finished: it scored and drew where it got to
    return {
        "seed": seed,
        **training_figures(run_dir, last),
        "metrics": {name: _numbers(scores) for name, scores in last.get("metrics", {}).items()},
        "environment": json.loads((run_dir / "env.json").read_text()),
        "grid": sorted((run_dir / "samples").glob("fakes-*.png"))[-1],
        "reals_grid": run_dir / "samples" / "reals.png",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="a recipe's name in recipes/ (or a path to one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--metric", action="append", default=[], help="a metric evaluated at the end besides the recipe's own (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="a recipe override (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="the record (default: bench/results/recipe-NAME.json)")
    parser.add_argument("--minutes", type=float, default=None, help="stop each training after this many minutes; score it there")
    parser.add_argument("--note", default="", help="what a reader should know about how it was run (a shared machine, say)")
    args = parser.parse_args()

    recipe = Path(args.recipe) if args.recipe.endswith(".toml") else REPO / "recipes" / f"{args.recipe}.toml"
    name = load_recipe(recipe, default_registry()).name
    # metric_ticks = 0: the metrics are evaluated once, at the end
    overrides = [*args.overrides, *(f"metrics.{metric}.type={metric}" for metric in args.metric), "train.metric_ticks=0"]
    command = shlex.join(["python", "bench/recipe_results.py", *sys.argv[1:]])
    print(command, flush=True)

    runs = []
    with tempfile.TemporaryDirectory(prefix=f"gankit-results-{name}-") as work:
        for seed in args.seeds:
            result = run_once(recipe, overrides, seed, Path(work), args.minutes)
            print(f"seed {seed}: {result['train_seconds']:.0f} s, {json.dumps(result['metrics'])}", flush=True)
            runs.append(result)
        GRIDS.mkdir(parents=True, exist_ok=True)
        grid, reals_grid = GRIDS / f"{name}.png", GRIDS / f"{name}-reals.png"
        shutil.copyfile(runs[0]["grid"], grid)
        shutil.copyfile(runs[0]["reals_grid"], reals_grid)
    environment = runs[0]["environment"]
    record = {
        "kind": "recipe",
        "recipe": name,
        "recipe_file": str(recipe.resolve().relative_to(REPO)) if recipe.resolve().is_relative_to(REPO) else str(recipe),
        "command": command,
        "overrides": args.overrides,
        "minutes": args.minutes,
        "note": args.note,
        "date": datetime.date.today().isoformat(),
        "environment": {
            key: environment.get(key) for key in ("python", "torch", "gankit", "git", "device", "gpu", "cpu", "cpu_count", "threads")
        },
        "grid": str(grid.relative_to(REPO)),
        "reals_grid": str(reals_grid.relative_to(REPO)),
        "runs": [{key: value for key, value in run.items() if key not in ("environment", "grid", "reals_grid")} for run in runs],
    }
    out = args.out or RESULTS / f"recipe-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out} and {grid}; python scripts/results_page.py remakes docs/results.md")


if __name__ == "__main__":
    main()
