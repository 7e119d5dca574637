"""Outcomes of short trainings on the grid of 25 Gaussians: with minibatch
discrimination (§3.2) or feature matching (§3.1) the non-saturating GAN
captures modes that the baseline loses (Salimans et al. 2016)."""

from __future__ import annotations

from pathlib import Path

import pytest

from outcomes import assert_outcome
from outcomes.toy2d import FM_BOUNDS, MBD_BOUNDS, fm_outcome, grid25_coverage, mbd_outcome

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def test_minibatch_discrimination_captures_most_modes_of_the_grid():
    assert_outcome(mbd_outcome(seed=0), MBD_BOUNDS)


def test_feature_matching_captures_most_modes_of_the_grid():
    assert_outcome(fm_outcome(seed=0), FM_BOUNDS)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_both_techniques_capture_more_modes_than_the_baseline_on_the_same_seeds():
    # Measured (seeds 0-2, above): mean modes 8.7 for the baseline, 21.7 with
    # minibatch discrimination, 18.7 with feature matching; over seeds 0-4
    # the per-seed gains are 3 to 19 and 0 to 18 modes. A gain of 5 modes
    # on the mean leaves a margin of 5 (feature matching) and 8.
    seeds = range(3)
    mean = {
        recipe: sum(grid25_coverage(recipe, seed)["modes"] for seed in seeds) / len(seeds)
        for recipe in ("toy_grid25_gan", "toy_grid25_gan_mbd", "toy_grid25_gan_fm")
    }
    assert mean["toy_grid25_gan_mbd"] >= mean["toy_grid25_gan"] + 5, mean
    assert mean["toy_grid25_gan_fm"] >= mean["toy_grid25_gan"] + 5, mean
