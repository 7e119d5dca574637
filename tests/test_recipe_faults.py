"""Recipe faults end in one line that names the key and where it was set
(the file, or the --set override): values no option can use (inf, nan,
integers past 2**31), networks, batches or data that cannot fit in memory,
a schedule the networks cannot follow, malformed overrides, and resumes that
would change what a run's checkpoints were made with."""

from __future__ import annotations

import shutil
import time
import tomllib
from pathlib import Path
from typing import Union, get_args

import attrs
import pytest
import torch
from tiny_recipes import REPO, TINY_RECIPE

import gankit.recipe
import gankit.runs
from gankit import Run, testing
from gankit import checkpoint as ckpt
from gankit.cli import main
from gankit.errors import UserError
from gankit.recipe import load_recipe, structure_options
from gankit.registry import Registry

# the built-in shapes: its options (data.size, three channels) are the ones these cases name
QUICKSTART = REPO / "recipes" / "dcgan_shapes.toml"
TOY = REPO / "recipes" / "toy_grid25_wgangp.toml"
PROGAN = REPO / "recipes" / "progan_shapes.toml"
HUGE = 2**40


def _error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error: "), err
    return lines[0]


def _check(capsys: pytest.CaptureFixture[str], recipe: Path, *overrides: str) -> tuple[int, str]:
    code = main(["check", str(recipe), *(arg for override in overrides for arg in ("--set", override))])
    return code, capsys.readouterr().err


# -- values no option can use ---------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "override", "key", "says"),
    [
        (QUICKSTART, f"data.resolution={HUGE}", "data.resolution", "at most 2,147,483,647"),
        (QUICKSTART, f"train.batch_size={HUGE}", "train.batch_size", "at most 2,147,483,647"),
        (QUICKSTART, f"data.size={HUGE}", "data.size", "at most 2,147,483,647"),
        (QUICKSTART, f"generator.latent_size={HUGE}", "generator.latent_size", "at most 2,147,483,647"),
        (QUICKSTART, f"train.seed=-{HUGE}", "train.seed", "at least -2,147,483,648"),
        (QUICKSTART, "train.kimg=inf", "train.kimg", "expected a finite number, got inf"),
        (QUICKSTART, "train.kimg=nan", "train.kimg", "expected a finite number, got nan"),
        (QUICKSTART, "train.ema_halflife_kimg=1e400", "train.ema_halflife_kimg", "expected a finite number"),
        (QUICKSTART, "optimizers.generator.lr=-inf", "optimizers.generator.lr", "expected a finite number"),
        (QUICKSTART, "optimizers.generator.betas=[0.5, inf]", "optimizers.generator.betas.1", "expected a finite number"),
        (QUICKSTART, "data.resolution=32768", "data.resolution", "at most 16384"),
        (TOY, "regularizers.gradient_penalty.weight=1e309", "regularizers.gradient_penalty.weight", "expected a finite number"),
        (TOY, f"generator.latent_size={HUGE}", "generator.latent_size", "at most 2,147,483,647"),
        (PROGAN, 'scheduler.batch_sizes={"1099511627776" = 8}', "scheduler.batch_sizes", "powers of two >= 4 and <= 16384"),
    ],
)
def test_values_no_option_can_use_name_the_key_and_the_override(capsys, registry, recipe, override, key, says):
    code, err = _check(capsys, recipe, override)
    line = _error_line(err)
    assert code == 2
    assert line.startswith(f"gankit: error: --set {override}: {key}: "), line
    assert says in line, line


def _plain(annotation: object) -> object:
    """int for int and int | None, float for float and float | None."""
    args = [arg for arg in get_args(annotation) if arg is not type(None)]
    return args[0] if len(args) == 1 and type(None) in get_args(annotation) else annotation


