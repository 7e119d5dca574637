"""The quickstart, short, on the mnist digits: SWD before and after
(plugins/dcgan/tests/test_dcgan_digits.py)."""

from __future__ import annotations

import torch

from gankit import Run
from outcomes import RECIPES, Bounds, swd_statistics, train_and_measure_swd

QUICKSTART = RECIPES / "quickstart.toml"

# recipes/quickstart.toml at 16x16 for 8 kimg (250 steps), the raw
# generator's weights (train.ema_halflife_kimg = 0). This early the recipe
# draws scribbles, not digits (its first 30 kimg at 32x32 are noise to a
# classifier: plugins/dcgan/README.md), so the fast test bounds the sliced
# Wasserstein distance to real digits instead. Measured with `python
# bench/outcome_spread.py --only digits` (seeds 0-4, 1 and 2 threads each,
# torch 2.14.1, 2-core x86_64; bench/results/outcome_spread.json):
# after/before 0.517-0.571 (median 0.558), gap left 0.229-0.314 (median
# 0.294). The bounds sit four to seven standard deviations of the runs above
# the worst; a generator that learns nothing stays near 1.
BOUNDS: Bounds = {"after_over_before": ("<", 0.7), "gap_left": ("<", 0.45)}


def outcome(seed: int) -> dict[str, float]:
    """SWD of the samples to real digits before and after a short training."""
    overrides = [
        "data.resolution=16",
        "train.kimg=8",
        "train.tick_kimg=8",
        "train.sample_ticks=0",
        "train.checkpoint_ticks=0",
        "train.ema_halflife_kimg=0",
        f"train.seed={seed}",
        "metrics={}",
    ]
    torch.manual_seed(seed)
    labels = torch.arange(512) % 10
    (before,), (after,), (noise_floor,) = train_and_measure_swd(Run.in_memory(QUICKSTART, overrides), labels)
    return swd_statistics(before, after, noise_floor)


# The whole recipe, about four minutes on two idle cores. Measured with
# `python bench/recipe_results.py quickstart --seeds 0 1 2` (docs/results.md):
# relative recognizability 0.889-0.944, class_accuracy 0.981-0.993, all ten
# digits on every seed.
FULL_BOUNDS: Bounds = {"relative": (">=", 0.8), "class_accuracy": (">=", 0.9), "classes_drawn": (">=", 10)}
