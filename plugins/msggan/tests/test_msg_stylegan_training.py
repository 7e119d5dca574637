"""A short MSG-StyleGAN training on `shapes` brings its samples measurably
closer to the data at every scale; a longer one (slow) closes most of the
gap and leaves the samples recognizable."""

from __future__ import annotations

import pytest

from outcomes import assert_outcome
from outcomes.msg_stylegan import BOUNDS, SLOW_BOUNDS, outcome


def test_the_samples_move_towards_the_data_at_every_scale():
    assert_outcome(outcome(seed=0), BOUNDS)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_a_longer_training_closes_most_of_the_gap_at_every_scale(seed):
    assert_outcome(outcome(seed=seed, kimg=12.0), SLOW_BOUNDS)
