"""The built-in datasets: procedural shapes, and images from folders and zips."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.contracts import BuildContext
from gankit.datasets import ImagesDataset, ImagesOptions, ShapesDataset, ShapesOptions
from gankit.errors import UserError

# --------------------------------------------------------------------------
# shapes


def shapes(**options: object) -> ShapesDataset:
    return ShapesDataset(ShapesOptions(**options))  # type: ignore[arg-type]


def test_shapes_is_deterministic() -> None:
    a, b, c = shapes(size=64, seed=3), shapes(size=64, seed=3), shapes(size=64, seed=4)
    indices = list(range(64))
    images_a, labels_a = a.__getitems__(indices)
    images_b, labels_b = b.__getitems__(indices)
    images_c, _ = c.__getitems__(indices)
    assert torch.equal(images_a, images_b) and torch.equal(labels_a, labels_b)
    assert not torch.equal(images_a, images_c)


def test_shapes_image_depends_on_seed_and_index_only() -> None:
    small, large = shapes(size=10, seed=1), shapes(size=300, seed=1)
    assert torch.equal(small.__getitems__([7])[0], large.__getitems__([7])[0])
    assert torch.equal(large.__getitems__([5, 7])[0][1], large.__getitems__([7, 5])[0][0])


def test_shapes_batch_types_and_labels() -> None:
    dataset = shapes(size=500)
    assert dataset.context == BuildContext(resolution=32, channels=3, num_classes=6)
    assert len(dataset) == 500 and dataset.workers == 0
    images, labels = dataset.__getitems__(list(range(500)))
    assert images.shape == (500, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.shape == (500,) and labels.dtype == torch.int64
    assert labels.min() >= 0 and labels.max() < 6
    assert set(labels.tolist()) == set(range(6))
    image, label = dataset[3]
    assert torch.equal(image, images[3]) and label == labels[3]
    assert images.float().std() > 30  # not blank


@pytest.mark.parametrize("resolution", [8, 32, 128])
def test_shapes_resolutions(resolution: int) -> None:
    dataset = shapes(resolution=resolution, size=8)
    images, _ = dataset.__getitems__(list(range(8)))
    assert images.shape == (8, 3, resolution, resolution)


def test_shapes_hflip_doubles_with_mirrors() -> None:
    dataset = shapes(size=20, hflip=True)
    assert len(dataset) == 40
    images, labels = dataset.__getitems__([3, 23, 19, 39])
    assert torch.equal(images[1], images[0].flip(-1)) and torch.equal(images[3], images[2].flip(-1))
    assert labels[0] == labels[1] and labels[2] == labels[3]
    assert not torch.equal(images[0], images[1])
    with pytest.raises(IndexError):
        dataset.__getitems__([40])


def _down_up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear", align_corners=False)


def _high_frequency_energy(x: torch.Tensor) -> torch.Tensor:
    """Per image: the energy a 2x downsample-then-upsample removes."""
    return (x - _down_up(x)).pow(2).mean(dim=(1, 2, 3))


def test_shapes_have_fine_detail_at_high_resolution() -> None:
    images, _ = shapes(resolution=128, size=32).__getitems__(list(range(32)))
    x = images.float() / 255
    # The smoothed copy has lost its top octave, so a further round removes
    # little from it; from the image itself it removes edges and texture.
    ratio = _high_frequency_energy(x) / _high_frequency_energy(_down_up(x))
    assert ratio.min() > 2.5 and ratio.median() > 4


def test_shapes_draw_unrecognizable_images_from_the_generator_given() -> None:
    dataset = shapes(size=10)
    blobs = dataset.unrecognizable(40, torch.Generator().manual_seed(1))
    assert blobs.shape == (40, 3, 32, 32) and blobs.dtype == torch.uint8
    assert torch.equal(blobs, dataset.unrecognizable(40, torch.Generator().manual_seed(1)))
    assert not torch.equal(blobs, dataset.unrecognizable(40, torch.Generator().manual_seed(2)))
    # each shows a shape on its background, not a blank image
    blob_pixels = blobs.float().flatten(2).std(dim=2).mean(dim=1)
    assert blob_pixels.min() > 10


def test_shapes_construction_draws_nothing() -> None:
    # the images are drawn by prepare() or the first read, not when a recipe is checked
    dataset = shapes(resolution=128, size=100000)
    assert dataset._images is None
    assert len(dataset) == 100000 and dataset.context.resolution == 128


def test_shapes_options_are_validated() -> None:
    for bad in ({"resolution": 24}, {"resolution": 4}, {"size": 0}, {"seed": -1}):
        with pytest.raises(ValueError):
            ShapesOptions(**bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# images

COLOURS = {"zebra": (250, 250, 250), "ant": (200, 30, 30), "mole": (30, 30, 200)}


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (24, 20)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (20, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="JPEG", quality=95)
    return out.getvalue()


def _tree() -> dict[str, bytes]:
    """A labelled tree: three classes of PNGs and JPEGs, with files to ignore."""
    files = {}
    for name, colour in COLOURS.items():
        files[f"{name}/a.png"] = _png(colour)
        files[f"{name}/b.JPG"] = _jpeg(colour)
        files[f"{name}/c.jpeg"] = _jpeg(colour, (30, 16))
    files["ant/notes.txt"] = b"not an image"
    files["ant/.hidden.png"] = _png((0, 255, 0))
    return files


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("__MACOSX/ant/._a.png", b"resource fork")
    return path


def images(path: Path | str, **options: object) -> ImagesDataset:
    return ImagesDataset(ImagesOptions(path=str(path), resolution=8, **options))  # type: ignore[arg-type]


def test_folder_with_class_subfolders(tmp_path: Path) -> None:
    dataset = images(_write_folder(tmp_path / "data", _tree()), labels=True)
    assert dataset.classes == ["ant", "mole", "zebra"]
    assert dataset.context == BuildContext(resolution=8, channels=3, num_classes=3)
    assert len(dataset) == 9
    batch, labels = dataset.__getitems__(list(range(9)))
    assert batch.shape == (9, 3, 8, 8) and batch.dtype == torch.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for image, label in zip(batch, labels):
        expected = torch.tensor(COLOURS[dataset.classes[label]]).view(3, 1, 1)
        assert (image.int() - expected).abs().max() <= 6  # JPEG is lossy


def test_unlabelled_folder(tmp_path: Path) -> None:
    dataset = images(_write_folder(tmp_path, _tree()))
    assert dataset.context.num_classes == 0
    assert dataset.__getitems__([0, 8])[1].tolist() == [0, 0]


def test_zip_matches_folder(tmp_path: Path) -> None:
    files = _tree()
    folder = images(_write_folder(tmp_path / "data", files), labels=True)
    archive = images(_write_zip(tmp_path / "data.zip", files), labels=True)
    indices = list(range(9))
    assert archive.classes == folder.classes
    for a, b in zip(folder.__getitems__(indices), archive.__getitems__(indices)):
        assert torch.equal(a, b)


def test_zip_with_one_top_folder_labels_below_it(tmp_path: Path) -> None:
    files = {f"cifar/train/{name}": data for name, data in _tree().items()}
    dataset = images(_write_zip(tmp_path / "cifar.zip", files), labels=True)
    assert dataset.classes == ["ant", "mole", "zebra"]


def test_folder_inside_zip(tmp_path: Path) -> None:
    files = {f"train/{name}": data for name, data in _tree().items()}
    files.update({f"test/{name}": data for name, data in _tree().items() if name.startswith("ant/")})
    archive = _write_zip(tmp_path / "archive.zip", files)
    train, test = images(f"{archive}/train", labels=True), images(f"{archive}/test", labels=False)
    assert train.classes == ["ant", "mole", "zebra"] and len(train) == 9
    assert len(test) == 3
    whole = images(archive, labels=True)
    assert whole.classes == ["test", "train"]
    with pytest.raises(UserError, match="no folder 'valid'"):
        images(f"{archive}/valid")


def test_resize_and_centre_crop(tmp_path: Path) -> None:
    # 40x20: a red band, a green centre 20 wide, a blue band.
    picture = Image.new("RGB", (40, 20), (255, 0, 0))
    picture.paste((0, 255, 0), (10, 0, 30, 20))
    picture.paste((0, 0, 255), (30, 0, 40, 20))
    picture.save(tmp_path / "wide.png")
    image, _ = images(tmp_path)[0]
    assert image.shape == (3, 8, 8)
    # The short side became 8 and the centre 8 columns (the green) were kept;
    # the border columns may pick up a little of the filter's ringing.
    assert (image[:, :, 1:7].int() - torch.tensor([0, 255, 0]).view(3, 1, 1)).abs().max() <= 4
    assert image[1].float().mean() > 200


def test_upscales_small_images(tmp_path: Path) -> None:
    (tmp_path / "tiny.png").write_bytes(_png((10, 120, 200), (3, 3)))
    image, _ = ImagesDataset(ImagesOptions(path=str(tmp_path), resolution=16))[0]
    assert image.shape == (3, 16, 16)
    assert (image.int() - torch.tensor([10, 120, 200]).view(3, 1, 1)).abs().max() <= 2


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="data.path") as raised:
        images(tmp_path / "nowhere")
    assert "no such file or folder" in str(raised.value) and "PNG, JPEG or WebP" in str(raised.value)
    assert raised.value.key == "path"


def test_no_images(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("nothing here")
    with pytest.raises(UserError, match="no PNG, JPEG or WebP images"):
        images(tmp_path / "empty")
    with pytest.raises(UserError, match="no PNG, JPEG or WebP images"):
        images(_write_zip(tmp_path / "empty.zip", {"a.txt": b"x"}))
    (tmp_path / "plain.txt").write_text("not a zip")
    with pytest.raises(UserError, match="not a folder or a zip"):
        images(tmp_path / "plain.txt")


def test_labels_need_subfolders(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(_png((1, 2, 3)))
    (tmp_path / "b.png").write_bytes(_png((1, 2, 3)))
    with pytest.raises(UserError, match="sub-folder") as raised:
        images(tmp_path, labels=True)
    assert raised.value.key == "labels"


def test_in_memory_or_not_give_the_same_batches(tmp_path: Path) -> None:
    root = _write_folder(tmp_path, _tree())
    yes, no = images(root, labels=True, in_memory="yes", hflip=True), images(root, labels=True, in_memory="no", hflip=True)
    assert yes.in_memory and yes.workers == 0
    assert not no.in_memory and no.workers == 2
    yes.prepare()
    no.prepare()
    indices = [4, 0, 13, 17, 9]
    for a, b in zip(yes.__getitems__(indices), no.__getitems__(indices)):
        assert torch.equal(a, b)
    batch, _ = yes.__getitems__([2, 11])
    assert torch.equal(batch[1], batch[0].flip(-1))
    assert images(root, in_memory="auto").in_memory
    assert not images(root, in_memory="auto", memory_limit_gb=1e-9).in_memory


def test_max_images_keeps_classes(tmp_path: Path) -> None:
    dataset = images(_write_folder(tmp_path, _tree()), labels=True, max_images=2)
    assert len(dataset) == 2 and dataset.context.num_classes == 3


def test_max_images_spreads_over_the_class_folders(tmp_path: Path) -> None:
    dataset = images(_write_folder(tmp_path, _tree()), labels=True, max_images=3)
    _, labels = dataset.__getitems__([0, 1, 2])
    assert sorted(labels.tolist()) == [0, 1, 2]  # one from each class, not three from the first


def test_construction_is_cheap_and_prepare_decodes(tmp_path: Path) -> None:
    dataset = images(_write_zip(tmp_path / "data.zip", _tree()), in_memory="yes")
    assert dataset._images is None
    dataset.prepare()
    assert dataset._images is not None and dataset._images.shape == (9, 3, 8, 8)


def _whole_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return batch


def test_dataloader_workers_read_a_zip(tmp_path: Path) -> None:
    files = {f"train/{name}": data for name, data in _tree().items()}
    dataset = images(f"{_write_zip(tmp_path / 'data.zip', files)}/train", labels=True, in_memory="no", hflip=True)
    expected = dataset.__getitems__(list(range(18)))  # opens the zip in this process first
    pickle.dumps(dataset)  # what a spawned worker receives
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=dataset.workers, collate_fn=_whole_batch)
    assert dataset.workers == 2
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]), expected[0])
    assert torch.equal(torch.cat([b[1] for b in batches]), expected[1])


def test_images_options_are_validated() -> None:
    with pytest.raises(ValueError):
        ImagesOptions(path="x", resolution=48)
    with pytest.raises(ValueError):
        ImagesOptions(path="x", in_memory="maybe")
    with pytest.raises(ValueError):
        ImagesOptions(path="x", workers=-1)
    with pytest.raises(TypeError):
        ImagesOptions()  # type: ignore[call-arg]
