"""SGAN's small recipe on six hue classes: does the label pick the class a
classifier of the data sees? (plugins/sgan/tests/test_sgan_training.py;
bench/sgan_hue_classes.py varies its loss weights)"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from gankit import Run, default_registry, recipe_from_text
from outcomes import Bounds, labelled_images_data, write_hue_classes

RECIPE = """
name = "sgan_outcome"
[data]
type = "shapes"
resolution = 16
size = 4000
[generator]
type = "sgan"
g1_width = 128
z0_width = 64
g0_channels = 64
features = 64
[discriminator]
type = "sgan"
channels = 16
d1_width = 64
encoder_widths = [16, 32]
encoder_features = 64
encoder_epochs = 4
encoder_batch_size = 50
encoder_lr = 2e-3
[loss]
type = "nonsaturating"
[regularizers.sgan_d]
type = "sgan_losses"
phase = "D"
[regularizers.sgan_g]
type = "sgan_losses"
phase = "G"
[scheduler]
type = "sgan_stacked"
independent_kimg = {independent_kimg}
[optimizers.generator]
type = "adam"
lr = 2e-4
betas = [0.5, 0.999]
[optimizers.discriminator]
type = "adam"
lr = 2e-4
betas = [0.5, 0.999]
[metrics.recognizability]
images = 512
epochs = 3
[train]
kimg = {kimg}
batch_size = 32
device = "cpu"
tick_kimg = {kimg}
ema_halflife_kimg = 1.0
seed = {seed}
"""


def small_recipe(seed: int, kimg: float, independent_kimg: float) -> str:
    return RECIPE.format(seed=seed, kimg=kimg, independent_kimg=independent_kimg)


def hue_recipe(
    seed: int,
    root: Path,
    kimg: float = 24,
    conditional_weight: float = 1.0,
    entropy_weight: float = 1.0,
    stack0_conditional_scale: float = 0.01,
) -> str:
    """The small recipe on write_hue_classes' data at
    ``root``, its classes scored by recognizability's classifier, with these
    loss weights (bench/sgan_hue_classes.py varies them)."""
    return (
        small_recipe(seed, kimg, independent_kimg=4)
        .replace('type = "shapes"\nresolution = 16\nsize = 4000', labelled_images_data(root, 16))
        .replace('phase = "D"\n', f'phase = "D"\nentropy_weight = {entropy_weight}\n')
        .replace(
            'phase = "G"\n',
            f'phase = "G"\nconditional_weight = {conditional_weight}\nentropy_weight = {entropy_weight}\n'
            f"stack0_conditional_scale = {stack0_conditional_scale}\n",
        )
        .replace("images = 512\nepochs = 3\n", "images = 1024\n")
    )


def hue_outcome(seed: int, kimg: float = 24) -> dict[str, float]:
    """class_accuracy of recognizability (a classifier of the real data,
    not SGAN's own encoder) after training the small networks on
    write_hue_classes' data, with stack 0's
    conditional loss scaled by 0.01 and λ_ent 1 (plugins/sgan/README.md:
    with the paper's weights no sample is named there)."""
    with tempfile.TemporaryDirectory() as folder:
        text = hue_recipe(seed, write_hue_classes(Path(folder) / "hues"), kimg)
        torch.manual_seed(seed)
        run = Run.in_memory(recipe_from_text(text, "sgan_hues", default_registry()), progress="none")
        return {"class_accuracy": float(run.train()["metrics"]["recognizability"]["class_accuracy"])}


# hue_outcome(seed) for seeds 0-4 (torch 2.14, 2-core x86_64, about
# 30 s a run on an idle thread): one thread 1.000, 1.000, 0.512, 1.000,
# 1.000; two threads 1.000, 1.000, 0.509, 1.000, 1.000. After 16 kimg the
# spread was wider (one thread: 1.000, 0.831, 0.316, 1.000, 0.486), hence
# 24. The bound sits 0.2 below the lowest value measured and 0.13 above
# chance (1/6); over 1,024 images the sampling error is at most 0.016
# (bench/outcome_spread.py --only sgan_hues).
HUE_BOUNDS: Bounds = {"class_accuracy": (">", 0.3)}
