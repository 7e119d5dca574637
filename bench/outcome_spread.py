"""The spread of every outcome test's statistics over seeds and thread counts.

An outcome test trains for a short while and bounds what it measures (a
distance to the data, modes found). Its bounds must hold on any machine, so
they are set from this measurement with a margin, never from one run:

    python bench/outcome_spread.py                      # every outcome, seeds 0-4, 1 and 2 threads
    python bench/outcome_spread.py --only msggan --seeds 8

The outcomes are the repository's ``outcomes`` package, which the outcome
tests import too: each defines ``outcome(seed)`` (or NAME_outcome) and its
BOUNDS, listed in ``outcomes.OUTCOMES``. The table gives, per statistic, the minimum, median and maximum over
all runs and the test's bound; ``worst`` is the least favourable run measured
against the bound. Every run is appended to the JSON file as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gankit import environment

from reporting import spread_table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the outcomes package beside recipes/, which the outcome tests import too
from outcomes import OUTCOMES, outcome_of  # noqa: E402


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
        outcome, bounds = outcome_of(name)
        relative = f"outcomes/{OUTCOMES[name][0]}.py"
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
