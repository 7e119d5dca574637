"""Progressive training through gankit's own loop: a run stopped in the
middle of a fade resumes bit for bit, the stage and α reach the log and the
checkpoints, the optimizers restart at each phase, and a short run learns."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from gankit import Interrupted, Run, Stage, Trainer, load_checkpoint, recipe_from_text
from gankit.testing import testing_registry as registry
from gankit_progan import stage_at

# 16x16 shapes; 4x4 for 32 images, fade to 8 over 32, stabilize 32, fade to 16 over 32 (batch 4 there), then 16x16
RECIPE = """
name = "progressive"

[generator]
type = "progan"
latent_size = 16
fmap_base = 64
fmap_max = 16

[discriminator]
type = "progan"
fmap_base = 64
fmap_max = 16

[loss]
type = "lsgan"

[scheduler]
type = "progressive"
start_resolution = 4
final_resolution = 16
stabilize_kimg = 0.032
fade_kimg = 0.032
batch_sizes = { 16 = 4 }

[optimizers.generator]
type = "adam"
lr = 0.001
betas = [0.0, 0.99]

[optimizers.discriminator]
type = "adam"
lr = 0.001
betas = [0.0, 0.99]

[data]
type = "shapes"
resolution = 16
size = 64

[train]
kimg = 0.160
batch_size = 8
tick_kimg = 0.016
device = "cpu"
deterministic = true
samples = 4
checkpoint_ticks = 0
ema_halflife_kimg = 0.1
ema_rampup = 0.0
"""


WGAN_GP = RECIPE.replace(
    'type = "lsgan"\n',
    'type = "wasserstein"\n\n[regularizers.gradient_penalty]\nweight = 10.0\n\n[regularizers.drift]\nweight = 0.001\n',
)


def _run(run_dir: Path | None, text: str = RECIPE) -> Run:
    recipe = recipe_from_text(text, "progressive.toml", registry())
    if run_dir is None:
        return Run.in_memory(recipe, registry=registry(), progress="none")
    return Run.start(recipe, run_dir=run_dir, registry=registry(), progress="none")


def _stop_mid_fade_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[Trainer, Trainer, Path]:
    """Train straight through; train again, stopped by SIGTERM halfway
    through the fade to 8x8 and resumed from its checkpoint."""
    straight = _run(None, text)
    straight.train()
    run_dir = tmp_path / "stopped"
    first = _run(run_dir, text)

    def stop_at_tick_three(record: dict) -> None:
        if record["tick"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the run's own handler takes it

    first.trainer.tick_callbacks.append(stop_at_tick_three)
    with pytest.raises(Interrupted):
        first.train()
    assert first.trainer.nimg == 48 and first.trainer.stage == Stage(8, 0.25)  # a quarter into the fade to 8x8 (planned at 40 images)
    monkeypatch.setattr("gankit.registry._default", registry())
    resumed = Run.resume(run_dir, progress="none")
    resumed.train()
    assert resumed.trainer.nimg == straight.trainer.nimg and resumed.trainer.stage == straight.trainer.stage
    for name in ("G", "D", "G_ema"):
        a, b = getattr(straight.trainer, name).state_dict(), getattr(resumed.trainer, name).state_dict()
        assert all(torch.equal(a[key], b[key]) for key in a), f"{name} differs after resuming"
    return straight.trainer, resumed.trainer, run_dir


def test_a_run_stopped_in_the_middle_of_a_fade_resumes_bit_for_bit(tmp_path, monkeypatch):
    straight, resumed, run_dir = _stop_mid_fade_and_resume(tmp_path, monkeypatch, RECIPE)
    assert resumed.nimg == 160
    checkpoints = sorted((run_dir / "checkpoints").iterdir())
    stopped = load_checkpoint(checkpoints[0])
    assert stopped["progress"]["nimg"] == 48
    assert stopped["stage"] == {"resolution": 8, "alpha": 0.25, "phase": ""} and stopped["scheduler"] == {"phase": 1}
    for role, optimizer in straight.optimizers.items():
        steps = {int(s["step"]) for s in optimizer.state.values()}
        # reset when 16x16 began stabilizing at 128 images: 8 steps of 4 since
        assert steps == {8}, role
        assert steps == {int(s["step"]) for s in resumed.optimizers[role].state.values()}

    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [entry["tick"] for entry in log] == list(range(1, len(log) + 1))
    for entry in log:  # the stage of the tick's last iteration, planned before its batch
        nimg = round(entry["kimg"] * 1000)
        expected, _ = stage_at(resumed.scheduler.options, nimg - entry["batch_size"])
        assert entry["stage"] == {"resolution": expected.resolution, "alpha": expected.alpha}
    assert {entry["stage"]["resolution"] for entry in log} == {4, 8, 16}
    assert any(0 < entry["stage"]["alpha"] < 1 for entry in log)
    assert {entry["batch_size"] for entry in log} == {8, 4}


def test_a_wgan_gp_run_stopped_in_the_middle_of_a_fade_resumes_bit_for_bit(tmp_path, monkeypatch):
    pytest.importorskip("gankit_wgan")  # WGAN-GP and drift come from gankit-wgan
    _stop_mid_fade_and_resume(tmp_path, monkeypatch, WGAN_GP.replace("kimg = 0.160", "kimg = 0.064"))


REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_shapes_recipe_grows_to_64x64_and_learns():
    """recipes/progan_shapes.toml as it is, 60 kimg: tens of minutes on 2 CPU cores."""
    pytest.importorskip("gankit_wgan")
    run = Run.in_memory(REPO / "recipes" / "progan_shapes.toml", ["train.metric_ticks=0", "metrics.swd.images=1024"])
    before = run.evaluate()
    after = run.train()["metrics"]
    assert run.trainer.stage == Stage(64, 1.0)
    assert after["swd"]["swd_avg"] < 0.8 * before["swd"]["swd_avg"], (before["swd"], after["swd"])
    assert after["ms_ssim"]["ms_ssim"] < 0.9  # not collapsed to one image
