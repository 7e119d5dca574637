"""The progressive scheduler against the paper's schedule (Karras et al.
2018, Appendix A.1) and the official code's level of detail."""

from __future__ import annotations

import io
import math

import attrs
import numpy as np
import pytest
import torch

from gankit import Progress, Stage
from gankit.testing import structure_options
from gankit_progan import ProgressiveOptions, ProgressiveScheduler, level_of_detail, stage_at

PAPER = ProgressiveOptions(final_resolution=1024)  # 800k + 800k per resolution, batch 16 / 14 / 6 / 3


def _official_lod(kimg: float, options: ProgressiveOptions) -> float:
    """The official train.py TrainingSchedule's lod, written out again."""
    phase_duration = options.stabilize_kimg + options.fade_kimg
    phase_index = int(np.floor(kimg / phase_duration))
    phase_kimg = kimg - phase_index * phase_duration
    lod = math.log2(options.final_resolution) - np.floor(np.log2(options.start_resolution)) - phase_index
    lod -= max(phase_kimg - options.stabilize_kimg, 0.0) / options.fade_kimg
    return max(lod, 0.0)


def _plan(scheduler: ProgressiveScheduler, kimg: float):
    return scheduler.plan(Progress(nimg=round(kimg * 1000), total_nimg=10**9, d_steps=0, g_steps=0))


@pytest.mark.parametrize(
    ("kimg", "resolution", "alpha", "batch"),
    [
        (0, 4, 1.0, None),
        (799.984, 4, 1.0, None),
        (800, 8, 0.0, None),  # the first image of a fade: α = 0
        (1200, 8, 0.5, None),
        (1600, 8, 1.0, None),
        (2400 + 400, 16, 0.5, None),
        (800 + 5 * 1600 + 200, 256, 0.25, 14),  # fading in 256x256 already uses its batch
        (800 + 6 * 1600 + 800, 512, 1.0, 6),
        (800 + 7 * 1600 + 400, 1024, 0.5, 3),
        (800 + 8 * 1600, 1024, 1.0, 3),
        (50000, 1024, 1.0, 3),
    ],
)
def test_the_papers_schedule_at_chosen_kimg(kimg, resolution, alpha, batch):
    plan = _plan(ProgressiveScheduler(PAPER), kimg)
    assert plan.stage == Stage(resolution, pytest.approx(alpha))
    assert plan.batch_size == batch  # None: train.batch_size, 16 in the recipes
    assert plan.d_steps == 1 and plan.g_steps == 1 and plan.lr_scale == 1.0


def test_alpha_is_one_minus_the_fraction_of_the_official_lod():
    for options in (PAPER, ProgressiveOptions(start_resolution=8, final_resolution=64, stabilize_kimg=3.0, fade_kimg=5.0)):
        for nimg in range(0, 100_000_000, 137_501):
            kimg = nimg / 1000
            if kimg > 30 * (options.stabilize_kimg + options.fade_kimg):
                break
            stage, _ = stage_at(options, nimg)
            lod = _official_lod(kimg, options)
            assert level_of_detail(stage, options.final_resolution) == pytest.approx(lod, abs=1e-9), kimg
            if lod != math.floor(lod):  # fading: α = 1 − frac(lod), at the resolution 2^(log2 R − floor(lod))
                assert stage.alpha == pytest.approx(1 - (lod - math.floor(lod)))
                assert stage.resolution == options.final_resolution // 2 ** math.floor(lod)


def test_optimizers_are_reset_at_every_phase_boundary_and_nowhere_else():
    options = ProgressiveOptions(final_resolution=16, stabilize_kimg=0.1, fade_kimg=0.1)
    scheduler = ProgressiveScheduler(options)
    resets = [nimg for nimg in range(0, 800, 20) if _plan(scheduler, nimg / 1000).reset_optimizers]
    # stabilize 4 [0, 100), fade 8 [100, 200), stabilize 8, fade 16 [300, 400), stabilize 16 from 400
    assert resets == [100, 200, 300, 400]
    off = ProgressiveScheduler(attrs.evolve(options, reset_optimizers=False))
    assert not any(_plan(off, nimg / 1000).reset_optimizers for nimg in range(0, 800, 20))


def test_a_restored_scheduler_makes_the_same_reset_decisions():
    options = ProgressiveOptions(final_resolution=16, stabilize_kimg=0.1, fade_kimg=0.1)
    first = ProgressiveScheduler(options)
    for nimg in range(0, 100, 20):
        first.plan(Progress(nimg, 1000, 0, 0))
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = ProgressiveScheduler(options)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    assert second.plan(Progress(100, 1000, 0, 0)).reset_optimizers  # the fade begins right after the checkpoint
    assert first.plan(Progress(100, 1000, 0, 0)).reset_optimizers


def test_learning_rate_and_batch_per_resolution():
    options = ProgressiveOptions(
        final_resolution=32, stabilize_kimg=1.0, fade_kimg=1.0, batch_sizes={"32": 4}, lr_scales={"16": 1.5, "32": 2.0}
    )
    scheduler = ProgressiveScheduler(options)
    assert _plan(scheduler, 2.5).lr_scale == 1.0 and _plan(scheduler, 2.5).batch_size is None  # stabilizing at 8
    assert _plan(scheduler, 3.5).lr_scale == 1.5  # fading in 16
    assert _plan(scheduler, 5.5).lr_scale == 2.0 and _plan(scheduler, 5.5).batch_size == 4


def test_a_schedule_without_growth_or_fades():
    no_growth = ProgressiveOptions(start_resolution=64, final_resolution=64, stabilize_kimg=0, fade_kimg=0)
    assert stage_at(no_growth, 0) == (Stage(64, 1.0), 0)
    instant = ProgressiveOptions(final_resolution=16, stabilize_kimg=1.0, fade_kimg=0.0)
    assert [stage_at(instant, nimg)[0] for nimg in (999, 1000, 2000)] == [Stage(4), Stage(8), Stage(16)]


def test_options_are_checked():
    with pytest.raises(ValueError, match="powers of two >= 4"):
        ProgressiveOptions(batch_sizes={"100": 3})
    with pytest.raises(ValueError, match="must be > 0"):
        ProgressiveOptions(lr_scales={"64": 0.0})
    with pytest.raises(ValueError, match="final_resolution"):
        ProgressiveOptions(start_resolution=64, final_resolution=32)
    with pytest.raises(Exception, match="batch_sizes.*keys must be resolutions"):  # as a recipe reports it
        structure_options({"batch_sizes": {"3": 1}}, ProgressiveOptions)
