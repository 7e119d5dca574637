"""Short trainings on the 2D toy mixtures, scored by mode coverage: WGAN-GP
on the ring of 8 (plugins/wgan/tests/test_wgan_training.py), and minibatch
discrimination and feature matching on the grid of 25
(plugins/improved/tests/test_improved_training.py)."""

from __future__ import annotations

from gankit import Run
from outcomes import RECIPES, Bounds


def mode_coverage_of(recipe: str, *overrides: str) -> dict:
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
    return mode_coverage_of(
        "toy_ring8_wgangp.toml",
        *("train.kimg=384", "train.tick_kimg=384", "train.batch_size=64", f"train.seed={seed}", f"data.seed={seed}"),
    )


# The short setting: 500 generator steps of batch 64 (32 kimg) with networks
# of 256 units, a quarter of each recipe's steps and half its batch and width.
SHORT = ["train.kimg=32", "train.tick_kimg=32", "train.batch_size=64", "generator.hidden=256", "discriminator.hidden=256"]


def grid25_coverage(recipe: str, seed: int) -> dict[str, float]:
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
    return grid25_coverage("toy_grid25_gan_mbd", seed)


def fm_outcome(seed: int) -> dict[str, float]:
    return grid25_coverage("toy_grid25_gan_fm", seed)
