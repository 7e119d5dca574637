"""How fast the images dataset reads each format it takes: images per second
through a DataLoader with 2 worker processes decoding, at 256x256, from one
generated set of images written as a folder, a zip, a tar and an LMDB
database, with each format's speed as a share of the folder's.

    python bench/read_speed.py [--images 2000] [--workers 2]

The images are 384x288 JPEGs (LSUN's size: the short side a little over
256), smooth colour fields with noise so that they compress as photographs
do; every format holds the same bytes, so the table compares the readers,
not the codecs (LSUN's own LMDBs hold WebP, slower to decode). Each format is read once to
warm the page cache and start nothing cold, then timed over --epochs epochs
in a shuffled order, as training reads them (in_memory = no, so the
workers decode every image).
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gankit import default_registry


def _image(rng: np.random.Generator) -> bytes:
    corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
    y, x = np.linspace(0, 1, 288)[:, None, None], np.linspace(0, 1, 384)[None, :, None]
    field = corners[0, 0] * (1 - y) * (1 - x) + corners[0, 1] * (1 - y) * x + corners[1, 0] * y * (1 - x) + corners[1, 1] * y * x
    pixels = np.clip(field + rng.normal(0, 12, field.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def write_formats(root: Path, count: int) -> dict[str, Path]:
    """The same ``count`` encoded images as a folder, a zip, a tar and an LMDB database."""
    import lmdb

    rng = np.random.default_rng(0)
    images = {f"{i:06d}.jpg": _image(rng) for i in range(count)}
    folder = root / "folder"
    folder.mkdir()
    for name, data in images.items():
        (folder / name).write_bytes(data)
    with zipfile.ZipFile(root / "images.zip", "w", zipfile.ZIP_STORED) as archive:  # encoded images do not deflate
        for name, data in images.items():
            archive.writestr(name, data)
    with tarfile.open(root / "images.tar", "w") as archive:
        for name, data in images.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    environment = lmdb.open(str(root / "lmdb"), map_size=2 * sum(map(len, images.values())) + (1 << 24))
    with environment.begin(write=True) as transaction:
        for name, data in images.items():
            transaction.put(name.rsplit(".", 1)[0].encode(), data)  # keys are image ids, as LSUN's
    environment.close()
    return {"folder": folder, "zip": root / "images.zip", "tar": root / "images.tar", "LMDB": root / "lmdb"}


def _whole_batch(batch: Any) -> Any:
    return batch


def images_per_second(path: Path, resolution: int, workers: int, batch_size: int, epochs: int) -> float:
    images = default_registry().get("dataset", "images")
    dataset = images.factory(images.options(path=str(path), resolution=resolution, in_memory="no", workers=workers))

    def epoch(seed: int) -> int:
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist(),
            collate_fn=_whole_batch,
            num_workers=workers,
        )
        return sum(len(images) for images, _ in loader)

    epoch(0)  # the page cache warm, as in a run's second epoch
    start = time.perf_counter()
    read = sum(epoch(1 + i) for i in range(epochs))
    return read / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        paths = write_formats(Path(folder), args.images)
        print(f"{args.images:,} JPEG images of 384x288 written in {time.perf_counter() - start:.0f} s; ", end="")
        print(f"torch {torch.__version__}, {os.cpu_count()} cores\n")
        print(f"| format | img/s at {args.resolution}x{args.resolution}, {args.workers} workers | share of the folder's |")
        print("|---|---:|---:|")
        baseline = None
        for name, path in paths.items():
            speed = images_per_second(path, args.resolution, args.workers, args.batch_size, args.epochs)
            baseline = baseline or speed
            print(f"| {name} | {speed:,.0f} | {speed / baseline:.2f} |", flush=True)
    print(f"\n`python {shlex.join(['bench/read_speed.py', *(argv if argv is not None else sys.argv[1:])])}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
