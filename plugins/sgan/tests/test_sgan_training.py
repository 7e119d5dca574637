"""A short SGAN training on `shapes`: the label given to the top of the
stack decides the class of the shape drawn."""

from __future__ import annotations

import tempfile
from copy import deepcopy
from pathlib import Path

import pytest
import torch

import gankit
import gankit_sgan
from gankit import Run, default_registry, generate, recipe_from_text, to_float_images
from gankit.testing import Bounds, assert_outcome, one_thread

pytest.importorskip("gankit_dcgan")  # the non-saturating loss of stack 0

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


def _recipe(seed: int, kimg: float, independent_kimg: float) -> str:
    return RECIPE.format(seed=seed, kimg=kimg, independent_kimg=independent_kimg)


@torch.no_grad()
def encoder_class_accuracy(generator: gankit_sgan.SGANGenerator, discriminator: gankit_sgan.SGANDiscriminator, shift: int = 0) -> float:
    """Share of the top of the stack's images, 100 per class from fixed
    latents, that the frozen encoder classifies as the label asked for plus
    ``shift`` (a shift of 1 pairs every image with a wrong label: the control)."""
    classes = generator.num_classes
    z = generator.sample_latents(100 * classes, "cpu", torch.Generator().manual_seed(12345))
    labels = torch.arange(classes).repeat_interleave(100)
    images = generate(generator, z, labels, 200)[-1]
    predicted = discriminator.encoder(images).argmax(dim=1)
    return float((predicted == (labels + shift) % classes).float().mean())


@torch.no_grad()
def stack_conditional_losses(
    generator: gankit_sgan.SGANGenerator, discriminator: gankit_sgan.SGANDiscriminator, reals: torch.Tensor
) -> dict[str, float]:
    """Each stack's conditional loss as independent training sees it, on
    fixed latents and labels, with G0 fed the encoder's features of
    ``reals``; a copy of the generator runs, so training is not disturbed."""
    copy = deepcopy(generator).train()
    copy.set_stage(gankit.Stage(phase="independent"))
    copy.feed_real_features(discriminator.encode(reals))
    z = copy.sample_latents(reals.shape[0], "cpu", torch.Generator().manual_seed(54321))
    labels = torch.arange(reals.shape[0]) % copy.num_classes
    images = copy(z, labels)[-1]
    assert copy.last is not None
    return {name: float(value) for name, value in gankit_sgan.conditional_losses(discriminator, copy.last, images).items()}


@one_thread()
def outcome(seed: int, kimg: float = 8, independent_kimg: float = 4, metrics: bool = False) -> dict[str, float]:
    """Train the small recipe (independent, then joint). Each stack's
    conditional loss is measured before training and at the end of the
    independent phase; the EMA generator's top of the stack is scored at the
    end: the encoder's accuracy on it against the labels asked for and
    against wrong ones, and optionally recognizability."""
    torch.manual_seed(seed)
    text = _recipe(seed, kimg, independent_kimg)
    if not metrics:
        text = text.replace("[metrics.recognizability]\nimages = 512\nepochs = 3\n", "")
    run = Run.in_memory(recipe_from_text(text, "test recipe", default_registry()))
    trainer = run.trainer
    trainer.prepare_from_data()  # the encoder, trained before the GAN: the losses before training need it
    reals = to_float_images(trainer.dataset.__getitems__(list(range(1, 1000, 4)))[0])  # 250 images, none held out
    losses = {"before": stack_conditional_losses(trainer.G, trainer.D, reals)}

    def end_of_independent_phase(trainer: gankit.Trainer) -> None:
        if "independent" not in losses and trainer.nimg >= independent_kimg * 1000:
            losses["independent"] = stack_conditional_losses(trainer.G, trainer.D, reals)

    trainer.step_callbacks.append(end_of_independent_phase)
    record = run.train()
    result = {
        "encoder_accuracy": float(trainer.D.encoder_accuracy),
        "class_accuracy_encoder": encoder_class_accuracy(trainer.G_ema, trainer.D),
        "wrong_label_accuracy_encoder": encoder_class_accuracy(trainer.G_ema, trainer.D, shift=1),
    }
    for stack in ("cond0", "cond1"):
        result[f"{stack}_before"] = losses["before"][stack]
        result[f"{stack}_independent"] = losses["independent"][stack]
        result[f"{stack}_ratio"] = losses["independent"][stack] / losses["before"][stack]
    if metrics:
        scores = record["metrics"]["recognizability"]
        result |= {"class_accuracy": scores["class_accuracy"], "recognizable": scores["recognizable"]}
    return result


