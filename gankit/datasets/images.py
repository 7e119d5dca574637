"""The built-in ``images`` dataset: PNG and JPEG files from a folder, a zip or
a tar, or the encoded images of an LMDB database (LSUN's layout), optionally
labelled by sub-folder or by a label file (.mat or .csv)."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import lzma
import os
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

import attrs
import numpy as np
import torch

from gankit.contracts import BuildContext
from gankit.datasets.mirror import HflipMirrored, gather_mirrored
from gankit.errors import UserError
from gankit.options import help_text, non_negative, one_of, positive, power_of_two

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
_ORIENTATION = 0x0112  # the EXIF tag
_FORMATS = (
    "a folder of images or a .zip or .tar (.tar.gz) of one (PNG, JPEG or WebP), a tar of per-class tars (ImageNet's), "
    "or an LMDB database folder (holding data.mdb) of encoded images"
)
#: How each compressed tar starts, and what reads it: the stream can only be
#: read forwards, so such a tar is read in the order its members are stored.
_DECOMPRESSORS: dict[bytes, Callable[[Path], IO[bytes]]] = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


@attrs.define(kw_only=True)
class ImagesOptions:
    """The built-in ``images`` dataset: PNG and JPEG files from a folder, a
    zip or a tar, or the encoded images of an LMDB database, resized and
    centre-cropped to a square."""

    path: str = attrs.field(
        metadata=help_text(
            "a folder of PNG/JPEG/WebP images (searched recursively), a .zip or .tar of one (a tar plain or compressed: .tar.gz, "
            ".tgz, .tar.bz2, .tar.xz; a tar member that is a tar, such as ImageNet's n01440764.tar, reads as the folder "
            "n01440764), or an LMDB database folder holding data.mdb whose keys are image ids and values encoded images "
            "(PNG, JPEG or WebP: LSUN's church_outdoor_train_lmdb and the like); archive.zip/sub/folder or archive.tar/sub/folder "
            "reads only that folder inside the archive"
        )
    )
    resolution: int = attrs.field(
        default=64,
        validator=power_of_two(4),
        metadata=help_text("images are resized so their short side is this, then centre-cropped square"),
    )
    labels: bool = attrs.field(
        default=False,
        metadata=help_text("label each image by its sub-folder (<class>/<image>.png below path); classes are numbered in name order"),
    )
    label_file: str | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(str)),
        metadata=help_text(
            "label the images from this file instead of sub-folders: a MATLAB .mat whose labels array (1 x N, such as Oxford "
            "Flowers' imagelabels.mat) holds one label per image in name order, or a CSV of file,label rows naming each image "
            "(or LMDB key) relative to path; classes are numbered in the labels' order"
        ),
    )
    hflip: bool = attrs.field(
        default=False, metadata=help_text("add horizontal mirror images: the dataset doubles, index N + i being image i flipped")
    )
    in_memory: str = attrs.field(
        default="auto",
        validator=one_of(("auto", "yes", "no")),
        metadata=help_text(
            "decode every image once into memory: yes, no, or auto (when they fit in memory_limit_gb); "
            "a compressed tar is read only into memory"
        ),
    )
    memory_limit_gb: float = attrs.field(
        default=4.0, validator=positive(), metadata=help_text("the most GiB of decoded images in_memory = auto keeps")
    )
    workers: int = attrs.field(
        default=2,
        validator=non_negative(),
        metadata=help_text("processes decoding images when they are not in memory (0: the training process)"),
    )
    max_images: int | None = attrs.field(
        default=None,
        validator=positive(),
        metadata=help_text("use only N images, evenly spaced through the files in name order, for quick runs"),
    )
    skip_undecodable: bool = attrs.field(
        default=False,
        validator=attrs.validators.instance_of(bool),
        metadata=help_text(
            "train without the files that cannot be decoded, listing them once at the start (default: stop at the start, listing them)"
        ),
    )


class ImagesDataset(HflipMirrored):
    """Images from a folder, a zip or tar, or an LMDB database, labelled by sub-folder or a label file when asked."""

    shuffle: ClassVar[bool] = True

    def __init__(self, options: ImagesOptions) -> None:
        self.options = options
        self.files = ImageFiles.find(
            options.path, options.resolution, labels=options.labels, max_images=options.max_images, label_file=options.label_file
        )
        self.classes = self.files.classes
        self.context = BuildContext(resolution=options.resolution, channels=3, num_classes=len(self.classes))
        count = len(self.files)
        size = count * 3 * options.resolution**2
        self.in_memory = options.in_memory == "yes" or (options.in_memory == "auto" and size <= options.memory_limit_gb * 2**30)
        if not self.in_memory and self.files.compressed:
            # Each image read at random would decompress the tar from its start.
            why = "in_memory = no" if options.in_memory == "no" else f"they need {size / 2**30:.1f} GiB, over memory_limit_gb"
            raise UserError(
                f"{options.path}: a compressed tar is read only into memory, once from its start to its end, but {why}; "
                "raise data.memory_limit_gb, or decompress it (gunzip, or tar xf into a folder) and set data.path to the result",
                key="in_memory" if options.in_memory == "no" else "memory_limit_gb",
            )
        self.workers = 0 if self.in_memory else options.workers
        self._images: torch.Tensor | None = None
        self._prepared = False

    def __len__(self) -> int:
        return len(self.files) * (2 if self.options.hflip else 1)

    def prepare(self) -> None:
        """Read every file, so that a bad one stops the run here and not hours
        in; with skip_undecodable, drop the bad ones instead."""
        if self._prepared:
            return
        # In memory, the decoding that fills it finds every bad file. Otherwise
        # decoding them all would add an epoch of decoding to each start and
        # resume of the datasets too large to keep, so they are only checked
        # (check_image, a few times cheaper); a file broken past what that sees
        # still stops training when reached, and `gankit check --data` decodes all.
        images, problems = self.files.scan(self.options.workers, keep=self.in_memory, full=self.in_memory)
        if problems:
            where, count = self.files.location(), len(self.files)
            listing = _some([f"{self.files.names[i]} ({reason})" for i, reason in sorted(problems.items())])
            if not self.options.skip_undecodable or len(problems) == count:
                raise UserError(
                    f"{where}: {len(problems)} of {count} images cannot be decoded: {listing}; fix or remove them, or set "
                    "data.skip_undecodable = true to train without them (`gankit check RECIPE --data` lists them all)"
                )
            _warn(f"{where}: skipping {len(problems)} of {count} images that cannot be decoded: {listing}")
            keep = [i for i in range(count) if i not in problems]
            self.files = self.files.subset(keep)
            images = None if images is None else images[keep]
        self._images = images
        self._prepared = True

    def describe(self) -> str:
        return f"the images of {self.options.path}"

    def undecodable(self) -> dict[str, str]:
        """Each file that cannot be decoded, with why, found by decoding every
        file as training does (slow: `gankit check --data`)."""
        _, problems = self.files.scan(self.options.workers, full=True)
        return {self.files.path_of(i): reason for i, reason in sorted(problems.items())}

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, source = gather_mirrored(indices, len(self.files), self.options.hflip, self._fetch, "images")
        return images, self.files.labels[source]

    def _fetch(self, source: torch.Tensor) -> torch.Tensor:
        if self.in_memory:
            self.prepare()
            assert self._images is not None
            return self._images[source]
        return self.files.__getitems__(source.tolist())


class ImageFiles(torch.utils.data.Dataset):
    """The images of a folder, zip, tar or LMDB database and their labels;
    decodes them to uint8 [3, R, R]. Picklable: an archive is opened once in
    each process that reads it, as an open ZipFile, tar stream or LMDB
    environment shares its state with forked copies."""

    def __init__(
        self,
        kind: str,
        archive: Path | None,
        root: Path | PurePosixPath,
        names: list[str],
        labels: torch.Tensor,
        classes: list[str],
        resolution: int,
        spans: np.ndarray | None = None,
    ) -> None:
        self.kind = kind  # "folder", "zip", "tar" or "lmdb"
        self.archive = archive  # the zip, tar or LMDB folder, or None for a folder
        self.root = root  # a folder, or the folder inside the archive names are relative to
        self.names = names  # relative to root; an LMDB's keys
        self.labels = labels
        self.classes = classes
        self.resolution = resolution
        self.spans = spans  # a tar's: each name's data offset and size, int64 [N, 2]
        self._handle: Any = None
        self._handle_pid = -1

    @classmethod
    def find(
        cls, path: str, resolution: int, labels: bool = False, max_images: int | None = None, label_file: str | None = None
    ) -> ImageFiles:
        """List the images under ``path`` (a folder, a zip or tar, a folder
        inside one written ``archive.zip/folder``, or an LMDB folder), in name
        order, labelled by sub-folder (``labels``) or by ``label_file``."""
        if labels and label_file is not None:
            raise UserError("labels = true reads the classes from sub-folders and label_file from a file; set only one", key="label_file")
        kind, archive, inner = _locate(path)
        spans = None
        if archive is None:
            root: Path | PurePosixPath = Path(path).expanduser()
            names = _folder_images(root)
        else:
            root = inner
            if kind == "zip":
                names = _zip_images(archive, inner, path)
            elif kind == "tar":
                names, spans = _tar_images(archive, inner, path)
            else:
                names = _lmdb_keys(archive, path)
        if not names:
            what = (
                "the LMDB database holds no keys"
                if kind == "lmdb"
                else "no PNG, JPEG or WebP images found (files ending .png, .jpg, .jpeg or .webp, in any sub-folder)"
            )
            raise UserError(f"{path}: {what}; set data.path to {_FORMATS}", key="path")
        # Classes come from every image found, before max_images, so that a
        # quick run builds the same networks as a full one.
        classes: list[str] = []
        label_list = [0] * len(names)
        if label_file is not None:
            classes, label_list = _file_labels(label_file, names, path)
        elif labels:
            parts = [PurePosixPath(name).parts for name in names]
            common = _common_folder(parts)
            loose = [name for name, p in zip(names, parts) if len(p) <= common + 1]
            if loose:
                inside = "/".join(parts[0][:common])
                where = f"{path}/{inside}" if inside else path
                raise UserError(
                    f"{where}: labels = true reads each image's class from the name of its sub-folder ({where}/<class>/<image>), "
                    f"but {len(loose)} images (such as {loose[0]!r}) are not in a class sub-folder; "
                    "sort the images into one sub-folder per class, give data.label_file, or set data.labels = false",
                    key="labels",
                )
            classes = sorted({p[common] for p in parts})
            number = {name: i for i, name in enumerate(classes)}
            label_list = [number[p[common]] for p in parts]
        files = cls(kind, archive, root, names, torch.tensor(label_list, dtype=torch.int64), classes, resolution, spans)
        if max_images is not None and max_images < len(names):
            # evenly spaced through the sorted files, so that a quick run on
            # class folders still sees every class, not just the first
            files = files.subset([round(i * len(names) / max_images) for i in range(max_images)])
        return files

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"], state["_handle_pid"] = None, -1
        return state

    @property
    def compressed(self) -> bool:
        """Whether the images are in a compressed tar, which can only be read forwards."""
        return self.kind == "tar" and self.archive is not None and _decompressor(self.archive) is not None

    def _open(self) -> Any:
        if self._handle is None or self._handle_pid != os.getpid():
            assert self.archive is not None
            if self.kind == "zip":
                handle: Any = zipfile.ZipFile(self.archive)
            elif self.kind == "tar":
                handle = _tar_stream(self.archive)
            else:
                handle = _environment(self.archive)
            self._handle, self._handle_pid = handle, os.getpid()
        return self._handle

    def read(self, index: int) -> bytes:
        name = self.names[index]
        if self.kind == "folder":
            return (self.root / name).read_bytes()
        handle = self._open()
        if self.kind == "zip":
            return handle.read((self.root / name).as_posix())
        if self.kind == "tar":
            assert self.spans is not None
            offset, size = (int(value) for value in self.spans[index])
            handle.seek(offset)
            data = handle.read(size)
            if len(data) < size:
                raise OSError(f"the archive ends {size - len(data)} bytes before this file does")
            return data
        lmdb = _lmdb()
        try:
            with handle.begin() as transaction:
                value = transaction.get(name.encode("utf-8", "surrogateescape"))
        except lmdb.Error as error:
            raise OSError(f"LMDB: {error}") from None
        if value is None:
            raise OSError("the key is no longer in the database")
        return value

    def location(self) -> str:
        """The folder, archive or folder inside an archive the names are relative to."""
        return str(self.root if self.archive is None else self.archive / self.root)

    def path_of(self, index: int) -> str:
        where = f"{self.archive}/" if self.archive is not None else ""
        return f"{where}{(self.root / self.names[index]).as_posix()}"

    def subset(self, indices: list[int]) -> ImageFiles:
        """These files only, with the same classes."""
        names = [self.names[i] for i in indices]
        spans = None if self.spans is None else self.spans[indices]
        return ImageFiles(self.kind, self.archive, self.root, names, self.labels[indices], self.classes, self.resolution, spans)

    def reading_order(self) -> list[int]:
        """Every index, in the order the archive stores them: a compressed
        tar is then decompressed once, not once per image."""
        if self.spans is None:
            return list(range(len(self)))
        return np.argsort(self.spans[:, 0], kind="stable").tolist()

    def decode(self, index: int) -> torch.Tensor:
        try:
            return load_image(self.read(index), self.resolution)
        except _unreadable() as error:
            raise UserError(f"{self.path_of(index)}: cannot read the image ({_reason(error)})") from None

    def __getitems__(self, indices: list[int]) -> torch.Tensor:
        out = torch.empty(len(indices), 3, self.resolution, self.resolution, dtype=torch.uint8)
        for row, index in enumerate(indices):
            out[row] = self.decode(index)
        return out

    def scan(self, workers: int = 0, keep: bool = False, full: bool = True) -> tuple[torch.Tensor | None, dict[int, str]]:
        """Read every file, decoding it (``full``) or only checking it as
        :func:`check_image` does: the images in order as one uint8 tensor
        [N, 3, R, R] when ``keep`` (zeros for bad files), and why each bad
        file cannot be decoded, by index."""
        from tqdm import tqdm

        images = torch.empty(len(self), 3, self.resolution, self.resolution, dtype=torch.uint8) if keep else None
        problems: dict[int, str] = {}
        # Processes pay off only when there is much to decode.
        # Each worker takes every few batches of the reading order, so each
        # reads its archive forwards too.
        loader = torch.utils.data.DataLoader(
            _Scan(self, keep, full),
            batch_size=64,
            sampler=self.reading_order(),
            num_workers=workers if len(self) >= 1000 else 0,
            collate_fn=_identity,
        )
        desc = "decoding images" if full else "checking images"
        # tqdm hides itself when stderr is not a terminal.
        with tqdm(total=len(self), desc=desc, unit="img", disable=None if len(self) >= 2000 else True, file=sys.stderr) as bar:
            for indices, part, bad in loader:
                if images is not None:
                    images[indices] = part
                problems.update(bad)
                bar.update(len(indices))
        return images, problems


class _Scan(torch.utils.data.Dataset):
    """ImageFiles read batch by batch for :meth:`ImageFiles.scan`, in
    DataLoader workers: a bad file is noted, not raised, so that one pass
    finds them all."""

    def __init__(self, files: ImageFiles, keep: bool, full: bool) -> None:
        self.files, self.keep, self.full = files, keep, full

    def __len__(self) -> int:
        return len(self.files)

    def __getitems__(self, indices: list[int]) -> tuple[list[int], torch.Tensor | None, dict[int, str]]:
        size = self.files.resolution
        images = torch.zeros(len(indices), 3, size, size, dtype=torch.uint8) if self.keep else None
        problems = {}
        for row, index in enumerate(indices):
            try:
                data = self.files.read(index)
                if not self.full:
                    check_image(data)
                    continue
                image = load_image(data, size)
                if images is not None:
                    images[row] = image
            except _unreadable() as error:
                problems[index] = _reason(error)
        return indices, images, problems


def _identity(batch: Any) -> Any:
    return batch


def _unreadable() -> tuple[type[Exception], ...]:
    """What reading a file that is not a sound image raises."""
    from PIL import Image

    # verify() reports a bad PNG checksum as SyntaxError; a header claiming
    # too many pixels raises DecompressionBombError; a damaged zip member,
    # BadZipFile or zlib.error; a compressed tar cut short, EOFError
    return (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, Image.DecompressionBombError)


def _reason(error: Exception) -> str:
    from PIL import Image

    if isinstance(error, Image.UnidentifiedImageError):  # its text names the BytesIO, not the file
        return "not an image file Pillow recognises"
    return str(error) or type(error).__name__


def _some(items: list[str], limit: int = 10) -> str:
    """``a, b, c and 7 more``: the first few of a list, on one line."""
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _warn(message: str) -> None:
    print(f"gankit: warning: {message}", file=sys.stderr)


def check_image(data: bytes) -> None:
    """Raise what decoding an image file's bytes would, at a fraction of the
    cost: a PNG's chunks are checked against their checksums without being
    inflated, and a JPEG (which has no checksums) is decoded at 1/8 scale,
    which still reads all of it. Other formats (an LMDB's WebP) have no
    such shortcut, and are decoded."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        if opened.format == "JPEG":
            opened.draft("RGB", (1, 1))
            opened.load()
        elif opened.format == "PNG":
            opened.verify()
        else:
            opened.load()


def load_image(data: bytes, resolution: int) -> torch.Tensor:
    """Decode an image file's bytes to RGB, resize its short side to
    ``resolution`` and crop the centre square: uint8 [3, R, R]."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as opened:
        width, height = opened.size
        if opened.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):  # stored turned a quarter
            width, height = height, width
        scale = resolution / min(width, height)
        target = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
        if opened.format == "JPEG":
            # Decode straight to a fraction of the size where the file is
            # much larger, keeping twice the target so the resize still filters.
            opened.draft("RGB", (2 * max(target), 2 * max(target)))
        image = ImageOps.exif_transpose(opened)
        if image.mode.startswith("I"):
            # 16-bit greyscale: convert() would clip it to 255, not scale it
            image = Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))
        image = image.convert("RGB")
    if image.size != target:
        shrinking = image.size[0] > target[0]
        image = image.resize(target, Image.Resampling.LANCZOS if shrinking else Image.Resampling.BICUBIC)
    left, top = (target[0] - resolution) // 2, (target[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


# --------------------------------------------------------------------------
# Finding the files


def _locate(path: str) -> tuple[str, Path | None, PurePosixPath]:
    """``(kind, archive, folder inside it)``: ``("folder", None, .)`` for a
    folder, the zip or tar and the folder inside it for an archive, and
    ``("lmdb", folder, .)`` for an LMDB database's folder."""
    full = Path(path).expanduser()
    if full.is_dir():
        if (full / "data.mdb").is_file():
            return "lmdb", full, PurePosixPath()
        if (full / "lock.mdb").is_file():  # an LMDB database whose data file did not arrive
            raise UserError(f"{path}: holds an LMDB lock.mdb but no data.mdb; copy the database's data.mdb beside it", key="path")
        return "folder", None, PurePosixPath()
    if full.is_file():
        kind = _archive_kind(full)
        if kind is None:
            raise UserError(f"{path}: not a folder or a zip or tar file; set data.path to {_FORMATS}", key="path")
        return kind, full, PurePosixPath()
    # archive.zip/train: the longest existing prefix must be a zip or tar.
    for parent in full.parents:
        if parent.is_file():
            kind = _archive_kind(parent)
            if kind is None:
                break
            return kind, parent, PurePosixPath(full.relative_to(parent).as_posix())
        if parent.exists():
            break
    raise UserError(
        f"{path}: no such file or folder; give the data with --set data.path=PATH, {_FORMATS}"
        " (recipes/quickstart.toml trains on built-in data and needs none)",
        key="path",
    )


def _archive_kind(file: Path) -> str | None:
    if zipfile.is_zipfile(file):
        return "zip"
    # A compressed tar cut short may not show a tar header, and is then
    # reported as cut short when listed, not as some other file.
    if _decompressor(file) is not None or tarfile.is_tarfile(file):
        return "tar"
    return None


def _is_image(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


def _hidden(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def _folder_images(root: Path) -> list[str]:
    names = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders[:] = [name for name in subfolders if not _hidden(name)]
        relative = Path(folder).relative_to(root)
        names.extend((relative / name).as_posix() for name in files if _is_image(name) and not _hidden(name))
    return sorted(names)


def _zip_images(archive: Path, inner: PurePosixPath, path: str) -> list[str]:
    try:
        with zipfile.ZipFile(archive) as opened:
            members = [member for member in opened.namelist() if not member.endswith("/")]
    except (OSError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: cannot read the zip ({error})", key="path") from None
    return _inside(members, archive, inner, path)


def _inside(members: list[str], archive: Path, inner: PurePosixPath, path: str, images_only: bool = True) -> list[str]:
    """The names of an archive's members (files only) below ``inner``,
    relative to it and sorted; without hidden files, and without the names
    that point out of the archive's folders, which are reported once."""
    prefix = "" if inner == PurePosixPath() else inner.as_posix() + "/"
    names, unsafe = [], []
    for member in members:
        if not member.startswith(prefix) or (images_only and not _is_image(member)):
            continue
        relative = member[len(prefix) :]
        parts = relative.split("/")
        # A name that points out of the archive's folders is a broken or
        # hostile archive's: unpacking tools refuse to extract it, and it has no class.
        if member.startswith("/") or ".." in parts:
            unsafe.append(repr(member))
        elif not any(_hidden(part) for part in parts):
            names.append(relative)
    if unsafe:
        _warn(f"{path}: skipped {len(unsafe)} members whose names lead out of the archive (absolute or with ..): {_some(unsafe, 5)}")
    if prefix and not names and not any(member.startswith(prefix) for member in members):
        raise UserError(f"{path}: {archive.name} has no folder {inner.as_posix()!r}; set data.path to {_FORMATS}", key="path")
    return sorted(names)


def _decompressor(file: Path) -> Callable[[Path], IO[bytes]] | None:
    with open(file, "rb") as opened:
        head = opened.read(8)
    return next((opener for magic, opener in _DECOMPRESSORS.items() if head.startswith(magic)), None)


def _tar_stream(file: Path) -> IO[bytes]:
    """A tar's bytes, decompressed: seekable, forwards cheaply."""
    opener = _decompressor(file)
    return opener(file) if opener is not None else open(file, "rb")


def _tar_images(archive: Path, inner: PurePosixPath, path: str) -> tuple[list[str], np.ndarray]:
    """The images of a tar below ``inner`` and where each one's bytes lie in
    the (decompressed) tar, read from its headers: nothing is extracted, so
    no member's name or link is ever followed on the disk. A member that is
    itself a tar (ImageNet's training tar holds one per class,
    ``n01440764.tar``) is read as the folder of its name without ``.tar``:
    its images' bytes lie inside the outer tar's bytes, so they are read
    from there the same way."""
    spans: dict[str, tuple[int, int]] = {}
    try:
        with _tar_stream(archive) as stream:
            shards = _tar_members(stream, archive, "", spans)
            for shard, (offset, size) in shards.items():
                window = _Window(stream, offset, size)
                _tar_members(window, archive, shard.removesuffix(".tar") + "/", spans, within=shard)  # type: ignore[arg-type]
    except (OSError, EOFError, tarfile.TarError, zlib.error, lzma.LZMAError) as error:
        raise UserError(f"{path}: cannot read the tar ({error}); set data.path to {_FORMATS}", key="path") from None
    names = _inside(list(spans), archive, inner, path)
    prefix = "" if inner == PurePosixPath() else inner.as_posix() + "/"
    return names, np.array([spans[prefix + name] for name in names], dtype=np.int64).reshape(-1, 2)


class _Window:
    """The bytes [start, start + size) of a stream, at their positions in
    it: a tar inside a tar ends where its member does, whatever follows."""

    def __init__(self, stream: IO[bytes], start: int, size: int) -> None:
        self.stream, self.end, self.position = stream, start + size, start

    def tell(self) -> int:
        return self.position

    def seek(self, position: int, whence: int = 0) -> int:
        self.position = {0: position, 1: self.position + position, 2: self.end + position}[whence]
        return self.position

    def read(self, size: int = -1) -> bytes:
        size = self.end - self.position if size < 0 else min(size, self.end - self.position)
        if size <= 0:
            return b""
        self.stream.seek(self.position)
        data = self.stream.read(size)
        self.position += len(data)
        return data


def _tar_members(
    stream: IO[bytes], archive: Path, prefix: str, spans: dict[str, tuple[int, int]], within: str = ""
) -> dict[str, tuple[int, int]]:
    """Add the regular members of the tar starting at the stream's position
    to ``spans`` (name -> offset and size in the stream), each name after
    ``prefix``; return the members that are tars themselves. A tar cut short
    is a :class:`UserError` naming it (and the shard, ``within``)."""
    shards: dict[str, tuple[int, int]] = {}
    where = f"{archive}: {within!r} inside it" if within else str(archive)
    try:
        with tarfile.open(fileobj=stream, mode="r:") as opened:
            for member in opened:
                # tarfile keeps every header it reads; a million-image tar's would take gigabytes
                opened.members.clear()
                if member.isreg():
                    name = member.name
                    while name.startswith("./"):  # tar -C folder . writes ./name
                        name = name[2:]
                    span = (member.offset_data, member.size)
                    if not within and name.lower().endswith(".tar"):
                        shards[name] = span
                    else:
                        spans[prefix + name] = span  # a later copy of a name replaces an earlier, as tar does
            # tarfile stops quietly where a header is cut short or missing; a
            # whole tar ends with a block of zeros there.
            stream.seek(opened.offset)
            end = stream.read(tarfile.BLOCKSIZE)
    except (EOFError, tarfile.ReadError) as error:
        # tarfile's words for a tar cut inside a member or its first header;
        # a decompressor's, EOFError
        if not (isinstance(error, EOFError) or str(error) in ("unexpected end of data", "truncated header")):
            raise
        end = b""
    if end != bytes(tarfile.BLOCKSIZE):
        raise UserError(
            f"{where}: the tar ends before its end-of-archive block, cut short (half-written, or copied or downloaded in part); "
            "write or fetch it again",
            key="path",
        )
    return shards


def _lmdb() -> Any:
    try:
        import lmdb
    except ImportError:
        raise UserError("reading an LMDB database needs the lmdb package: pip install 'gankit[lmdb]'") from None
    return lmdb


def _open_lmdb(folder: Path, path: str) -> Any:
    """The database, opened to read, after checking that its file holds
    every page its header counts: LMDB maps the file into memory, and
    touching a page past the end of a file cut short kills the process."""
    lmdb = _lmdb()
    try:
        # lock = False: nothing writes a dataset while it trains, and the
        # folder may be read-only
        environment = lmdb.open(str(folder), readonly=True, lock=False, readahead=False, subdir=True)
        need = (environment.info()["last_pgno"] + 1) * environment.stat()["psize"]
    except lmdb.Error as error:
        raise UserError(f"{path}: cannot open the LMDB database ({error}); set data.path to {_FORMATS}", key="path") from None
    size = (folder / "data.mdb").stat().st_size
    if size < need:
        environment.close()
        raise UserError(
            f"{folder / 'data.mdb'}: the LMDB database is cut short (half-written, or copied or downloaded in part): the file "
            f"holds {size:,} bytes of the {need:,} its pages take; write or fetch it again",
            key="path",
        )
    return environment


#: Each database's environment in this process, by its data file, with the
#: process that opened it.
_ENVIRONMENTS: dict[tuple[int, int], tuple[int, Any]] = {}


def _environment(folder: Path, path: str | None = None) -> Any:
    """The database, opened once in each process: LMDB refuses a second
    open in one process, so every reader of the database shares one, and a
    DataLoader worker closes the copies its parent's opened before opening its own."""
    stat = (folder / "data.mdb").stat()
    key = (stat.st_dev, stat.st_ino)
    pid, environment = _ENVIRONMENTS.get(key, (-1, None))
    if pid == os.getpid():
        return environment
    for other in [other for other, (opener, _) in _ENVIRONMENTS.items() if opener != os.getpid()]:
        _ENVIRONMENTS.pop(other)[1].close()  # only unmaps this process's copy: no locks are held
    environment = _open_lmdb(folder, str(folder) if path is None else path)
    _ENVIRONMENTS[key] = (os.getpid(), environment)
    return environment


def _lmdb_keys(folder: Path, path: str) -> list[str]:
    """An LMDB database's keys, each taken as the name of one image;
    keys that are not UTF-8 keep their bytes (surrogateescape)."""
    with _environment(folder, path).begin() as transaction:
        keys = [key.decode("utf-8", "surrogateescape") for key in transaction.cursor().iternext(keys=True, values=False)]
    return _inside(keys, folder, PurePosixPath(), path, images_only=False)


# --------------------------------------------------------------------------
# Labels from a file


def _file_labels(label_file: str, names: list[str], path: str) -> tuple[list[str], list[int]]:
    """The classes a .mat or .csv label file names and each image's class."""
    file = Path(label_file).expanduser()
    if not file.is_file():
        raise UserError(f"{label_file}: no such file; set data.label_file to a .mat or .csv file of class labels", key="label_file")
    suffix = file.suffix.lower()
    if suffix == ".mat":
        values = _mat_labels(file, label_file, len(names), path)
    elif suffix == ".csv":
        values = _csv_labels(file, label_file, names, path)
    else:
        raise UserError(f"{label_file}: not a .mat or .csv file; set data.label_file to one", key="label_file")
    distinct = set(values)
    # numbers in numeric order: class 10 after class 9, not after class 1
    numeric = all(value.lstrip("-").isdigit() for value in distinct)
    classes = sorted(distinct, key=int) if numeric else sorted(distinct)
    number = {name: i for i, name in enumerate(classes)}
    return classes, [number[value] for value in values]


def _mat_labels(file: Path, label_file: str, count: int, path: str) -> list[str]:
    """One label per image, in name order, from the ``labels`` array of a
    MATLAB file (or its only array)."""
    try:
        import scipy.io
    except ImportError:
        raise UserError(f"{label_file}: reading a .mat file needs scipy: pip install scipy", key="label_file") from None
    try:
        content = scipy.io.loadmat(file)
    except Exception as error:  # scipy raises many kinds on a damaged file, and NotImplementedError on a v7.3 (HDF5) one
        raise UserError(f"{label_file}: cannot read the .mat file ({error})", key="label_file") from None
    arrays = {key: value for key, value in content.items() if not key.startswith("__")}
    if "labels" not in arrays and len(arrays) != 1:
        raise UserError(
            f"{label_file}: holds no array named labels, and {len(arrays)} others ({_some(sorted(arrays))}); "
            "give a .mat file with a labels array",
            key="label_file",
        )
    array = np.asarray(arrays.get("labels", next(iter(arrays.values()))))
    if array.dtype.kind not in "iuf" or (array.ndim == 2 and min(array.shape) != 1) or array.ndim > 2:
        raise UserError(
            f"{label_file}: the labels are a {array.dtype} array of shape {array.shape}, not a row of numbers", key="label_file"
        )
    values = array.reshape(-1)
    if len(values) != count:
        raise UserError(
            f"{label_file}: holds {len(values)} labels, but {path} holds {count} images; the labels go to the images "
            "in name order, one each",
            key="label_file",
        )
    if array.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise UserError(
            f"{label_file}: the labels are not whole numbers, such as {values[values != np.round(values)][0]}", key="label_file"
        )
    return [str(int(value)) for value in values]


def _csv_labels(file: Path, label_file: str, names: list[str], path: str) -> list[str]:
    """Each image's label from ``file,label`` rows; rows that name no image
    (a header, a file left out of this split) are passed over."""
    table: dict[str, str] = {}
    try:
        with open(file, newline="", encoding="utf-8-sig") as opened:
            for line, row in enumerate(csv.reader(opened), start=1):
                if not row:
                    continue
                if len(row) < 2:
                    raise UserError(f"{label_file}: line {line} has one column; each row is file,label", key="label_file")
                table[row[0].strip()] = row[1].strip()
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{label_file}: cannot read the CSV file ({error})", key="label_file") from None
    missing = [name for name in names if name not in table]
    if missing:
        raise UserError(
            f"{label_file}: no label for {len(missing)} of the {len(names)} images of {path}: {_some(missing, 5)}; "
            "each row is file,label, naming the file relative to data.path",
            key="label_file",
        )
    return [table[name] for name in names]


def _common_folder(parts: list[tuple[str, ...]]) -> int:
    """How many leading folders every path shares (file names excluded)."""
    common = list(parts[0][:-1])
    for p in parts[1:]:
        folders = p[:-1]
        n = 0
        while n < min(len(common), len(folders)) and common[n] == folders[n]:
            n += 1
        del common[n:]
        if not common:
            break
    return len(common)
