"""SAGAN trained through gankit's loop: a short conditional training on
`shapes` brings its samples measurably closer to the data, and a run with
spectrally normalized networks resumes from its checkpoint bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit import Run
from gankit.testing import one_thread
from outcomes import Bounds, assert_outcome
from outcomes.sagan import BOUNDS, outcome

pytest.importorskip("gankit_dcgan")  # the hinge loss


@one_thread()
def test_sagan_samples_move_towards_the_data():
    assert_outcome(outcome(seed=0), BOUNDS)


TINY = """
name = "sagan_tiny"
[data]
type = "shapes"
resolution = 8
size = 64
[generator]
type = "sagan"
latent_size = 8
channels = 8
max_channels = 16
attention = [4]
conditional = true
[discriminator]
type = "sagan"
channels = 8
max_channels = 16
attention = [4]
conditional = true
[loss]
type = "hinge"
[regularizers.spectral_norm]
[optimizers.generator]
type = "adam"
lr = 1e-4
betas = [0.0, 0.9]
[optimizers.discriminator]
type = "adam"
lr = 4e-4
betas = [0.0, 0.9]
[train]
kimg = 0.064
batch_size = 8
device = "cpu"
deterministic = true
tick_kimg = 0.016
sample_ticks = 0
checkpoint_ticks = 0
ema_rampup = 0.0
ema_halflife_kimg = 0.05
"""


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


@one_thread()
def test_a_spectrally_normalized_run_resumes_bit_for_bit(tmp_path: Path):
    # the parametrizations' u and v live in the state dicts, so a resumed run
    # continues their power iterations where they stopped
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(TINY)
    straight = Run.start(recipe, run_dir=tmp_path / "straight", progress="none")
    straight.train()
    half = Run.start(recipe, ["train.kimg=0.032"], run_dir=tmp_path / "halves", progress="none")
    half.train()
    resumed = Run.resume(tmp_path / "halves", ["train.kimg=0.064"], progress="none")
    resumed.train()
    assert resumed.trainer.nimg == straight.trainer.nimg == 64
    for name in ("G", "D", "G_ema"):
        a, b = _weights(getattr(straight.trainer, name)), _weights(getattr(resumed.trainer, name))
        assert any(key.endswith("parametrizations.weight.0._u") for key in a)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[key], b[key]) for key in a), f"{name} differs after resuming"
    # sampling rebuilds the generator with its parametrizations before loading it
    sampler = Run.from_checkpoint(tmp_path / "halves")
    loaded, expected = _weights(sampler.generator), _weights(straight.trainer.G_ema)
    assert loaded.keys() == expected.keys() and all(torch.equal(loaded[key], expected[key]) for key in loaded)
    images = sampler.sample(6, seed=0)[-1]
    assert images.shape == (6, 3, 8, 8) and torch.isfinite(images).all()


# Measured as BOUNDS, seeds 0-2 at 12 kimg: after/before 0.289, 0.331, 0.280,
# gap left 0.204, 0.252, 0.196; the bounds sit at about 1.3 times the worst,
# below every seed of the short training.
SLOW_KIMG = 12.0
SLOW_BOUNDS: Bounds = {"after_over_before": ("<", 0.43), "gap_left": ("<", 0.33)}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
@one_thread()
def test_longer_training_closes_more_of_the_gap(seed: int):
    assert_outcome(outcome(seed=seed, kimg=SLOW_KIMG), SLOW_BOUNDS)
