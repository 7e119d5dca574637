"""A short DCGAN training on `shapes` brings its samples measurably closer to the data."""

from __future__ import annotations

from outcomes import assert_outcome
from outcomes.dcgan_shapes import BOUNDS, outcome


def test_dcgan_samples_move_towards_the_data():
    # the untrained generator is far off; training closes most of the gap to
    # the distance between two real samples
    assert_outcome(outcome(seed=0), BOUNDS)
