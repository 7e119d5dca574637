"""The DCGAN plugin checked against its papers: Radford et al. 2016 for the
networks, Goodfellow et al. 2014, Salimans et al. 2016, Lim & Ye 2017 and
Miyato et al. 2018 for the losses."""

from __future__ import annotations

import math

import attrs
import pytest
import torch
from torch import nn

import gankit_dcgan
from gankit import BuildContext, DOutput, Registry, UserError
from gankit_dcgan import (
    DCGANDiscriminator,
    DCGANDiscriminatorOptions,
    DCGANGenerator,
    DCGANGeneratorOptions,
    HingeLoss,
    HingeOptions,
    MinimaxLoss,
    MinimaxOptions,
    NonSaturatingLoss,
    NonSaturatingOptions,
)

RESOLUTIONS = (16, 32, 64, 128)
NORM_TYPES = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def generator(resolution: int = 32, num_classes: int = 0, **options: object) -> DCGANGenerator:
    return DCGANGenerator(DCGANGeneratorOptions(**options), BuildContext(resolution=resolution, num_classes=num_classes))


def discriminator(resolution: int = 32, num_classes: int = 0, **options: object) -> DCGANDiscriminator:
    return DCGANDiscriminator(DCGANDiscriminatorOptions(**options), BuildContext(resolution=resolution, num_classes=num_classes))


def convs(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# --------------------------------------------------------------------------
# Shapes at every resolution


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_generator_gives_one_image_in_tanh_range(resolution: int) -> None:
    G = generator(resolution)
    assert (G.latent_size, G.num_classes, G.resolution) == (100, 0, resolution)
    images = G(G.sample_latents(3))
    assert isinstance(images, list) and len(images) == 1
    assert images[0].shape == (3, 3, resolution, resolution)
    assert images[0].min() >= -1.0 and images[0].max() <= 1.0
    assert isinstance(G.net[-1], nn.Tanh)  # §3: tanh on the output


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_discriminator_scores_and_features(resolution: int) -> None:
    D = discriminator(resolution)
    images = [torch.rand(3, 3, resolution, resolution) * 2 - 1]
    scores = D(images)
    assert scores.shape == (3,)
    scores_again, features = D(images, features=True)
    assert torch.allclose(scores, scores_again)
    blocks = int(math.log2(resolution)) - 2  # one halving per block, from the resolution down to 4x4
    assert len(features) == blocks == len(D.blocks)
    for index, feature in enumerate(features):
        size = resolution // 2 ** (index + 1)
        assert feature.shape == (3, min(64 * 2**index, 512), size, size)
    assert features[-1].shape[-1] == 4


def test_discriminator_uses_the_finest_image_of_the_list() -> None:
    D = discriminator(16).eval()
    fine = torch.rand(2, 3, 16, 16)
    assert torch.equal(D([torch.rand(2, 3, 8, 8), fine]), D([fine]))


def test_channel_progression_at_64_and_g_mirrors_d() -> None:
    D, G = discriminator(64), generator(64)
    d_hidden = [conv.out_channels for conv in convs(D.blocks)]
    assert d_hidden == [64, 128, 256, 512]
    assert convs(D)[-1].out_channels == 1
    g_out = [conv.out_channels for conv in convs(G)]
    assert g_out == [512, 256, 128, 64, 3]
    assert g_out[:-1] == d_hidden[::-1]


def test_channels_are_capped_by_max_channels() -> None:
    assert [c.out_channels for c in convs(discriminator(128).blocks)] == [64, 128, 256, 512, 512]
    assert [c.out_channels for c in convs(generator(128))] == [512, 512, 256, 128, 64, 3]
    assert [c.out_channels for c in convs(discriminator(32, base_channels=16, max_channels=32).blocks)] == [16, 32, 32]


def test_generator_layers_follow_section_3() -> None:
    G = generator(64)
    layers = convs(G)
    # 1x1 -> 4x4 projection, then fractional-strided 4x4 convs, stride 2, padding 1
    assert (layers[0].kernel_size, layers[0].stride, layers[0].padding) == ((4, 4), (1, 1), (0, 0))
    for layer in layers[1:]:
        assert (layer.kernel_size, layer.stride, layer.padding) == ((4, 4), (2, 2), (1, 1))
    # batch norm after every layer but the output one, and no bias in front of it
    norms = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(layers) - 1
    assert all(layer.bias is None for layer in layers[:-1])
    assert isinstance(G.net[-2], nn.ConvTranspose2d) and isinstance(G.net[-1], nn.Tanh)
    assert sum(isinstance(m, nn.ReLU) for m in G.modules()) == len(layers) - 1
    assert not any(isinstance(m, nn.Linear) for m in G.modules())


# --------------------------------------------------------------------------
# Discriminator architecture


def test_discriminator_has_no_fully_connected_or_pooling_layers() -> None:
    D = discriminator(64)
    pooling = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    assert not any(isinstance(m, nn.Linear) for m in D.modules())
    assert not any(isinstance(m, pooling) for m in D.modules())
    for conv in convs(D.blocks):  # downsampling is by strided convolution only
        assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    assert (D.head.kernel_size, D.head.stride, D.head.padding) == ((4, 4), (1, 1), (0, 0))
    leaks = [m for m in D.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaks) == len(D.blocks) and all(m.negative_slope == 0.2 for m in leaks)


@pytest.mark.parametrize("norm", ("batch", "layer", "none"))
def test_no_norm_on_the_first_layer(norm: str) -> None:
    D = discriminator(64, norm=norm)
    assert not any(isinstance(m, NORM_TYPES) for m in D.blocks[0].modules())
    assert convs(D.blocks[0])[0].bias is not None


def test_norm_option() -> None:
    batch = discriminator(64, norm="batch")
    for block in batch.blocks[1:]:
        (norm,) = [m for m in block if isinstance(m, NORM_TYPES)]
        assert isinstance(norm, nn.BatchNorm2d) and norm.num_features == convs(block)[0].out_channels
        assert convs(block)[0].bias is None

    layer = discriminator(64, norm="layer")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in layer.modules())
    for block in layer.blocks[1:]:
        (norm,) = [m for m in block if isinstance(m, NORM_TYPES)]
        assert isinstance(norm, nn.GroupNorm)
        assert norm.num_groups == 1 and norm.num_channels == convs(block)[0].out_channels

    none = discriminator(64, norm="none")
    assert not any(isinstance(m, NORM_TYPES) for m in none.modules())
    assert all(conv.bias is not None for conv in convs(none))

    with pytest.raises(ValueError, match="norm"):
        DCGANDiscriminatorOptions(norm="instance")


