"""One intra-op thread for this plugin's tests.

These networks run many small convolutions. On a small CPU shared with other
processes, OpenMP's worker threads spin while they wait for a core, and a
step measured 30 times slower with two threads than with one. Results do
not depend on it; the previous setting is restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gankit.testing import one_thread


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield
