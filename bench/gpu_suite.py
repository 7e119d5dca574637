"""Everything worth measuring on a GPU, in one command that fits in about
8 minutes on one H100/H200:

- training img/s, achieved TFLOP/s and peak memory (bench/throughput.py's
  measurement) of the DCGAN of dcgan_shapes (32²), MSG-GAN and ProGAN at 256² with the
  papers' widths, WGAN-GP on CIFAR-10's networks, and every newer recipe
  listed in CASES whose file exists; each in fp32, bf16, bf16 + channels-last
  and bf16 + torch.compile;
- FID-10k evaluation time at 32² and 256²: the Inception features of 10,000
  generated images and of 10,000 reference images (no cache);
- the data loader's img/s on CIFAR-10 as JPEGs in a zip, next to the training
  img/s, so that a data bottleneck shows.

It writes ``bench/results/gpu-DATE.json`` and prints a Markdown table.
Measurements that fail (no Inception weights, no data) say so in the table
and the suite goes on.

    python bench/gpu_suite.py [--data ../shared/data/cifar10-jpeg.zip] [--out bench/results/gpu-DATE.json]
    python bench/gpu_suite.py --smoke    # on a CPU in about a minute: every path runs, tiny sizes

``--smoke`` runs the same code at toy sizes on the CPU, for CI, and writes
nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from gankit import Run, default_registry, environment, load_recipe

from progan_throughput import recipe_text as progan_recipe_text
from throughput import measure_in_subprocess, summarize

REPO = Path(__file__).resolve().parents[1]
DCGAN_SHAPES = REPO / "recipes" / "dcgan_shapes.toml"

#: (name, recipe file, overrides): the paper's widths, at the resolution named
CASES = [
    ("dcgan_shapes 32²", "dcgan_shapes.toml", []),
    ("msggan 256²", "msggan_celebahq.toml", ["data.resolution=256"]),
    ("progan 256²", None, []),  # recipe made by bench/progan_throughput.py: the 256² stage after its fade
    ("wgangp_cifar10 32²", "wgangp_cifar10.toml", []),
    ("sagan_cifar10 32²", "sagan_cifar10.toml", []),
    ("cgan_cifar10 32²", "cgan_cifar10.toml", []),
    ("msg_stylegan 256²", "msg_stylegan_churches.toml", []),
]
VARIANTS = [
    ("fp32", []),
    ("bf16", ["train.precision=bf16"]),
    ("bf16 + channels_last", ["train.precision=bf16", "train.channels_last=true"]),
    ("bf16 + compile", ["train.precision=bf16", "train.compile=true"]),
]


def training_rows(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    cases = CASES[:1] if args.smoke else CASES
    variants = VARIANTS[:2] if args.smoke else VARIANTS
    for name, file, overrides in cases:
        if file is None:
            recipe = workdir / "progan_256.toml"
            recipe.write_text(progan_recipe_text(256, "fp32", 1000.0, args.device))
        else:
            recipe = REPO / "recipes" / file
            if not recipe.is_file():
                rows.append({"case": name, "variant": "-", "error": f"recipes/{file} does not exist"})
                continue
        for variant, extra in variants:
            trials = [
                measure_in_subprocess(
                    recipe,
                    [*overrides, *extra, f"train.device={args.device}", *(["train.batch_size=8"] if args.smoke else [])],
                    args.steps,
                    args.warmup,
                    False,
                    args.timeout,
                )
                for _ in range(args.trials)
            ]
            result = summarize(trials)
            rows.append({"case": name, "variant": variant, **result})
            shown = result.get("error") or f"{result['img_per_s']:.1f} img/s"
            print(f"{name}, {variant}: {shown}", file=sys.stderr, flush=True)
    return rows


def fid_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seconds for FID at 32² and 256²: generated images through an untrained
    dcgan_shapes-sized generator (the time is the Inception network's, not the
    generator's), reference features of in-memory shapes, no cache."""
    rows = []
    images = 16 if args.smoke else 10_000
    for resolution in (32,) if args.smoke else (32, 256):
        overrides = [
            f'data={{type = "shapes", resolution = {resolution}, size = {images}}}',
            f'metrics={{fid = {{type = "fid", n_fake = {images}, n_real = {images}, cache = false}}}}',
            f"train.device={args.device}",
        ]
        try:
            run = Run.in_memory(load_recipe(DCGAN_SHAPES, default_registry(), overrides), progress="none")
            run.trainer.dataset.prepare()
            start = time.perf_counter()
            scores = run.evaluate()
            seconds = time.perf_counter() - start
            rows.append(
                {"case": f"FID-{images // 1000 or images}{'k' if images >= 1000 else ''} at {resolution}²", "seconds": seconds, **scores}
            )
        except Exception as error:  # noqa: BLE001 - reported in the table, the suite goes on
            rows.append({"case": f"FID at {resolution}²", "error": str(error).splitlines()[0]})
    return rows


