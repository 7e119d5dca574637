"""Settings for the whole test suite (tests/ and every plugin's tests/).

Torch runs each test with ``--torch-threads`` intra-op threads, one by
default, and the processes tests start inherit the same through
OMP_NUM_THREADS. With as many threads as cores, one other busy process on
the machine makes every parallel op wait for a core that is taken: the WGAN
ring test went from 57 s to over 600 s beside one background process. One
thread does not collapse on a busy machine (docs/reliability.md, "Threads";
`python bench/thread_load.py` measures it); README's test command runs two
test processes (`-n 2`) so that an idle machine's cores are both used.

Every test starts with torch's, numpy's and Python's global random streams
seeded from its own name, so a test that draws random values without a seed
of its own draws the same ones on every run, in any order and any worker:
a value that trips a tolerance once trips it always, and is fixed, rather
than failing one CI run in twenty.
"""

from __future__ import annotations

import os
import random
import zlib

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


@pytest.fixture(autouse=True)
def _seeded_random_streams(request: pytest.FixtureRequest) -> None:
    import numpy
    import torch

    seed = zlib.crc32(request.node.nodeid.encode())
    torch.manual_seed(seed)
    numpy.random.seed(seed)
    random.seed(seed)
