"""Outcomes of short trainings: WGAN-GP finds every mode of the ring."""

from __future__ import annotations

import pytest

from outcomes import Bounds, assert_outcome
from outcomes.toy2d import RING8_BOUNDS, mode_coverage_of, ring8_outcome


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
    assert_outcome(mode_coverage_of("toy_grid25_wgangp.toml"), GRID25_BOUNDS)
