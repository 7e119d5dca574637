"""Settings for the whole test suite (tests/ and every plugin's tests/).

Torch runs each test with ``--torch-threads`` intra-op threads, one by
default, and the processes tests start inherit the same through
OMP_NUM_THREADS. With as many threads as cores, one other busy process on
the machine makes every parallel op wait for a core that is taken: the WGAN
ring test went from 57 s to over 600 s beside one background process. One
thread does not collapse on a busy machine (docs/reliability.md, "Threads";
`python bench/thread_load.py` measures it); README's test command runs two
test processes (`-n 2`) so that an idle machine's cores are both used.
"""

from __future__ import annotations

import os

import pytest

THREADS_ENVIRONMENT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads for every test and the processes it starts (default 1: immune to a busy machine)",
    )


def pytest_configure(config: pytest.Config) -> None:
    import torch

    threads = config.getoption("--torch-threads")
    if threads < 1:
        raise pytest.UsageError(f"--torch-threads: expected a positive number, got {threads}")
    torch.set_num_threads(threads)
    for name in THREADS_ENVIRONMENT_VARIABLES:
        os.environ[name] = str(threads)
