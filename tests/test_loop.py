from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_recipes import REPO, TINY_RECIPE

from gankit import Run, update_ema
from gankit import checkpoint as ckpt
from gankit.cli import main
from gankit.errors import UserError
from gankit.loop import InfiniteSampler
from gankit.pictures import scale_grids
from gankit.recipe import load_recipe
from gankit.runs import Interrupted


def _recipe(tmp_path: Path, registry, text: str = TINY_RECIPE, *overrides: str):
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return load_recipe(path, registry, list(overrides))


def test_run_leaves_a_complete_run_folder(tmp_path, registry, capsys):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE)
    code = main(["run", str(tmp_path / "recipe.toml"), "--set", f"train.out_dir={tmp_path / 'runs'}", "--set", "loggers.tensorboard={}"])
    assert code == 0, capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name == "00000-tiny"
    assert (run / "recipe.toml").read_text() == TINY_RECIPE
    env = json.loads((run / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["seed"] == 0 and env["device"] == "cpu"
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(lines) == 4  # 64 images in ticks of 16
    assert lines[-1]["kimg"] == 0.064
    for key in ("loss/D", "loss/G", "img_per_s", "sec_per_kimg", "memory_mb", "lr", "scores/real"):
        assert key in lines[-1]
    samples = sorted(p.name for p in (run / "samples").iterdir())
    assert "reals.png" in samples and "fakes-000000000000.png" in samples and "fakes-000000000064.png" in samples
    assert Image.open(run / "samples" / "reals.png").size == (4 * 8 + 5 * 2,) * 2  # 4x4 grid of 8x8, padding 2
    assert ckpt.list_checkpoints(run / "checkpoints")
    assert any((run / "tensorboard").iterdir())
    # a second run gets the next number and never touches the first
    assert main(["run", str(tmp_path / "recipe.toml"), "--set", f"train.out_dir={tmp_path / 'runs'}"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["00000-tiny", "00001-tiny"]
    assert not (tmp_path / "runs" / "00001-tiny" / "tensorboard").exists()  # its recipe names only [loggers.jsonl]
    # env.json's commit is that of gankit's own checkout, whatever the working directory
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if head:
        assert env["git"]["commit"] == head


def test_the_tick_line_shows_budgets_under_one_kimg():
    from gankit.runs import _tick_line

    record = {"tick": 3, "kimg": 0.048, "img_per_s": 100.0, "sec_per_kimg": 10.0, "loss/D": 0.5}
    assert "kimg    0.048/0.064" in _tick_line(record, total_nimg=64)
    assert "kimg    120.0/180" in _tick_line({**record, "kimg": 120.0}, total_nimg=180_000)


def test_run_dir_is_never_overwritten(tmp_path, registry, capsys):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "log.jsonl").write_text("{}\n")
    assert main(["run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "taken")]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert (tmp_path / "taken" / "log.jsonl").read_text() == "{}\n"


def _weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_stop_by_signal_and_resume_is_bit_identical(tmp_path, registry):
    text = TINY_RECIPE.replace("kimg = 0.064", "kimg = 0.192").replace("[train]", "[train]\ndeterministic = true\ncheckpoint_ticks = 0")
    straight = Run.start(_recipe(tmp_path, registry, text), run_dir=tmp_path / "straight", progress="none")
    straight.train()

    run_dir = tmp_path / "stopped"
    first = Run.start(_recipe(tmp_path, registry, text), run_dir=run_dir, progress="none")

    def signal_at_tick_three(record: dict) -> None:
        if record["tick"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the run's own handler takes it

    first.trainer.tick_callbacks.append(signal_at_tick_three)
    with pytest.raises(Interrupted):
        first.train()
    assert first.trainer.nimg < first.trainer.total_nimg
    saved = ckpt.find(run_dir)
    assert saved.name == f"checkpoint-{first.trainer.nimg:012d}.pt"

    resumed = Run.resume(run_dir, progress="none")
    assert resumed.checkpoint == saved
    resumed.train()
    assert resumed.trainer.nimg == straight.trainer.nimg and resumed.trainer.d_steps == straight.trainer.d_steps
    for name in ("G", "D", "G_ema"):
        a, b = _weights(getattr(straight.trainer, name)), _weights(getattr(resumed.trainer, name))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} differs after resuming"
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [entry["tick"] for entry in log] == list(range(1, 13))  # one line per tick, none lost, none repeated


def test_checkpoints_rotate_and_write_atomically(tmp_path, registry):
    text = TINY_RECIPE.replace("[train]", "[train]\ncheckpoint_ticks = 1\nkeep_checkpoints = 2")
    Run.start(_recipe(tmp_path, registry, text), run_dir=tmp_path / "run", progress="none").train()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["checkpoint-000000000048.pt", "checkpoint-000000000064.pt"]  # no .partial left behind
    state = ckpt.load(tmp_path / "run" / "checkpoints" / names[-1])
    assert set(state) >= {"generator", "discriminator", "generator_ema", "optimizers", "scheduler", "progress", "rng", "recipe"}
    assert state["progress"]["nimg"] == 64  # images shown, which is also the data position


class NotAllowed:
    pass


def test_loading_never_unpickles_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "payload": NotAllowed()}, path)
    with pytest.raises(UserError) as error:
        ckpt.load(path)
    assert "refused" in error.value.message and "NotAllowed" in error.value.message


def test_infinite_sampler_resumes_from_a_position():
    full = InfiniteSampler(10, shuffle=True, seed=3)
    stream = iter(full)
    first_27 = [next(stream) for _ in range(27)]
    assert sorted(first_27[:10]) == list(range(10)) and first_27[:10] != first_27[10:20]
    later = iter(InfiniteSampler(10, shuffle=True, seed=3, start=13))
    assert [next(later) for _ in range(14)] == first_27[13:27]


def test_ema_follows_its_half_life(tmp_path, registry):
    trainer = Run.in_memory(_recipe(tmp_path, registry, TINY_RECIPE, "train.ema_halflife_kimg=0.5", "train.ema_rampup=0")).trainer
    trainer.batch_size = 500
    assert trainer._ema_beta() == pytest.approx(0.5)  # one half-life per step
    ema, model = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = 0.25 * ema.weight.detach() + 0.75 * model.weight.detach()
    update_ema(ema, model, 0.25)
    assert torch.allclose(ema.weight, expected)
    trainer.options.ema_rampup = 0.1
    trainer.nimg = 1000  # ramp-up: half-life min(500, 0.1 * 1000) = 100 images
    assert trainer._ema_beta() == pytest.approx(0.5 ** (500 / 100))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cpu(tmp_path, registry, precision):
    record = Run.in_memory(_recipe(tmp_path, registry, TINY_RECIPE, f"train.precision={precision}", "train.channels_last=true")).train()
    assert all(torch.isfinite(torch.tensor(record[k])) for k in ("loss/D", "loss/G"))


def test_sample_command_draws_from_a_run(tmp_path, registry, capsys):
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE)
    assert main(["run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "run")]) == 0
    out = tmp_path / "grid.png"
    assert main(["sample", str(tmp_path / "run"), "--n", "9", "--seed", "1", "--out", str(out)]) == 0
    assert Image.open(out).size == (3 * 8 + 4 * 2,) * 2
    again = tmp_path / "again.png"
    assert main(["sample", str(ckpt.find(tmp_path / "run")), "--n", "9", "--seed", "1", "--out", str(again)]) == 0
    assert out.read_bytes() == again.read_bytes()  # the same seed draws the same samples
    assert main(["sample", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "no such run folder or checkpoint" in capsys.readouterr().err


def test_scale_grids_put_every_scale_side_by_side():
    scales = [torch.zeros(4, 3, 4, 4), torch.zeros(4, 3, 8, 8), torch.ones(4, 3, 16, 16)]
    grid = scale_grids(scales, nrow=2)
    one = 2 * 16 + 3 * 2
    assert grid.shape == (3, one, 3 * one + 2 * 8)


@pytest.mark.timeout(300)
def test_sigterm_from_outside_writes_a_checkpoint_and_resume_matches(tmp_path):
    """The whole path a user takes: `gankit run`, SIGTERM, `gankit run --resume`."""
    recipe = tmp_path / "recipe.toml"
    text = (REPO / "recipes" / "dcgan_shapes.toml").read_text()
    for old, new in [
        ("resolution = 32", "resolution = 16"),
        ("size = 10000", "size = 512"),
        ("base_channels = 32", "base_channels = 8"),
        ("\nkimg = 80", "\nkimg = 6"),
        ("batch_size = 32", "batch_size = 16\ndeterministic = true"),
        ('device = "auto"', 'device = "cpu"'),
        ("tick_kimg = 4", "tick_kimg = 0.2"),
    ]:
        assert old in text, f"recipes/dcgan_shapes.toml no longer says {old!r}: update this test"
        text = text.replace(old, new)
    recipe.write_text(text + "\n[loggers.jsonl]\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "gankit.cli", "run", str(recipe), "--progress", "lines", "--run-dir"]
    subprocess.run([*command, str(tmp_path / "straight")], check=True, env=env, capture_output=True, timeout=240)

    stopped = tmp_path / "stopped"
    process = subprocess.Popen([*command, str(stopped)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = stopped / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and f"gankit run --resume {stopped}" in err and "Traceback" not in err
    resumed = subprocess.run(
        [sys.executable, "-m", "gankit.cli", "run", "--resume", str(stopped), "--progress", "lines"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    a = ckpt.load(ckpt.find(tmp_path / "straight"))
    b = ckpt.load(ckpt.find(stopped))
    assert a["progress"]["nimg"] == b["progress"]["nimg"] == 6000
    for key in ("generator", "generator_ema"):
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key]), f"{key} differs"


def test_the_seed_builds_the_generator_first_then_the_discriminator(tmp_path, registry):
    """The order of the random draws at build time is part of what a seed
    gives: a change of it changes every run's result."""
    recipe = _recipe(tmp_path, registry)
    trainer = Run.in_memory(recipe).trainer
    torch.manual_seed(recipe.train.seed)
    generator = recipe.generator.build(trainer.context)
    discriminator = recipe.discriminator.build(trainer.context)
    for built, trained in ((generator, trainer.G), (discriminator, trainer.D)):
        assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), trained.state_dict().values(), strict=True))
