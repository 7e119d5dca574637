"""Train a CIFAR-10 recipe for a time budget on this machine and score it by
FID-5k at each milestone: "what does this recipe draw after 10, 20 and 30
minutes of training here".

    python bench/cifar10.py dcgan_cifar10 [--seed 0] [--minutes 10 20 30] [--n 5000] [--raw]
        [--data ../shared/data/cifar10-jpeg.zip/train] [--work runs/cifar10] [--set KEY=VALUE ...]
        [--train-only | --score-only]
    python bench/cifar10.py msggan_cifar10_cpu --variant connections-none --set 'discriminator.connections="none"'
    python bench/cifar10.py --plots

The work is split into pieces that each end with a file, so a stopped
benchmark carries on where it was when run again with the same arguments:

1. **training to each milestone** (``train.minutes`` = 10, then ``--resume``
   with 20, then 30): the run's newest checkpoint is copied to
   ``WORK/RECIPE-sSEED/at-10min.pt`` and so on; the recipe's own metrics are
   turned off (``metrics = {}``), so that every minute goes to training,
   and its tick is ``--tick-kimg`` (5): a piece stops at the end of the
   tick that crosses its budget, and a recipe's own tick (40 kimg for
   ProGAN, several minutes at a CPU's 100 images a second) would carry a
   milestone minutes past its budget;
2. **scoring each milestone's checkpoint**: ``gankit eval CHECKPOINT --n 5000``
   (FID of 5,000 samples of the EMA generator against the 50,000 training
   images, without hflip's mirror copies, computed once and cached), and
   with ``--raw`` the raw generator's too;
3. a **sample grid** of the last milestone, to docs/results/cifar10/.

``--variant LABEL`` names a change made with ``--set`` (an ablation's
arm): its runs, folders and record are the recipe's name with ``+LABEL``.
The record, bench/results/cifar10-RECIPE.json, is rewritten after every
piece: the training's kimg, seconds, img/s (median over its ticks), peak
memory and tick (``train.tick_kimg`` as the run resolved it), and each score with its protocol and the seconds it took. Training
is timing-sensitive: run one training at a time on an idle machine
(``--train-only``); scoring is not, and ``--score-only`` may run later.
``--plots`` draws FID against training minutes, one plot a recipe and one
with all of them, from every record (matplotlib).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from recipe_results import training_figures

from gankit import Run, default_registry, environment, load_recipe

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PICTURES = REPO / "docs" / "results" / "cifar10"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10-jpeg.zip" / "train"

#: Published FIDs at convergence on GPUs (../shared/PAPERS.md), for context only:
#: other protocols (50k samples, other sample counts, the original arrays), other budgets.
PUBLISHED = {
    "dcgan_cifar10": "StudioGAN DCGAN 49.03",
    "wgangp_cifar10": "StudioGAN WGAN-GP 25.85; Mimicry WGAN-GP 22.29",
    "sagan_cifar10": "StudioGAN SAGAN 14.01",
}


def published(recipe: Path, name: str) -> str:
    """The published figure for a recipe, or for the paper recipe a CPU
    variant extends, named as such: its networks are wider than the variant's."""
    if name in PUBLISHED:
        return PUBLISHED[name]
    extends = tomllib.loads(recipe.read_text()).get("extends")
    paper = Path(extends).stem if isinstance(extends, str) else ""
    return f"{PUBLISHED[paper]} (with {paper}'s widths)" if paper in PUBLISHED else ""


def record_path(name: str) -> Path:
    return RESULTS / f"cifar10-{name}.json"


def read_record(name: str, variant: str = "") -> dict[str, Any]:
    path = record_path(name + (f"+{variant}" if variant else ""))
    return json.loads(path.read_text()) if path.is_file() else {"kind": "cifar10", "recipe": name, "variant": variant, "runs": {}}


