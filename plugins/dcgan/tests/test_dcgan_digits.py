"""The quickstart on real handwritten digits: a short training moves its
samples towards the digits, and the whole recipe draws digits a classifier
of the real ones names, as the digit asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit import Run
from outcomes import assert_outcome
from outcomes.digits import BOUNDS, FULL_BOUNDS, QUICKSTART, outcome


def test_a_short_quickstart_moves_its_samples_towards_the_digits() -> None:
    assert_outcome(outcome(seed=0), BOUNDS)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_quickstart_draws_digits_a_classifier_names_as_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    overrides = ["train.sample_ticks=0", "train.checkpoint_ticks=0"]
    assert_outcome(Run.in_memory(QUICKSTART, overrides).train()["metrics"]["recognizability"], FULL_BOUNDS)
