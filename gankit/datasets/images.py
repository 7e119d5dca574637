"""The built-in ``images`` dataset: PNG and JPEG files from a folder or a zip,
optionally labelled by sub-folder."""

from __future__ import annotations

import io
import os
import sys
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import attrs
import numpy as np
import torch

from gankit.contracts import BuildContext, Dataset
from gankit.datasets.mirror import gather_mirrored
from gankit.errors import UserError
from gankit.options import help_text, non_negative, one_of, positive, power_of_two

EXTENSIONS = (".png", ".jpg", ".jpeg")
_ORIENTATION = 0x0112  # the EXIF tag
_FORMATS = "a folder of images or a .zip of one (PNG or JPEG)"


@attrs.define(kw_only=True)
class ImagesOptions:
    """The built-in ``images`` dataset: PNG and JPEG files from a folder or a
    zip, resized and centre-cropped to a square."""

    path: str = attrs.field(
        metadata=help_text(
            "a folder of PNG/JPEG images (searched recursively) or a .zip of one; "
            "archive.zip/sub/folder reads only that folder inside the zip"
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
    hflip: bool = attrs.field(
        default=False, metadata=help_text("add horizontal mirror images: the dataset doubles, index N + i being image i flipped")
    )
    in_memory: str = attrs.field(
        default="auto",
        validator=one_of(("auto", "yes", "no")),
        metadata=help_text("decode every image once into memory: yes, no, or auto (when they fit in memory_limit_gb)"),
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


class ImagesDataset(Dataset):
    """Images from a folder or a zip, labelled by sub-folder when asked."""

    shuffle: ClassVar[bool] = True

    def __init__(self, options: ImagesOptions) -> None:
        self.options = options
        self.files = ImageFiles.find(options.path, options.resolution, labels=options.labels, max_images=options.max_images)
        self.classes = self.files.classes
        self.context = BuildContext(resolution=options.resolution, channels=3, num_classes=len(self.classes))
        count = len(self.files)
        size = count * 3 * options.resolution**2
        self.in_memory = options.in_memory == "yes" or (options.in_memory == "auto" and size <= options.memory_limit_gb * 2**30)
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
    """The image files of a folder or zip and their labels; decodes them to
    uint8 [3, R, R]. Picklable: a zip is opened once in each process that
    reads it, as a ZipFile shares its file position with forked copies."""

    def __init__(
        self, archive: Path | None, root: Path, names: list[str], labels: torch.Tensor, classes: list[str], resolution: int
    ) -> None:
        self.archive = archive  # the zip, or None for a folder
        self.root = root  # a folder, or the folder inside the zip names are relative to
        self.names = names
        self.labels = labels
        self.classes = classes
        self.resolution = resolution
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1

    @classmethod
    def find(cls, path: str, resolution: int, labels: bool = False, max_images: int | None = None) -> ImageFiles:
        """List the images under ``path`` (a folder, a zip, or a folder
        inside a zip written ``archive.zip/folder``), in name order."""
        archive, inner = _locate(path)
        if archive is None:
            root = Path(path).expanduser()
            names = _folder_images(root)
        else:
            root = inner
            names = _zip_images(archive, inner, path)
        if not names:
            raise UserError(
                f"{path}: no PNG or JPEG images found (files ending .png, .jpg or .jpeg, in any sub-folder); set data.path to {_FORMATS}",
                key="path",
            )
        # Classes come from every image found, before max_images, so that a
        # quick run builds the same networks as a full one.
        parts = [PurePosixPath(name).parts for name in names]
        common = _common_folder(parts)
        classes: list[str] = []
        label_list = [0] * len(names)
        if labels:
            loose = [name for name, p in zip(names, parts) if len(p) <= common + 1]
            if loose:
                inside = "/".join(parts[0][:common])
                where = f"{path}/{inside}" if inside else path
                raise UserError(
                    f"{where}: labels = true reads each image's class from the name of its sub-folder ({where}/<class>/<image>), "
                    f"but {len(loose)} images (such as {loose[0]!r}) are not in a class sub-folder; "
                    "sort the images into one sub-folder per class, or set data.labels = false",
                    key="labels",
                )
            classes = sorted({p[common] for p in parts})
            number = {name: i for i, name in enumerate(classes)}
            label_list = [number[p[common]] for p in parts]
        if max_images is not None and max_images < len(names):
            # evenly spaced through the sorted files, so that a quick run on
            # class folders still sees every class, not just the first
            keep = [round(i * len(names) / max_images) for i in range(max_images)]
            names, label_list = [names[i] for i in keep], [label_list[i] for i in keep]
        return cls(archive, root, names, torch.tensor(label_list, dtype=torch.int64), classes, resolution)

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"], state["_zip_pid"] = None, -1
        return state

    def read(self, index: int) -> bytes:
        name = self.names[index]
        if self.archive is None:
            return (self.root / name).read_bytes()
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip, self._zip_pid = zipfile.ZipFile(self.archive), os.getpid()
        return self._zip.read((self.root / name).as_posix())

    def location(self) -> str:
        """The folder, zip or folder inside a zip the names are relative to."""
        return str(self.root if self.archive is None else self.archive / self.root)

    def path_of(self, index: int) -> str:
        where = f"{self.archive}/" if self.archive is not None else ""
        return f"{where}{(self.root / self.names[index]).as_posix()}"

    def subset(self, indices: list[int]) -> ImageFiles:
        """These files only, with the same classes."""
        names = [self.names[i] for i in indices]
        return ImageFiles(self.archive, self.root, names, self.labels[indices], self.classes, self.resolution)

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
        loader = torch.utils.data.DataLoader(
            _Scan(self, keep, full),
            batch_size=64,
            shuffle=False,
            num_workers=workers if len(self) >= 1000 else 0,
            collate_fn=_identity,
        )
        done = 0
        desc = "decoding images" if full else "checking images"
        # tqdm hides itself when stderr is not a terminal.
        with tqdm(total=len(self), desc=desc, unit="img", disable=None if len(self) >= 2000 else True, file=sys.stderr) as bar:
            for count, part, bad in loader:
                if images is not None:
                    images[done : done + count] = part
                problems.update(bad)
                done += count
                bar.update(count)
        return images, problems


class _Scan(torch.utils.data.Dataset):
    """ImageFiles read batch by batch for :meth:`ImageFiles.scan`, in
    DataLoader workers: a bad file is noted, not raised, so that one pass
    finds them all."""

    def __init__(self, files: ImageFiles, keep: bool, full: bool) -> None:
        self.files, self.keep, self.full = files, keep, full

    def __len__(self) -> int:
        return len(self.files)

    def __getitems__(self, indices: list[int]) -> tuple[int, torch.Tensor | None, dict[int, str]]:
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
        return len(indices), images, problems


def _identity(batch: Any) -> Any:
    return batch


def _unreadable() -> tuple[type[Exception], ...]:
    """What reading a file that is not a sound image raises."""
    from PIL import Image

    # verify() reports a bad PNG checksum as SyntaxError; a header claiming
    # too many pixels raises DecompressionBombError; a damaged zip member,
    # BadZipFile or zlib.error
    return (OSError, SyntaxError, ValueError, zipfile.BadZipFile, zlib.error, Image.DecompressionBombError)


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
    which still reads all of it."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as opened:
        if opened.format == "JPEG":
            opened.draft("RGB", (1, 1))
            opened.load()
        else:
            opened.verify()


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


def _locate(path: str) -> tuple[Path | None, PurePosixPath]:
    """``(zip, folder inside it)`` for a zip path, ``(None, .)`` for a folder."""
    full = Path(path).expanduser()
    if full.is_dir():
        return None, PurePosixPath()
    if full.is_file():
        if not zipfile.is_zipfile(full):
            raise UserError(f"{path}: not a folder or a zip file; set data.path to {_FORMATS}", key="path")
        return full, PurePosixPath()
    # archive.zip/train: the longest existing prefix must be a zip.
    for parent in full.parents:
        if parent.is_file():
            if not zipfile.is_zipfile(parent):
                break
            return parent, PurePosixPath(full.relative_to(parent).as_posix())
        if parent.exists():
            break
    raise UserError(
        f"{path}: no such file or folder; give the data with --set data.path=PATH, {_FORMATS}"
        " (recipes/quickstart.toml trains on built-in data and needs none)",
        key="path",
    )


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
            members = opened.namelist()
    except (OSError, zipfile.BadZipFile) as error:
        raise UserError(f"{path}: cannot read the zip ({error})", key="path") from None
    prefix = "" if inner == PurePosixPath() else inner.as_posix() + "/"
    names, unsafe = [], []
    for member in members:
        if member.endswith("/") or not member.startswith(prefix) or not _is_image(member):
            continue
        relative = member[len(prefix) :]
        parts = relative.split("/")
        # A name that points out of the archive's folders is a broken or
        # hostile zip's: unzip tools refuse to extract it, and it has no class.
        if member.startswith("/") or ".." in parts:
            unsafe.append(repr(member))
        elif not any(_hidden(part) for part in parts):
            names.append(relative)
    if unsafe:
        _warn(f"{path}: skipped {len(unsafe)} members whose names lead out of the archive (absolute or with ..): {_some(unsafe, 5)}")
    if prefix and not names and not any(member.startswith(prefix) for member in members):
        raise UserError(f"{path}: {archive.name} has no folder {inner.as_posix()!r}; set data.path to {_FORMATS}", key="path")
    return sorted(names)


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
