"""MSG-GAN's networks against the paper: the scale list, φ's channel counts,
and gradient from the discriminator's loss reaching every generator scale."""

from __future__ import annotations

import math

import pytest
import torch

from gankit import BuildContext, DOutput, UserError
from gankit.layers import nf
from gankit_msggan import (
    Combine,
    MSGDiscriminator,
    MSGDiscriminatorOptions,
    MSGGenerator,
    MSGGeneratorOptions,
    RelativisticHingeLoss,
    RelativisticHingeOptions,
    connected_blocks,
    lin_cat_split,
)

SMALL = {"fmap_base": 64, "fmap_max": 16}


def _networks(resolution: int, **discriminator: object) -> tuple[MSGGenerator, MSGDiscriminator]:
    context = BuildContext(resolution=resolution, channels=3)
    generator = MSGGenerator(MSGGeneratorOptions(latent_size=16, **SMALL), context)
    return generator, MSGDiscriminator(MSGDiscriminatorOptions(**SMALL, **discriminator), context)  # type: ignore[arg-type]


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_the_generator_returns_every_scale_coarsest_first(resolution: int):
    generator, discriminator = _networks(resolution)
    images = generator(generator.sample_latents(3))
    depth = int(math.log2(resolution)) - 1
    assert [tuple(image.shape) for image in images] == [(3, 3, 4 * 2**k, 4 * 2**k) for k in range(depth)]
    # the real pyramid has the same shapes, and each level is the 2x2 mean of the next
    reals = discriminator.prepare_reals(torch.rand(3, 3, resolution, resolution) * 2 - 1)
    assert [r.shape for r in reals] == [i.shape for i in images]
    assert torch.allclose(reals[-2][:, :, 0, 0], reals[-1][:, :, :2, :2].mean(dim=(2, 3)), atol=1e-6)
    assert discriminator(images).shape == (3,)


def test_a_1024_network_has_progans_widths():
    context = BuildContext(resolution=1024, channels=3)
    generator = MSGGenerator(MSGGeneratorOptions(), context)
    # 512 channels up to 32x32, then 256, 128, 64, 32, 16 (Karras et al. 2018, Table 2)
    assert [rgb.weight.shape[1] for rgb in generator.to_rgb] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert [nf(block) for block in range(1, 10)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_the_latent_is_put_on_the_sphere_of_radius_root_d():
    generator, _ = _networks(8)
    z = torch.randn(2, 16)
    # the direction of z is all that matters: scaling it changes nothing
    for a, b in zip(generator(z), generator(5.0 * z)):
        assert torch.allclose(a, b, atol=1e-5)


def test_the_networks_need_two_scales():
    with pytest.raises(UserError, match="at least 8x8"):
        MSGGenerator(MSGGeneratorOptions(), BuildContext(resolution=4))


@pytest.mark.parametrize(
    ("kind", "block_input", "projection"),
    [
        ("simple", 3 + 16, None),  # Eq. 11: [o; a]
        ("lin_cat", 16 + 16, (16, 3, 1, 1)),  # Eq. 12: [r'(o); a], r'(o) as wide as a unless told
        ("cat_lin", 16, (16, 19, 1, 1)),  # Eq. 13: r'([o; a]) back to a's width
    ],
)
def test_the_channel_counts_of_each_combine_function(kind: str, block_input: int, projection: tuple[int, ...] | None):
    combine = Combine(kind, image_channels=3, channels=16)
    out = combine(torch.randn(2, 3, 8, 8), torch.randn(2, 16, 8, 8))
    assert combine.out_channels == block_input and out.shape == (2, block_input, 8, 8)
    assert (None if projection is None else tuple(combine.project.weight.shape)) == projection


def test_lin_cat_can_project_to_a_width_of_its_own():
    combine = Combine("lin_cat", image_channels=3, channels=8, projection=8)
    assert combine.out_channels == 16 and combine(torch.randn(2, 3, 4, 4), torch.randn(2, 8, 4, 4)).shape == (2, 16, 4, 4)
    with pytest.raises(ValueError, match="only lin_cat"):
        Combine("simple", 3, 8, projection=8)


def test_cat_lins_projection_has_no_bias():
    # msg-stylegan-tf's combine layer is a bias-free 1x1 convolution
    assert Combine("cat_lin", 3, 16).project.bias is None
    assert Combine("lin_cat", 3, 16).project.bias is not None


# 16x16 with SMALL: nf = 16, 16, 8 for blocks 1 (4x4), 2 (8x8), 3 (16x16),
# and φ at blocks 1 and 2. ``activations`` is a's width at both of them.
@pytest.mark.parametrize(
    ("options", "activations", "block_input"),
    [
        ({"combine": "simple"}, 16, 16 + 3),  # a at ProGAN's nf(b), plus the image
        ({"combine": "cat_lin"}, 16, 16),  # r' maps [o; a] back to nf(b)
        # BMSG-GAN: a is nf(b)/2 and r'(o) the other half, so the block takes nf(b)
        ({"combine": "lin_cat"}, 8, 16),
        # a at ProGAN's nf(b), and r'(o) adds nf(b) more
        ({"combine": "lin_cat", "lin_cat_width": "full"}, 16, 32),
    ],
)
def test_the_discriminators_widths_for_each_combine_function(options: dict[str, str], activations: int, block_input: int):
    _, discriminator = _networks(16, **options)
    top, block_2 = discriminator.blocks
    assert discriminator.from_rgb.weight.shape[0] == 8  # the top scale never goes through φ: its full nf(3)
    assert top[0].weight.shape[:2] == (8, 8) and top[1].weight.shape[:2] == (activations, 8)
    assert block_2[0].weight.shape[:2] == (16, block_input) and block_2[1].weight.shape[:2] == (activations, 16)
    assert discriminator.final_conv.weight.shape[:2] == (16, block_input + 1)  # + minibatch stddev
    assert discriminator([torch.randn(4, 3, 4 * 2**k, 4 * 2**k) for k in range(3)]).shape == (4,)


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("resolution", "generator_parameters", "discriminator_parameters"),
    [(32, 20_719_628, 17_184_001), (64, 22_490_383, 18_364_161)],
)
def test_lin_cat_has_the_parameter_counts_of_bmsg_gan(resolution: int, generator_parameters: int, discriminator_parameters: int):
    # BMSG-GAN (sourcecode/MSG_GAN/GAN.py) with latent_size 512, the width
    # that its code ties to ProGAN's fmap_base 8192 and fmap_max 512: G 20.72M
    # and D 17.18M at 32x32, G 22.49M and D 18.36M at 64x64. Built on the
    # meta device: shapes only, no memory and no time.
    context = BuildContext(resolution=resolution, channels=3)
    with torch.device("meta"):
        generator = MSGGenerator(MSGGeneratorOptions(), context)
        discriminator = MSGDiscriminator(MSGDiscriminatorOptions(combine="lin_cat"), context)
        full = MSGDiscriminator(MSGDiscriminatorOptions(combine="lin_cat", lin_cat_width="full"), context)
    assert _parameters(generator) == generator_parameters
    assert _parameters(discriminator) == discriminator_parameters
    # the full-width layout that lin_cat_width = "full" keeps: 27.8M at 32x32, 62 % more
    assert _parameters(full) == {32: 27_804_673, 64: 31_935_233}[resolution]


