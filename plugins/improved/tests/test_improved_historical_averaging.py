"""Historical averaging (Salimans et al. 2016, §3.3): the term by hand on a
tiny module, and its running mean through a checkpoint and a resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gankit import Run, UserError
from gankit_improved import HistoricalAveraging, HistoricalAveragingOptions


def _set(module: nn.Linear, weight: list[float], bias: float) -> None:
    with torch.no_grad():
        module.weight.copy_(torch.tensor([weight]))
        module.bias.fill_(bias)


def test_the_term_is_the_distance_from_the_mean_of_every_value_so_far():
    module = nn.Linear(2, 1)
    _set(module, [1.0, 2.0], 0.0)
    regularizer = HistoricalAveraging(HistoricalAveragingOptions(network="discriminator", weight=0.5))
    assert regularizer.phase == "D"
    other = nn.Linear(2, 1)
    assert regularizer.wrap(other, "generator") is other and not hasattr(other, "historical_mean")
    assert regularizer.wrap(module, "discriminator") is module
    assert regularizer.penalty(None).item() == 0.0  # θ[0] is its own mean
    _set(module, [3.0, 2.0], 1.0)  # as if an optimizer step had moved it
    regularizer.after_step(module, "discriminator")
    regularizer.after_step(other, "generator")  # the other network's step adds nothing
    _set(module, [5.0, 8.0], -1.0)
    regularizer.after_step(module, "discriminator")
    mean = module.historical_mean
    assert int(mean.count) == 3
    # (1/3)·([1, 2] + [3, 2] + [5, 8]) = [3, 4]; (0 + 1 − 1)/3 = 0
    assert mean.mean_0.tolist() == [[3.0, 4.0]] and mean.mean_1.item() == pytest.approx(0.0, abs=1e-6)
    term = regularizer.penalty(None)
    # 0.5·((5 − 3)² + (8 − 4)² + (−1 − 0)²)
    assert term.item() == pytest.approx(0.5 * 21)
    term.backward()
    # the mean is a constant: d/dθ = 2·w·(θ − mean)
    assert module.weight.grad.tolist() == [[2.0, 4.0]] and module.bias.grad.item() == pytest.approx(-1.0)


def test_the_generator_is_regularized_in_its_own_phase_and_once():
    regularizer = HistoricalAveraging(HistoricalAveragingOptions(network="generator"))
    assert regularizer.phase == "G"
    generator = regularizer.wrap(nn.Linear(2, 2), "generator")
    assert [name for name, _ in generator.named_buffers()] == ["historical_mean.mean_0", "historical_mean.mean_1", "historical_mean.count"]
    assert not list(generator.historical_mean.parameters())  # the network's parameters stay its own
    with pytest.raises(UserError, match="already has a historical average") as error:
        HistoricalAveraging(HistoricalAveragingOptions(network="generator")).wrap(generator, "generator")
    assert error.value.key == "network"


RECIPE = """\
name = "historical"

[data]
type = "toy2d"
distribution = "ring8"

[generator]
type = "mlp"
hidden = 16
layers = 2

[discriminator]
type = "mlp"
hidden = 16
layers = 2

[loss]
type = "nonsaturating"

[regularizers.average_d]
type = "historical_averaging"
network = "discriminator"

[regularizers.average_g]
type = "historical_averaging"
network = "generator"
weight = 0.1

[train]
kimg = 0.064
batch_size = 16
tick_kimg = 0.032
checkpoint_ticks = 1
sample_ticks = 0
device = "cpu"
samples = 16
deterministic = true

[loggers.jsonl]
"""


def _means(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in network.historical_mean.named_buffers()}


def test_the_running_mean_is_saved_in_checkpoints_and_restored_on_resume(tmp_path: Path):
    recipe = tmp_path / "historical.toml"
    recipe.write_text(RECIPE)
    run = Run.start(recipe, run_dir=tmp_path / "run", progress="none")
    run.train()
    trainer = run.trainer
    saved = {"G": _means(trainer.G), "D": _means(trainer.D)}
    assert int(saved["D"]["count"]) == trainer.d_steps + 1 == 5  # the initial values and one per step
    assert int(saved["G"]["count"]) == trainer.g_steps + 1 == 5
    assert not torch.equal(saved["D"]["mean_0"], trainer.D.body[0].weight)  # a mean, not the current value

    resumed = Run.resume(tmp_path / "run", ["train.kimg=0.128"], progress="none")
    for role, network in (("G", resumed.trainer.G), ("D", resumed.trainer.D)):
        restored = _means(network)
        assert restored.keys() == saved[role].keys()
        for name, value in saved[role].items():
            assert torch.equal(restored[name], value), f"{role} {name}"
    resumed.train()

    # and training on from it ends where a run that was never stopped does
    whole = Run.in_memory(recipe, ["train.kimg=0.128"], progress="none")
    whole.train()
    for a, b in ((resumed.trainer.G, whole.trainer.G), (resumed.trainer.D, whole.trainer.D)):
        continued, uninterrupted = _means(a), _means(b)
        assert int(continued["count"]) == 9
        for name, value in uninterrupted.items():
            assert torch.equal(continued[name], value), name
    sampler = Run.from_checkpoint(tmp_path / "run")  # the EMA generator, wrapped as in training, loads too
    assert sampler.sample(4, seed=0)[-1].shape == (4, 2)