def write_record(record: dict[str, Any]) -> None:
    path = record_path(record["recipe"] + (f"+{record['variant']}" if record.get("variant") else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)


def milestone_file(folder: Path, minutes: float) -> Path:
    return folder / f"at-{minutes:g}min.pt"


def train_to(recipe: Path, overrides: list[str], folder: Path, minutes: float) -> dict[str, Any]:
    """Train (or resume) the run in ``folder/run`` until ``minutes`` of
    training; keep a copy of its checkpoint there and return the piece's figures."""
    run_dir = folder / "run"
    budget = f"train.minutes={minutes:g}"
    started = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("*.pt"))
    if started:
        run = Run.resume(run_dir, [budget], progress="lines")
    else:
        run = Run.start(recipe, [*overrides, budget], run_dir=run_dir, progress="lines")
    first_kimg = run.trainer.nimg / 1000 if run.trainer is not None else 0.0
    last = run.train()
    checkpoints = sorted((run_dir / "checkpoints").glob("*.pt"))
    shutil.copyfile(checkpoints[-1], milestone_file(folder, minutes))
    figures = training_figures(run_dir, last, first_kimg)
    return {"minutes": minutes, **figures, "tick_kimg": run.recipe.train.tick_kimg, "stopped": last.get("stopped", "")}


def gankit_eval(arguments: list[str]) -> dict[str, Any]:
    """``gankit eval ... --json``, as a user runs it; its FID line with the wall seconds."""
    command = [sys.executable, "-m", "gankit", "eval", *arguments, "--metric", "fid", "--json"]
    start = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed:\n{finished.stderr}")
    scores = json.loads(finished.stdout.strip().splitlines()[-1])
    return {**scores, "wall_seconds": round(time.perf_counter() - start, 1), "command": shlex.join(["gankit", "eval", *arguments])}


