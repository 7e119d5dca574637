"""MSG-StyleGAN's generator and StyleGAN's blocks (gankit.layers.style)
against the paper and the authors' code: the mapping network's learning
rate, noise, truncation, style mixing, the gradient reaching every toRGB,
and the parameter counts at 1024x1024."""

from __future__ import annotations

import math

import pytest
import torch

from gankit import BuildContext, UserError
from gankit.cli import main as gankit_main
from gankit.layers import AdaIN, Blur2d, EqualizedLinear, MappingNetwork, NoiseInjection, nf, truncate
from gankit_msggan import (
    MSGDiscriminator,
    MSGDiscriminatorOptions,
    MSGGenerator,
    MSGGeneratorOptions,
    MSGStyleGenerator,
    MSGStyleGeneratorOptions,
    mix_styles,
)

SMALL = dict(latent_size=16, w_size=16, mapping_width=16, fmap_base=64, fmap_max=16)
# msg-stylegan-tf's discriminator: φ = cat_lin, minibatch stddev (groups of 4) in every block, blur before downsampling
STYLE_D = dict(combine="cat_lin", mbstd_every_block=True, mbstd_group_size=4, blur=True)


def small_generator(resolution: int = 16, **options) -> MSGStyleGenerator:
    return MSGStyleGenerator(MSGStyleGeneratorOptions(**{**SMALL, **options}), BuildContext(resolution=resolution))


def styles_seen(generator: MSGStyleGenerator) -> list[torch.Tensor]:
    """Record the per-layer styles ws [N, layers, w_size] the synthesis network receives."""
    seen: list[torch.Tensor] = []
    generator.synthesis.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


# --------------------------------------------------------------------------
# The mapping network


def test_the_mapping_network_has_8_layers_of_512_whose_learning_rate_is_a_hundredth():
    torch.manual_seed(0)
    mapping = MappingNetwork(512, 512)  # StyleGAN's defaults (§2, Appendix C)
    assert len(mapping.layers) == 8
    for layer in mapping.layers:
        assert tuple(layer.weight.shape) == (512, 512) and layer.lr_multiplier == 0.01
        # stored weights are N(0, 1/λ²), the run-time scale λ·√2/√fan_in: the
        # effective weights are He-initialised, N(0, 2/fan_in)
        assert layer.weight.std().item() == pytest.approx(100.0, rel=0.02)
        assert (layer.weight * layer.scale).std().item() == pytest.approx(math.sqrt(2 / 512), rel=0.02)


