"""The spread of every outcome test's statistics over seeds and thread counts.

An outcome test trains for a short while and bounds what it measures (a
distance to the data, modes found). Its bounds must hold on any machine, so
they are set from this measurement with a margin, never from one run:

    python bench/outcome_spread.py                      # every outcome, seeds 0-4, 1 and 2 threads
    python bench/outcome_spread.py --only msggan --seeds 8

Each outcome test module defines ``outcome(seed)`` (or NAME_outcome) and its
BOUNDS. The table gives, per statistic, the minimum, median and maximum over
all runs and the test's bound; ``worst`` is the least favourable run measured
against the bound. Every run is appended to the JSON file as it finishes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit import environment

from reporting import spread_table

ROOT = Path(__file__).resolve().parents[1]

# name: (test module, outcome function, bounds)
OUTCOMES = {
    "dcgan": ("plugins/dcgan/tests/test_dcgan_training.py", "outcome", "BOUNDS"),
    "msggan": ("plugins/msggan/tests/test_msggan_training.py", "outcome", "BOUNDS"),
    "ring8": ("plugins/wgan/tests/test_wgan_training.py", "ring8_outcome", "RING8_BOUNDS"),
    "mbd": ("plugins/improved/tests/test_improved_training.py", "mbd_outcome", "MBD_BOUNDS"),
    "fm": ("plugins/improved/tests/test_improved_training.py", "fm_outcome", "FM_BOUNDS"),
    "msg_stylegan": ("plugins/msggan/tests/test_msg_stylegan_training.py", "outcome", "BOUNDS"),
    "sagan": ("plugins/sagan/tests/test_sagan_training.py", "outcome", "BOUNDS"),
    "cgan_hues": ("plugins/dcgan/tests/test_dcgan_conditional.py", "hue_outcome", "HUE_BOUNDS"),
    "acgan": ("plugins/dcgan/tests/test_dcgan_auxiliary.py", "outcome", "BOUNDS"),
    "sgan_hues": ("plugins/sgan/tests/test_sgan_training.py", "hue_outcome", "HUE_BOUNDS"),
    "digits": ("plugins/dcgan/tests/test_dcgan_digits.py", "outcome", "BOUNDS"),
}


def load_test_module(relative: str) -> Any:
    """A test module, loaded from its path relative to the repository root."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"outcome_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _numbers(result: dict[str, Any]) -> dict[str, float]:
    return {key: float(value) for key, value in result.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(OUTCOMES), help="measure these outcomes only (repeatable)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default 1 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "outcome_spread.json")
    args = parser.parse_args()

    record: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {"kind": "outcome_spread", "outcomes": {}}
    results = record["outcomes"]
    machine = {key: value for key, value in environment().items() if key in ("torch", "python", "cpu")}
    for name in args.only or sorted(OUTCOMES):
        relative, function, bounds_name = OUTCOMES[name]
        module = load_test_module(relative)
        outcome, bounds = getattr(module, function), getattr(module, bounds_name)
        runs: list[dict[str, Any]] = []
        for seed in range(args.seeds):  # seeds outside, threads inside: the two arms interleave
            for threads in args.threads:
                torch.set_num_threads(threads)
                start = time.perf_counter()
                values = _numbers(outcome(seed))
                seconds = time.perf_counter() - start
                runs.append({"seed": seed, "threads": threads, "seconds": round(seconds, 1), "statistics": values, **machine})
                print(
                    f"{name} seed {seed} threads {threads}: {seconds:.0f} s "
                    + ", ".join(f"{k} {v:.4g}" for k, v in values.items() if k in bounds),
                    file=sys.stderr,
                    flush=True,
                )
                command = f"python bench/outcome_spread.py --only {name} --seeds {args.seeds} --threads {' '.join(map(str, args.threads))}"
                results[name] = {"test": relative, "bounds": bounds, "command": command, "runs": runs}
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(record, indent=1) + "\n")
        print(f"\n{name} ({relative}), {len(runs)} runs, torch {torch.__version__}")
        print("\n".join(spread_table(runs, bounds)))
    print(f"\n$ python bench/outcome_spread.py {' '.join(sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
