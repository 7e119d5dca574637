"""gankit's training code against a reference implementation on the same
networks, data, budget and threads: FID-5k and images per second.

    python bench/reference_parity.py --reference /path/to/pytorch-examples/dcgan/main.py \\
        [--minutes 30] [--seeds 0 1] [--data ../shared/data/cifar10-jpeg.zip/train] [--work runs/parity]
    python bench/reference_parity.py --kind wgangp --reference /path/to/torch_mimicry-0.1.16 --work runs/parity-wgangp
    python bench/reference_parity.py --kind wgangp_cpu --reference /path/to/torch_mimicry-0.1.16
    python bench/reference_parity.py [--kind wgangp] --report

Two references (``--kind``), one of them also at CPU widths:

- ``dcgan``: pytorch/examples' ``dcgan/main.py`` (BSD-3), run from the
  checkout the user names with its own defaults (64x64, batch 64, Adam 2e-4,
  two data-loading workers), unmodified; gankit trains
  recipes/dcgan_cifar10_64.toml, the same networks and hyperparameters.
- ``wgangp``: torch-mimicry's ``wgan_gp_32`` (MIT) with its own Trainer and
  its README's settings, from the folder holding its ``torch_mimicry``
  package, by bench/mimicry_train.py (which says what it needs installed);
  gankit trains recipes/wgangp_cifar10_mimicry.toml, the same widths.
- ``wgangp_cpu``: the same at the widths of recipes/wgangp_cifar10_cpu.toml
  (torch-mimicry's own ``ngf = 64, ndf = 32``), which gankit trains: at
  torch-mimicry's widths 30 CPU minutes are about a hundred generator steps.

bench/timed_script.py runs the reference for the wall-clock minutes; gankit
trains for the same minutes of ``train.minutes``. Both run on the same torch
thread count, one training at a time, seeds interleaved (reference 0,
gankit 0, reference 1, gankit 1).

Every generator draws 5,000 images (latent seed 0) into a folder of PNGs,
in eval mode and again with its batch norms on each batch's statistics
(batches of 64; main.py never calls ``eval()`` and draws its own pictures so),
and every folder is scored the same way:
``gankit eval --real DATA --real SAMPLES --n-real 50000 --metric fid``.
Neither reference keeps a moving average, so gankit's raw generator is the
one the ratio compares; its EMA generator is scored beside it. The
references read CIFAR-10 as a folder of class folders (ImageFolder), so the
zip's training split is extracted once under --work.

Each piece (a training and its samples, a score) ends in a file under
--work and the kind's record (bench/results/reference-parity.json,
reference-parity-wgangp.json, reference-parity-wgangp_cpu.json) is rewritten after each, so running the
command again carries on where it stopped.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from gankit import Run, default_registry, environment, load_recipe

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cifar10 import DEFAULT_DATA, gankit_eval  # noqa: E402
from recipe_results import training_figures  # noqa: E402
from timed_script import save_pngs  # noqa: E402

from reporting import reference_parity_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PICTURES = REPO / "docs" / "results" / "parity"


def _main_py(path: Path, seed: int, data: Path, folder: Path) -> list[str]:
    """main.py with its defaults, on the folder, for longer than any budget."""
    return [str(path), "--dataset", "folder", "--dataroot", str(data), "--manualSeed", str(seed), "--niter", "1000",
            "--outf", str(folder / "outf")]  # fmt: skip


def _main_py_steps(epoch: int, step: int, per_epoch: int) -> int:
    """main.py's ``[epoch/epochs][step/steps per epoch]``, the step counted from 0."""
    return epoch * per_epoch + step + 1


def _mimicry(widths_of: str | None = None) -> Callable[[Path, int, Path, Path], list[str]]:
    """bench/mimicry_train.py on torch-mimicry's wgan_gp_32, at its own widths
    or at the generator's and critic's ``channels`` in the recipe ``widths_of``
    (passed to its networks as ``--ngf`` and ``--ndf``)."""

    def script(path: Path, seed: int, data: Path, folder: Path) -> list[str]:
        widths: list[str] = []
        if widths_of is not None:
            recipe = load_recipe(REPO / widths_of, default_registry()).source.data
            widths = ["--ngf", str(recipe["generator"]["channels"]), "--ndf", str(recipe["discriminator"]["channels"])]
        return [str(REPO / "bench" / "mimicry_train.py"), "--mimicry", str(path), "--model", "wgan_gp_32", *widths,
                "--data", str(data), "--seed", str(seed), "--log-dir", str(folder / "log")]  # fmt: skip

    return script


