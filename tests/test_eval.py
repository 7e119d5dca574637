"""Metrics in a training's log, and `gankit eval` on a checkpoint and on two
image sets, with a stand-in TorchScript extractor instead of Inception."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_recipes import TINY_RECIPE

from gankit import Run
from gankit import checkpoint as ckpt
from gankit.cli import main
from gankit.metrics import dataset_features, generator_features, load_extractor, save_stand_in_extractor
from gankit.metrics.inception import ENVIRONMENT_VARIABLE
from gankit.metrics.scores import frechet_distance

PROTOCOL = {"n_real", "n_fake", "extractor_sha256", "resize", "resolution", "seed"}


def _metrics_recipe(extractor: Path) -> str:
    tables = "".join(
        f'\n[metrics.{name}]\ntype = "{name}"\nextractor = "{extractor}"\nn_fake = 32\ncache = false\n' + extra
        for name, extra in (("fid", ""), ("kid", "subset_size = 16\nsubsets = 5\n"), ("precision_recall", ""))
    )
    return TINY_RECIPE + tables


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny run whose recipe scores all three metrics with the stand-in
    extractor; returns (run folder, extractor file)."""
    from gankit import recipe_from_text
    from gankit.testing import testing_registry

    folder = tmp_path_factory.mktemp("eval")
    extractor = save_stand_in_extractor(folder / "stand_in.pt")
    recipe = recipe_from_text(_metrics_recipe(extractor), "tiny.toml", testing_registry())
    run = folder / "run"
    Run.start(recipe, run_dir=run, registry=testing_registry(), progress="none").train()
    return run, extractor


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_training_logs_every_score_with_its_protocol(trained):
    run, extractor = trained
    last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    sha256 = load_extractor(str(extractor)).sha256
    for name, score_keys in (("fid", {"fid"}), ("kid", {"kid", "kid_sd"}), ("precision_recall", {"precision", "recall"})):
        result = last["metrics"][name]
        assert score_keys | PROTOCOL | {"network", "seconds"} <= set(result)
        assert result["network"] == "ema" and result["extractor_sha256"] == sha256 and result["resize"] == "tf1_bilinear"
        assert (result["n_real"], result["n_fake"], result["resolution"]) == (64, 32, 8)
    assert last["metrics"]["fid"]["fid"] > 0