def save_grid(checkpoint: Path, out: Path) -> None:
    run = Run.from_checkpoint(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    run.save_picture(run.sample(64, seed=0), out)


def run_overrides(data: str, tick_kimg: float, given: list[str], seed: int) -> list[str]:
    """The overrides every run gets: the data, a short tick (``given`` may
    set its own), the seed, and no metrics during training."""
    return [f"data.path={data}", f"train.tick_kimg={tick_kimg:g}", *given, f"train.seed={seed}", "metrics={}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", nargs="?", help="a recipe's name in recipes/ (or a path to one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0, 30.0])
    parser.add_argument("--n", type=int, default=5000, help="generated images per FID")
    parser.add_argument("--tick-kimg", type=float, default=5.0, help="the runs' train.tick_kimg: how far a piece may run past its budget")
    parser.add_argument("--raw", action="store_true", help="score the raw generator too")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="CIFAR-10's training images (a folder or zip/folder)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "cifar10", help="run folders and milestone checkpoints")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="a recipe override")
    parser.add_argument("--note", default="", help="what a reader should know about how it was run")
    parser.add_argument("--variant", default="", help="a label for the change --set makes (an ablation's arm)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--train-only", action="store_true", help="train to every milestone, score nothing")
    only.add_argument("--score-only", action="store_true", help="score the milestones trained so far")
    only.add_argument("--plots", action="store_true", help="draw the FID plots from every record, train and score nothing")
    args = parser.parse_args(argv)
    if args.plots:
        return draw_plots()
    if args.recipe is None:
        parser.error("name a recipe (or --plots)")

    recipe = Path(args.recipe) if args.recipe.endswith(".toml") else REPO / "recipes" / f"{args.recipe}.toml"
    name = load_recipe(recipe, default_registry()).name
    overrides = run_overrides(args.data, args.tick_kimg, args.overrides, args.seed)
    label = name + (f"+{args.variant}" if args.variant else "")
    folder = args.work / f"{label}-s{args.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "bench/cifar10.py", *(argv if argv is not None else sys.argv[1:])])
    print(command, flush=True)

    record = read_record(name, args.variant)
    record.update(recipe_file=str(recipe.resolve().relative_to(REPO)) if recipe.resolve().is_relative_to(REPO) else str(recipe))
    record["published"] = published(recipe, name)
    run = record["runs"].setdefault(str(args.seed), {"overrides": args.overrides, "note": args.note, "milestones": []})
    milestones = {entry["minutes"]: entry for entry in run["milestones"]}

    def save() -> None:
        run["milestones"] = [milestones[minutes] for minutes in sorted(milestones)]
        run["date"] = datetime.date.today().isoformat()
        write_record(record)

    if not args.score_only:
        for minutes in sorted(args.minutes):
            if milestone_file(folder, minutes).is_file() and minutes in milestones:
                continue
            piece = train_to(recipe, overrides, folder, minutes)
            milestones[minutes] = {**milestones.get(minutes, {}), **piece, "train_command": command}
            env = environment(args.seed)
            run["environment"] = {
                key: env.get(key) for key in ("python", "torch", "gankit", "git", "device", "cpu", "cpu_count", "threads")
            }
            save()
            print(f"{label} seed {args.seed}: {minutes:g} min, {piece['kimg']} kimg, {piece['img_per_s']} img/s", flush=True)
    if args.train_only:
        return 0
    for minutes in sorted(args.minutes):
        checkpoint = milestone_file(folder, minutes)
        entry = milestones.get(minutes)
        if entry is None or not checkpoint.is_file():
            continue
        wanted = {"fid_ema": []} | ({"fid_raw": ["--raw"]} if args.raw else {})
        for key, flags in wanted.items():
            if key in entry:
                continue
            scores = gankit_eval([str(checkpoint), "--n", str(args.n), *flags])
            entry[key] = scores["fid"]
            entry[f"{key}_protocol"] = {k: v for k, v in scores.items() if k not in ("fid", "metric")}
            save()
            print(f"{label} seed {args.seed} at {minutes:g} min: {key} {scores['fid']:.2f} ({scores['wall_seconds']:.0f} s)", flush=True)
    last = max(minutes for minutes in milestones if milestone_file(folder, minutes).is_file()) if milestones else None
    if last is not None and args.seed == 0:
        grid = PICTURES / f"{label}.png"
        save_grid(milestone_file(folder, last), grid)
        record["grid"] = {"file": str(grid.relative_to(REPO)), "minutes": last, "seed": args.seed}
        save()
    return 0


def _label(record: dict[str, Any]) -> str:
    return record["recipe"] + (f"+{record['variant']}" if record.get("variant") else "")


def draw_plots() -> int:
    """FID against training minutes: docs/results/cifar10/NAME-fid.png for
    each record, and all of them in docs/results/cifar10/fid.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(path.read_text()) for path in sorted(RESULTS.glob("cifar10-*.json"))]
    records = [record for record in records if record.get("kind") == "cifar10"]
    PICTURES.mkdir(parents=True, exist_ok=True)
    together, axes_all = plt.subplots(figsize=(7, 4.5))
    for record in records:
        alone, axes = plt.subplots(figsize=(5, 3.5))
        for seed, run in sorted(record["runs"].items()):
            # at the minutes trained, which the last tick carries past the milestone's budget
            points = [(entry["train_seconds"] / 60, entry["fid_ema"]) for entry in run["milestones"] if "fid_ema" in entry]
            if not points:
                continue
            minutes, fids = zip(*points, strict=True)
            axes.plot(minutes, fids, marker="o", label=f"seed {seed}")
            axes_all.plot(minutes, fids, marker="o", label=f"{_label(record)} (seed {seed})")
        axes.set(title=_label(record), xlabel="training minutes (2 CPU cores)", ylabel="FID-5k (EMA generator)")
        axes.grid(alpha=0.3)
        axes.legend()
        alone.tight_layout()
        alone.savefig(PICTURES / f"{_label(record)}-fid.png", dpi=100)
        plt.close(alone)
    axes_all.set(title="CIFAR-10 on 2 CPU cores", xlabel="training minutes", ylabel="FID-5k (EMA generator)")
    axes_all.grid(alpha=0.3)
    axes_all.legend(fontsize=7)
    together.tight_layout()
    together.savefig(PICTURES / "fid.png", dpi=100)
    plt.close(together)
    print(f"wrote {len(records)} recipe plots and {PICTURES / 'fid.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
