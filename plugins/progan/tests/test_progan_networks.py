"""ProGAN's networks against Table 2 of Karras et al. 2018 and the official
code: widths, parameter totals, fade-in in both directions, and the
resolution the networks exchange images at."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit import BuildContext, Stage, UserError
from gankit.layers import nf
from gankit_progan import ProGANDiscriminator, ProGANDiscriminatorOptions, ProGANGenerator, ProGANGeneratorOptions
from gankit_progan.networks import upsample_to

SMALL = {"fmap_base": 64, "fmap_max": 16}


def _networks(resolution: int = 32) -> tuple[ProGANGenerator, ProGANDiscriminator]:
    torch.manual_seed(0)
    context = BuildContext(resolution=resolution, channels=3)
    return (
        ProGANGenerator(ProGANGeneratorOptions(latent_size=16, **SMALL), context),
        ProGANDiscriminator(ProGANDiscriminatorOptions(**SMALL), context),
    )


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_1024_networks_have_table_2s_widths_and_parameter_totals():
    context = BuildContext(resolution=1024, channels=3)
    generator = ProGANGenerator(ProGANGeneratorOptions(), context)
    discriminator = ProGANDiscriminator(ProGANDiscriminatorOptions(), context)
    # Table 2: 512 feature maps up to 32x32, then 256, 128, 64, 32, 16 at 1024x1024
    assert [block.conv1.weight.shape[0] for block in generator.blocks] == [512, 512, 512, 256, 128, 64, 32, 16]
    assert [conv.weight.shape[1] for conv in generator.to_rgb] == [nf(r - 1) for r in range(2, 11)]
    assert [block.conv1.weight.shape[0] for block in discriminator.blocks] == [512, 512, 512, 512, 256, 128, 64, 32]
    assert discriminator.conv.weight.shape[1] == 513  # + the minibatch stddev map
    # Table 2's totals: 23.1M parameters each
    assert round(_count(generator) / 1e6, 1) == 23.1
    assert round(_count(discriminator) / 1e6, 1) == 23.1


def test_equalized_gains_follow_the_official_code():
    generator, discriminator = _networks()
    assert generator.dense.scale == pytest.approx(2**0.5 / 4 / 16**0.5)  # gain √2/4 on the latent's dense layer
    assert all(conv.scale == pytest.approx(1 / conv.weight.shape[1] ** 0.5) for conv in generator.to_rgb)  # toRGB: gain 1
    assert discriminator.output.scale == pytest.approx(1 / discriminator.output.weight.shape[1] ** 0.5)  # last layer: gain 1
    assert generator.blocks[0].conv0.scale == pytest.approx(2**0.5 / (9 * generator.blocks[0].conv0.weight.shape[1]) ** 0.5)


def test_the_latent_is_pixel_normalized():
    generator, _ = _networks()
    z = torch.randn(3, 16)
    assert torch.allclose(generator(z)[0], generator(5.0 * z)[0], atol=1e-4)


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_a_new_generator_block_starts_as_the_previous_output_upsampled(resolution):
    generator, _ = _networks()
    z = torch.randn(4, 16)
    generator.set_stage(Stage(resolution // 2, 1.0))
    previous = generator(z)[0]
    generator.set_stage(Stage(resolution, 0.0))
    first_step = generator(z)[0]
    assert first_step.shape == (4, 3, 32, 32)  # always the data's resolution, upsampled like the official G
    assert torch.equal(first_step, previous)
    # and the fade is linear in α, from there to the new block's own image
    generator.set_stage(Stage(resolution, 1.0))
    grown = generator(z)[0]
    assert not torch.allclose(grown, previous)
    generator.set_stage(Stage(resolution, 0.3))
    assert torch.allclose(generator(z)[0], torch.lerp(previous, grown, 0.3), atol=1e-6)


def test_the_generators_image_at_a_stage_is_made_at_that_resolution():
    generator, _ = _networks()
    generator.set_stage(Stage(8, 1.0))
    image = generator(torch.randn(2, 16))[0]
    blocks = image.unfold(2, 4, 4).unfold(3, 4, 4)  # 4x4 blocks of the 32x32 image
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))  # each is one pixel of the 8x8 image


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_a_new_discriminator_block_starts_as_the_previous_stage_on_pooled_reals(resolution):
    _, discriminator = _networks()
    reals = torch.rand(8, 3, 32, 32) * 2 - 1
    discriminator.set_stage(Stage(resolution // 2, 1.0))
    previous_input = discriminator.prepare_reals(reals)
    previous = discriminator(previous_input)
    discriminator.set_stage(Stage(resolution, 0.0))
    faded_input = discriminator.prepare_reals(reals)
    # the faded reals at α = 0 are the previous stage's reals: (1 − 0)·up(pool(x)) + 0·x
    assert torch.allclose(faded_input[0], previous_input[0], atol=1e-6)
    assert torch.allclose(discriminator(faded_input), previous, atol=1e-5)
    discriminator.set_stage(Stage(resolution, 1.0))
    assert not torch.allclose(discriminator(discriminator.prepare_reals(reals)), previous, atol=1e-3)


def test_reals_are_faded_like_the_official_fade_lod():
    _, discriminator = _networks()
    reals = torch.rand(2, 3, 32, 32) * 2 - 1
    discriminator.set_stage(Stage(16, 0.25))
    x = F.avg_pool2d(reals, 2)  # at the stage's resolution
    lod_fraction = 0.75  # lod − floor(lod) = 1 − α
    official = torch.lerp(x, upsample_to(F.avg_pool2d(x, 2), 16), lod_fraction)  # train.py process_reals, FadeLOD
    assert torch.allclose(discriminator.prepare_reals(reals)[0], upsample_to(official, 32), atol=1e-6)


def test_the_gradient_penalty_sees_the_official_input_scale():
    """The critic takes R×R images at every stage, so ‖∇D‖ with respect to
    its input is ‖∇D_r‖·r/R, as in the official code, where the penalty's
    target of 1 holds a low-resolution critic to a norm of R/r."""
    _, discriminator = _networks()
    discriminator.set_stage(Stage(8, 1.0))
    small = (torch.rand(4, 3, 8, 8) * 2 - 1).requires_grad_(True)
    (small_grad,) = torch.autograd.grad(discriminator([upsample_to(small, 32)]).sum(), small)
    full = upsample_to(small.detach(), 32).requires_grad_(True)
    (full_grad,) = torch.autograd.grad(discriminator([full]).sum(), full)
    assert torch.allclose(full_grad.flatten(1).norm(dim=1), small_grad.flatten(1).norm(dim=1) * 8 / 32, rtol=1e-4)


def test_the_discriminator_returns_scores_and_features():
    _, discriminator = _networks(16)
    for stage in (Stage(4, 1.0), Stage(8, 0.5), Stage(16, 1.0)):
        discriminator.set_stage(stage)
        scores, features = discriminator(discriminator.prepare_reals(torch.zeros(4, 3, 16, 16)), features=True)
        assert scores.shape == (4,) and features[-1].shape == (4, 16)


def test_a_stage_beyond_the_data_is_a_user_error():
    generator, discriminator = _networks(16)
    for network in (generator, discriminator):
        with pytest.raises(UserError, match="final_resolution = 16"):
            network.set_stage(Stage(32, 1.0))
    with pytest.raises(UserError, match="4x4 up to 1024x1024"):
        ProGANGenerator(ProGANGeneratorOptions(), BuildContext(resolution=2048))


def test_images_leave_the_generator_in_float32_under_autocast():
    generator, discriminator = _networks(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        image = generator(torch.randn(2, 16))[0]
        scores = discriminator([torch.lerp(image, torch.zeros(2, 3, 16, 16), 0.5)])  # mixed with reals, as the gradient penalty does
    assert image.dtype == torch.float32 and torch.isfinite(scores).all()
