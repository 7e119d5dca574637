from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from tiny_recipes import REPO, TINY_RECIPE

from gankit import default_registry
from gankit.cli import main
from gankit.recipe import load_recipe


def _check(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *extra: str) -> tuple[int, str]:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    code = main(["check", str(path), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "change, key, words, line",
    [
        (("[train]", "[train\n"), None, "TOML syntax error", None),
        (('name = "tiny"', 'name = "tiny"\nepochs = 3'), "epochs", "unknown key", 2),
        (('type = "tiny"', 'type = "tinny"', 1), "generator.type", "unknown generator 'tinny' (did you mean tiny", 4),
        (("resolution = 8", "resoluton = 8"), "data.resoluton", "unknown key (did you mean resolution?)", 14),
        (("kimg = 0.064", 'kimg = "ten"'), "train.kimg", "expected a number, got a string ('ten')", 18),
        (("batch_size = 8", "batch_size = -4"), "train.batch_size", "must be > 0 (got -4)", 19),
        (
            ('type = "shapes"\nresolution = 8\nsize = 64', 'type = "images"\npath = "no/such/folder"\nresolution = 8'),
            "data.path",
            "no/such/folder",
            14,
        ),
        (("size = 64", "size = 64.5"), "data.size", "expected an integer", 15),
        (('device = "cpu"', 'device = "tpu"'), "train.device", "'auto', 'cpu', 'cuda'", 21),
    ],
    ids=[
        "syntax",
        "unknown-top-level-key",
        "unknown-type",
        "misspelled-option",
        "wrong-type",
        "negative-batch",
        "missing-data-path",
        "float-for-int",
        "bad-device",
    ],
)
def test_mistakes_are_one_clear_line_with_exit_code_2(tmp_path, capsys, registry, change, key, words, line):
    old, new, *count = change
    assert old in TINY_RECIPE
    code, err = _check(tmp_path, capsys, TINY_RECIPE.replace(old, new, *count))
    assert code == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"gankit: error: {tmp_path / 'recipe.toml'}: ")
    if key:
        assert f": {key}: " in err, err
    assert words in err, err
    if line:
        assert f"(line {line})" in err, err


def test_missing_data_path_says_how_to_set_it(tmp_path, capsys, registry):
    text = TINY_RECIPE.replace('type = "shapes"', 'type = "images"\npath = "nowhere.zip"')
    code, err = _check(tmp_path, capsys, text.replace("size = 64\n", ""))
    assert code == 2 and "data.path" in err and "--set data.path=" in err


def test_a_valid_recipe_checks(tmp_path, capsys, registry):
    code, err = _check(tmp_path, capsys, TINY_RECIPE)
    assert code == 0, err
    assert "ok" in err


def test_set_overrides_any_key_with_typed_values(tmp_path, registry):
    path = tmp_path / "recipe.toml"
    path.write_text(TINY_RECIPE)
    recipe = load_recipe(path, registry, ["train.kimg=2", "train.channels_last=true", "data.seed=7", "train.out_dir=/tmp/x y"])
    assert recipe.train.kimg == 2.0 and recipe.train.channels_last is True
    assert recipe.data.options.seed == 7 and recipe.train.out_dir == "/tmp/x y"


def test_set_error_names_the_override(tmp_path, capsys, registry):
    code, err = _check(tmp_path, capsys, TINY_RECIPE, "--set", "train.batch_size=0")
    assert code == 2 and "--set train.batch_size=0: train.batch_size: must be > 0" in err


def test_extends_a_base_recipe(tmp_path, registry):
    (tmp_path / "base.toml").write_text(TINY_RECIPE)
    (tmp_path / "child.toml").write_text('extends = "base.toml"\nname = "child"\n[train]\nkimg = 3\n[data]\nsize = 32\n')
    recipe = load_recipe(tmp_path / "child.toml", registry)
    assert recipe.name == "child" and recipe.train.kimg == 3 and recipe.train.batch_size == 8
    assert recipe.data.options.size == 32 and recipe.data.options.resolution == 8


def test_error_in_a_base_recipe_names_the_base_file(tmp_path, capsys, registry):
    (tmp_path / "base.toml").write_text(TINY_RECIPE.replace("batch_size = 8", "batch_size = -1"))
    code, err = _check(tmp_path, capsys, 'extends = "base.toml"\n')
    assert code == 2 and f"{tmp_path / 'base.toml'}: train.batch_size" in err and "(line 19)" in err


def test_extends_loop_is_an_error(tmp_path, capsys, registry):
    (tmp_path / "a.toml").write_text('extends = "recipe.toml"\n')
    code, err = _check(tmp_path, capsys, 'extends = "a.toml"\n')
    assert code == 2 and "loop" in err


def test_changing_a_component_type_drops_the_base_options(tmp_path, registry):
    (tmp_path / "base.toml").write_text(TINY_RECIPE)
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n[data]\ntype = "shapes"\nseed = 3\n')
    assert load_recipe(tmp_path / "child.toml", registry).data.options.resolution == 8  # same type: merged
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n[generator]\ntype = "gankit.testing:tiny"\n')
    assert load_recipe(tmp_path / "child.toml", registry).generator.name == "gankit.testing:tiny"


def test_resolved_recipe_reproduces_itself(tmp_path, registry):
    path = tmp_path / "recipe.toml"
    path.write_text(TINY_RECIPE)
    recipe = load_recipe(path, registry, ["train.seed=5"])
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(recipe.resolved_toml())
    again = load_recipe(resolved, registry)
    assert again.resolved() == recipe.resolved()
    table = tomllib.loads(recipe.resolved_toml())
    assert table["train"]["seed"] == 5 and table["train"]["precision"] == "fp32"  # defaults filled in
    assert table["optimizers"]["generator"]["type"] == "adam" and table["scheduler"]["type"] == "alternating"


def test_regularizer_table_key_names_its_type(tmp_path, capsys, registry):
    code, err = _check(tmp_path, capsys, TINY_RECIPE + "\n[regularizers.no_such_regularizer]\n")
    assert code == 2 and "regularizers.no_such_regularizer.type: unknown regularizer" in err


def _flatten(table: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict) and value:
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


#: what a CPU variant may change of its paper recipe: the networks' widths and
#: how long a growth phase lasts; the algorithm (loss, penalty, optimizer, batch) stays
CPU_VARIANT_KEYS = {"name", "scheduler.stabilize_kimg", "scheduler.fade_kimg"} | {
    f"{network}.{width}" for network in ("generator", "discriminator") for width in ("channels", "max_channels", "fmap_max")
}


@pytest.mark.parametrize("variant", sorted((REPO / "recipes").glob("*_cpu.toml")), ids=lambda path: path.stem)
def test_a_cpu_variant_extends_its_paper_recipe_with_smaller_widths_only(variant: Path):
    text = variant.read_text()
    paper = tomllib.loads(text)["extends"]
    assert text.startswith(f"# CPU variant of {Path(paper).stem}:")
    ours = _flatten(load_recipe(variant, default_registry()).source.data)
    theirs = _flatten(load_recipe(variant.parent / paper, default_registry()).source.data)
    changed = {key for key in ours.keys() | theirs.keys() if ours.get(key) != theirs.get(key)}
    assert changed - {"name"} and changed <= CPU_VARIANT_KEYS
    assert all(ours[key] < theirs[key] for key in changed - {"name"})