def test_one_adam_step_moves_the_mapping_networks_effective_weights_a_hundredth_as_far():
    # Same effective weights, same data: Adam's first step moves each stored
    # weight by about lr, so the effective weight moves by lr·scale, which
    # λ = 0.01 makes 100 times smaller than with λ = 1.
    changes = {}
    for multiplier in (1.0, 0.01):
        torch.manual_seed(0)
        mapping = MappingNetwork(32, 32, layers=3, width=32, lr_multiplier=multiplier).double()  # stored weights of 100 need it
        before = [(layer.weight * layer.scale).detach().clone() for layer in mapping.layers]
        # ε so small that it cannot mask the hundredfold smaller stored-weight gradients
        optimizer = torch.optim.Adam(mapping.parameters(), lr=1e-3, betas=(0.0, 0.99), eps=1e-30)
        mapping(torch.randn(8, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).square().mean().backward()
        optimizer.step()
        changes[multiplier] = [(layer.weight * layer.scale - b).abs().mean().item() for layer, b in zip(mapping.layers, before)]
    for slow, fast in zip(changes[0.01], changes[1.0]):
        assert slow / fast == pytest.approx(0.01, rel=1e-6)


def test_the_generators_mapping_network_takes_its_options():
    generator = small_generator(mapping_layers=3, mapping_lr_multiplier=0.05)
    assert len(generator.mapping.layers) == 3
    assert all(layer.lr_multiplier == 0.05 for layer in generator.mapping.layers)
    assert generator.mapping.layers[-1].weight.shape == (16, 16)


# --------------------------------------------------------------------------
# Noise, AdaIN, blur


def test_noise_strengths_start_at_zero_so_a_fresh_generator_ignores_its_noise():
    torch.manual_seed(0)
    generator = small_generator().train()
    strengths = [m.weight for m in generator.modules() if isinstance(m, NoiseInjection)]
    assert len(strengths) == generator.num_layers == 6
    assert all(torch.count_nonzero(s) == 0 for s in strengths)
    z = torch.randn(4, 16)
    first, second = generator(z)[-1], generator(z)[-1]  # fresh noise each call
    assert torch.equal(first, second)
    with torch.no_grad():
        for s in strengths:
            s.fill_(0.5)
    assert not torch.allclose(generator(z)[-1], generator(z)[-1])
    # in eval mode each layer reads its fixed noise image: a latent gives one image
    generator.eval()
    assert torch.equal(generator(z)[-1], generator(z)[-1])


def test_noise_injection_adds_one_noise_image_per_sample_scaled_per_channel():
    injection = NoiseInjection(3)
    with torch.no_grad():
        injection.weight.copy_(torch.tensor([0.0, 1.0, -2.0]))
    noise = torch.randn(2, 1, 4, 4)
    out = injection(torch.zeros(2, 3, 4, 4), noise)
    assert torch.equal(out[:, 0], torch.zeros(2, 4, 4))
    assert torch.allclose(out[:, 1], noise[:, 0]) and torch.allclose(out[:, 2], -2 * noise[:, 0])


def test_adain_normalises_each_feature_map_then_applies_the_style_of_eq_1():
    torch.manual_seed(0)
    adain = AdaIN(4, 8)
    x = torch.randn(2, 4, 8, 8) * 3 + 5
    w = torch.randn(2, 8)
    style = adain.affine(w)
    out = adain(x, w)
    scale, shift = style[:, :4] + 1, style[:, 4:]  # y_s = 1 + A(w)_s, y_b = A(w)_b
    assert torch.allclose(out.mean(dim=(2, 3)), shift, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-4)


def test_blur_is_the_normalised_1_2_1_binomial_filter():
    impulse = torch.zeros(1, 2, 5, 5)
    impulse[:, :, 2, 2] = 1.0
    taps = torch.tensor([1.0, 2.0, 1.0])
    expected = torch.outer(taps, taps) / 16
    out = Blur2d()(impulse)
    assert torch.allclose(out[0, 0, 1:4, 1:4], expected) and torch.allclose(out[0, 1], out[0, 0])
    assert out.sum().item() == pytest.approx(2.0)


# --------------------------------------------------------------------------
# The truncation trick and the running average of w


def test_training_keeps_a_running_average_of_w_that_checkpoints_save():
    torch.manual_seed(0)
    generator = small_generator().train()
    z = torch.randn(8, 16)
    generator(z)
    w = generator.mapping(z)
    # w̄ ← lerp(mean w, w̄, β) with β = 0.995 from w̄ = 0
    assert torch.allclose(generator.w_avg, 0.005 * w.mean(dim=0), atol=1e-6)
    assert "w_avg" in generator.state_dict()
    generator.eval()(z)
    assert torch.allclose(generator.w_avg, 0.005 * w.mean(dim=0), atol=1e-6), "only training updates it"


def test_truncation_psi_1_changes_nothing_and_psi_0_gives_the_average_w():
    torch.manual_seed(0)
    generator = small_generator(resolution=32)  # 8 layers
    with torch.no_grad():
        generator.w_avg.normal_()
    generator.eval()
    seen = styles_seen(generator)
    z = torch.randn(4, 16)
    plain = generator(z)
    generator.set_truncation(1.0)
    assert all(torch.equal(a, b) for a, b in zip(plain, generator(z)))

    generator.set_truncation(0.0, cutoff=3)
    generator(z)
    ws, w = seen[-1], generator.mapping(z)
    assert torch.allclose(ws[:, :3], generator.w_avg.expand(4, 3, -1))
    assert torch.allclose(ws[:, 3:], w.unsqueeze(1).expand(-1, 5, -1), atol=1e-6)

    generator.set_truncation(0.0)  # the default cutoff, 8: every layer at 32x32
    assert generator.truncation_cutoff == 8
    images = generator(z)[-1]
    assert torch.allclose(images, images[:1].expand_as(images), atol=1e-5), "ψ = 0 gives every latent the same image"

    generator.set_truncation(0.5)
    generator(z)
    assert torch.allclose(seen[-1], generator.w_avg + 0.5 * (w.unsqueeze(1) - generator.w_avg), atol=1e-6)


def test_truncate_pulls_only_the_first_cutoff_layers():
    ws, w_avg = torch.randn(2, 4, 3), torch.randn(3)
    out = truncate(ws, w_avg, 0.25, cutoff=2)
    assert torch.allclose(out[:, :2], w_avg + 0.25 * (ws[:, :2] - w_avg)) and torch.equal(out[:, 2:], ws[:, 2:])


def test_truncation_is_refused_with_a_clear_error_where_it_does_not_apply():
    with pytest.raises(UserError, match="cutoff"):
        small_generator().set_truncation(0.7, cutoff=0)
    with pytest.raises(UserError, match="no truncation trick"):
        MSGGenerator(MSGGeneratorOptions(latent_size=16, fmap_base=64, fmap_max=16), BuildContext(resolution=8)).set_truncation(0.7)


def test_gankit_sample_takes_truncation(tmp_path):
    from gankit import Run, default_registry, recipe_from_text

    recipe = recipe_from_text(
        """
name = "tiny"
[data]
type = "shapes"
resolution = 8
size = 64
[generator]
type = "msg_stylegan"
latent_size = 8
w_size = 8
mapping_width = 8
mapping_layers = 2
fmap_base = 16
fmap_max = 4
[discriminator]
type = "msggan"
fmap_base = 16
fmap_max = 4
[loss]
type = "nonsaturating"
[train]
kimg = 0.016
batch_size = 8
device = "cpu"
tick_kimg = 0.016
samples = 4
""",
        "tiny",
        default_registry(),
    )
    run = Run.start(recipe, run_dir=tmp_path / "run", progress="none")
    run.train()
    out = tmp_path / "grid.png"
    assert gankit_main(["sample", str(tmp_path / "run"), "--n", "4", "--truncation", "0.7", "--out", str(out)]) == 0
    assert out.is_file()
    assert gankit_main(["sample", str(tmp_path / "run"), "--n", "4", "--truncation", "0.7", "--truncation-cutoff", "0"]) == 2


# --------------------------------------------------------------------------
# Style mixing


def test_mix_styles_takes_the_second_styles_from_the_crossover_on():
    a, b = torch.zeros(2, 6, 3), torch.ones(2, 6, 3)
    mixed = mix_styles(a, b, 4)
    assert torch.equal(mixed[:, :4], a[:, :4]) and torch.equal(mixed[:, 4:], b[:, 4:])


def test_style_mixing_switches_to_a_second_latents_styles_at_a_random_crossover_layer():
    torch.manual_seed(0)
    generator = small_generator(style_mixing_prob=1.0).train()  # 6 layers
    seen = styles_seen(generator)
    z = torch.randn(4, 16)
    crossovers = set()
    for _ in range(40):
        generator(z)
        ws, w = seen[-1], generator.mapping(z).detach()
        own = torch.isclose(ws, w.unsqueeze(1).expand_as(ws), atol=1e-6).all(dim=2).all(dim=0)  # per layer
        crossover = int(own.logical_not().nonzero()[0])  # the first layer with other styles
        assert 1 <= crossover < generator.num_layers
        assert own[:crossover].all() and not own[crossover:].any(), f"styles must switch once, at the crossover: {own.tolist()}"
        other = ws[:, crossover:]
        assert torch.allclose(other, other[:, :1].expand_as(other)), "the layers after the crossover share one second w"
        crossovers.add(crossover)
    assert crossovers == set(range(1, generator.num_layers)), "the crossover is drawn from every layer but the first"

    generator.eval()(z)  # never when sampling
    assert torch.allclose(seen[-1], generator.mapping(z).unsqueeze(1).expand_as(seen[-1]), atol=1e-6)


def test_msg_stylegan_trains_without_style_mixing_by_default():
    torch.manual_seed(0)
    generator = small_generator().train()
    seen = styles_seen(generator)
    z = torch.randn(4, 16)
    for _ in range(5):
        generator(z)
        assert torch.allclose(seen[-1], generator.mapping(z).unsqueeze(1).expand_as(seen[-1]), atol=1e-6)


# --------------------------------------------------------------------------
# Multi-scale gradients


def test_the_generator_returns_an_image_from_every_block_coarsest_first():
    images = small_generator(resolution=32)(torch.randn(2, 16))
    assert [tuple(i.shape) for i in images] == [(2, 3, s, s) for s in (4, 8, 16, 32)]


@pytest.mark.parametrize("connections, fed", [("all", {0, 1, 2, 3}), ("none", {3})])
def test_every_scales_torgb_receives_gradient_from_the_discriminator(connections, fed):
    torch.manual_seed(0)
    context = BuildContext(resolution=32)
    generator = small_generator(resolution=32)
    discriminator = MSGDiscriminator(MSGDiscriminatorOptions(fmap_base=64, fmap_max=16, connections=connections, **STYLE_D), context)
    discriminator(generator(torch.randn(8, 16))).sum().backward()
    reached = {
        i for i, to_rgb in enumerate(generator.synthesis.to_rgb) if to_rgb.weight.grad is not None and to_rgb.weight.grad.abs().sum() > 0
    }
    assert reached == fed


def test_the_discriminators_blur_adds_no_parameters_and_changes_its_output():
    context = BuildContext(resolution=16)
    options = dict(fmap_base=64, fmap_max=16, combine="cat_lin")
    torch.manual_seed(0)
    plain = MSGDiscriminator(MSGDiscriminatorOptions(**options), context)
    torch.manual_seed(0)
    blurred = MSGDiscriminator(MSGDiscriminatorOptions(blur=True, **options), context)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in blurred.parameters())
    images = plain.prepare_reals(torch.rand(4, 3, 16, 16) * 2 - 1)
    assert not torch.allclose(plain(images), blurred(images))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as train.precision = "bf16" runs it
        assert torch.isfinite(blurred(images).float()).all()


