"""Run another project's GAN training script from where it lies for a
wall-clock budget, then draw samples from its generator.

    python bench/timed_script.py --minutes 30 --generator netG --latent-shape 100 1 1 \\
        --samples 5000 --out DIR -- /path/to/examples/dcgan/main.py --dataset folder --dataroot ...

The script runs unmodified, in this process, as ``__main__`` with the
arguments after ``--``. When the budget is spent, a SIGALRM stops it wherever
it is (its own checkpoints are not needed); the module-level variable named
by ``--generator`` is then taken from the script's globals, put in eval mode
(the same rule ``gankit eval --raw`` applies to gankit's generator), and
draws ``--samples`` images from N(0, I) latents of ``--latent-shape``,
seeded by ``--sample-seed``, written to ``DIR/samples/NNNNN.png`` after
:func:`gankit.quantize`. With ``--batch-stats``, the same latents are drawn
a second time with the generator's batch norms on each batch's statistics
(:func:`gankit.batch_statistics`, batches of ``--batch-size``), as a script
that never calls ``eval()`` draws its own pictures, into
``DIR/samples_batch_stats``. ``DIR/timing.json`` says how long the script
ran and how it ended. The budget counts everything the script does from its
first line (reading its data included), so set-up is inside it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import torch

from gankit import batch_statistics, quantize


class OutOfTime(BaseException):
    """Raised in the script by the alarm: a BaseException, so that a script's
    ``except Exception`` does not swallow it."""


def _out_of_time(signum: int, frame: FrameType | None) -> None:
    raise OutOfTime


def save_pngs(images: torch.Tensor, folder: Path) -> None:
    """Float images in [-1, 1], [N, 3, H, W], as NNNNN.png after :func:`gankit.quantize`."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(quantize(images.cpu())):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{index:05d}.png")


def draw(generator: torch.nn.Module, latent_shape: list[int], count: int, seed: int, batch_size: int, batch_stats: bool) -> torch.Tensor:
    """``count`` images from N(0, I) latents, the generator in eval mode
    (with ``batch_stats``, its batch norms on each batch's statistics)."""
    generator.eval()
    latents = torch.randn(count, *latent_shape, generator=torch.Generator().manual_seed(seed))
    device = next(generator.parameters()).device
    with torch.no_grad(), batch_statistics(generator) if batch_stats else contextlib.nullcontext():
        return torch.cat([generator(latents[first : first + batch_size].to(device)).cpu() for first in range(0, count, batch_size)])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--generator", required=True, help="the script's global variable holding its generator")
    parser.add_argument("--latent-shape", type=int, nargs="+", required=True, help="one latent's shape, e.g. 100 1 1")
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64, help="images a generator forward draws (default 64)")
    parser.add_argument("--batch-stats", action="store_true", help="also draw with batch norms on batch statistics")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("script", type=Path)
    parser.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    namespace: dict[str, object] = {}
    sys.argv = [str(args.script), *args.arguments]
    sys.path.insert(0, str(args.script.parent))
    signal.signal(signal.SIGALRM, _out_of_time)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, args.minutes * 60)
    ended = "finished"
    try:
        # run_path would lose the globals on the alarm: exec keeps them in a dict of ours
        code = compile(args.script.read_text(), str(args.script), "exec")
        namespace.update(__name__="__main__", __file__=str(args.script))
        exec(code, namespace)  # noqa: S102 - the user's own checkout of the reference script
    except OutOfTime:
        ended = "out of time"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    sys.stdout.flush()
    generator = namespace.get(args.generator)
    if not isinstance(generator, torch.nn.Module):
        raise SystemExit(f"{args.script}: no torch module named {args.generator!r} among its globals when it stopped ({ended})")
    (args.out / "timing.json").write_text(
        json.dumps({"seconds": round(seconds, 1), "ended": ended, "threads": torch.get_num_threads()}, indent=2) + "\n"
    )
    for batch_stats, name in ((False, "samples"), (True, "samples_batch_stats"))[: 1 + args.batch_stats]:
        save_pngs(draw(generator, args.latent_shape, args.samples, args.sample_seed, args.batch_size, batch_stats), args.out / name)
    print(f"\n{args.script}: {ended} after {seconds:.0f} s; {args.samples} samples in {args.out / 'samples'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
