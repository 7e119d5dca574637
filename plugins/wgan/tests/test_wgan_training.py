"""Outcomes of short trainings: WGAN-GP finds every mode of the ring."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit import Run
from gankit.testing import Bounds, assert_outcome

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def _train(recipe: str, *overrides: str) -> dict:
    overrides = ["train.sample_ticks=0", "train.checkpoint_ticks=0", "train.metric_ticks=0", *overrides]
    return Run.in_memory(RECIPES / recipe, overrides).train()["metrics"]["mode_coverage"]


# 2,000 generator steps of recipes/toy_ring8_wgangp.toml's networks (3 x 256)
# and 3 critic steps, at half its batch (64), the learning rate decaying to 0
# over them: about a minute on two idle CPU cores. Measured with `python
# bench/outcome_spread.py --only ring8` (seeds 0-4, 1 and 2 threads each,
# torch 2.14.1, 2-core x86_64; bench/results/outcome_spread.json): 8/8 modes
# in every run, high quality 0.844-0.873 (the same on 1 and 2 threads; the
# seeds' standard deviation 0.012). The bound on high quality sits 0.094
# below the worst run, about eight standard deviations; a run that loses a
# mode fails. (1,000 steps of 3 x 512 networks and 5 critic steps, which this
# test trained before, took twice as long for 0.803-0.829.)
RING8_BOUNDS: Bounds = {"modes": (">=", 8), "high_quality": (">=", 0.75)}


def ring8_outcome(seed: int) -> dict[str, float]:
    return _train(
        "toy_ring8_wgangp.toml",
        *("train.kimg=384", "train.tick_kimg=384", "train.batch_size=64", f"train.seed={seed}", f"data.seed={seed}"),
    )


@pytest.mark.timeout(600)
def test_wgangp_captures_all_eight_modes_of_the_ring():
    assert_outcome(ring8_outcome(seed=0), RING8_BOUNDS)


# The whole recipe, about eight minutes on two idle cores. Measured with
# `python bench/toy2d.py --g-steps 12000 --recipes toy_grid25_wgangp --seeds 5`
# (one thread, torch 2.14.1; bench/results/toy2d-wgangp.json): 25/25 modes
# in every run, high quality 0.94-0.96. The bound is the 90 % the recipe
# promises, about seven standard deviations of the seeds below their mean.
GRID25_BOUNDS: Bounds = {"modes": (">=", 25), "high_quality": (">=", 0.9)}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_wgangp_puts_nine_samples_in_ten_on_the_twenty_five_modes_of_the_grid():
    assert_outcome(_train("toy_grid25_wgangp.toml"), GRID25_BOUNDS)