# Measured with `OMP_NUM_THREADS=1 python -c "from test_sgan_training import outcome; print(outcome(seed))"`
# for seeds 0-5 (torch 2.9, one thread, 2-core x86_64; deterministic per seed):
#   cond0_ratio                   0.097 0.090 0.094 0.088 0.126 0.072  (each stack's conditional loss at the end of
#   cond1_ratio                   0.153 0.138 0.167 0.164 0.144 0.137   4 kimg of independent training / before it)
#   class_accuracy_encoder        0.485 0.410 0.482 0.388 0.372 0.547  (chance: 1/6)
#   wrong_label_accuracy_encoder  0.215 0.203 0.240 0.273 0.173 0.188
# The bounds sit at about twice the worst ratio and 0.09 below the worst accuracy.
BOUNDS: Bounds = {
    "cond0_ratio": ("<", 0.3),
    "cond1_ratio": ("<", 0.35),
    "class_accuracy_encoder": (">", 0.28),
}


@pytest.fixture(scope="module")
def fast_outcome() -> dict[str, float]:
    return outcome(seed=0)


def test_each_stacks_conditional_loss_decreases_in_independent_training(fast_outcome):
    assert_outcome(fast_outcome, {name: bound for name, bound in BOUNDS.items() if name.startswith("cond")})


def test_the_label_controls_the_class_the_top_of_the_stack_draws(fast_outcome):
    # the frozen encoder names the class asked for far more often than a wrong one (smallest gap measured: 0.115)
    assert_outcome(fast_outcome, {"class_accuracy_encoder": BOUNDS["class_accuracy_encoder"]})
    assert fast_outcome["class_accuracy_encoder"] - fast_outcome["wrong_label_accuracy_encoder"] > 0.05


RECIPES = Path(__file__).resolve().parents[3] / "recipes"


@pytest.mark.slow
@one_thread()
def test_the_shapes_recipe_draws_the_class_asked_for(tmp_path, monkeypatch):
    """recipes/sgan_shapes.toml as it is (32x32, 30 kimg, about 5 minutes):
    measured once, seed 0: the encoder names the class asked for in 0.858 of
    the top of the stack's samples and a wrong one in 0.013; recognizability
    (classifier accuracy 0.949) names none of them (class_accuracy 0.0), so
    it is recorded, not bounded."""
    torch.manual_seed(0)
    run = Run.in_memory(str(RECIPES / "sgan_shapes.toml"), ["train.device=cpu"])
    record = run.train()
    trainer = run.trainer
    asked, wrong = encoder_class_accuracy(trainer.G_ema, trainer.D), encoder_class_accuracy(trainer.G_ema, trainer.D, shift=1)
    assert "class_accuracy" in record["metrics"]["recognizability"]
    assert asked > 0.6 and asked - wrong > 0.4, (asked, wrong, record["metrics"])


def hue_recipe(
    seed: int,
    root: Path,
    kimg: float = 24,
    conditional_weight: float = 1.0,
    entropy_weight: float = 1.0,
    stack0_conditional_scale: float = 0.01,
) -> str:
    """The small recipe on gankit.testing.write_hue_classes' data at
    ``root``, its classes scored by recognizability's classifier, with these
    loss weights (bench/sgan_hue_classes.py varies them)."""
    return (
        _recipe(seed, kimg, independent_kimg=4)
        .replace('type = "shapes"\nresolution = 16\nsize = 4000', gankit.testing.labelled_images_data(root, 16))
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
    gankit.testing.write_hue_classes' data, with stack 0's
    conditional loss scaled by 0.01 and λ_ent 1 (plugins/sgan/README.md:
    with the paper's weights no sample is named there)."""
    with tempfile.TemporaryDirectory() as folder:
        text = hue_recipe(seed, gankit.testing.write_hue_classes(Path(folder) / "hues"), kimg)
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


@one_thread()
def test_the_label_picks_the_class_a_classifier_of_the_data_sees(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))  # encoder and classifier trained here, as on a fresh machine
    assert_outcome(hue_outcome(0), HUE_BOUNDS)
