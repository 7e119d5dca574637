"""Training throughput of a recipe through gankit's loop, and what is left:
img/s, the floating-point operations of one iteration, the FLOP/s that
achieves, and peak memory, for each variant asked (precision, channels-last,
torch.compile, reused fakes, or any ``--set``).

Nothing is written: each measurement is an in-memory run in a process of its
own (so that peak memory is that variant's), with metrics, samples and
checkpoints off. ``--warmup`` iterations run first (torch.compile compiles
there), then one iteration under ``torch.utils.flop_counter`` (eagerly, in
fp32: the count of the mathematics, not of the kernels; torch's counter
refuses the ``autograd.grad`` of a gradient penalty, so such recipes go
uncounted), then ``--steps`` timed iterations. Trials are interleaved
across variants and the median is reported with the range, so a slower
moment of the machine hits every variant alike. Data comes from the in-memory ``shapes`` set at the recipe's
resolution (``--real-data`` keeps the recipe's own), so reading costs nothing.

    python bench/throughput.py RECIPE [--set KEY=VALUE ...] [--variant NAME=KEY=VALUE,KEY=VALUE ...]
        [--steps 50] [--warmup 5] [--trials 3] [--device auto] [--out bench/results/throughput-NAME.json]

A variant is a name and its overrides: ``--variant bf16=train.precision=bf16``,
``--variant compile=train.compile=true``; ``fp32`` (no overrides) is always
measured first. The peak is RSS on a CPU and ``torch.cuda.max_memory_allocated``
on a GPU.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit import Run, default_registry, environment, load_recipe

from reporting import throughput_table

REPO = Path(__file__).resolve().parents[1]


def _overrides(recipe_path: Path, overrides: list[str], real_data: bool) -> list[str]:
    recipe = load_recipe(recipe_path, default_registry(), overrides)
    fixed = [
        "train.sample_ticks=0",
        "train.checkpoint_ticks=0",
        "train.metric_ticks=0",
        "train.tick_kimg=1000000",
        "metrics={}",
    ]
    if not real_data:
        resolution = recipe.data.options.resolution
        fixed.append(f'data={{type = "shapes", resolution = {resolution}, size = 512}}')
    return [*overrides, *fixed]


def measure(recipe_path: Path, overrides: list[str], steps: int, warmup: int, real_data: bool = False) -> dict[str, Any]:
    """One variant, in this process: img/s, FLOPs of one iteration, achieved
    FLOP/s and peak memory."""
    from torch.utils.flop_counter import FlopCounterMode

    overrides = _overrides(recipe_path, overrides, real_data)
    run = Run.in_memory(load_recipe(recipe_path, default_registry(), [*overrides, "train.kimg=1000000"]), progress="none")
    trainer = run.trainer
    device = trainer.device
    trainer.dataset.prepare()

    def iterate(count: int) -> None:
        trainer.total_nimg = trainer.nimg + count * trainer.batch_size
        trainer.train()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    iterate(warmup)
    counted = Run.in_memory(
        load_recipe(recipe_path, default_registry(), [*overrides, "train.kimg=1000000", "train.compile=false", "train.precision=fp32"]),
        progress="none",
    ).trainer
    counted.dataset.prepare()
    counted.total_nimg = counted.batch_size
    try:
        with FlopCounterMode(display=False) as counter:
            counted.train()
        flops: int | None = counter.get_total_flops()
    except RuntimeError as error:
        if "autograd.grad" not in str(error):
            raise
        flops = None  # torch's counter refuses autograd.grad, so a gradient penalty leaves the count unknown
    del counted
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize()
    start, nimg = time.perf_counter(), trainer.nimg
    iterate(steps)
    synchronize()
    seconds = time.perf_counter() - start
    images = trainer.nimg - nimg
    return {
        "img_per_s": images / seconds,
        "iterations": steps,
        "batch_size": trainer.batch_size,
        "gflop_per_iteration": None if flops is None else flops / 1e9,
        "achieved_tflop_per_s": None if flops is None else flops * steps / seconds / 1e12,
        "peak_memory_mb": trainer._memory_mb(),
        "device": str(device),
        "compiled": trainer.compiled,
    }


def measure_in_subprocess(recipe: Path, overrides: list[str], steps: int, warmup: int, real_data: bool, timeout: float) -> dict[str, Any]:
    """:func:`measure` in a fresh process; an error comes back as ``{"error": ...}``."""
    command = [sys.executable, __file__, str(recipe), "--one", "--steps", str(steps), "--warmup", str(warmup)]
    command += [argument for override in overrides for argument in ("--set", override)]
    command += ["--real-data"] if real_data else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"took over {timeout:g} s"}
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The median trial's figures, with the img/s of every trial."""
    good = [trial for trial in trials if "error" not in trial]
    if not good:
        return {"error": trials[-1]["error"]}
    rates = [trial["img_per_s"] for trial in good]
    median = statistics.median(rates)
    middle = min(good, key=lambda trial: abs(trial["img_per_s"] - median))
    return {**middle, "img_per_s": median, "img_per_s_trials": rates}


def _variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    if not name or not overrides:
        raise argparse.ArgumentTypeError(f"expected NAME=KEY=VALUE[,KEY=VALUE], got {text!r}")
    return name, overrides.split(",")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--variant", dest="variants", action="append", default=[], type=_variant, metavar="NAME=KEY=VALUE,...")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds one measurement may take")
    parser.add_argument("--real-data", action="store_true", help="read the recipe's own data instead of in-memory shapes")
    parser.add_argument("--device", default=None, help="sets train.device")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # one measurement, as JSON: the subprocess
    args = parser.parse_args()
    overrides = [*args.overrides, *([f"train.device={args.device}"] if args.device else [])]
    if args.one:
        print(json.dumps(measure(args.recipe, overrides, args.steps, args.warmup, args.real_data)))
        return

    variants = [("fp32", []), *args.variants]
    trials: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    for trial in range(args.trials):
        for name, extra in variants:
            result = measure_in_subprocess(args.recipe, [*overrides, *extra], args.steps, args.warmup, args.real_data, args.timeout)
            trials[name].append(result)
            shown = result.get("error") or f"{result['img_per_s']:.1f} img/s"
            print(f"trial {trial + 1}/{args.trials} {name}: {shown}", file=sys.stderr, flush=True)
    rows = [(name, summarize(trials[name])) for name, _ in variants]
    command = "python " + shlex.join(["bench/throughput.py", *sys.argv[1:]])
    print("\n".join([*throughput_table(dict(rows)), "", command]))
    if args.out:
        record = {
            "kind": "throughput",
            "recipe": args.recipe.stem,
            "command": command,
            "date": datetime.date.today().isoformat(),
            "environment": environment(0, torch.device(rows[0][1].get("device", "cpu"))),
            "variants": dict(rows),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
