"""gankit's training code against a reference implementation on the same
networks, data, budget and threads: FID-5k and images per second.

    python bench/reference_parity.py --reference /path/to/pytorch-examples/dcgan/main.py \\
        [--minutes 30] [--seeds 0 1] [--data ../shared/data/cifar10-jpeg.zip/train] [--work runs/parity]
    python bench/reference_parity.py --report

The reference is pytorch/examples' ``dcgan/main.py`` (BSD-3), run from the
checkout the user names with its own defaults (64x64, batch 64, Adam 2e-4,
two data-loading workers), unmodified, by bench/timed_script.py for the same
wall-clock minutes; gankit trains recipes/dcgan_cifar10_64.toml, the same
networks and hyperparameters, for the same minutes of ``train.minutes``.
Both run on the same torch thread count, one training at a time, seeds
interleaved (reference 0, gankit 0, reference 1, gankit 1).

Every generator draws 5,000 images (latent seed 0) into a folder of PNGs,
in eval mode and again with its batch norms on each batch's statistics
(batches of 64; main.py never calls ``eval()`` and draws its own pictures so),
and every folder is scored the same way:
``gankit eval --real DATA --real SAMPLES --n-real 50000 --metric fid``.
main.py keeps no moving average, so gankit's raw generator is the one the
ratio compares; its EMA generator is scored beside it. The reference reads
CIFAR-10 as a folder of class folders (its ImageFolder), so the zip's
training split is extracted once under --work.

Each piece (a training and its samples, a score) ends in a file under
--work and the record bench/results/reference-parity.json is rewritten
after each, so running the command again carries on where it stopped.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gankit import Run, environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar10 import DEFAULT_DATA, gankit_eval  # noqa: E402
from recipe_results import training_figures  # noqa: E402
from timed_script import save_pngs  # noqa: E402

from reporting import reference_parity_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECORD = REPO / "bench" / "results" / "reference-parity.json"
RECIPE = REPO / "recipes" / "dcgan_cifar10_64.toml"
PICTURES = REPO / "docs" / "results" / "parity"
ITERATION_LINE = re.compile(r"^\[(\d+)/\d+\]\[(\d+)/(\d+)\]")


def read_record() -> dict[str, Any]:
    if RECORD.is_file():
        return json.loads(RECORD.read_text())
    return {
        "kind": "reference_parity",
        "reference": "pytorch/examples dcgan/main.py",
        "gankit_recipe": str(RECIPE.relative_to(REPO)),
        "runs": {},
    }


def write_record(record: dict[str, Any]) -> None:
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    temporary = RECORD.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(RECORD)


def image_folder(data: str, work: Path) -> Path:
    """The training images as files in class folders, for torchvision's ImageFolder."""
    archive, _, inner = data.partition(".zip/")
    if not inner:
        return Path(data)
    target = work / "images" / inner
    if not (target.is_dir() and any(target.iterdir())):
        with zipfile.ZipFile(archive + ".zip") as opened:
            members = [name for name in opened.namelist() if name.startswith(inner.rstrip("/") + "/")]
            opened.extractall(work / "images", members)
    return target


def train_reference(reference: Path, seed: int, minutes: float, threads: int, data: Path, folder: Path) -> dict[str, Any]:
    log = folder / "log.txt"
    command = [
        sys.executable, str(REPO / "bench" / "timed_script.py"), "--minutes", f"{minutes:g}", "--threads", str(threads),
        "--generator", "netG", "--latent-shape", "100", "1", "1", "--samples", "5000", "--batch-stats", "--out", str(folder),
        str(reference), "--dataset", "folder", "--dataroot", str(data), "--manualSeed", str(seed), "--niter", "1000",
        "--outf", str(folder / "outf"),
    ]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    timing = json.loads((folder / "timing.json").read_text())
    last = [match for line in log.read_text().splitlines() if (match := ITERATION_LINE.match(line))][-1]
    epoch, step, per_epoch = (int(group) for group in last.groups())
    iterations = epoch * per_epoch + step + 1
    return {
        "seconds": timing["seconds"],
        "kimg": round(iterations * 64 / 1000, 1),
        "img_per_s": round(iterations * 64 / timing["seconds"], 1),
        "command": shlex.join(command[1:]),
    }