def test_layer_norm_scores_do_not_depend_on_the_batch() -> None:
    # the point of "layer" under a gradient penalty (Gulrajani et al. 2017 §4)
    images = torch.rand(4, 3, 32, 32)
    layer = discriminator(32, norm="layer").train()
    assert torch.allclose(layer([images])[:1], layer([images[:1]]), atol=1e-5)
    batch = discriminator(32, norm="batch").train()
    assert not torch.allclose(batch([images])[:1], batch([images[:1]]), atol=1e-5)


# --------------------------------------------------------------------------
# Initialisation (§4)


def test_initialisation_statistics() -> None:
    for network in (generator(64), discriminator(64)):
        weights = torch.cat([conv.weight.detach().flatten() for conv in convs(network)])
        assert abs(weights.std().item() - 0.02) < 0.001
        assert abs(weights.mean().item()) < 0.001
        gains = torch.cat([m.weight.detach() for m in network.modules() if isinstance(m, nn.BatchNorm2d)])
        assert abs(gains.mean().item() - 1.0) < 0.005 and abs(gains.std().item() - 0.02) < 0.005
        biases = [m.bias for m in network.modules() if getattr(m, "bias", None) is not None]
        assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_gradients_reach_every_parameter() -> None:
    G, D = generator(16), discriminator(16)
    D(G(G.sample_latents(4))).mean().backward()
    for network in (G, D):
        for name, parameter in network.named_parameters():
            assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name


# --------------------------------------------------------------------------
# Class conditioning (Mirza & Osindero 2014)


def test_conditional_generator_output_depends_on_the_label() -> None:
    G = generator(32, num_classes=5, conditional=True).eval()
    assert G.num_classes == 5
    z = G.sample_latents(1).expand(5, -1)
    (images,) = G(z, torch.arange(5))
    for a in range(5):
        for b in range(a + 1, 5):
            assert (images[a] - images[b]).abs().max() > 1e-4
    (again,) = G(z[:1], torch.tensor([2]))
    assert torch.allclose(again[0], images[2], atol=1e-6)
    with pytest.raises(ValueError):
        G(z)


