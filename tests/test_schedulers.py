"""The built-in ``alternating`` scheduler's step ratio and learning-rate decay."""

from __future__ import annotations

import pytest

from gankit.builtin import AlternatingOptions, AlternatingScheduler
from gankit.contracts import Progress


def _plan(options: AlternatingOptions, nimg: int = 0, g_steps: int = 0):
    return AlternatingScheduler(options).plan(Progress(nimg=nimg, total_nimg=1000, d_steps=5 * g_steps, g_steps=g_steps))


def test_constant_rate_and_step_ratio():
    plan = _plan(AlternatingOptions(d_steps=5), nimg=700)
    assert (plan.d_steps, plan.g_steps, plan.lr_scale) == (5, 1, 1.0)


def test_linear_decay_reaches_zero_at_the_end_of_training():
    options = AlternatingOptions(lr_decay="linear")
    assert [_plan(options, nimg=n).lr_scale for n in (0, 250, 1000, 1200)] == [1.0, 0.75, 0.0, 0.0]


def test_linear_decay_over_generator_steps():
    # WGAN-GP's CIFAR-10 schedule: to 0 over 100k generator steps, whatever the length of training
    options = AlternatingOptions(lr_decay="linear", decay_g_steps=100_000)
    assert [_plan(options, nimg=999, g_steps=s).lr_scale for s in (0, 25_000, 100_000, 150_000)] == [1.0, 0.75, 0.0, 0.0]


def test_decay_steps_must_be_positive():
    with pytest.raises(ValueError, match="'decay_g_steps' must be > 0"):
        AlternatingOptions(lr_decay="linear", decay_g_steps=0)
