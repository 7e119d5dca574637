"""A short DCGAN training on `shapes` brings its samples measurably closer to the data."""

from __future__ import annotations

import torch

from gankit.contracts import to_float_images
from gankit.loop import Trainer, generate
from gankit.recipe import recipe_from_text
from gankit.registry import default_registry
from gankit.testing import sliced_wasserstein

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
tensorboard = false
"""


def test_dcgan_samples_move_towards_the_data():
    torch.manual_seed(0)
    recipe = recipe_from_text(RECIPE, "test recipe", default_registry())
    trainer = Trainer(recipe, None, show_progress=False)
    trainer.dataset.prepare()
    images, _ = trainer.dataset.__getitems__(list(range(1000, 1512)))
    reals = to_float_images(images)
    z = trainer.G.sample_latents(512, "cpu", torch.Generator().manual_seed(1))
    before = sliced_wasserstein(generate(trainer.G_ema, z, None, 128)[-1], reals)
    noise_floor = sliced_wasserstein(to_float_images(trainer.dataset.__getitems__(list(range(512)))[0]), reals)
    trainer.train()
    after = sliced_wasserstein(generate(trainer.G_ema, z, None, 128)[-1], reals)
    # the untrained generator is far off; training closes most of the gap to
    # the distance between two real samples
    assert after < 0.5 * before, (before, after, noise_floor)
    assert after - noise_floor < 0.4 * (before - noise_floor), (before, after, noise_floor)
