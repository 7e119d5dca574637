"""Outcomes of short trainings on the grid of 25 Gaussians: with minibatch
discrimination (§3.2) or feature matching (§3.1) the non-saturating GAN
captures modes that the baseline loses (Salimans et al. 2016)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit import Run
from gankit.testing import Bounds, assert_outcome

RECIPES = Path(__file__).resolve().parents[3] / "recipes"

# The short setting: 500 generator steps of batch 64 (32 kimg) with networks
# of 256 units, a quarter of each recipe's steps and half its batch and width.
SHORT = ["train.kimg=32", "train.tick_kimg=32", "train.batch_size=64", "generator.hidden=256", "discriminator.hidden=256"]


def _coverage(recipe: str, seed: int) -> dict[str, float]:
    overrides = [
        "train.sample_ticks=0",
        "train.checkpoint_ticks=0",
        "train.metric_ticks=0",
        *SHORT,
        f"train.seed={seed}",
        f"data.seed={seed}",
    ]
    score = Run.in_memory(RECIPES / f"{recipe}.toml", overrides, progress="none").train()["metrics"]["mode_coverage"]
    return {"modes": score["modes"], "high_quality": score["high_quality"], "kl": score.get("kl", float("inf"))}


# Measured in the short setting, seeds 0-4, one thread, torch 2.14.1, 2-core
# x86_64 (modes / high quality / KL):
#   toy_grid25_gan      5, 18, 3, 5, 6      / 0.016, 0.014, 0.022, 0.006, 0.023 / 1.95, 0.43, 2.42, 1.97, 2.09
#   toy_grid25_gan_mbd  22, 21, 22, 24, 22  / 0.123, 0.087, 0.124, 0.168, 0.116 / 0.68, 0.77, 0.58, 0.68, 0.62
#   toy_grid25_gan_fm   18, 18, 20, 23, 19  / 0.018, 0.018, 0.020, 0.027, 0.016 / 0.50, 0.48, 0.62, 0.28, 0.45
# Minibatch discrimination: modes 2 below its worst run and above every
# baseline run, high quality 0.027 below its worst run and 2.6 times the
# baseline's best. Feature matching: modes 3 below its worst run (the
# baseline's best seed reached 18, its others at most 6); KL 0.28 above its
# worst run, below four of the baseline's five.
MBD_BOUNDS: Bounds = {"modes": (">=", 19), "high_quality": (">=", 0.06)}
FM_BOUNDS: Bounds = {"modes": (">=", 15), "kl": ("<=", 0.9)}


def mbd_outcome(seed: int) -> dict[str, float]:
    return _coverage("toy_grid25_gan_mbd", seed)


def fm_outcome(seed: int) -> dict[str, float]:
    return _coverage("toy_grid25_gan_fm", seed)


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
        recipe: sum(_coverage(recipe, seed)["modes"] for seed in seeds) / len(seeds)
        for recipe in ("toy_grid25_gan", "toy_grid25_gan_mbd", "toy_grid25_gan_fm")
    }
    assert mean["toy_grid25_gan_mbd"] >= mean["toy_grid25_gan"] + 5, mean
    assert mean["toy_grid25_gan_fm"] >= mean["toy_grid25_gan"] + 5, mean