@attrs.frozen
class Reference:
    """A reference implementation: what runs it, what its log says, and
    gankit's recipe with the same networks."""

    title: str
    recipe: str  # relative to the repository
    record: str  # under bench/results
    script: Callable[[Path, int, Path, Path], list[str]]  # (--reference, seed, data, folder) -> the script and its arguments
    latent_shape: tuple[int, ...]  # one latent of the script's netG
    step_line: re.Pattern[str]  # its log's progress line
    steps: Callable[..., int]  # the progress line's numbers -> training steps finished
    images_per_step: int  # real images one step shows D
    reference_is_folder: bool  # --reference names a folder, not a file
    hint: str  # what --reference names, and how to get it
    work: str  # the default --work, under runs/
    grid_prefix: str  # of the sample grids under docs/results/parity


MIMICRY_WGANGP = Reference(
    title="torch-mimicry 0.1.16 wgan_gp_32",
    recipe="recipes/wgangp_cifar10_mimicry.toml",
    record="reference-parity-wgangp.json",
    script=_mimicry(),
    latent_shape=(128,),
    step_line=re.compile(r"^INFO: \[Epoch \d+/\d+\]\[Global Step: (\d+)/\d+\]"),
    steps=int,
    images_per_step=5 * 64,  # n_dis critic steps of 64 per Trainer step
    reference_is_folder=True,
    hint="give the folder holding torch-mimicry's torch_mimicry/ package (pip download --no-deps --no-binary :all: "
    "torch-mimicry==0.1.16, then unpack it)",
    work="parity-wgangp",
    grid_prefix="wgangp-",
)

WGANGP_CPU_RECIPE = "recipes/wgangp_cifar10_cpu.toml"

REFERENCES = {
    "dcgan": Reference(
        title="pytorch/examples dcgan/main.py",
        recipe="recipes/dcgan_cifar10_64.toml",
        record="reference-parity.json",
        script=_main_py,
        latent_shape=(100, 1, 1),
        step_line=re.compile(r"^\[(\d+)/\d+\]\[(\d+)/(\d+)\]"),
        steps=_main_py_steps,
        images_per_step=64,
        reference_is_folder=False,
        hint="give the path of pytorch/examples' dcgan/main.py (git clone https://github.com/pytorch/examples)",
        work="parity",
        grid_prefix="",
    ),
    "wgangp": MIMICRY_WGANGP,
    # the same at the widths of recipes/wgangp_cifar10_cpu.toml, which 2 CPU cores train some way in 30 minutes
    "wgangp_cpu": attrs.evolve(
        MIMICRY_WGANGP,
        title="torch-mimicry 0.1.16 wgan_gp_32 at wgangp_cifar10_cpu's widths",
        recipe=WGANGP_CPU_RECIPE,
        record="reference-parity-wgangp_cpu.json",
        script=_mimicry(widths_of=WGANGP_CPU_RECIPE),
        work="parity-wgangp-cpu",
        grid_prefix="wgangp-cpu-",
    ),
}


def steps_done(reference: Reference, log: str) -> int:
    """Training steps the reference finished, from the last progress line of its log."""
    matches = [match for line in log.splitlines() if (match := reference.step_line.match(line))]
    if not matches:
        raise SystemExit(f"{reference.title}: no progress line in its log, so not one training step finished")
    return reference.steps(*(int(group) for group in matches[-1].groups()))


def read_record(reference: Reference) -> dict[str, Any]:
    path = REPO / "bench" / "results" / reference.record
    if path.is_file():
        return json.loads(path.read_text())
    return {"kind": "reference_parity", "reference": reference.title, "gankit_recipe": reference.recipe, "runs": {}}


def write_record(reference: Reference, record: dict[str, Any]) -> None:
    path = REPO / "bench" / "results" / reference.record
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)


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


def train_reference(reference: Reference, path: Path, seed: int, minutes: float, threads: int, data: Path, folder: Path) -> dict[str, Any]:
    log = folder / "log.txt"
    command = [
        sys.executable, str(REPO / "bench" / "timed_script.py"), "--minutes", f"{minutes:g}", "--threads", str(threads),
        "--generator", "netG", "--latent-shape", *map(str, reference.latent_shape), "--samples", "5000", "--batch-stats",
        "--out", str(folder), *reference.script(path, seed, data, folder),
    ]  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=True)
    timing = json.loads((folder / "timing.json").read_text())
    images = steps_done(reference, log.read_text()) * reference.images_per_step
    return {
        "seconds": timing["seconds"],
        "kimg": round(images / 1000, 1),
        "img_per_s": round(images / timing["seconds"], 1),
        "command": shlex.join(command[1:]),
    }