# --------------------------------------------------------------------------
# Parameter counts at 1024x1024


def stylegan_generator_parameters(resolution: int = 1024, w: int = 512, mapping_layers: int = 8) -> int:
    """Trainable parameters of msg-stylegan-tf's G_style with its defaults
    (training/networks_stylegan.py), counted from its layer list: G_mapping's
    dense layers; G_synthesis's constant, then per layer a conv (none on the
    constant), noise strengths, a bias and the style's dense layer; a toRGB
    per block. Its noise images and w̄ are not trainable."""

    def layer(in_channels: int | None, out: int) -> int:
        conv = 9 * in_channels * out if in_channels else 0
        return conv + out + out + (w * 2 * out + 2 * out)

    total = mapping_layers * (w * w + w)
    widths = [nf(b) for b in range(1, int(math.log2(resolution)))]
    total += 16 * widths[0] + layer(None, widths[0]) + layer(widths[0], widths[0])
    for previous, width in zip(widths, widths[1:]):
        total += layer(previous, width) + layer(width, width)
    return total + sum(3 * width + 3 for width in widths)


def msg_stylegan_discriminator_parameters(resolution: int = 1024) -> int:
    """Trainable parameters of msg-stylegan-tf's D_basic with its defaults,
    from its layer list: fromRGB at the top; each block above 4x4 a 1x1
    combine without bias (below the top), conv3x3 on nf + 1 channels
    (minibatch stddev), and a downsampling conv3x3; the 4x4 block's combine,
    conv3x3, and two dense layers."""
    top = int(math.log2(resolution))
    total = 3 * nf(top - 1) + nf(top - 1)
    for res in range(top, 2, -1):
        width, below = nf(res - 1), nf(res - 2)
        combine = (width + 3) * width if res < top else 0
        total += combine + 9 * (width + 1) * width + width + 9 * width * below + below
    total += (nf(1) + 3) * nf(1) + 9 * (nf(1) + 1) * nf(1) + nf(1)
    total += 16 * nf(1) * nf(0) + nf(0) + nf(0) + 1
    return total


def test_parameter_counts_at_1024_match_the_authors_networks():
    context = BuildContext(resolution=1024)
    with torch.device("meta"):  # shapes only: no memory, no time
        generator = MSGStyleGenerator(MSGStyleGeneratorOptions(), context)
        discriminator = MSGDiscriminator(MSGDiscriminatorOptions(**STYLE_D), context)
    g_count = sum(p.numel() for p in generator.parameters())
    d_count = sum(p.numel() for p in discriminator.parameters())
    assert g_count == stylegan_generator_parameters() == 26_219_627  # StyleGAN's paper: 26.2M
    assert sum(p.numel() for p in generator.mapping.parameters()) == 2_101_248
    assert d_count == msg_stylegan_discriminator_parameters() == 24_238_625
    assert sum(b.numel() for name, b in generator.named_buffers() if name.endswith("fixed_noise")) == 2 * sum(4**k for k in range(2, 11))


def test_the_equalized_layers_of_the_style_blocks_keep_gain_1_for_styles():
    adain = AdaIN(8, 4)
    assert isinstance(adain.affine, EqualizedLinear) and adain.affine.scale == pytest.approx(1 / math.sqrt(4))