def test_unconditional_networks_ignore_the_data_classes() -> None:
    G, D = generator(32, num_classes=5), discriminator(32, num_classes=5)
    assert G.num_classes == 0 and D.num_classes == 0
    assert convs(D)[0].in_channels == 3


def test_conditional_discriminator_takes_one_hot_label_maps() -> None:
    D = discriminator(32, num_classes=4, conditional=True).eval()
    assert D.num_classes == 4
    assert convs(D)[0].in_channels == 3 + 4
    image = torch.rand(1, 3, 32, 32).expand(4, -1, -1, -1)
    scores, features = D([image], torch.arange(4), features=True)
    assert scores.shape == (4,) and len(features) == 3
    assert len(set(scores.tolist())) == 4  # the same image scores differently per label
    with pytest.raises(ValueError):
        D([image])


@pytest.mark.parametrize("build", (generator, discriminator))
def test_conditional_without_classes_is_a_user_error(build) -> None:
    with pytest.raises(UserError, match="labelled data") as caught:
        build(32, num_classes=0, conditional=True)
    assert caught.value.key == "conditional"


@pytest.mark.parametrize("build", (generator, discriminator))
def test_resolution_below_16_is_a_user_error(build) -> None:
    with pytest.raises(UserError, match=">= 16"):
        build(8)


# --------------------------------------------------------------------------
# Options


@pytest.mark.parametrize(
    "options",
    (DCGANGeneratorOptions, DCGANDiscriminatorOptions, MinimaxOptions, NonSaturatingOptions, HingeOptions),
)
def test_options_document_every_field(options: type) -> None:
    assert (options.__doc__ or "").strip()
    for field in attrs.fields(options):
        assert field.metadata.get("help"), f"{options.__name__}.{field.name} has no help"
    assert options() == options()  # defaults build


def test_option_validation() -> None:
    for bad in ({"latent_size": 0}, {"base_channels": -1}, {"max_channels": 32}, {"embedding_size": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DCGANGeneratorOptions(**bad)
    for bad_smoothing in (-0.1, 0.5, 0.7):
        for options in (MinimaxOptions, NonSaturatingOptions):
            with pytest.raises(ValueError, match="label_smoothing"):
                options(label_smoothing=bad_smoothing)
    assert MinimaxOptions(label_smoothing=0.49).label_smoothing == 0.49


def test_registration() -> None:
    registry = Registry()
    registry.register_plugin(gankit_dcgan, "gankit-dcgan")
    registered = {(c.kind, c.name): c for c in registry.components()}
    assert set(registered) == {
        ("generator", "dcgan"),
        ("discriminator", "dcgan"),
        ("loss", "minimax"),
        ("loss", "nonsaturating"),
        ("loss", "hinge"),
        ("regularizer", "auxiliary_classifier"),
    }
    assert registered["generator", "dcgan"].options is DCGANGeneratorOptions
    assert registered["loss", "hinge"].factory is HingeLoss
    assert all(c.summary for c in registered.values())


# --------------------------------------------------------------------------
# Losses against hand computation

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s))


def outputs(real: list[float] = REAL, fake: list[float] = FAKE) -> tuple[DOutput, DOutput]:
    return DOutput(torch.tensor(real, requires_grad=True)), DOutput(torch.tensor(fake, requires_grad=True))


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_minimax_loss() -> None:
    # Goodfellow et al. 2014, Eq. 1 with D(x) = sigmoid(score)
    real, fake = outputs()
    loss = MinimaxLoss(MinimaxOptions())
    expected_d = -mean([math.log(sigmoid(r)) for r in REAL]) - mean([math.log(1 - sigmoid(f)) for f in FAKE])
    expected_g = mean([math.log(1 - sigmoid(f)) for f in FAKE])
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator_loss(fake, None).item() == pytest.approx(expected_g, rel=1e-6)
    assert loss.discriminator_loss(real, fake).dim() == 0


