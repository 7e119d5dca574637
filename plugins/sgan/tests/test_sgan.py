"""SGAN's parts one by one: the encoder and its cache, the gradients of the
independent and joint phases, the schedule, pictures, sampling and recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import gankit
import gankit_sgan
from gankit.testing import one_thread
from gankit_sgan import SGANDiscriminator, SGANDiscriminatorOptions, SGANGenerator, SGANGeneratorOptions, SGANLosses, SGANLossesOptions

RECIPES = Path(__file__).resolve().parents[3] / "recipes"
CONTEXT = gankit.BuildContext(resolution=16, channels=3, num_classes=6)
SMALL_G = {"g1_width": 32, "z0_width": 16, "g0_channels": 16, "features": 16}
SMALL_D = {"channels": 8, "d1_width": 16, "encoder_widths": [4, 8], "encoder_features": 16, "encoder_epochs": 1, "encoder_cache": False}


def _networks() -> tuple[SGANGenerator, SGANDiscriminator]:
    torch.manual_seed(0)
    generator = SGANGenerator(SGANGeneratorOptions(**SMALL_G), CONTEXT)
    discriminator = SGANDiscriminator(SGANDiscriminatorOptions(**SMALL_D), CONTEXT)
    discriminator.encoder_accuracy.fill_(0.5)  # random encoder weights stand in for a trained one
    return generator, discriminator


def _generator_phase(generator: SGANGenerator, discriminator: SGANDiscriminator, with_regularizer: bool) -> None:
    """One G phase as the loop runs it: the loss on the top of the stack, plus the SGAN terms."""
    z = generator.sample_latents(8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 6
    generator.zero_grad(set_to_none=True)
    fakes = generator(z, labels)
    objective = F.softplus(-discriminator(fakes)).mean()
    if with_regularizer:
        reals = [torch.rand(8, 3, 16, 16) * 2 - 1]
        ctx = gankit.PenaltyContext(discriminator, generator, reals, fakes, labels, labels, None, gankit.DOutput(torch.zeros(8)), 0)
        objective = objective + SGANLosses(SGANLossesOptions(phase="G")).penalty(ctx)
    objective.backward()


def _gradient_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.norm()) for p in module.parameters() if p.grad is not None)


def test_in_joint_training_gradients_reach_both_generators():
    generator, discriminator = _networks()
    generator.set_stage(gankit.Stage(phase="joint"))
    _generator_phase(generator, discriminator, with_regularizer=True)
    g1 = [generator.g1_noise, generator.g1_label, generator.g1]
    g0 = [generator.g0_noise, generator.g0_fc, generator.g0_up]
    for part in g1 + g0:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), part


def test_stack_0s_loss_reaches_g1_with_the_joint_weight_and_not_at_all_when_independent():
    generator, discriminator = _networks()
    norms = {}
    for phase, weight in (("joint", 1.0), ("joint", 0.01), ("independent", 0.01)):
        generator.options.joint_weight = weight
        generator.set_stage(gankit.Stage(phase=phase))
        _generator_phase(generator, discriminator, with_regularizer=False)  # stack 0's adversarial loss alone
        norms[phase, weight] = _gradient_norm(generator.g1), _gradient_norm(generator.g0_up)
    assert norms["joint", 1.0][0] > 0
    assert norms["joint", 0.01][0] == pytest.approx(0.01 * norms["joint", 1.0][0], rel=1e-4)  # Huang et al. §3.3: 0.01·L_G0
    assert norms["joint", 0.01][1] == pytest.approx(norms["joint", 1.0][1], rel=1e-5)  # G0 gets all of it
    assert norms["independent", 0.01][0] == 0 and norms["independent", 0.01][1] > 0


def test_stack0_conditional_scale_weighs_stack_0s_conditional_loss_alone():
    generator, discriminator = _networks()
    z = generator.sample_latents(8, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 6
    fakes = generator(z, labels)
    reals = [torch.rand(8, 3, 16, 16) * 2 - 1]
    ctx = gankit.PenaltyContext(discriminator, generator, reals, fakes, labels, labels, None, gankit.DOutput(torch.zeros(8)), 0)
    penalties = {}
    for scale in (1.0, 0.25):
        regularizer = SGANLosses(SGANLossesOptions(phase="G", conditional_weight=2.0, stack0_conditional_scale=scale))
        penalties[scale] = float(regularizer.penalty(ctx).detach())
    cond0 = float(regularizer.terms["cond0"])
    assert cond0 > 0
    assert penalties[1.0] - penalties[0.25] == pytest.approx(2.0 * 0.75 * cond0, rel=1e-4)


def test_the_independent_phase_feeds_g0_the_encoders_features_of_the_reals():
    generator, discriminator = _networks()
    generator.set_stage(gankit.Stage(phase="independent"))
    reals = torch.rand(8, 3, 16, 16) * 2 - 1
    z, labels = generator.sample_latents(8), torch.arange(8) % 6
    with torch.no_grad():
        fakes = generator(z, labels)
        regularizer = SGANLosses(SGANLossesOptions(phase="D"))
        ctx = gankit.PenaltyContext(discriminator, generator, [reals], fakes, labels, labels, None, gankit.DOutput(torch.zeros(8)), 0)
        assert regularizer.penalty(ctx) is not None
        generator(z, labels)
    assert torch.equal(generator.last.h1_in, discriminator.encode(reals))
    generator.eval()  # sampling is always the top of the stack
    with torch.no_grad():
        top = generator(z, labels)[-1]
    assert torch.allclose(top, generator.stack0(generator.stack1(*generator.split(z)[:1], labels), generator.split(z)[1]))


def test_the_schedule_trains_the_stacks_independently_then_jointly():
    schedule = gankit_sgan.StackedSchedule(gankit_sgan.StackedScheduleOptions(independent_kimg=2.0))
    phases = [schedule.plan(gankit.Progress(nimg=n, total_nimg=4000, d_steps=0, g_steps=0)).stage.phase for n in (0, 1999, 2000, 3999)]
    assert phases == ["independent", "independent", "joint", "joint"]


@one_thread()
def test_the_encoder_is_cached_by_the_datas_fingerprint_with_its_held_out_accuracy(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr("gankit.metrics.features.LINE_SECONDS", 0.0)
    dataset = (
        gankit.default_registry()
        .get("dataset", "shapes")
        .factory(gankit.default_registry().get("dataset", "shapes").options(resolution=16, size=2000))
    )
    dataset.prepare()
    options = SGANDiscriminatorOptions(
        encoder_widths=[16, 32], encoder_features=64, encoder_epochs=4, encoder_batch_size=50, encoder_lr=2e-3
    )
    first = SGANDiscriminator(options, dataset.context)
    first.prepare_from_data(dataset)
    accuracy = float(first.encoder_accuracy)
    # Held-out fifth of 2,000 16x16 shapes, 6 classes (chance 1/6): measured 0.505, the same on every
    # run (the encoder's training seeds itself). The bound leaves 0.15 for other torch builds.
    assert accuracy > 0.35
    assert list((tmp_path / "encoders").glob("16px-6classes-*.pt"))
    trained = capsys.readouterr().err
    progress = [line for line in trained.splitlines() if "training the encoder:" in line]
    assert len(progress) == 4 * 32 - 1 and "1,600 of 6,400 images" in progress[31]  # 1,600 training images, batches of 50

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached encoder should have been loaded")

    monkeypatch.setattr("gankit_sgan.encoder.train_encoder", no_training)
    second = SGANDiscriminator(options, dataset.context)
    second.prepare_from_data(dataset)
    assert float(second.encoder_accuracy) == accuracy
    assert all(torch.equal(a, b) for a, b in zip(first.encoder.state_dict().values(), second.encoder.state_dict().values()))
    third = SGANDiscriminator(options, dataset.context)
    third.load_state_dict(first.state_dict())  # a checkpoint keeps the encoder and its accuracy
    assert third.encoder_ready and float(third.encoder_accuracy) == accuracy
    assert "held-out accuracy" in trained + capsys.readouterr().err


def test_sgan_needs_labels_and_a_trained_encoder():
    with pytest.raises(gankit.UserError, match="labelled data"):
        SGANGenerator(SGANGeneratorOptions(), gankit.BuildContext(resolution=32, num_classes=0))
    generator, discriminator = _networks()
    discriminator.encoder_accuracy.fill_(-1.0)
    fakes = generator(generator.sample_latents(4), torch.arange(4))
    ctx = gankit.PenaltyContext(discriminator, generator, fakes, fakes, None, torch.arange(4), None, gankit.DOutput(torch.zeros(4)), 0)
    with pytest.raises(gankit.UserError, match="encoder was not trained"):
        SGANLosses(SGANLossesOptions(phase="G")).penalty(ctx)


def test_the_stack_picture_shows_what_each_stack_draws():
    generator, _ = _networks()
    images = gankit_sgan.pictures.stack_images(generator, variations=3)
    rows = images.view(6, 4, 3, 16, 16)
    assert not torch.allclose(rows[0], rows[1])  # stack 1: one class and z1 per row
    assert not torch.allclose(rows[:, 0], rows[:, 1])  # stack 0: z0 varies along a row
    picture = gankit_sgan.stack_picture(generator, variations=3)
    assert picture.shape[0] == 3 and 0 <= picture.min() and picture.max() <= 1


@one_thread()
def test_gankit_sample_draws_the_class_asked_for_from_the_top_of_the_stack(tmp_path, monkeypatch):
    pytest.importorskip("gankit_dcgan")  # the recipe's loss
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    overrides = [
        "data.resolution=16", "data.size=200", "train.kimg=0.064", "train.tick_kimg=0.064", "train.batch_size=16",
        "train.device=cpu", "metrics={}", "discriminator.encoder_epochs=1",
    ]  # fmt: skip
    run = gankit.Run.start(str(RECIPES / "sgan_shapes.toml"), overrides, run_dir=tmp_path / "run", progress="none")
    run.train()
    from gankit.cli import main

    out = tmp_path / "stars.png"
    assert main(["sample", str(tmp_path / "run"), "--n", "8", "--label", "5", "--out", str(out)]) == 0
    assert out.is_file()
    assert gankit_sgan.pictures.main([str(tmp_path / "run"), "--out", str(tmp_path / "stacks.png"), "--variations", "2"]) == 0
    assert (tmp_path / "stacks.png").is_file()
    sampler = gankit.Run.from_checkpoint(tmp_path / "run")
    assert sampler.sample(4, seed=0, labels=torch.full((4,), 5))[-1].shape == (4, 3, 16, 16)


def test_the_shapes_recipe_builds(capsys):
    from gankit.cli import main

    pytest.importorskip("gankit_dcgan")  # the non-saturating loss
    assert main(["check", str(RECIPES / "sgan_shapes.toml")]) == 0
    assert "sgan generator" in capsys.readouterr().err


def test_the_cifar10_recipe_without_its_data_exits_2_in_one_line(tmp_path, capsys):
    from gankit.cli import main

    pytest.importorskip("gankit_dcgan")
    recipe = str(RECIPES / "sgan_cifar10.toml")
    assert main(["check", recipe]) == 2
    error = capsys.readouterr().err.strip()
    assert "data.path" in error and "--set data.path=" in error and "\n" not in error


def test_the_spread_tells_a_g1_that_ignores_its_noise_from_one_that_does_not():
    from gankit_sgan.spread import checkpoint_encoder, stack_spread

    generator, discriminator = _networks()
    encoder = checkpoint_encoder({"discriminator": discriminator.state_dict()}, CONTEXT.resolution)
    assert all(torch.equal(a, b) for a, b in zip(encoder.state_dict().values(), discriminator.encoder.state_dict().values()))
    reals, labels = torch.rand(60, 3, 16, 16) * 2 - 1, torch.arange(60) % 6
    before = stack_spread(generator, encoder, reals, labels, per_class=20)
    assert before["g1_within_class"] > 1e-3 and before["g0_across_z0"] > 1e-3 and before["real_within_class"] > 0
    with torch.no_grad():
        generator.g1_noise[0].weight.zero_()  # z1 no longer reaches G1's features
        generator.g0_noise[0].weight.zero_()  # nor z0 G0's images
    after = stack_spread(generator, encoder, reals, labels, per_class=20)
    assert after["g1_within_class"] < 1e-6 < after["g1_between_classes"]
    assert after["g0_across_z0"] < 1e-6 < after["g0_across_features"]
    assert after["real_within_class"] == before["real_within_class"]
