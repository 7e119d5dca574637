"""The images dataset on the formats datasets are downloaded in: tars (plain
and compressed), LMDB databases in LSUN's layout, and flat folders labelled
by a MATLAB .mat or a CSV file; each with its faults (an archive cut short,
an undecodable entry, a member named outside the archive)."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_recipes import REPO, TINY_RECIPE

from gankit.cli import main
from gankit.datasets import ImagesDataset, ImagesOptions
from gankit.errors import UserError

lmdb = pytest.importorskip("lmdb")
scipy_io = pytest.importorskip("scipy.io")

COLOURS = {"ant": (200, 30, 30), "mole": (30, 30, 200), "zebra": (30, 200, 30)}


def _encoded(colour: tuple[int, int, int], form: str = "PNG", size: tuple[int, int] = (12, 8)) -> bytes:
    out = io.BytesIO()
    options = {"lossless": True} if form == "WEBP" else {"quality": 95} if form == "JPEG" else {}
    Image.new("RGB", size, colour).save(out, format=form, **options)
    return out.getvalue()


def _tree() -> dict[str, bytes]:
    """Two images a class, one PNG and one JPEG, in class sub-folders."""
    files = {}
    for name, colour in COLOURS.items():
        files[f"{name}/a.png"] = _encoded(colour)
        files[f"{name}/b.jpg"] = _encoded(colour, "JPEG")
    return files


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, io.BytesIO | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def _write_tar(path: Path, files: dict[str, bytes], mode: str = "w", links: dict[str, tuple[bytes, str]] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as archive:
        for name, data in files.items():
            archive.addfile(*_member(name, data))
        for name, (kind, target) in (links or {}).items():
            archive.addfile(*_member(name, kind=kind, link=target))
    return path


def _write_lmdb(folder: Path, values: dict[bytes, bytes]) -> Path:
    """A database as LSUN ships it: data.mdb and lock.mdb in a folder, keys
    image ids, values encoded images."""
    environment = lmdb.open(str(folder), map_size=1 << 26)
    with environment.begin(write=True) as transaction:
        for key, value in values.items():
            transaction.put(key, value)
    environment.close()
    assert sorted(path.name for path in folder.iterdir()) == ["data.mdb", "lock.mdb"]
    return folder


def _lsun(folder: Path, count: int = 6) -> Path:
    """WebP images under 40-character hex keys, as LSUN's; image i is the
    colour (10 i, 20, 30)."""
    return _write_lmdb(folder, {f"{i:040x}".encode(): _encoded((10 * i, 20, 30), "WEBP") for i in range(count)})


def images(path: Path | str, **options: object) -> ImagesDataset:
    return ImagesDataset(ImagesOptions(path=str(path), resolution=8, **options))  # type: ignore[arg-type]


def _all(dataset: ImagesDataset) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.__getitems__(list(range(len(dataset))))


def _warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "warning" in line]


# --------------------------------------------------------------------------
# Tar archives


@pytest.mark.parametrize("mode, suffix", [("w", ".tar"), ("w:gz", ".tgz"), ("w:xz", ".tar.xz")])
def test_a_tar_reads_as_its_folder_does(tmp_path: Path, mode: str, suffix: str) -> None:
    files = _tree()
    folder = images(_write_folder(tmp_path / "data", files), labels=True, hflip=True)
    archive = images(_write_tar(tmp_path / f"data{suffix}", dict(reversed(files.items())), mode), labels=True, hflip=True)
    assert archive.classes == folder.classes == ["ant", "mole", "zebra"]
    assert archive.files.names == folder.files.names  # name order, whatever order the tar stores them in
    assert archive.files.reading_order() == [5, 4, 3, 2, 1, 0]  # a compressed tar is decoded from its start to its end
    archive.prepare()
    for a, b in zip(_all(folder), _all(archive)):
        assert torch.equal(a, b)


def test_a_folder_inside_a_tar_and_names_written_dot_slash(tmp_path: Path) -> None:
    files = {f"./train/{name}": data for name, data in _tree().items()}  # tar -C data . writes ./
    files.update({f"./test/{name}": data for name, data in _tree().items() if name.startswith("ant/")})
    archive = _write_tar(tmp_path / "data.tar", files)
    train = images(f"{archive}/train", labels=True)
    assert train.classes == ["ant", "mole", "zebra"] and len(train) == 6
    assert len(images(f"{archive}/test")) == 2
    assert images(archive, labels=True).classes == ["test", "train"]
    with pytest.raises(UserError, match="no folder 'valid'"):
        images(f"{archive}/valid")


def test_dataloader_workers_read_a_plain_tar_at_random(tmp_path: Path) -> None:
    dataset = images(_write_tar(tmp_path / "data.tar", _tree()), labels=True, in_memory="no", hflip=True)
    expected = dataset.__getitems__(list(range(12)))  # opens the tar in this process first
    pickle.dumps(dataset)
    loader = torch.utils.data.DataLoader(dataset, batch_size=5, num_workers=2, collate_fn=lambda batch: batch)
    batches = list(loader)
    assert torch.equal(torch.cat([b[0] for b in batches]), expected[0])
    assert torch.equal(torch.cat([b[1] for b in batches]), expected[1])


def test_a_compressed_tar_is_read_only_into_memory(tmp_path: Path) -> None:
    archive = _write_tar(tmp_path / "data.tar.gz", _tree(), "w:gz")
    assert images(archive).in_memory
    with pytest.raises(UserError, match="a compressed tar is read only into memory.*in_memory = no") as raised:
        images(archive, in_memory="no")
    assert raised.value.key == "in_memory" and "\n" not in raised.value.message
    with pytest.raises(UserError, match="over memory_limit_gb") as raised:
        images(archive, memory_limit_gb=1e-9)
    assert raised.value.key == "memory_limit_gb"
    plain = images(_write_tar(tmp_path / "data.tar", _tree()), in_memory="no")
    assert not plain.in_memory and plain.workers == 2


def _cut(path: Path, keep: int) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    return path


@pytest.mark.parametrize(
    "mode, where",
    [
        ("w", "inside a member"),
        ("w", "between members"),  # no end-of-archive block
        ("w", "inside a header"),
        ("w:gz", "halfway"),
    ],
)
def test_a_tar_cut_short_is_a_one_line_error_naming_it(tmp_path: Path, mode: str, where: str) -> None:
    files = {f"ant/{i}.png": _encoded((i, i, i), size=(64, 64)) for i in range(4)}
    archive = _write_tar(tmp_path / "data.tar", files, mode)
    with tarfile.open(archive) as opened:
        members = opened.getmembers()
    if where == "inside a member":
        keep = members[2].offset_data + members[2].size // 2
    elif where == "between members":
        keep = members[3].offset_data + -(-members[3].size // 512) * 512
    elif where == "inside a header":
        keep = members[2].offset + 100
    else:
        keep = archive.stat().st_size // 2
    _cut(archive, keep)
    with pytest.raises(UserError) as raised:
        images(archive)
    message = raised.value.message
    assert message.startswith(f"{archive}: the tar ends before its end-of-archive block, cut short") and "\n" not in message


def test_undecodable_tar_members_are_refused_in_one_line_naming_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {**_tree(), "ant/bad.png": b"not an image", "mole/cut.png": _encoded((1, 2, 3))[:40]}
    archive = _write_tar(tmp_path / "data.tar", files)
    for in_memory in ("yes", "no"):
        with pytest.raises(UserError) as raised:
            images(archive, in_memory=in_memory).prepare()
        message = raised.value.message
        assert message.startswith(f"{archive}: 2 of 8 images cannot be decoded: ") and "\n" not in message
        assert "ant/bad.png (not an image file Pillow recognises)" in message and "mole/cut.png" in message
    skipping = images(archive, labels=True, skip_undecodable=True)
    skipping.prepare()
    assert len(skipping) == 6 and "skipping 2 of 8 images" in _warnings(capsys)[0]


def test_tar_members_named_outside_the_archive_or_links_are_never_followed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_folder(tmp_path, {"outside.png": _encoded((9, 9, 9))})
    unsafe = {"/tmp/abs.png": _encoded((9, 9, 9)), "../outside.png": _encoded((9, 9, 9)), "ant/../../up.png": _encoded((9, 9, 9))}
    links = {"ant/link.png": (tarfile.SYMTYPE, "../../outside.png"), "mole/hard.png": (tarfile.LNKTYPE, "/etc/passwd")}
    archive = _write_tar(tmp_path / "data" / "data.tar", {**_tree(), **unsafe}, links=links)
    dataset = images(archive, labels=True)
    assert dataset.files.names == sorted(_tree()) and dataset.classes == ["ant", "mole", "zebra"]
    warnings = _warnings(capsys)
    assert len(warnings) == 1 and "skipped 3 members whose names lead out of the archive" in warnings[0]
    assert "'../outside.png'" in warnings[0] and "'/tmp/abs.png'" in warnings[0]
    dataset.prepare()
    for image, label in zip(*_all(dataset)):  # every image its class's colour: nothing read from outside
        assert (image.int() - torch.tensor(COLOURS[dataset.classes[label]]).view(3, 1, 1)).abs().max() <= 6


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            archive.addfile(*_member(name, data))
    return out.getvalue()


def _class_tars(files: dict[str, bytes]) -> dict[str, bytes]:
    """ImageNet's training tar: one tar a class, ``n01440764.tar``, holding that class's images."""
    classes = sorted({name.split("/")[0] for name in files})
    return {f"{kind}.tar": _tar_bytes({n.split("/", 1)[1]: d for n, d in files.items() if n.startswith(kind + "/")}) for kind in classes}


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_a_tar_of_class_tars_reads_as_class_folders(tmp_path: Path, in_memory: str) -> None:
    files = _tree()
    folder = images(_write_folder(tmp_path / "data", files), labels=True)
    archive = images(_write_tar(tmp_path / "train.tar", _class_tars(files)), labels=True, in_memory=in_memory)
    assert archive.classes == folder.classes == ["ant", "mole", "zebra"]
    assert archive.files.names == folder.files.names
    archive.prepare()
    for a, b in zip(_all(folder), _all(archive)):
        assert torch.equal(a, b)


def test_a_class_tar_cut_short_inside_the_tar_is_named(tmp_path: Path) -> None:
    shards = _class_tars(_tree())
    with tarfile.open(fileobj=io.BytesIO(shards["mole.tar"])) as opened:
        last = opened.getmembers()[-1]
    shards["mole.tar"] = shards["mole.tar"][: last.offset_data + last.size // 2]  # its last image cut, no end block
    archive = _write_tar(tmp_path / "train.tar", shards)
    with pytest.raises(UserError) as raised:
        images(archive)
    message = raised.value.message
    assert message.startswith(f"{archive}: 'mole.tar' inside it: the tar ends before its end-of-archive block") and "\n" not in message


def test_names_leading_out_of_a_class_tar_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = _class_tars(_tree())
    shards["ant.tar"] = _tar_bytes({"a.png": _encoded(COLOURS["ant"]), "../../up.png": _encoded((9, 9, 9))})
    dataset = images(_write_tar(tmp_path / "train.tar", shards), labels=True)
    assert "ant/a.png" in dataset.files.names and not any("up.png" in name for name in dataset.files.names)
    warnings = _warnings(capsys)
    assert len(warnings) == 1 and "'ant/../../up.png'" in warnings[0]


def test_webp_files_are_read_from_folders_and_archives(tmp_path: Path) -> None:
    files = {"ant/a.webp": _encoded(COLOURS["ant"], "WEBP"), "mole/b.WebP": _encoded(COLOURS["mole"], "WEBP")}
    for path in (_write_folder(tmp_path / "data", files), _write_tar(tmp_path / "data.tar", files)):
        dataset = images(path, labels=True)
        dataset.prepare()
        pixels, labels = _all(dataset)
        assert dataset.classes == ["ant", "mole"] and labels.tolist() == [0, 1]
        assert torch.equal(pixels[0, :, 0, 0], torch.tensor(COLOURS["ant"], dtype=torch.uint8))


def test_a_file_neither_folder_nor_archive_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(UserError, match="not a folder or a zip or tar file.*LMDB"):
        images(tmp_path / "notes.txt")


# --------------------------------------------------------------------------
# LMDB databases in LSUN's layout


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_an_lsun_lmdb_of_webp_images_reads_in_key_order(tmp_path: Path, in_memory: str) -> None:
    dataset = images(_lsun(tmp_path / "church_outdoor_train_lmdb"), hflip=True, in_memory=in_memory)
    assert len(dataset) == 12 and dataset.context.num_classes == 0 and dataset.in_memory == (in_memory == "yes")
    assert dataset.files.names == [f"{i:040x}" for i in range(6)]
    dataset.prepare()
    batch, labels = _all(dataset)
    assert batch.shape == (12, 3, 8, 8) and labels.tolist() == [0] * 12
    for i in range(6):  # lossless WebP: exact colours
        assert torch.equal(batch[i], torch.tensor([10 * i, 20, 30], dtype=torch.uint8).view(3, 1, 1).expand(3, 8, 8))
        assert torch.equal(batch[6 + i], batch[i].flip(-1))
    assert dataset.files.path_of(1) == f"{tmp_path / 'church_outdoor_train_lmdb'}/{1:040x}"


def test_dataloader_workers_read_an_lmdb(tmp_path: Path) -> None:
    dataset = images(_lsun(tmp_path / "db", 10), in_memory="no")
    expected = _all(dataset)  # opens the database in this process first
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=lambda batch: batch)
    assert torch.equal(torch.cat([b[0] for b in loader]), expected[0])


def test_lmdb_keys_give_classes_by_sub_folder_or_from_a_csv(tmp_path: Path) -> None:
    folder = _write_lmdb(tmp_path / "db", {f"{name}/{i}".encode(): _encoded(COLOURS[name], "JPEG") for name in COLOURS for i in range(2)})
    by_folder = images(folder, labels=True)
    assert by_folder.classes == ["ant", "mole", "zebra"] and by_folder.files.labels.tolist() == [0, 0, 1, 1, 2, 2]
    (tmp_path / "labels.csv").write_text(
        "key,label\n" + "".join(f"{name}/{i},{9 - j}\n" for j, name in enumerate(COLOURS) for i in range(2))
    )
    by_file = images(folder, label_file=str(tmp_path / "labels.csv"))
    assert by_file.classes == ["7", "8", "9"] and by_file.files.labels.tolist() == [2, 2, 1, 1, 0, 0]


def test_a_cut_short_lmdb_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    folder = _write_lmdb(tmp_path / "db", {f"{i:04d}".encode(): np.random.default_rng(i).bytes(20000) for i in range(20)})
    data = folder / "data.mdb"
    _cut(data, data.stat().st_size // 2)
    with pytest.raises(UserError) as raised:
        images(folder)  # without the check, reading past the end would kill the process (SIGBUS)
    message = raised.value.message
    assert message.startswith(f"{data}: the LMDB database is cut short") and "\n" not in message
    _cut(data, 100)
    with pytest.raises(UserError, match="cannot open the LMDB database") as raised:
        images(folder)
    assert "\n" not in raised.value.message


@pytest.mark.parametrize("in_memory", ["yes", "no"])
def test_undecodable_lmdb_values_are_refused_in_one_line_naming_their_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], in_memory: str
) -> None:
    values = {f"{i:040x}".encode(): _encoded((10 * i, 20, 30), "WEBP") for i in range(4)}
    values[b"bad-junk"] = b"not an image"
    values[b"bad-cut-webp"] = _encoded((1, 2, 3), "WEBP", (64, 64))[:-30]
    folder = _write_lmdb(tmp_path / "db", values)
    with pytest.raises(UserError) as raised:
        images(folder, in_memory=in_memory).prepare()
    message = raised.value.message
    assert message.startswith(f"{folder}: 2 of 6 images cannot be decoded: ") and "\n" not in message
    assert "bad-junk (not an image file Pillow recognises)" in message and "bad-cut-webp" in message
    skipping = images(folder, in_memory=in_memory, skip_undecodable=True)
    skipping.prepare()
    assert len(skipping) == 4 and "skipping 2 of 6 images" in _warnings(capsys)[0]


def test_lmdb_keys_named_outside_are_skipped_and_never_read_as_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write_folder(tmp_path, {"outside.png": _encoded((255, 255, 255))})
    values = {b"../outside.png": _encoded((255, 255, 255)), b"/etc/passwd": b"root:x:0:0", b"good": _encoded((1, 2, 3))}
    dataset = images(_write_lmdb(tmp_path / "db", values))
    assert dataset.files.names == ["good"]
    warnings = _warnings(capsys)
    assert len(warnings) == 1 and "skipped 2 members" in warnings[0] and "'../outside.png'" in warnings[0]


def test_an_empty_lmdb_or_one_without_its_data_file_is_named(tmp_path: Path) -> None:
    folder = _write_lmdb(tmp_path / "db", {})
    with pytest.raises(UserError, match="the LMDB database holds no keys"):
        images(folder)
    (folder / "data.mdb").unlink()
    with pytest.raises(UserError, match="holds an LMDB lock.mdb but no data.mdb"):
        images(folder)


def test_check_data_lists_undecodable_lmdb_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: object) -> None:
    folder = _write_lmdb(tmp_path / "db", {b"good": _encoded((1, 2, 3), "WEBP"), b"bad": b"junk"})
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        TINY_RECIPE.replace('type = "shapes"\nresolution = 8\nsize = 64', f'type = "images"\npath = "{folder}"\nresolution = 8')
    )
    assert main(["check", str(recipe), "--data"]) == 2
    out, _ = capsys.readouterr()
    assert out.splitlines() == [f"{folder}/bad: not an image file Pillow recognises"]


# --------------------------------------------------------------------------
# Labels from a .mat or .csv file


def _flowers(tmp_path: Path, count: int = 7) -> tuple[Path, Path, list[int]]:
    """Oxford 102 Flowers' layout: 102flowers.tgz holding jpg/image_00001.jpg
    and on, and imagelabels.mat's 1 x N labels, 1-based, in name order."""
    labels = [1 + (i * 5) % 3 for i in range(count)]
    files = {f"jpg/image_{i + 1:05d}.jpg": _encoded(list(COLOURS.values())[label - 1], "JPEG") for i, label in enumerate(labels)}
    archive = _write_tar(tmp_path / "102flowers.tgz", dict(reversed(files.items())), "w:gz")
    scipy_io.savemat(tmp_path / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    return archive, tmp_path / "imagelabels.mat", labels


def test_flowers_labels_from_imagelabels_mat_go_to_the_images_in_name_order(tmp_path: Path) -> None:
    archive, mat, labels = _flowers(tmp_path)
    for path in (archive, f"{archive}/jpg"):
        dataset = images(path, label_file=str(mat))
        assert dataset.classes == ["1", "2", "3"] and dataset.context.num_classes == 3
        batch, got = _all(dataset)
        assert got.tolist() == [label - 1 for label in labels]
        for image, label in zip(batch, got):
            assert (image.int() - torch.tensor(list(COLOURS.values())[label]).view(3, 1, 1)).abs().max() <= 6
    assert images(archive, label_file=str(mat), max_images=2).context.num_classes == 3


def test_a_mat_file_that_does_not_fit_the_images_is_named(tmp_path: Path) -> None:
    archive, mat, labels = _flowers(tmp_path)
    scipy_io.savemat(mat, {"labels": np.array([labels[:-1]])})
    with pytest.raises(UserError, match=f"{mat}: holds 6 labels, but {archive} holds 7 images") as raised:
        images(archive, label_file=str(mat))
    assert raised.value.key == "label_file"
    scipy_io.savemat(mat, {"setid": np.array([[1]]), "other": np.array([[2]])})
    with pytest.raises(UserError, match="no array named labels"):
        images(archive, label_file=str(mat))
    mat.write_bytes(b"MATLAB 5.0 MAT-file, cut")
    with pytest.raises(UserError, match="cannot read the .mat file"):
        images(archive, label_file=str(mat))


def test_csv_labels_name_each_image_and_sort_numbers_as_numbers(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "flat", {f"{i}.png": _encoded((i, i, i)) for i in range(4)})
    labels = tmp_path / "labels.csv"
    labels.write_text("file,class\n0.png,10\n1.png,2\n2.png,10\n3.png,9\nnot-here.png,77\n")
    dataset = images(root, label_file=str(labels))
    assert dataset.classes == ["2", "9", "10"] and dataset.files.labels.tolist() == [2, 0, 2, 1]
    labels.write_text("0.png,cat\n1.png,dog\n")
    with pytest.raises(UserError, match=r"no label for 2 of the 4 images of .*: 2.png, 3.png;") as raised:
        images(root, label_file=str(labels))
    assert raised.value.key == "label_file" and "\n" not in raised.value.message


def test_label_file_is_checked(tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "flat", {"a/0.png": _encoded((1, 1, 1))})
    with pytest.raises(UserError, match="set only one"):
        images(root, labels=True, label_file=str(tmp_path / "x.csv"))
    with pytest.raises(UserError, match="no such file"):
        images(root, label_file=str(tmp_path / "x.csv"))
    (tmp_path / "x.txt").write_text("a/0.png,1\n")
    with pytest.raises(UserError, match="not a .mat or .csv file"):
        images(root, label_file=str(tmp_path / "x.txt"))
    with pytest.raises(TypeError):
        ImagesOptions(path="x", label_file=3)  # type: ignore[arg-type]
    assert ImagesOptions(path="x").label_file is None


# --------------------------------------------------------------------------
# The recipes that name these downloads


def test_the_churches_recipe_reads_an_lsun_lmdb(tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: object) -> None:
    folder = _lsun(tmp_path / "church_outdoor_train_lmdb", 3)
    recipe = REPO / "recipes" / "msg_stylegan_churches.toml"
    assert "--set data.path=/data/church_outdoor_train_lmdb" in recipe.read_text()
    assert main(["check", str(recipe), "--set", f"data.path={folder}", "--data"]) == 0
    assert ": ok: " in capsys.readouterr().err


def test_the_imagenet_recipe_reads_the_training_tar_as_downloaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: object
) -> None:
    files = {f"n0{i}/n0{i}_{j}.JPEG": _encoded((40 * i, 9, 9), "JPEG", (160, 140)) for i in range(3) for j in range(2)}
    archive = _write_tar(tmp_path / "ILSVRC2012_img_train.tar", _class_tars(files))
    recipe = REPO / "recipes" / "sagan_imagenet128.toml"
    assert "--set data.path=/data/ILSVRC2012_img_train.tar" in recipe.read_text()
    assert main(["check", str(recipe), "--set", f"data.path={archive}", "--data"]) == 0
    assert ": ok: " in capsys.readouterr().err
    assert images(archive, labels=True).classes == ["n00", "n01", "n02"]
