"""Where FID's time goes on a CPU: the Inception feature extractor's images
per second by batch size, split into the resize to 299x299 and the
network's forward pass, with the process's user and kernel CPU time.

    python bench/fid_speed.py [--images 256] [--batch-sizes 8 16 32 64]

Random 32x32 uint8 images stand in for CIFAR-10's (the time does not depend
on the pixels). Each batch size runs once to warm up (TorchScript's
profiling executor specializes the graph on its first calls), then is timed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import sys
import time

import torch

from gankit.metrics import load_extractor, resize_for_inception


def _cpu_seconds() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--extractor", help="the TorchScript feature network (default: searched as gankit eval does)")
    args = parser.parse_args(argv)
    extractor = load_extractor(args.extractor)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8)
    print(f"{extractor.describe()}; torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores\n")
    print("| batch | img/s | resize share of the time | user CPU s | kernel CPU s |")
    print("|---:|---:|---:|---:|---:|")
    for batch in args.batch_sizes:
        extractor(images[:batch])  # warm-up at this shape
        extractor(images[:batch])
        resize_seconds = 0.0
        user, kernel = _cpu_seconds()
        start = time.perf_counter()
        for first in range(0, args.images, batch):
            part = images[first : first + batch]
            tick = time.perf_counter()
            resize_for_inception(part.float(), extractor.resize)
            resize_seconds += time.perf_counter() - tick
            extractor(part)
        seconds = time.perf_counter() - start - resize_seconds  # the extractor resizes again inside
        user_after, kernel_after = _cpu_seconds()
        print(
            f"| {batch} | {args.images / seconds:.1f} | {resize_seconds / seconds:.1%} | "
            f"{user_after - user:.1f} | {kernel_after - kernel:.1f} |",
            flush=True,
        )
    print(f"\n`python {shlex.join(['bench/fid_speed.py', *(argv if argv is not None else sys.argv[1:])])}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