def test_lin_cat_width_is_for_lin_cat_only():
    assert MSGDiscriminatorOptions(combine="simple").lin_cat_width == "half"
    with pytest.raises(ValueError, match="'lin_cat_width' applies only to combine = 'lin_cat'"):
        MSGDiscriminatorOptions(combine="simple", lin_cat_width="full")
    with pytest.raises(ValueError, match="'lin_cat_width' must be one of"):
        MSGDiscriminatorOptions(combine="lin_cat", lin_cat_width="double")  # type: ignore[arg-type]


def test_lin_cat_split_never_gives_an_empty_half():
    assert lin_cat_split(512) == (256, 256)
    assert lin_cat_split(3) == (2, 1)
    assert lin_cat_split(1) == (1, 1)


def test_simple_combine_puts_the_image_first():
    image, activations = torch.randn(1, 3, 4, 4), torch.randn(1, 5, 4, 4)
    assert torch.equal(Combine("simple", 3, 5)(image, activations), torch.cat([image, activations], dim=1))


def test_minibatch_stddev_at_every_block_adds_one_channel_to_each():
    _, plain = _networks(16)
    _, every = _networks(16, mbstd_every_block=True, mbstd_group_size=4)
    for plain_block, every_block in zip(plain.blocks, every.blocks):
        assert every_block[0].weight.shape[1] == plain_block[0].weight.shape[1] + 1
    assert every([torch.randn(8, 3, 4 * 2**k, 4 * 2**k) for k in range(3)]).shape == (8,)


def test_connections_split_the_scales_below_the_top():
    # 64x64: blocks 1..5 are 4, 8, 16, 32, 64; the top (64) always enters
    assert connected_blocks(5, "all") == {1, 2, 3, 4}
    assert connected_blocks(5, "coarse") == {1, 2}
    assert connected_blocks(5, "fine") == {3, 4}
    assert connected_blocks(5, "none") == set()
    assert connected_blocks(4, "coarse") == {1, 2} and connected_blocks(4, "fine") == {2, 3}  # the middle one in both


def _to_rgb_gradients(connections: str, **discriminator_options: str) -> list[bool]:
    torch.manual_seed(0)
    generator, discriminator = _networks(32, connections=connections, **discriminator_options)
    loss = RelativisticHingeLoss(RelativisticHingeOptions())
    reals = discriminator.prepare_reals(torch.rand(4, 3, 32, 32) * 2 - 1)
    fakes = generator(generator.sample_latents(4))
    real_out, fake_out = DOutput(discriminator(reals)), DOutput(discriminator(fakes))
    loss.discriminator_loss(real_out, fake_out).backward()
    return [rgb.weight.grad is not None and rgb.weight.grad.abs().sum().item() > 0 for rgb in generator.to_rgb]


@pytest.mark.parametrize("options", [{}, {"combine": "lin_cat"}, {"combine": "lin_cat", "lin_cat_width": "full"}, {"combine": "cat_lin"}])
def test_the_discriminators_loss_reaches_every_to_rgb_layer(options: dict[str, str]):
    assert _to_rgb_gradients("all", **options) == [True, True, True, True]


def test_without_connections_only_the_last_to_rgb_layer_is_reached():
    assert _to_rgb_gradients("none") == [False, False, False, True]
    assert _to_rgb_gradients("coarse") == [True, True, False, True]
    assert _to_rgb_gradients("fine") == [False, True, True, True]
