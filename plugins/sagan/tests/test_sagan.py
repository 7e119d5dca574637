"""SAGAN's blocks against the paper: self-attention (Zhang et al. 2019, §3),
spectral normalization (Miyato et al. 2018) and the networks' layout."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gankit import BuildContext, UserError
from gankit.layers import ConditionalBatchNorm2d, SelfAttention2d
from gankit_sagan import (
    SAGANDiscriminator,
    SAGANDiscriminatorOptions,
    SAGANGenerator,
    SAGANGeneratorOptions,
    SpectralNorm,
    SpectralNormOptions,
    weight_layers,
)

# --------------------------------------------------------------------------
# Self-attention


def test_attention_is_the_identity_at_initialization():
    # §3: γ starts at 0, so the block passes its input through unchanged
    torch.manual_seed(0)
    block = SelfAttention2d(32)
    x = torch.randn(2, 32, 8, 8)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)


def test_attention_mixes_positions_once_gamma_moves():
    torch.manual_seed(0)
    block = SelfAttention2d(32)
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    y = block(x)
    assert (y - x).abs().mean() > 1e-3
    # non-local: changing one position changes the output at every other one
    x2 = x.clone()
    x2[:, :, 0, 0] += 1.0
    with torch.no_grad():
        changed = (block(x2) - y).abs().sum(dim=1)[0]
    assert (changed > 0).all()


def test_attention_equals_the_papers_equations():
    # eqs. 1-3 written out position by position for one image
    torch.manual_seed(0)
    block = SelfAttention2d(16)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(1, 16, 4, 4)
    positions = x[0].flatten(1).T  # x_i: [N, C]
    f = positions @ block.key.weight[:, :, 0, 0].T
    g = positions @ block.query.weight[:, :, 0, 0].T
    h = positions @ block.value.weight[:, :, 0, 0].T
    s = f @ g.T  # s_ij = f(x_i)ᵀ g(x_j)
    beta = torch.softmax(s, dim=0)  # β_j,i: normalized over i for each j
    o = (beta.T @ h) @ block.out.weight[:, :, 0, 0].T  # o_j = v(Σ_i β_j,i h(x_i))
    expected = 0.7 * o + positions
    assert torch.allclose(block(x)[0].flatten(1).T, expected, atol=1e-5)


def test_attention_reduces_the_channels_to_an_eighth():
    block = SelfAttention2d(64)
    assert block.key.out_channels == block.query.out_channels == block.value.out_channels == 8  # §3: C̄ = C/8
    assert SelfAttention2d(64, value_channels=32).value.out_channels == 32  # the authors' code: C/2


# --------------------------------------------------------------------------
# Spectral normalization


def _networks(num_classes: int = 6) -> tuple[nn.Module, nn.Module]:
    context = BuildContext(resolution=16, num_classes=num_classes)
    small = {"channels": 16, "max_channels": 32, "attention": [8], "conditional": bool(num_classes)}
    return SAGANGenerator(SAGANGeneratorOptions(**small), context), SAGANDiscriminator(SAGANDiscriminatorOptions(**small), context)


def _largest_singular_value(layer: nn.Module) -> float:
    weight = layer.weight.detach()
    if isinstance(layer, nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)  # output channels first
    return float(torch.linalg.matrix_norm(weight.flatten(1), ord=2))


def _exercise(generator: nn.Module, discriminator: nn.Module, steps: int) -> None:
    """Training-mode forwards, each one power iteration per layer."""
    z, labels = torch.randn(4, generator.latent_size), torch.arange(4)
    with torch.no_grad():
        for _ in range(steps):
            discriminator(generator(z, labels), labels)


def test_spectral_norm_brings_every_wrapped_weight_to_unit_norm():
    torch.manual_seed(0)
    generator, discriminator = _networks()
    regularizer = SpectralNorm(SpectralNormOptions())
    before = [_largest_singular_value(layer) for layer in weight_layers(discriminator)]
    assert max(abs(sigma - 1) for sigma in before) > 0.5  # Glorot-uniform weights are far from unit norm
    generator, discriminator = regularizer.wrap(generator, "generator"), regularizer.wrap(discriminator, "discriminator")
    _exercise(generator, discriminator, steps=100)
    generator.eval(), discriminator.eval()
    sigmas = {
        f"{role}.{name}": _largest_singular_value(layer)
        for role, network in (("G", generator), ("D", discriminator))
        for name, layer in network.named_modules()
        if parametrize.is_parametrized(layer, "weight")
    }
    # every convolution, linear layer and the projection's embedding: 12 in G, 14 in D
    assert len(sigmas) == 26
    # 15 iterations when wrapped leave |σ - 1| up to 0.094 here, and 100 more forwards 3e-6
    assert all(abs(sigma - 1) < 0.01 for sigma in sigmas.values()), sigmas


def test_spectral_norm_leaves_the_class_tables_and_attention_gain_alone():
    generator, discriminator = _networks()
    SpectralNorm(SpectralNormOptions()).wrap(generator, "generator")
    for module in generator.modules():
        if isinstance(module, ConditionalBatchNorm2d):
            assert not parametrize.is_parametrized(module.scale) and not parametrize.is_parametrized(module.shift)
    assert isinstance(generator.blocks[1].gamma, nn.Parameter)  # the attention after the 8x8 block
    assert parametrize.is_parametrized(generator.blocks[1].query, "weight")


def test_spectral_norm_wraps_only_the_networks_it_names():
    generator, discriminator = _networks()
    regularizer = SpectralNorm(SpectralNormOptions(networks=["discriminator"], n_power_iterations=3))
    regularizer.wrap(generator, "generator"), regularizer.wrap(discriminator, "discriminator")
    assert not any(parametrize.is_parametrized(layer) for layer in generator.modules())
    wrapped = [layer for layer in discriminator.modules() if parametrize.is_parametrized(layer, "weight")]
    assert wrapped and all(layer.parametrizations.weight[0].n_power_iterations == 3 for layer in wrapped)


def test_spectral_norm_needs_a_network():
    with pytest.raises(UserError, match="at least one network"):
        SpectralNorm(SpectralNormOptions(networks=[]))
    with pytest.raises(ValueError, match="networks"):
        SpectralNormOptions(networks=["critic"])


def test_a_wrapped_network_copies_and_reloads_its_state():
    # the loop deep-copies G for its EMA, and checkpoints hold state dicts
    torch.manual_seed(0)
    generator, discriminator = _networks()
    regularizer = SpectralNorm(SpectralNormOptions())
    generator = regularizer.wrap(generator, "generator")
    _exercise(generator, regularizer.wrap(discriminator, "discriminator"), steps=3)
    copied = copy.deepcopy(generator).eval()
    rebuilt = regularizer.wrap(_networks()[0], "generator")
    rebuilt.load_state_dict(generator.state_dict())
    generator.eval(), rebuilt.eval()
    z, labels = torch.randn(4, generator.latent_size), torch.arange(4)
    with torch.no_grad():
        expected = generator(z, labels)[-1]
        assert torch.equal(copied(z, labels)[-1], expected)
        assert torch.equal(rebuilt(z, labels)[-1], expected)


# --------------------------------------------------------------------------
# The networks


def test_imagenet_128_layout():
    # the authors' ImageNet 128 networks: G 1024 at 4x4, then 1024, 512, 256, 128, 64, attention at 32x32;
    # D 64, 128, attention at 32x32, 256, 512, 1024, 1024
    context = BuildContext(resolution=128, num_classes=1000)
    generator = SAGANGenerator(SAGANGeneratorOptions(conditional=True), context)
    discriminator = SAGANDiscriminator(SAGANDiscriminatorOptions(conditional=True), context)
    layout = [("attention", b.gamma.numel()) if isinstance(b, SelfAttention2d) else b.conv2.out_channels for b in generator.blocks]
    assert generator.project.out_features == 1024 * 4 * 4
    assert layout == [1024, 512, 256, ("attention", 1), 128, 64]
    layout = [("attention", b.gamma.numel()) if isinstance(b, SelfAttention2d) else b.conv2.out_channels for b in discriminator.blocks]
    assert layout == [64, 128, ("attention", 1), 256, 512, 1024, 1024]
    assert generator.blocks[3].key.in_channels == 256 and discriminator.blocks[2].key.in_channels == 128
    scores = discriminator(generator(torch.randn(2, 128), torch.tensor([1, 2])), torch.tensor([1, 2]))
    assert scores.shape == (2,)


def test_the_projection_uses_the_label():
    torch.manual_seed(0)
    _, discriminator = _networks()
    images = [torch.rand(4, 3, 16, 16) * 2 - 1]
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        assert not torch.allclose(discriminator(images, zeros), discriminator(images, ones))


def test_unconditional_networks_have_no_class_tables():
    generator, discriminator = _networks(num_classes=0)
    assert not any(isinstance(m, (ConditionalBatchNorm2d, nn.Embedding)) for m in [*generator.modules(), *discriminator.modules()])


@pytest.mark.parametrize("scheme", ["xavier", "orthogonal"])
def test_initialization(scheme):
    torch.manual_seed(0)
    generator = SAGANGenerator(SAGANGeneratorOptions(channels=16, attention=[], init=scheme), BuildContext(resolution=16))
    weight = generator.blocks[0].conv1.weight.flatten(1)  # [32, 16·9]: orthogonal rows when orthogonal
    gram = weight @ weight.T
    assert torch.allclose(gram, torch.eye(32), atol=1e-5) == (scheme == "orthogonal")
    assert generator.blocks[0].conv1.bias.abs().sum() == 0


@pytest.mark.parametrize("network", ["generator", "discriminator"])
def test_mistakes_are_user_errors_naming_the_option(network):
    build = {
        "generator": lambda options, context: SAGANGenerator(SAGANGeneratorOptions(**options), context),
        "discriminator": lambda options, context: SAGANDiscriminator(SAGANDiscriminatorOptions(**options), context),
    }[network]
    with pytest.raises(UserError, match="needs labelled data") as caught:
        build({"conditional": True, "attention": []}, BuildContext(resolution=32))
    assert caught.value.key == "conditional"
    with pytest.raises(UserError, match="no 64x64 feature map") as caught:
        build({"attention": [64]}, BuildContext(resolution=32))
    assert caught.value.key == "attention"
    with pytest.raises(UserError, match="at least 8x8"):
        build({"attention": []}, BuildContext(resolution=4))


def test_a_recipe_mistake_is_one_line_and_exit_code_2(tmp_path, capsys):
    pytest.importorskip("gankit_dcgan")  # the hinge loss
    from gankit.cli import main

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        "name = 'bad'\n[data]\ntype = 'shapes'\nresolution = 16\n"
        "[generator]\ntype = 'sagan'\nattention = [32]\n[discriminator]\ntype = 'sagan'\nattention = [8]\n"
        "[loss]\ntype = 'hinge'\n[regularizers.spectral_norm]\n"
    )
    assert main(["check", str(recipe)]) == 2
    error = capsys.readouterr().err.strip()
    assert "generator.attention: the generator has no 32x32 feature map" in error and "\n" not in error
