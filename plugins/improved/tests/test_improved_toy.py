"""The toy critic with minibatch discrimination: gankit-wgan's MLP critic
with the layer before its score."""

from __future__ import annotations

import torch

from gankit import BuildContext
from gankit.layers import MinibatchDiscrimination
from gankit_improved import MinibatchMLPDiscriminator, MinibatchMLPOptions


def test_the_layer_sits_between_the_last_hidden_layer_and_the_score():
    torch.manual_seed(0)
    critic = MinibatchMLPDiscriminator(MinibatchMLPOptions(), BuildContext(resolution=1, channels=2))
    linears = [(m.in_features, m.out_features) for m in critic.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(2, 512), (512, 512), (512, 512), (512 + 100, 1)]
    assert isinstance(critic.minibatch, MinibatchDiscrimination)
    assert (critic.minibatch.in_features, critic.minibatch.kernels, critic.minibatch.kernel_dim) == (512, 100, 5)
    points = torch.randn(16, 2)
    scores, (hidden,) = critic([points], features=True)
    assert scores.shape == (16,) and hidden.shape == (16, 512)  # feature matching reads the last hidden layer
    with torch.no_grad():
        # the same point scores differently among varied points and among copies of itself
        assert not torch.allclose(critic([points])[0], critic([points[:1].expand(16, 2)])[0])