def train_gankit(recipe: Path, seed: int, minutes: float, data: str, folder: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
    run_dir = folder / "run"
    # train.minutes stops at the end of the tick that crosses it; ticks of
    # 2 kimg (about half a minute here) keep that overshoot small beside
    # main.py, which the alarm stops at the second
    overrides = [f"data.path={data}", f"train.seed={seed}", f"train.minutes={minutes:g}", "train.tick_kimg=2", "metrics={}", *extra]
    run = Run.start(recipe, overrides, run_dir=run_dir, progress="lines")
    figures = training_figures(run_dir, run.train())
    raw, ema = Run.from_checkpoint(run_dir, raw=True), Run.from_checkpoint(run_dir)
    for run, batch_stats, name in ((raw, False, "samples_raw"), (ema, False, "samples_ema"), (raw, True, "samples_raw_batch_stats")):
        save_pngs(run.sample(5000, seed=0, batch_stats=batch_stats)[-1], folder / name)
    return {
        **figures,
        "command": shlex.join(["gankit", "run", str(recipe.relative_to(REPO)), *(part for o in overrides for part in ("--set", o))]),
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
    parser.add_argument("--kind", choices=sorted(REFERENCES), default="dcgan", help="which reference (default dcgan)")
    parser.add_argument("--reference", type=Path, help="dcgan: pytorch/examples' dcgan/main.py; wgangp, wgangp_cpu: torch-mimicry's folder")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--threads", type=int, default=torch_threads())
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--work", type=Path, help="where the pieces go (default runs/parity, runs/parity-wgangp, runs/parity-wgangp-cpu)")
    parser.add_argument("--report", action="store_true", help="print the table from the record and stop")
    args = parser.parse_args()
    reference = REFERENCES[args.kind]
    record = read_record(reference)
    if args.report:
        print("\n".join(reference_parity_section(record)))
        return 0
    if args.reference is None or not (args.reference.is_dir() if reference.reference_is_folder else args.reference.is_file()):
        parser.error(f"--reference: {reference.hint}")
    work = args.work or REPO / "runs" / reference.work
    recipe = REPO / reference.recipe
    command = shlex.join(["python", "bench/reference_parity.py", *sys.argv[1:]])
    print(command, flush=True)
    env = environment()

    def trained(side: dict[str, Any]) -> dict[str, Any]:
        """A side's training, stamped with the code and machine it ran on."""
        record.update(command=command, minutes=args.minutes, threads=args.threads, date=datetime.date.today().isoformat())
        record["environment"] = {key: env.get(key) for key in ("python", "torch", "gankit", "cpu", "cpu_count")}
        return {**side, "git": env.get("git")}

    folder_images = image_folder(args.data, work)
    for seed in args.seeds:
        run = record["runs"].setdefault(str(seed), {})
        reference_folder, gankit_folder = work / f"reference-s{seed}", work / f"gankit-s{seed}"
        if "reference" not in run:
            run["reference"] = trained(
                train_reference(reference, args.reference, seed, args.minutes, args.threads, folder_images, reference_folder)
            )
            write_record(reference, record)
            print(f"reference seed {seed}: {run['reference']}", flush=True)
        if "gankit" not in run:
            run["gankit"] = trained(train_gankit(recipe, seed, args.minutes, args.data, gankit_folder))
            write_record(reference, record)
            print(f"gankit seed {seed}: {run['gankit']}", flush=True)
    for seed in args.seeds:  # scoring does not need an idle machine, but comes after every training
        run = record["runs"][str(seed)]
        pieces = (("reference", "fid", work / f"reference-s{seed}" / "samples"),
                  ("gankit", "fid_raw", work / f"gankit-s{seed}" / "samples_raw"),
                  ("gankit", "fid_ema", work / f"gankit-s{seed}" / "samples_ema"))  # fmt: skip
        # the same generators with batch norms on batch statistics (batches of 64,
        # main.py's), as main.py draws its own pictures; a pair is scored only
        # when both sides drew it (dcgan's seed 0 trained before they did)
        batch_stats = (("reference", "fid_batch_stats", work / f"reference-s{seed}" / "samples_batch_stats"),
                       ("gankit", "fid_raw_batch_stats", work / f"gankit-s{seed}" / "samples_raw_batch_stats"))  # fmt: skip
        if all(samples.is_dir() for _, _, samples in batch_stats):
            pieces += batch_stats
        for side, key, samples in pieces:
            if key not in run[side]:
                scored = score(samples, args.data)
                run[side][key], run[side][f"{key}_protocol"] = scored["fid"], scored["protocol"]
                write_record(reference, record)
                print(f"{side} seed {seed}: {key} {scored['fid']:.2f}", flush=True)
        for side, samples in (("reference", "samples"), ("gankit", "samples_raw")):
            if "grid" not in run[side]:
                grid = PICTURES / f"{reference.grid_prefix}{side}-s{seed}.png"
                save_sample_grid(work / f"{side}-s{seed}" / samples, grid)
                run[side]["grid"] = str(grid.relative_to(REPO))
                write_record(reference, record)
    print("\n".join(reference_parity_section(record)))
    return 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    raise SystemExit(main())