def train_gankit(seed: int, minutes: float, data: str, folder: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    run_dir = folder / "run"
    # train.minutes stops at the end of the tick that crosses it; ticks of
    # 2 kimg (about half a minute here) keep that overshoot small beside
    # main.py, which the alarm stops at the second
    overrides = [f"data.path={data}", f"train.seed={seed}", f"train.minutes={minutes:g}", "train.tick_kimg=2", "metrics={}", *extra]
    run = Run.start(RECIPE, overrides, run_dir=run_dir, progress="lines")
    figures = training_figures(run_dir, run.train())
    for raw, name in ((True, "samples_raw"), (False, "samples_ema")):
        save_pngs(Run.from_checkpoint(run_dir, raw=raw).sample(5000, seed=0)[-1], folder / name)
    save_pngs(Run.from_checkpoint(run_dir, raw=True).sample(5000, seed=0, batch_stats=True)[-1], folder / "samples_raw_batch_stats")
    return {
        **figures,
        "command": shlex.join(["gankit", "run", str(RECIPE.relative_to(REPO)), *(part for o in overrides for part in ("--set", o))]),
    }


def save_sample_grid(samples: Path, out: Path) -> None:
    """The first 64 of a side's sample PNGs as one 8x8 picture."""
    import torch
    import torchvision

    images = [torchvision.io.read_image(str(path)) for path in sorted(samples.glob("*.png"))[:64]]
    out.parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(torch.stack(images).float() / 255, str(out), nrow=8)


def score(samples: Path, data: str) -> dict[str, Any]:
    scores = gankit_eval(["--real", data, "--real", str(samples), "--n-real", "50000"])
    return {"fid": scores["fid"], "protocol": {k: v for k, v in scores.items() if k not in ("fid", "metric")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, help="pytorch/examples' dcgan/main.py, in the user's checkout")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=torch_threads())
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "parity")
    parser.add_argument("--report", action="store_true", help="print the table from the record and stop")
    args = parser.parse_args()
    record = read_record()
    if args.report:
        print("\n".join(reference_parity_section(record)))
        return 0
    if args.reference is None or not args.reference.is_file():
        parser.error("--reference: give the path of pytorch/examples' dcgan/main.py (git clone https://github.com/pytorch/examples)")
    command = shlex.join(["python", "bench/reference_parity.py", *sys.argv[1:]])
    print(command, flush=True)
    env = environment()

    def trained(side: dict[str, Any]) -> dict[str, Any]:
        """A side's training, stamped with the code and machine it ran on."""
        record.update(command=command, minutes=args.minutes, threads=args.threads, date=datetime.date.today().isoformat())
        record["environment"] = {key: env.get(key) for key in ("python", "torch", "gankit", "cpu", "cpu_count")}
        return {**side, "git": env.get("git")}

    folder_images = image_folder(args.data, args.work)
    for seed in args.seeds:
        run = record["runs"].setdefault(str(seed), {})
        reference_folder, gankit_folder = args.work / f"reference-s{seed}", args.work / f"gankit-s{seed}"
        if "reference" not in run:
            run["reference"] = trained(train_reference(args.reference, seed, args.minutes, args.threads, folder_images, reference_folder))
            write_record(record)
            print(f"reference seed {seed}: {run['reference']}", flush=True)
        if "gankit" not in run:
            run["gankit"] = trained(train_gankit(seed, args.minutes, args.data, gankit_folder))
            write_record(record)
            print(f"gankit seed {seed}: {run['gankit']}", flush=True)
    for seed in args.seeds:  # scoring does not need an idle machine, but comes after every training
        run = record["runs"][str(seed)]
        pieces = (("reference", "fid", args.work / f"reference-s{seed}" / "samples"),
                  ("gankit", "fid_raw", args.work / f"gankit-s{seed}" / "samples_raw"),
                  ("gankit", "fid_ema", args.work / f"gankit-s{seed}" / "samples_ema"))  # fmt: skip
        # the same generators with batch norms on batch statistics (batches of 64,
        # main.py's), as main.py draws its own pictures; a pair is scored only
        # when both sides drew it (seed 0 trained before they did)
        batch_stats = (("reference", "fid_batch_stats", args.work / f"reference-s{seed}" / "samples_batch_stats"),
                       ("gankit", "fid_raw_batch_stats", args.work / f"gankit-s{seed}" / "samples_raw_batch_stats"))  # fmt: skip
        if all(samples.is_dir() for _, _, samples in batch_stats):
            pieces += batch_stats
        for side, key, samples in pieces:
            if key not in run[side]:
                scored = score(samples, args.data)
                run[side][key], run[side][f"{key}_protocol"] = scored["fid"], scored["protocol"]
                write_record(record)
                print(f"{side} seed {seed}: {key} {scored['fid']:.2f}", flush=True)
        for side, samples in (("reference", "samples"), ("gankit", "samples_raw")):
            if "grid" not in run[side]:
                grid = PICTURES / f"{side}-s{seed}.png"
                save_sample_grid(args.work / f"{side}-s{seed}" / samples, grid)
                run[side]["grid"] = str(grid.relative_to(REPO))
                write_record(record)
    print("\n".join(reference_parity_section(record)))
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
