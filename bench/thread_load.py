"""How long outcome tests and a short training take with 1 or 2 torch
threads, on an idle machine and beside one busy process.

The busy process is ``python -c "while True: pass"`` at normal priority,
the load a laptop or a shared CI runner has. Runs are interleaved (each
repeat goes through every setting once) so that a drift of the machine
falls on all of them alike; a run that passes ``--timeout`` is stopped and
counted as at least that long. The record goes to
bench/results/thread_load.json and the table to stdout.

    python bench/thread_load.py
    python bench/thread_load.py --repeats 2 --timeout 400
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from reporting import SECTIONS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = (
    "plugins/wgan/tests/test_wgan_training.py::test_wgangp_captures_all_eight_modes_of_the_ring",
    "plugins/sgan/tests/test_sgan_training.py::test_the_label_picks_the_class_a_classifier_of_the_data_sees",
    "plugins/dcgan/tests/test_dcgan_auxiliary.py::test_a_short_training_teaches_the_head_the_classes_of_unseen_shapes",
)
#: A short `gankit run` of the quickstart: what a user's first command does, for a minute.
TRAINING = ("gankit run recipes/quickstart.toml", ["train.kimg=8", "train.tick_kimg=4", "train.sample_ticks=0", "train.checkpoint_ticks=0"])
BUSY = [sys.executable, "-c", "while True: pass"]


def _timed(command: list[str], threads: int, timeout: float) -> tuple[float, bool]:
    """Seconds the command took with ``threads`` torch threads, and whether it passed."""
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return timeout, False
    return time.perf_counter() - start, done.returncode == 0


def _command(job: str, threads: int, folder: Path) -> list[str]:
    if job == "training":
        line, overrides = TRAINING
        sets = [part for override in overrides for part in ("--set", override)]
        return [sys.executable, "-m", "gankit", *line.split()[1:], *sets, "--run-dir", str(folder / f"run-{time.monotonic_ns()}")]
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--torch-threads={threads}", "--timeout=0", job]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", nargs="*", default=list(DEFAULT_TESTS), help="pytest node ids to time (none: the training only)")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds after which a run is stopped and counted as this long")
    parser.add_argument("--no-training", action="store_true", help="time the tests only, not the short quickstart training")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "thread_load.json")
    args = parser.parse_args(argv)

    jobs = list(args.tests) + ([] if args.no_training else ["training"])
    times: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for load in ("idle", "busy"):
                busy = subprocess.Popen(BUSY) if load == "busy" else None
                try:
                    for job in jobs:
                        for threads in args.threads:
                            seconds, passed = _timed(_command(job, threads, Path(scratch)), threads, args.timeout)
                            times.setdefault(f"{job}|{load}|{threads}", []).append({"seconds": round(seconds, 1), "passed": passed})
                            print(f"repeat {repeat}, {load}, {threads} thread(s): {seconds:7.1f} s  {job}", file=sys.stderr, flush=True)
                finally:
                    if busy is not None:
                        busy.kill()
                        busy.wait()
    rows = []
    for key, runs in times.items():
        job, load, threads = key.split("|")
        rows.append(
            {
                "job": TRAINING[0] + " --set " + " --set ".join(TRAINING[1]) if job == "training" else job,
                "load": load,
                "threads": int(threads),
                "median_seconds": statistics.median(run["seconds"] for run in runs),
                "runs": runs,
            }
        )
    record = {
        "kind": "thread_load",
        "command": "python bench/thread_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "timeout": args.timeout,
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print("\n".join(SECTIONS["thread_load"][1](record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