def loader_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The image loader's img/s on the JPEG zip, as a training run reads it."""
    if not args.data.exists():
        return [{"case": f"data loader on {args.data}", "error": "no such file (give --data)"}]
    batches = 3 if args.smoke else 200
    overrides = [f'data={{type = "images", path = "{args.data}", resolution = 32}}', f"train.device={args.device}"]
    run = Run.in_memory(load_recipe(DCGAN_SHAPES, default_registry(), overrides), progress="none")
    trainer = run.trainer
    trainer.dataset.prepare()
    loader = trainer._batches()
    next(loader)  # workers started
    start = time.perf_counter()
    images = sum(next(loader)[0].shape[0] for _ in range(batches))
    seconds = time.perf_counter() - start
    return [{"case": f"data loader, {args.data.name}", "img_per_s": images / seconds, "workers": trainer.dataset.workers}]


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| case | variant | img/s | GFLOP/it | TFLOP/s | peak MB | seconds |", "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['case']} | {row.get('variant', '')} | not measured: {row['error']} | | | | |")
            continue

        def cell(key: str, digits: int) -> str:
            return f"{row[key]:.{digits}f}" if key in row else ""

        lines.append(
            f"| {row['case']} | {row.get('variant', '')} | {cell('img_per_s', 1)} | {cell('gflop_per_iteration', 2)} | "
            f"{cell('achieved_tflop_per_s', 3)} | {cell('peak_memory_mb', 0)} | {cell('seconds', 1)} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, for CI")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "cifar10-jpeg.zip")
    parser.add_argument("--device", default=None, help="default: cuda, or cpu with --smoke")
    parser.add_argument("--steps", type=int, default=None, help="timed iterations per measurement (default 50; 2 with --smoke)")
    parser.add_argument("--warmup", type=int, default=None, help="iterations before timing (default 10; 1 with --smoke)")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=240, help="seconds one measurement may take")
    parser.add_argument("--out", type=Path, help="default: bench/results/gpu-DATE.json (nothing with --smoke)")
    args = parser.parse_args()
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.steps = args.steps or (2 if args.smoke else 50)
    args.warmup = args.warmup or (1 if args.smoke else 10)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_suite: no CUDA device here; run it with --smoke to check it on a CPU")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        rows = [*training_rows(args, Path(workdir)), *fid_rows(args), *loader_rows(args)]
    command = "python " + shlex.join(["bench/gpu_suite.py", *sys.argv[1:]])
    print("\n".join([*markdown(rows), "", f"{command}  ({time.perf_counter() - started:.0f} s)"]))
    out = args.out or (None if args.smoke else REPO / "bench" / "results" / f"gpu-{datetime.date.today().isoformat()}.json")
    if out is not None:
        device = torch.device(args.device)
        record = {
            "kind": "gpu_suite",
            "command": command,
            "date": datetime.date.today().isoformat(),
            "environment": environment(0, device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "rows": rows,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
