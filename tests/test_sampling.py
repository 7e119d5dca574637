from __future__ import annotations

import torch
from torch import nn

from gankit import batch_statistics, generate


class NormedGenerator(nn.Module):
    """The least a generator needs for :func:`gankit.generate`: one batch norm."""

    num_classes = 0

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.norm.running_mean.fill_(3.0)
        self.norm.running_var.fill_(5.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        return [self.norm(self.linear(z))]


def test_batch_statistics_normalize_each_batch_and_leave_the_running_ones_alone():
    torch.manual_seed(0)
    generator = NormedGenerator().eval()
    z = torch.randn(12, 4)
    before = {name: value.clone() for name, value in generator.state_dict().items()}

    drawn = generate(generator, z, None, batch_size=6, batch_stats=True)[0]
    for first in (0, 6):
        batch = generator.linear(z[first : first + 6])
        expected = (batch - batch.mean(0)) / torch.sqrt(batch.var(0, unbiased=False) + generator.norm.eps)
        torch.testing.assert_close(drawn[first : first + 6], expected, atol=1e-5, rtol=1e-5)
    for name, value in generator.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert not generator.training and not generator.norm.training

    running = generate(generator, z, None, batch_size=6)[0]
    torch.testing.assert_close(running, (generator.linear(z) - 3.0) / torch.sqrt(torch.tensor(5.0 + generator.norm.eps)))


def test_batch_statistics_restore_a_training_generator_as_it_was():
    generator = NormedGenerator().train()
    with batch_statistics(generator):
        generator(torch.randn(5, 4))
        assert generator.norm.training
    assert generator.training and generator.norm.training
    assert generator.norm.running_mean.eq(3.0).all() and generator.norm.num_batches_tracked == 0
