"""Training throughput of ProGAN (Karras et al. 2018) at full width, through
gankit's loop: recipes/progan_celebahq.toml's networks, WGAN-GP with drift and
Adam, at a fixed resolution (the stage after its fade), on in-memory
``shapes`` images so that reading data costs nothing. The first tick warms
up; the img/s of the ticks after it are reported, with the paper's batch
size for the resolution.

    python bench/progan_throughput.py [--resolutions 128 256] [--precisions fp32 bf16] [--kimg 2] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tomllib
from pathlib import Path

import tomli_w
import torch

from gankit import Run, default_registry, recipe_from_text, select_device

REPO = Path(__file__).resolve().parents[1]
PAPER_BATCH = {256: 14, 512: 6, 1024: 3}  # 16 below (Appendix A.1)


def recipe_text(resolution: int, precision: str, kimg: float, device: str) -> str:
    table = tomllib.loads((REPO / "recipes" / "progan_celebahq.toml").read_text())
    table["name"] = f"progan_throughput_{resolution}"
    table["data"] = {"type": "shapes", "resolution": resolution, "size": 256}
    table["scheduler"].update(start_resolution=resolution, final_resolution=resolution)
    table.pop("metrics", None)
    batch = PAPER_BATCH.get(resolution, 16)
    ticks = 4
    table["train"].update(
        kimg=kimg,
        batch_size=batch,
        tick_kimg=kimg / ticks,
        precision=precision,
        device=device,
        sample_ticks=0,
        checkpoint_ticks=0,
    )
    return tomli_w.dumps(table)


def throughput(resolution: int, precision: str, kimg: float, device: str) -> tuple[float, int]:
    recipe = recipe_from_text(recipe_text(resolution, precision, kimg, device), "progan_throughput.toml", default_registry())
    run = Run.in_memory(recipe)
    rates: list[float] = []
    run.trainer.tick_callbacks.append(lambda record: rates.append(record["img_per_s"]))
    run.train()
    return statistics.median(rates[1:]), run.trainer.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--kimg", type=float, default=2.0, help="images per measurement, in thousands (4 ticks, the first one warms up)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = select_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    rows = []
    for resolution in args.resolutions:
        for precision in args.precisions:
            rate, batch = throughput(resolution, precision, args.kimg, str(device))
            rows.append(f"| {resolution}x{resolution} | {precision} | {batch} | {rate:.1f} | {1000 / rate:.1f} |")
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"ProGAN training throughput on {name} (torch {torch.__version__}), WGAN-GP + drift, n_critic 1\n")
    print("| resolution | precision | batch | img/s | s/kimg |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print(
        f"\n`python bench/progan_throughput.py --resolutions {' '.join(map(str, args.resolutions))} --precisions "
        f"{' '.join(args.precisions)} --kimg {args.kimg} --device {args.device}`"
    )


if __name__ == "__main__":
    main()
