"""The images dataset on broken data: files Pillow refuses, 16-bit PNGs,
zip members named outside the archive, undecodable files among good ones,
and `gankit check --data`, which finds them all."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_recipes import TINY_RECIPE

from gankit.cli import main
from gankit.datasets import ImagesDataset, ImagesOptions
from gankit.errors import UserError

COLOURS = {"ant": (200, 30, 30), "mole": (30, 30, 200)}


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (16, 16)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb() -> bytes:
    """A tiny PNG whose header claims 30000x30000 pixels (nothing that size
    is ever allocated: Pillow refuses it on opening)."""
    data = bytearray(_png((1, 2, 3), (2, 2)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _png16_rgb(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one): ``pixels`` uint16 [H, W, 3]."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)  # filter type 0 on each row
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


def _good(count: int = 4) -> dict[str, bytes]:
    """Labelled PNGs and JPEGs, in two classes."""
    files = {}
    for i in range(count):
        name = list(COLOURS)[i % 2]
        files[f"{name}/{i}.png" if i % 4 < 2 else f"{name}/{i}.jpg"] = (_png if i % 4 < 2 else _jpeg)(COLOURS[name])
    return files


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def images(path: Path | str, **options: object) -> ImagesDataset:
    return ImagesDataset(ImagesOptions(path=str(path), resolution=4, **options))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# A header claiming too many pixels


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_a_decompression_bomb_is_a_one_line_error_naming_the_file(tmp_path: Path, in_memory: str) -> None:
    root = _write(tmp_path / "data", {**_good(), "ant/big.png": _bomb()})
    dataset = images(root, in_memory=in_memory)  # building reads no image
    with pytest.raises(UserError) as raised:
        dataset.prepare()
    message = raised.value.message
    assert "\n" not in message and "ant/big.png" in message and "1 of 5 images cannot be decoded" in message
    assert "pixels" in message  # Pillow's reason: the size the header claims


def test_reading_a_decompression_bomb_names_the_file(tmp_path: Path) -> None:
    root = _write(tmp_path, {"big.png": _bomb()})
    with pytest.raises(UserError, match="big.png: cannot read the image") as raised:
        images(root, in_memory="no")[0]
    assert "\n" not in raised.value.message


# --------------------------------------------------------------------------
# 16-bit PNGs


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_16_bit_greyscale_png_is_scaled_to_8_bits(tmp_path: Path, in_memory: str) -> None:
    values = np.array([[0, 255, 256, 32767], [32768, 40000, 65280, 65535]] * 2, dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as opened:
        assert opened.mode.startswith("I")  # what Pillow makes of it
    dataset = images(tmp_path, in_memory=in_memory)
    dataset.prepare()
    image, _ = dataset[0]
    expected = torch.from_numpy((values >> 8).astype(np.uint8))
    assert image.shape == (3, 4, 4)
    for channel in image:  # grey: the same in R, G and B
        assert torch.equal(channel, expected)
    assert expected[1].tolist() == [128, 156, 255, 255]


def test_16_bit_rgb_png_is_scaled_to_8_bits(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), dtype=np.uint16)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 65535, 32768, 511
    (tmp_path / "deep.png").write_bytes(_png16_rgb(pixels))
    image, _ = images(tmp_path)[0]
    assert image[:, 0, 0].tolist() == [255, 128, 1] and bool((image == image[:, :1, :1]).all())


# --------------------------------------------------------------------------
# Zip members named outside the archive


def test_zip_members_named_outside_the_archive_are_skipped_and_reported_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for name, data in _good().items():
            opened.writestr(name, data)
        for name in ("/tmp/x.png", "../x.png", "mole/../../y.png", "/etc/z.jpg"):
            opened.writestr(name, _png((9, 9, 9)))
    dataset = images(archive, labels=True)
    assert len(dataset) == 4 and dataset.classes == ["ant", "mole"]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1, warnings
    assert "skipped 4 members" in warnings[0] and "'/tmp/x.png'" in warnings[0] and "'../x.png'" in warnings[0]


def test_a_zip_of_safe_names_warns_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for name, data in _good().items():
            opened.writestr(name, data)
    assert len(images(archive)) == 4
    assert "warning" not in capsys.readouterr().err


# --------------------------------------------------------------------------
# Undecodable files among good ones


def _cut_jpeg() -> bytes:
    """A JPEG cut off halfway through its image data: its header is sound."""
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(out, format="JPEG")
    return out.getvalue()[: len(out.getvalue()) // 2]


def _with_bad_files(root: Path, bad: int = 2) -> Path:
    files = _good(6)
    broken = [b"not an image", _png((1, 1, 1))[:40], _cut_jpeg()]
    for i in range(bad):
        files[f"{list(COLOURS)[i % 2]}/bad{i:02d}.{'jpg' if i % 3 == 2 else 'png'}"] = broken[i % 3]
    return _write(root, files)


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_undecodable_files_stop_the_run_at_prepare_naming_them_all(tmp_path: Path, in_memory: str) -> None:
    dataset = images(_with_bad_files(tmp_path / "data", bad=3), in_memory=in_memory)
    assert len(dataset) == 9  # building decodes nothing
    with pytest.raises(UserError) as raised:
        dataset.prepare()
    message = raised.value.message
    assert message.startswith(f"{tmp_path / 'data'}: 3 of 9 images cannot be decoded: ") and "\n" not in message
    for name in ("ant/bad00.png", "mole/bad01.png", "ant/bad02.jpg"):  # junk, a cut PNG, a cut JPEG
        assert name in message
    assert "not an image file Pillow recognises" in message and "skip_undecodable" in message


def test_the_error_lists_ten_files_and_counts_the_rest(tmp_path: Path) -> None:
    dataset = images(_with_bad_files(tmp_path, bad=13))
    with pytest.raises(UserError, match="13 of 19 images cannot be decoded") as raised:
        dataset.prepare()
    assert raised.value.message.count("/bad") == 10 and "and 3 more" in raised.value.message


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_skip_undecodable_trains_on_the_rest_and_says_so_once(tmp_path: Path, capsys: pytest.CaptureFixture[str], in_memory: str) -> None:
    dataset = images(_with_bad_files(tmp_path, bad=3), labels=True, hflip=True, in_memory=in_memory, skip_undecodable=True)
    dataset.prepare()
    dataset.prepare()  # the run and the trainer both prepare: one report
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "skipping 3 of 9 images" in warnings[0] and "ant/bad00.png" in warnings[0]
    assert len(dataset) == 12 and dataset.classes == ["ant", "mole"]
    batch, labels = dataset.__getitems__(list(range(12)))
    for image, label in zip(batch, labels):  # each label still goes with its own image
        expected = torch.tensor(COLOURS[dataset.classes[label]]).view(3, 1, 1)
        assert (image.int() - expected).abs().max() <= 6


def test_skip_undecodable_with_nothing_decodable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"junk")
    with pytest.raises(UserError, match="1 of 1 images cannot be decoded"):
        images(tmp_path, skip_undecodable=True).prepare()


def test_skip_undecodable_is_validated() -> None:
    assert ImagesOptions(path="x").skip_undecodable is False
    with pytest.raises(TypeError):
        ImagesOptions(path="x", skip_undecodable="no")  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# gankit check --data


def _recipe(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(TINY_RECIPE.replace('type = "shapes"\nresolution = 8\nsize = 64', f'type = "images"\npath = "{data}"\nresolution = 8'))
    return path


def test_check_data_lists_every_undecodable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: object) -> None:
    recipe = _recipe(tmp_path, _with_bad_files(tmp_path / "data", bad=12))
    assert main(["check", str(recipe)]) == 0  # without --data nothing is decoded
    capsys.readouterr()
    assert main(["check", str(recipe), "--data"]) == 2
    out, err = capsys.readouterr()
    listed = out.splitlines()
    assert len(listed) == 12 and all(line.startswith(str(tmp_path / "data")) and "/bad" in line for line in listed)
    assert err.strip().splitlines() == [
        f"gankit: error: {tmp_path / 'data'}: 12 of 18 images cannot be decoded (listed above); fix or remove them, "
        "or set data.skip_undecodable = true to train without them"
    ]


def test_check_data_passes_sound_data(tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: object) -> None:
    recipe = _recipe(tmp_path, _write(tmp_path / "data", _good()))
    assert main(["check", str(recipe), "--data"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and ": ok: " in err
