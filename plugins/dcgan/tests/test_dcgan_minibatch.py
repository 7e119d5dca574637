"""The DCGAN discriminator's minibatch discrimination option (Salimans et al.
2016, §3.2): the layer sits before the last layer and makes a sample's score
depend on the rest of its batch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit import BuildContext, UserError
from gankit.layers import MinibatchDiscrimination
from gankit_dcgan import DCGANDiscriminator, DCGANDiscriminatorOptions


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def discriminator(resolution: int = 16, num_classes: int = 0, **options: object) -> DCGANDiscriminator:
    return DCGANDiscriminator(DCGANDiscriminatorOptions(**options), BuildContext(resolution=resolution, num_classes=num_classes))


def test_it_is_off_by_default_and_leaves_the_network_as_it_was():
    plain = discriminator()
    assert plain.minibatch is None and isinstance(plain.head, nn.Conv2d)
    assert not any("minibatch" in key for key in plain.state_dict())


@pytest.mark.parametrize("resolution", [16, 32])
def test_the_layer_reads_the_flattened_4x4_features_before_a_linear_score(resolution):
    d = discriminator(resolution, base_channels=8, minibatch_discrimination=True)
    channels = d.blocks[-1][0].out_channels
    assert isinstance(d.minibatch, MinibatchDiscrimination)
    assert (d.minibatch.in_features, d.minibatch.kernels, d.minibatch.kernel_dim) == (channels * 16, 100, 5)  # B, C of the paper's code
    assert isinstance(d.head, nn.Linear) and (d.head.in_features, d.head.out_features) == (channels * 16 + 100, 1)
    images = [torch.rand(6, 3, resolution, resolution) * 2 - 1]
    scores, features = d(images, features=True)
    assert scores.shape == (6,) and [f.shape[0] for f in features] == [6] * len(d.blocks)
    scores.square().mean().backward()
    for name, parameter in d.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(d(images).float()).all()


def test_a_score_depends_on_the_batch_only_with_the_option():
    images = torch.rand(8, 3, 16, 16) * 2 - 1
    collapsed = images[:1].expand(8, -1, -1, -1)  # every sample the first one
    for option in (False, True):
        d = discriminator(base_channels=8, minibatch_discrimination=option).eval()  # eval: batch norm takes no batch statistics
        with torch.no_grad():
            among_varied, among_copies = d([images])[0], d([collapsed])[0]
        assert torch.allclose(among_varied, among_copies) != option


def test_it_refuses_the_projection_head():
    with pytest.raises(UserError, match="projection") as error:
        discriminator(num_classes=3, conditional=True, conditioning="projection", minibatch_discrimination=True)
    assert error.value.key == "minibatch_discrimination"
    conditional = discriminator(num_classes=3, conditional=True, minibatch_discrimination=True)  # concat conditioning
    assert conditional([torch.rand(4, 3, 16, 16)], torch.tensor([0, 1, 2, 0])).shape == (4,)