def test_nonsaturating_loss() -> None:
    real, fake = outputs()
    loss = NonSaturatingLoss(NonSaturatingOptions())
    expected_d = -mean([math.log(sigmoid(r)) for r in REAL]) - mean([math.log(1 - sigmoid(f)) for f in FAKE])
    expected_g = -mean([math.log(sigmoid(f)) for f in FAKE])  # §3: maximise log D(G(z))
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator_loss(fake, None).item() == pytest.approx(expected_g, rel=1e-6)
    # the numbers themselves, for REAL = [2, -1] and FAKE = [0.5, -3]
    assert expected_d == pytest.approx(
        0.5 * (math.log(1 + math.exp(-2)) + math.log(1 + math.e)) + 0.5 * (math.log(1 + math.exp(0.5)) + math.log(1 + math.exp(-3)))
    )


def test_hinge_loss() -> None:
    real, fake = outputs()
    loss = HingeLoss(HingeOptions())
    # D: mean(max(0, 1 - 2), max(0, 1 + 1)) + mean(max(0, 1 + 0.5), max(0, 1 - 3)) = 1 + 0.75
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(1.75)
    # G: -mean(0.5, -3)
    assert loss.generator_loss(fake, None).item() == pytest.approx(1.25)


@pytest.mark.parametrize("loss_type", ((MinimaxLoss, MinimaxOptions), (NonSaturatingLoss, NonSaturatingOptions)))
def test_one_sided_label_smoothing(loss_type) -> None:
    # Salimans et al. 2016 §3.4: real target 0.9, fake target still 0
    loss_class, options_class = loss_type
    smoothed, plain = loss_class(options_class(label_smoothing=0.1)), loss_class(options_class())
    real_s, fake_s = outputs()
    real_p, fake_p = outputs()
    expected = -mean([0.9 * math.log(sigmoid(r)) + 0.1 * math.log(1 - sigmoid(r)) for r in REAL]) - mean(
        [math.log(1 - sigmoid(f)) for f in FAKE]
    )
    d_smoothed = smoothed.discriminator_loss(real_s, fake_s)
    d_plain = plain.discriminator_loss(real_p, fake_p)
    assert d_smoothed.item() == pytest.approx(expected, rel=1e-6)
    assert d_smoothed.item() != pytest.approx(d_plain.item())
    d_smoothed.backward()
    d_plain.backward()
    # one-sided: the fake scores' gradient is untouched, the real scores' is not
    assert torch.equal(fake_s.scores.grad, fake_p.scores.grad)
    assert not torch.allclose(real_s.scores.grad, real_p.scores.grad)
    # the smoothed real gradient is (sigmoid(r) - 0.9) / N
    expected_real_grad = [(sigmoid(r) - 0.9) / len(REAL) for r in REAL]
    assert real_s.scores.grad.tolist() == pytest.approx(expected_real_grad, rel=1e-5)
    # the generator's loss does not smooth anything
    assert smoothed.generator_loss(fake_s, None).item() == pytest.approx(plain.generator_loss(fake_p, None).item())


def test_nonsaturating_gradient_does_not_vanish_where_minimax_does() -> None:
    # Goodfellow et al. 2014 §3: early on D rejects fakes confidently and
    # log(1 - D(G(z))) saturates; log D(G(z)) gives strong gradients.
    grads = {}
    for name, loss in (("minimax", MinimaxLoss(MinimaxOptions())), ("nonsaturating", NonSaturatingLoss(NonSaturatingOptions()))):
        fake = DOutput(torch.tensor([-5.0], requires_grad=True))
        loss.generator_loss(fake, None).backward()
        grads[name] = fake.scores.grad.item()
    assert grads["minimax"] == pytest.approx(-sigmoid(-5.0), rel=1e-5)  # about -0.0067
    assert grads["nonsaturating"] == pytest.approx(-sigmoid(5.0), rel=1e-5)  # about -0.9933
    assert grads["minimax"] < 0 and grads["nonsaturating"] < 0  # both push the fake score up
    assert abs(grads["nonsaturating"]) > 100 * abs(grads["minimax"])


def test_losses_stay_finite_at_extreme_scores() -> None:
    real, fake = outputs([200.0, -200.0], [200.0, -200.0])
    for loss in (MinimaxLoss(MinimaxOptions(label_smoothing=0.1)), NonSaturatingLoss(NonSaturatingOptions()), HingeLoss(HingeOptions())):
        total = loss.discriminator_loss(real, fake) + loss.generator_loss(fake, None)
        assert torch.isfinite(total)
        total.backward()
        assert torch.isfinite(real.scores.grad).all() and torch.isfinite(fake.scores.grad).all()
