"""SAGAN's recipes build; those whose data the user gives say so in one line
and exit with code 2 when it is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gankit_dcgan")  # the hinge loss

from gankit.cli import main  # noqa: E402

RECIPES = Path(__file__).resolve().parents[3] / "recipes"


def _labelled_folder(folder: Path, resolution: int) -> Path:
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (folder / label).mkdir(parents=True)
        for index in range(2):
            Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)).save(folder / label / f"{index}.png")
    return folder


def test_the_shapes_recipe_builds(capsys):
    assert main(["check", str(RECIPES / "sagan_shapes.toml")]) == 0
    assert "sagan generator" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "resolution"), [("sagan_cifar10", 32), ("sagan_imagenet128", 128)])
def test_a_recipe_without_its_data_exits_2_in_one_line(name, resolution, tmp_path, capsys):
    recipe = str(RECIPES / f"{name}.toml")
    assert main(["check", recipe]) == 2
    error = capsys.readouterr().err.strip()
    assert "data.path" in error and "--set data.path=" in error and "\n" not in error
    folder = _labelled_folder(tmp_path / "data", resolution)
    assert main(["check", recipe, "--set", f"data.path={folder}"]) == 0
    assert f"at {resolution}x{resolution} with 2 classes" in capsys.readouterr().err