def test_every_number_option_of_every_component_and_of_train_is_bounded(registry):
    tables = [(f"{c.kind} {c.name}", c.options) for c in registry.components()] + [("train", gankit.recipe.TrainOptions)]
    checked = 0
    for where, options in tables:
        attrs.resolve_types(options)
        for field in attrs.fields(options):
            kind = _plain(field.type)
            bad = {float: [float("inf"), float("-inf"), float("nan"), 10**400], int: [HUGE, -HUGE]}.get(kind, [])  # type: ignore[call-overload]
            for value in bad:
                with pytest.raises(Exception) as error:
                    structure_options({field.name: value}, options)
                problems = dict(error.value.problems)  # type: ignore[attr-defined]
                assert (field.name,) in problems, f"{where}: {field.name} = {value!r} was accepted ({problems})"
                checked += 1
    assert checked > 50


def test_an_integer_and_a_float_within_bounds_are_kept_as_they_are(registry):
    options = structure_options({"kimg": 10, "seed": 2**31 - 1}, gankit.recipe.TrainOptions)
    assert options.kimg == 10.0 and type(options.kimg) is float and options.seed == 2**31 - 1


# -- what cannot fit in memory ------------------------------------------------------


@pytest.fixture
def eight_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine of 8 GiB, whatever this one has."""
    monkeypatch.setattr(gankit.preflight, "host_memory", lambda: 8 * 2**30)


@pytest.mark.parametrize(
    ("recipe", "override", "key", "says"),
    [
        (QUICKSTART, "data.size=2147483647", "data.size", "2,147,483,647 images of 3x"),
        (QUICKSTART, "data.resolution=16384", "data.resolution", "images of 3x16384x16384 kept in memory need at least"),
        (QUICKSTART, "train.batch_size=2147483647", "train.batch_size", "a batch of 2,147,483,647 samples needs at least"),
        (QUICKSTART, "generator.latent_size=1073741824", "generator.latent_size", "the generator's"),
        (TOY, "discriminator.hidden=1000000", "discriminator.hidden", "the discriminator's"),
        (PROGAN, 'scheduler.batch_sizes={"64" = 200000000}', "scheduler.batch_sizes.64", "a batch of 200,000,000 samples"),
    ],
)
def test_what_cannot_fit_in_memory_is_refused_before_building(capsys, registry, eight_gib, recipe, override, key, says):
    code, err = _check(capsys, recipe, override, "train.device=cpu")
    line = _error_line(err)
    assert code == 2
    assert line.startswith(f"gankit: error: --set {override}: {key}: "), line
    assert says in line and "more than the 8.0 GiB of this machine's memory" in line, line


@pytest.mark.parametrize("where", ["file", "override"])
def test_check_refuses_a_hundred_million_layers_within_seconds(tmp_path, capsys, registry, where):
    path, overrides = tmp_path / "toy.toml", []
    text = TOY.read_text()
    if where == "file":
        text = text.replace('[generator]\ntype = "mlp"', '[generator]\ntype = "mlp"\nlayers = 100000000', 1)
    else:
        overrides = ["generator.layers=100000000"]
    path.write_text(text)
    start = time.perf_counter()
    code, err = _check(capsys, path, *overrides)
    seconds = time.perf_counter() - start
    line = _error_line(err)
    origin = f"{path}" if where == "file" else "--set generator.layers=100000000"
    assert code == 2 and seconds < 5, (seconds, line)
    assert line.startswith(f"gankit: error: {origin}: generator.layers: the generator would be built of more than 10,000 layers"), line


def test_check_answers_within_seconds_for_every_integer_option_at_a_hundred_million(tmp_path, capsys, registry):
    recipe = load_recipe(TOY, registry)
    specs = [spec for value in recipe.components.values() for spec in (value.values() if isinstance(value, dict) else [value])]
    tables = [(spec.path, type(spec.options)) for spec in specs] + [(("train",), gankit.recipe.TrainOptions)]
    keys = [path + (field.name,) for path, options in tables for field in attrs.fields(options) if _plain(field.type) is int]
    assert "generator.layers" in [".".join(key) for key in keys] and len(keys) > 10
    for key in keys:
        override = f"{'.'.join(key)}=100000000"
        start = time.perf_counter()
        code, err = _check(capsys, TOY, override, "train.device=cpu")
        seconds = time.perf_counter() - start
        assert seconds < 5 and code in (0, 2), (override, seconds, err)
        if code == 2:
            _error_line(err)


def test_a_recipe_that_fits_checks(capsys, registry, eight_gib):
    code, err = _check(capsys, QUICKSTART, "train.device=cpu")
    assert code == 0, err


def test_run_refuses_what_cannot_fit_before_making_a_run_folder(tmp_path, capsys, registry, eight_gib):
    run_dir = tmp_path / "run"
    code = main(["run", str(QUICKSTART), "--set", "train.batch_size=2147483647", "--set", "train.device=cpu", "--run-dir", str(run_dir)])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and "train.batch_size: a batch of" in line
    assert not run_dir.exists()


def test_an_allocation_that_fails_while_building_is_one_line(tmp_path, capsys, registry, monkeypatch):
    # what the meta-device estimate cannot see: a factory that allocates for real and fails
    def allocate(self, options, context) -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes")

    monkeypatch.setattr(testing.TinyGenerator, "__init__", allocate)
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE)
    code, err = _check(capsys, tmp_path / "recipe.toml")
    line = _error_line(err)
    assert code == 2 and f"{tmp_path / 'recipe.toml'}: generator: not enough memory to build this generator" in line, line


# -- a schedule the networks cannot follow ------------------------------------------


def test_a_schedule_past_the_data_resolution_is_found_by_check(capsys, registry):
    code, err = _check(capsys, PROGAN, "scheduler.final_resolution=128")
    line = _error_line(err)
    assert code == 2
    assert line.startswith("gankit: error: --set scheduler.final_resolution=128: scheduler.final_resolution: "), line
    assert "128x128 stage" in line and "64x64 (data.resolution = 64)" in line, line


def test_run_refuses_a_schedule_past_the_data_resolution(tmp_path, capsys, registry):
    run_dir = tmp_path / "run"
    code = main(["run", str(PROGAN), "--set", "scheduler.final_resolution=128", "--run-dir", str(run_dir)])
    assert code == 2 and "scheduler.final_resolution" in _error_line(capsys.readouterr().err)
    assert not run_dir.exists()


# -- malformed values and keys ----------------------------------------------------------


@pytest.mark.parametrize(
    ("recipe", "override", "key", "says"),
    [
        (QUICKSTART, "optimizers.generator.betas=[0.0, 0.99, 0.5]", "optimizers.generator.betas", "expected an array of 2 values, got 3"),
        (QUICKSTART, "optimizers.generator.betas=[0.5]", "optimizers.generator.betas", "expected an array of 2 values, got 1"),
        (QUICKSTART, "optimizers.generator.betas=ab", "optimizers.generator.betas", "expected an array, got a string ('ab')"),
        (QUICKSTART, 'optimizers.generator.betas=[0.5, "x"]', "optimizers.generator.betas.1", "expected a number, got a string"),
        (PROGAN, "scheduler.batch_sizes=[16, 8]", "scheduler.batch_sizes", "expected a table, got an array ([16, 8])"),
        (PROGAN, 'scheduler.batch_sizes={"64" = "x"}', "scheduler.batch_sizes.64", "expected an integer, got a string"),
        (QUICKSTART, 'generator."a.b"=1', 'generator."a.b"', "unknown key; known keys: latent_size"),
        (QUICKSTART, "bogus.x=1", "bogus", "unknown key (top-level keys are"),
        (QUICKSTART, "train.kimg.x=1", "train.kimg", "is not a table"),
    ],
)
def test_malformed_overrides_are_blamed_on_the_override_with_the_full_key(capsys, registry, recipe, override, key, says):
    code, err = _check(capsys, recipe, override)
    line = _error_line(err)
    assert code == 2
    assert line.startswith(f"gankit: error: --set {override}: {key}"), line
    assert says in line, line
    assert "built-in method" not in line and "object has no attribute" not in line


def test_a_quoted_key_with_a_dot_is_one_key(tmp_path, registry):
    source = gankit.recipe.load_source(QUICKSTART, ['loggers."my.logger".type=jsonl'])
    assert source.data["loggers"]["my.logger"] == {"type": "jsonl"}


def test_a_malformed_value_in_the_file_is_blamed_on_the_file(tmp_path, capsys, registry):
    path = tmp_path / "recipe.toml"
    path.write_text(TINY_RECIPE.replace("[train]", '[optimizers.generator]\ntype = "adam"\nbetas = [0.0, 0.99, 0.5]\n\n[train]'))
    code, err = _check(capsys, path)
    line = _error_line(err)
    assert code == 2 and line.startswith(f"gankit: error: {path}: optimizers.generator.betas: expected an array of 2 values"), line


def _line_of(text: str, written: str) -> int:
    """The number of the last line of ``text`` that starts with ``written``."""
    return [number for number, line in enumerate(text.splitlines(), start=1) if line.startswith(written)][-1]


@pytest.mark.parametrize(
    ("change", "written", "key", "says"),
    [
        (("batch_size = 8", "batch_size = 8\nkimg = 3"), "kimg = 3", "train.kimg", "set twice: line 18 sets it already"),
        (
            ("[loggers.jsonl]", "[loggers.jsonl]\n\n[train]\nseed = 3"),
            "[train]",
            "train",
            "the table [train] is declared twice (first at line 17)",
        ),
        (("size = 64", "size = 64\ngröße = 3"), "größe", 'data."größe"', "a bare key holds only ASCII letters, digits, '-' and '_'"),
        (("[loggers.jsonl]", "[lögger.jsonl]"), "[lögger", '"lögger".jsonl', "a bare table name holds only ASCII letters, digits"),
        (("[train]", "[train\n"), "[train", "train", "TOML syntax error: Expected ']'"),
    ],
    ids=["duplicate-key", "duplicate-table", "non-ascii-key", "non-ascii-table", "unclosed-header"],
)
def test_a_toml_mistake_names_the_key_and_the_line(tmp_path, capsys, registry, change, written, key, says):
    path = tmp_path / "recipe.toml"
    text = TINY_RECIPE.replace(*change)
    path.write_text(text)
    code, err = _check(capsys, path)
    line = _error_line(err)
    assert code == 2
    assert line == f"gankit: error: {path}: {key}: {line.split(f'{key}: ', 1)[1]}", line
    assert says in line and line.endswith(f"(line {_line_of(text, written)})"), line
    assert "Cannot overwrite a value" not in line and "column" not in line


def test_extending_a_binary_file_names_the_recipe_and_its_extends_key(tmp_path, capsys, registry):
    (tmp_path / "x.bin").write_bytes(bytes(range(256)) * 8)
    path = tmp_path / "recipe.toml"
    path.write_text('# a recipe built on another\nextends = "x.bin"\nname = "built"\n')
    code, err = _check(capsys, path)
    line = _error_line(err)
    assert code == 2
    assert line.startswith(f"gankit: error: {path}: extends: '{tmp_path / 'x.bin'}': not a recipe: a recipe is UTF-8 text"), line
    assert line.endswith("(line 2)"), line


def test_a_top_level_table_written_inside_another_says_where_it_belongs(tmp_path, capsys, registry):
    path = tmp_path / "recipe.toml"
    text = TINY_RECIPE.replace('[loss]\ntype = "tiny"', '[loss]\ntype = "tiny"\n\n[loss.regularizers.gradient_penalty]\nweight = 10.0')
    path.write_text(text)
    code, err = _check(capsys, path)
    line = _error_line(err)
    assert code == 2 and "known keys: " not in line
    assert line.startswith(f"gankit: error: {path}: loss.regularizers: unknown key: regularizers is a table of its own, "), line
    assert "[regularizers.NAME] for each regularizer" in line and line.endswith(f"(line {_line_of(text, '[loss.regularizers')})")


def test_an_unknown_key_of_a_table_without_options_says_so(tmp_path, capsys, registry):
    path = tmp_path / "recipe.toml"
    text = TINY_RECIPE.replace('[loss]\ntype = "tiny"', '[loss]\ntype = "tiny"\nstrength = 2.0', 1)
    path.write_text(text)
    assert not attrs.fields(testing.TinyOptions)  # the tiny loss takes no options
    code, err = _check(capsys, path)
    line = _error_line(err)
    assert code == 2 and "known keys" not in line
    assert line == f"gankit: error: {path}: loss.strength: unknown key: this table takes no keys besides type (line 11)", line


def test_an_option_of_an_earlier_gankit_names_its_replacement(tmp_path, capsys, registry):
    path = tmp_path / "recipe.toml"
    text = TINY_RECIPE.replace("[train]", "[train]\ntensorboard = false")
    path.write_text(text)
    code, err = _check(capsys, path)
    line = _error_line(err)
    assert code == 2 and line.startswith(f"gankit: error: {path}: train.tensorboard: unknown key: removed: "), line
    assert "[loggers" in line and line.endswith(f"(line {_line_of(text, 'tensorboard')})"), line
    assert set(gankit.recipe.REMOVED_KEYS) >= {("train", "tensorboard")}


# -- resuming with changes ------------------------------------------------------------------


@pytest.fixture
def run_dir(tiny_run: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_run, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.resolution=16", "data.resolution"),  # the networks' shapes
        ("data.seed=3", "data.seed"),
        ("data.size=32", "data.size"),
        ("data.hflip=true", "data.hflip"),
        ('generator.type="tiny_pyramid"', "generator.type"),
        ("scheduler.d_steps=2", "scheduler.d_steps"),
        ("train.seed=1", "train.seed"),
        ('loss.type="nonsaturating"', "loss.type"),
        ('optimizers.generator.type="sgd"', "optimizers.generator.type"),
        ("regularizers.r1.gamma=1.0", "regularizers.r1"),
    ],
)
def test_resume_refuses_what_the_checkpoints_were_made_with_before_loading(run_dir, capsys, registry, monkeypatch, override, key):
    def no_loading(*args, **kwargs) -> None:
        raise AssertionError("resume built or loaded something before refusing")

    monkeypatch.setattr(gankit.runs, "Trainer", no_loading)
    monkeypatch.setattr(ckpt, "load", no_loading)
    resolved, log = (run_dir / "resolved.toml").read_text(), (run_dir / "log.jsonl").read_text()
    code = main(["run", "--resume", str(run_dir), "--set", override, "--progress", "lines"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith(f"gankit: error: --set {override}: {key}: cannot change when resuming"), line
    assert "start a new run" in line
    assert (run_dir / "resolved.toml").read_text() == resolved and (run_dir / "log.jsonl").read_text() == log


def test_resume_names_every_key_it_refuses(run_dir, capsys, registry):
    code = main(["run", "--resume", str(run_dir), "--set", "data.seed=3", "--set", "data.size=32", "--set", "train.kimg=1"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and "data.size: cannot change when resuming (64 in the run, 32 asked for)" in line
    assert "nor can data.seed;" in line and "train.kimg" not in line


def test_resume_applies_new_optimizer_hyperparameters_and_records_every_change(run_dir, registry):
    overrides = ["train.kimg=0.08", "optimizers.generator.betas=[0.9, 0.9]", "optimizers.discriminator.lr=0.001"]
    run = Run.resume(run_dir, overrides, progress="none")
    generator, discriminator = run.trainer.optimizers["generator"], run.trainer.optimizers["discriminator"]
    assert all(group["betas"] == (0.9, 0.9) for group in generator.param_groups)
    assert all(group["lr"] == 0.001 for group in discriminator.param_groups)
    assert discriminator.param_groups[0]["betas"] == (0.5, 0.999)  # unchanged: the recipe's
    assert generator.state and all("exp_avg" in state for state in generator.state.values())  # the checkpoint's moments stay

    text = (run_dir / "resolved.toml").read_text()
    note = text.splitlines()[0]
    assert note.startswith("# resumed at 0.064 kimg (checkpoint-000000000064.pt) with "), note
    assert "train.kimg = 0.08 (was 0.064)" in note and "optimizers.generator.betas = [0.9, 0.9] (was [0.5, 0.999])" in note
    assert "optimizers.discriminator.lr = 0.001 (was 0.0002)" in note
    table = tomllib.loads(text)
    assert table["optimizers"]["generator"]["betas"] == [0.9, 0.9] and table["train"]["kimg"] == 0.08
    again = load_recipe(run_dir / "resolved.toml", registry)  # `gankit run` still reads it
    assert again.optimizers["generator"].options.betas == (0.9, 0.9)

    Run.resume(run_dir, ["train.kimg=0.096"], progress="none")
    notes = [line for line in (run_dir / "resolved.toml").read_text().splitlines() if line.startswith("#")]
    assert len(notes) == 2 and notes[0] == note and "train.kimg = 0.096 (was 0.08)" in notes[1]


@attrs.define(kw_only=True)
class NotedAdamOptions:
    """Adam with an option that reaches no param_group."""

    lr: float = 2e-4
    note: float = 0.0


def noted_adam(params, options: NotedAdamOptions) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=options.lr)


def test_resume_refuses_an_optimizer_option_it_could_not_apply(tmp_path, registry):
    noted = Registry()
    noted.load_entry_points()
    noted.register_plugin(testing._TestingPlugin, testing.TESTING_DIST)
    noted.add("optimizer", "noted_adam", noted_adam, NotedAdamOptions)
    (tmp_path / "recipe.toml").write_text(TINY_RECIPE + '\n[optimizers.generator]\ntype = "noted_adam"\n')
    Run.start(tmp_path / "recipe.toml", run_dir=tmp_path / "run", registry=noted, progress="none").train()
    resolved = (tmp_path / "run" / "resolved.toml").read_text()
    with pytest.raises(UserError) as error:
        Run.resume(tmp_path / "run", ["optimizers.generator.note=1.0"], registry=noted, progress="none")
    assert error.value.message.startswith("--set optimizers.generator.note=1.0: optimizers.generator.note: cannot change when resuming")
    assert "noted_adam optimizer the checkpoint restores has no hyperparameter it sets" in error.value.message
    assert (tmp_path / "run" / "resolved.toml").read_text() == resolved
    run = Run.resume(tmp_path / "run", ["optimizers.generator.lr=0.001"], registry=noted, progress="none")
    assert run.trainer.optimizers["generator"].param_groups[0]["lr"] == 0.001


def test_resume_without_changes_leaves_resolved_toml_alone(run_dir, registry):
    before = (run_dir / "resolved.toml").read_text()
    Run.resume(run_dir, ["train.kimg=0.064"], progress="none")  # the value it has
    assert (run_dir / "resolved.toml").read_text() == before


def test_a_network_that_still_does_not_fit_its_checkpoint_is_one_line(run_dir, capsys, registry):
    # the fallback behind the refusal: a checkpoint whose tensors the recipe's networks do not take
    path = ckpt.find(run_dir)
    state = torch.load(path, weights_only=True)
    state["generator"] = {name: torch.zeros(3, *tensor.shape) for name, tensor in state["generator"].items()}
    torch.save(state, path)
    code = main(["run", "--resume", str(run_dir), "--set", "train.kimg=0.08", "--progress", "lines"])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and "does not fit" in line and str(path) in line


def test_optional_numbers_are_bounded_too():
    @attrs.define(kw_only=True)
    class Options:
        steps: Union[int, None] = None  # noqa: UP007 - the spelling plugins use either way
        scale: float | None = None

    for data in ({"steps": HUGE}, {"scale": float("inf")}):
        with pytest.raises(Exception) as error:
            structure_options(data, Options)
        assert list(data) == [key for (key,) in dict(error.value.problems)]  # type: ignore[attr-defined]
