"""A short DCGAN training on `shapes`: SWD to the data before and after
(plugins/dcgan/tests/test_dcgan_training.py)."""

from __future__ import annotations

import torch

from gankit import Run, default_registry, recipe_from_text
from outcomes import Bounds, swd_statistics, train_and_measure_swd

RECIPE = """
name = "dcgan_outcome"
[data]
type = "shapes"
resolution = 16
size = 2000
[generator]
type = "dcgan"
base_channels = 32
[discriminator]
type = "dcgan"
base_channels = 32
[loss]
type = "nonsaturating"
[optimizers.generator]
type = "adam"
lr = 2e-4
betas = [0.5, 0.999]
[optimizers.discriminator]
type = "adam"
lr = 2e-4
betas = [0.5, 0.999]
[train]
kimg = 24
batch_size = 32
device = "cpu"
tick_kimg = 4
ema_halflife_kimg = 1.0
seed = {seed}
"""


# Measured with `python bench/outcome_spread.py --only dcgan` (seeds 0-4, 1 and
# 2 threads each, torch 2.14.1, 2-core x86_64; bench/results/outcome_spread.json):
# after/before 0.156-0.214 (median 0.181), gap left 0.066-0.131 (median 0.094).
# The bounds sit at about 1.6 times the worst run.
BOUNDS: Bounds = {"after_over_before": ("<", 0.35), "gap_left": ("<", 0.2)}


def outcome(seed: int) -> dict[str, float]:
    """SWD of the EMA generator's samples to real images before and after
    training; ``gap_left`` is the part of the distance above the noise floor
    (two real sets) that training did not close."""
    torch.manual_seed(seed)
    recipe = recipe_from_text(RECIPE.format(seed=seed), "test recipe", default_registry())
    (before,), (after,), (noise_floor,) = train_and_measure_swd(Run.in_memory(recipe))
    return swd_statistics(before, after, noise_floor)