def test_eval_scores_a_run_and_prints_the_protocol(trained, registry, capsys):
    run, extractor = trained
    assert main(["eval", str(run), "--n", "48", "--extractor", str(extractor)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fid: fid ") and "protocol: n_real 64, n_fake 48, extractor_sha256 " in out and "network ema" in out


def test_eval_matches_the_metric_computed_directly(trained, registry, capsys):
    run, extractor_file = trained
    assert (
        main(
            [
                "eval",
                str(run),
                "--n",
                "40",
                "--seed",
                "3",
                "--extractor",
                str(extractor_file),
                "--metric",
                "fid",
                "--metric",
                "kid",
                "--metric",
                "precision_recall",
                "--json",
            ]
        )
        == 0
    )
    results = {line["metric"]: line for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(results) == {"fid", "kid", "precision_recall"}
    assert all(result["n_fake"] == 40 and result["network"] == "ema" and result["seed"] == 3 for result in results.values())
    # the same numbers by hand: the recipe's data, the EMA generator, seed 3
    loaded = Run.from_checkpoint(run)
    generator = loaded.generator
    data = loaded.recipe.data.build()
    data.prepare()
    extractor = load_extractor(str(extractor_file))
    real = dataset_features(data, extractor, None, 64, torch.device("cpu"), cache=False)
    fake = generator_features(generator, extractor, 40, 64, torch.device("cpu"), seed=3)
    assert results["fid"]["fid"] == pytest.approx(frechet_distance(*real.moments(), *fake.moments()), rel=1e-9)


def test_eval_raw_scores_the_raw_generator_of_a_checkpoint_file(trained, registry, capsys):
    run, extractor = trained
    checkpoint = ckpt.find(run)
    assert main(["eval", str(checkpoint), "--raw", "--n", "32", "--extractor", str(extractor), "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert main(["eval", str(checkpoint), "--n", "32", "--extractor", str(extractor), "--json"]) == 0
    ema = json.loads(capsys.readouterr().out)
    assert raw["network"] == "raw" and ema["network"] == "ema" and raw["fid"] != ema["fid"]


def test_eval_against_other_data(trained, registry, tmp_path, capsys):
    run, extractor = trained
    folder = _image_folder(tmp_path / "other", 24, seed=1, size=16)
    assert main(["eval", str(run), "--data", str(folder), "--n", "32", "--extractor", str(extractor), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_real"] == 24 and result["resolution"] == 8  # read at the generator's resolution


# --------------------------------------------------------------------------
# Two image sets


def _image_folder(folder: Path, count: int, seed: int, size: int = 16, brightest: int = 256) -> Path:
    """Noisy images of one random colour each, no channel above ``brightest``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index in range(count):
        colour = rng.integers(0, brightest, 3)
        pixels = np.clip(colour + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    return folder


def _zip_of(folder: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"images/{file.name}")
    return path


def test_eval_real_against_itself_is_zero_and_against_another_set_is_not(tmp_path, registry, capsys, private_cache):
    extractor = str(save_stand_in_extractor(tmp_path / "stand_in.pt"))
    first = _image_folder(tmp_path / "a", 40, seed=0)
    darker = _zip_of(_image_folder(tmp_path / "b", 30, seed=5, brightest=128), tmp_path / "b.zip")
    assert main(["eval", "--real", str(first), "--real", str(first), "--extractor", extractor, "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert abs(same["fid"]) < 1e-6 and same["n_real"] == same["n_fake"] == 40 and same["resolution"] == 16
    assert (
        main(
            [
                "eval",
                "--real",
                str(first),
                "--real",
                f"{darker}/images",
                "--extractor",
                extractor,
                "--metric",
                "fid",
                "--metric",
                "kid",
                "--json",
            ]
        )
        == 0
    )
    fid, kid = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert fid["fid"] > 0.1 and kid["kid"] > 3 * kid["kid_sd"] and (fid["n_real"], fid["n_fake"]) == (40, 30)
    assert len(list((private_cache / "reference").glob("*.pt"))) == 2  # each set's features, cached once


# --------------------------------------------------------------------------
# Errors: exit 2, one line


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([], "give a run or checkpoint"),
        (["nowhere"], "nowhere: no such run folder or checkpoint file"),
        (["--real", "a"], "--real: give exactly two image sets"),
        (
            ["--real", "nowhere_a", "--real", "nowhere_b", "--extractor", "{extractor}"],
            "--real: nowhere_a: no such file or folder; give a folder",
        ),
        (["{run}", "--metric", "fdi", "--extractor", "{extractor}"], "unknown metric 'fdi' (did you mean fid"),
        (["{run}", "--n", "0"], "--n: expected a positive number"),
        (["{run}", "--extractor", "missing.pt"], "missing.pt: no such file"),
        (["{run}", "--data", "nowhere", "--extractor", "{extractor}"], "--data: nowhere: no such file or folder; give a folder"),
    ],
)
def test_eval_errors_exit_2_with_one_line(arguments, message, trained, registry, capsys):
    run, extractor = trained
    arguments = [a.format(run=run, extractor=extractor) for a in arguments]
    assert main(["eval", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gankit: error: ") and message in err and err.count("\n") == 1


def test_eval_without_any_extractor_lists_the_four_ways(trained, registry, tmp_path, monkeypatch, capsys):
    from gankit.metrics import inception

    monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(inception, "PACKAGE", "gankit_no_such_package")
    assert main(["eval", str(trained[0])]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "--extractor PATH" in err
        and "GANKIT_INCEPTION" in err
        and "torch hub cache" in err
        and "gankit[fid]" in err
    )


def test_eval_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--help"])
    assert exit_.value.code == 0 and "--real" in capsys.readouterr().out


def test_metrics_score_the_real_images_without_their_mirror_copies(tmp_path: Path, registry, capsys) -> None:
    """With hflip the data holds every image twice, once mirrored; the real
    features come from the images as stored, as the published protocols take
    them, unless --mirrored-reals asks for the doubled set."""
    from gankit import recipe_from_text
    from gankit.datasets import ShapesDataset, ShapesOptions
    from gankit.testing import testing_registry

    extractor_file = save_stand_in_extractor(tmp_path / "stand_in.pt")
    text = _metrics_recipe(extractor_file).replace("size = 64\n", "size = 64\nhflip = true\n")
    run = tmp_path / "run"
    Run.start(
        recipe_from_text(text, "mirrored.toml", testing_registry()), run_dir=run, registry=testing_registry(), progress="none"
    ).train()
    logged = json.loads((run / "log.jsonl").read_text().splitlines()[-1])["metrics"]["fid"]
    assert logged["n_real"] == 64 and logged["real_images"].startswith("64 of the 64 images (no mirror copies)")

    capsys.readouterr()
    assert main(["eval", str(run), "--n", "32", "--extractor", str(extractor_file), "--json"]) == 0
    captured = capsys.readouterr()
    assert "against 64 of 64 real images (no mirror copies)" in captured.err.splitlines()[0]
    assert json.loads(captured.out)["n_real"] == 64
    assert main(["eval", str(run), "--n", "32", "--extractor", str(extractor_file), "--json", "--mirrored-reals"]) == 0
    captured = capsys.readouterr()
    assert "against 128 of 128 real images (mirror copies included)" in captured.err.splitlines()[0]
    assert json.loads(captured.out)["n_real"] == 128

    # the features are those of the stored images, not of their mirror images
    dataset = ShapesDataset(ShapesOptions(resolution=8, size=64, hflip=True))
    extractor = load_extractor(str(extractor_file))
    features = dataset_features(dataset.without_mirrors(), extractor, None, 16, torch.device("cpu"), cache=False).values
    stored = dataset.__getitems__(list(range(64)))[0]
    mirrors = dataset.__getitems__(list(range(64, 128)))[0]
    assert torch.equal(mirrors, stored.flip(-1))
    assert torch.allclose(features, extractor(stored), atol=1e-5)
    assert not torch.allclose(features, extractor(mirrors), atol=1e-3)


def test_a_cache_made_before_the_mirror_rule_is_not_read(tmp_path: Path) -> None:
    from gankit.datasets import ShapesDataset, ShapesOptions
    from gankit.metrics.features import CACHE_FORMAT, reference_key

    extractor = load_extractor(str(save_stand_in_extractor(tmp_path / "stand_in.pt")))
    mirrored = ShapesDataset(ShapesOptions(resolution=8, size=64, hflip=True))
    key, plain_key = reference_key(mirrored, extractor, 64), reference_key(mirrored.without_mirrors(), extractor, 64)
    assert CACHE_FORMAT >= 2 and key["mirror_copies"] and not plain_key["mirror_copies"]
    assert key["pixels"] != plain_key["pixels"]


def test_the_same_pixels_share_one_cached_reference_with_or_without_mirror_copies(tmp_path: Path) -> None:
    from gankit.datasets import ShapesDataset, ShapesOptions
    from gankit.metrics.features import reference_key

    extractor = load_extractor(str(save_stand_in_extractor(tmp_path / "stand_in.pt")))
    plain = ShapesDataset(ShapesOptions(resolution=8, size=64))
    mirrored = ShapesDataset(ShapesOptions(resolution=8, size=64, hflip=True))
    for data in (plain, mirrored):
        data.prepare()
    assert plain.fingerprint() != mirrored.without_mirrors().fingerprint()
    assert reference_key(plain, extractor, 64) == reference_key(mirrored.without_mirrors(), extractor, 64)
    other = ShapesDataset(ShapesOptions(resolution=8, size=64, seed=1))
    other.prepare()
    assert reference_key(other, extractor, 64) != reference_key(plain, extractor, 64)
