"""train.reuse_fakes and train.compile: less work or faster kernels, the same
mathematics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tiny_recipes import TINY_RECIPE

from gankit.loop import Trainer
from gankit.recipe import load_recipe

ONE_STEP = TINY_RECIPE.replace("kimg = 0.064", "kimg = 0.008")


def _trainer(tmp_path: Path, registry, text: str, *overrides: str) -> Trainer:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return Trainer(load_recipe(path, registry, list(overrides)))


def test_reusing_the_d_phase_fakes_gives_the_same_generator_update(tmp_path, registry):
    reused = _trainer(tmp_path, registry, ONE_STEP, "train.reuse_fakes=true")
    recomputed = _trainer(tmp_path, registry, ONE_STEP)
    draws = []
    draw = recomputed._latents

    def same_latents_in_both_phases(n: int):
        draws.append(draw(n) if not draws else draws[0])  # the G phase gets the D phase's z and labels
        return draws[-1]

    recomputed._latents = same_latents_in_both_phases
    reused.train()
    recomputed.train()
    assert reused.g_steps == recomputed.g_steps == 1 and len(draws) == 2
    for (name, a), b in zip(reused.G.named_parameters(), recomputed.G.parameters(), strict=True):
        assert torch.equal(a, b), f"{name} differs"
    start = _trainer(tmp_path, registry, ONE_STEP)
    assert not torch.equal(next(start.G.parameters()), next(reused.G.parameters()))  # the step did change G


def test_fakes_are_reused_only_with_one_d_step_per_iteration(tmp_path, registry):
    trainer = _trainer(tmp_path, registry, ONE_STEP, "train.reuse_fakes=true")
    generated = []
    generate = trainer._generate
    trainer._generate = lambda z, labels: generated.append(z) or generate(z, labels)
    trainer.train()
    assert len(generated) == 1  # one generator forward serves both phases

    text = ONE_STEP.replace("[loss]", '[scheduler]\ntype = "alternating"\nd_steps = 2\n\n[loss]')
    trainer = _trainer(tmp_path, registry, text.replace("kimg = 0.008", "kimg = 0.016"), "train.reuse_fakes=true")
    generated.clear()
    generate = trainer._generate
    trainer._generate = lambda z, labels: generated.append(z) or generate(z, labels)
    trainer.train()
    assert len(generated) == 3  # two D steps, then a fresh G(z) for the G step


@pytest.mark.slow
def test_compiled_networks_train_like_eager_ones(tmp_path, registry):
    eager = _trainer(tmp_path, registry, ONE_STEP, "train.deterministic=false")
    compiled = _trainer(tmp_path, registry, ONE_STEP, "train.compile=true")
    assert compiled.compiled
    eager.train()
    compiled.train()
    for a, b in zip(eager.G.parameters(), compiled.G.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert list(eager.G.state_dict()) == list(compiled.G.state_dict())  # checkpoints keep their keys


@pytest.mark.slow
def test_compile_falls_back_to_eager_when_a_penalty_needs_double_backward(tmp_path, registry, capsys):
    pytest.importorskip("gankit_wgan")
    text = ONE_STEP.replace("[data]", '[regularizers.gradient_penalty]\ntype = "gradient_penalty"\n\n[data]')
    trainer = _trainer(tmp_path, registry, text, "train.compile=true")
    trainer.train()
    assert trainer.d_steps == 1 and not trainer.compiled
    assert "train.compile: torch.compile cannot differentiate this step twice" in capsys.readouterr().err
