"""Features of image sets: a dataset's (cached on disk) and a generator's.

Both arrive at the extractor the same way: as uint8 pixels, the generator's
output rounded as if saved to a PNG, so a generator is scored on the images
it would hand a person.

The cache keeps a dataset's features and their float64 mean and covariance
in ``$GANKIT_CACHE_DIR/reference`` (by default ``~/.cache/gankit/reference``,
or under ``$XDG_CACHE_HOME``), one file per set of pixels (see
:func:`pixels_fingerprint`), resolution, extractor sha256, resize filter and
image count, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn
from tqdm import tqdm

from gankit import distributed
from gankit.contracts import Dataset, Generator
from gankit.errors import UserError
from gankit.images import quantize
from gankit.metrics.inception import FeatureExtractor
from gankit.metrics.scores import mean_and_covariance
from gankit.sampling import generated_batches, seeded_latents

CACHE_ENVIRONMENT_VARIABLE = "GANKIT_CACHE_DIR"
#: Bump when what a cached file holds, or how features are made, changes.
#: 2: the key says whether the real images held mirror copies (metrics score
#: the data without them since format 2; a format-1 file may hold them).
CACHE_FORMAT = 3


@attrs.define(eq=False)
class Features:
    """The features of one image set, [N, D] float32 on the CPU, with the
    float64 mean and covariance FID needs, computed once."""

    values: torch.Tensor
    _moments: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def count(self) -> int:
        return self.values.shape[0]

    def moments(self, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance in float64, computed on ``device`` (a GPU
        makes short work of 50k x 2048) and kept on the CPU."""
        if self._moments is None:
            mean, cov = mean_and_covariance(self.values.to(device) if device is not None else self.values)
            self._moments = (mean.cpu(), cov.cpu())
        return self._moments


def _not_images(what: str, shape: tuple[int, ...]) -> UserError:
    return UserError(f"{what} are not images (samples of shape {shape}); FID, KID and precision/recall measure images [N, C, H, W]")


def _batch_as_is(batch: Any) -> Any:
    return batch  # Dataset.__getitems__ already returns a batch


def evenly_spaced(count: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``count`` items (all when equal)."""
    return [round(i * count / n) for i in range(n)]


# --------------------------------------------------------------------------
# Datasets, cached


def cache_folder(kind: str = "reference") -> Path:
    """Where cached work of one kind is kept (reference features; trained
    classifiers): $GANKIT_CACHE_DIR/KIND, else the user's cache folder."""
    if root := os.environ.get(CACHE_ENVIRONMENT_VARIABLE):
        return Path(root).expanduser() / kind
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gankit" / kind


def cached_model(
    kind: str,
    key: dict[str, Any],
    stem: str,
    build: Callable[[], nn.Module],
    train: Callable[[], tuple[nn.Module, float]],
    device: torch.device,
    *,
    use_cache: bool = True,
    what: str = "model",
    speaker: str = "gankit",
) -> tuple[nn.Module, float]:
    """A network trained on real data, and its held-out accuracy: loaded from
    ``cache_folder(kind)/STEM-DIGEST.pt`` when that file was stored with the
    same ``key`` (JSON-ready; DIGEST is its hash), else trained now by
    ``train`` and stored there (unless ``use_cache`` is false). ``build``
    makes the untrained network the stored weights go into; a torn or
    foreign file is trained again."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_folder(kind) / f"{stem}-{digest}.pt"
    with distributed.rank_zero_first():  # under torchrun one process trains it, the others on its machine load it
        if use_cache and path.is_file():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
                if stored.get("key") == key:
                    model = build()
                    model.load_state_dict(stored["weights"])
                    return model.to(device).eval(), float(stored["accuracy"])
            except Exception as error:  # a torn or foreign file: train again
                print(f"{speaker}: ignoring unreadable {what} {path} ({type(error).__name__}); training it again", file=sys.stderr)
        model, accuracy = train()
        if use_cache:
            _save_atomically({"key": key, "weights": model.state_dict(), "accuracy": accuracy}, path)
        return model, accuracy


def pixels_fingerprint(dataset: Dataset) -> str:
    """A hash of what Inception features depend on: the number of images and
    16 of them spread evenly through the data. Unlike
    :meth:`Dataset.fingerprint` it leaves out labels, the dataset's class and
    the rest of its context, so every recipe reading the same images (with or
    without class labels, mirror copies set aside) shares one cached
    reference: CIFAR-10's takes over an hour on 2 CPU cores."""
    count = len(dataset)
    images, _ = dataset.__getitems__(sorted({round(i * (count - 1) / 15) for i in range(16)}))
    digest = hashlib.sha256(f"{count} {tuple(images.shape[1:])} {images.dtype}".encode())
    digest.update(images.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def reference_key(dataset: Dataset, extractor: FeatureExtractor, n: int) -> dict[str, Any]:
    """What a dataset's cached features depend on."""
    return {
        "format": CACHE_FORMAT,
        "pixels": pixels_fingerprint(dataset),
        "mirror_copies": dataset.mirrored,
        "resolution": dataset.context.resolution,
        "extractor_sha256": extractor.sha256,
        "resize": extractor.resize,
        "n": n,
    }


def reference_path(key: dict[str, Any]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return cache_folder() / f"{key['resolution']}px-{key['n']}-{key['resize']}-{digest}.pt"


def _read_cached(path: Path, key: dict[str, Any]) -> Features | None:
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("key") != key:
            return None
        return Features(stored["features"], (stored["mean"], stored["cov"]))
    except Exception as error:  # a torn or foreign file: make it again
        print(f"gankit: ignoring unreadable cache file {path} ({type(error).__name__}); recomputing", file=sys.stderr)
        return None


def _write_cached(path: Path, key: dict[str, Any], features: Features) -> None:
    mean, cov = features.moments()
    _save_atomically({"key": key, "features": features.values, "mean": mean, "cov": cov}, path)


def _save_atomically(stored: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: another
    process sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(stored, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


#: Seconds between progress lines when standard error is not a terminal.
LINE_SECONDS = 60.0


class ProgressLines:
    """Progress as a line every :data:`LINE_SECONDS` on standard error, for
    logs, where a bar's carriage returns would pile up on one line: an hour's
    reference features are not silent in a log file."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.done = total, what, 0
        self.start = self.last = time.perf_counter()

    def update(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= LINE_SECONDS and self.done < self.total:
            self.last = now
            speed = self.done / (now - self.start)
            left = (self.total - self.done) / speed if speed > 0 else float("inf")
            print(
                f"gankit: {self.what}: {self.done:,} of {self.total:,} images, {speed:.1f} img/s, about {left / 60:.0f} min left",
                file=sys.stderr,
                flush=True,
            )

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress(total: int, what: str) -> Any:
    """A bar on a terminal, lines in a log."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=what, unit="img", leave=False, file=sys.stderr)
    return ProgressLines(total, what)


def dataset_features(
    dataset: Dataset,
    extractor: FeatureExtractor,
    n: int | None,
    batch_size: int,
    device: torch.device,
    cache: bool = True,
    what: str = "real images",
) -> Features:
    """Features of ``n`` images spread evenly through ``dataset`` (all of
    them when ``n`` is None), read from the cache when it has them."""
    if dataset.context.resolution == 1:  # 2D toy data: points, not pixels
        raise _not_images(what, (dataset.context.channels,))
    count = len(dataset)
    n = count if n is None else n
    if n > count:
        raise UserError(f"{n} {what} asked for, but the data has {count}", key="n_real")
    key = reference_key(dataset, extractor, n) if cache else None
    path = reference_path(key) if key else None
    cached = _read_cached(path, key) if key and path else None
    # every process reads its own cache (one per machine); unless all have it, all make the features together
    if distributed.all_agree(cached is not None, device) and cached is not None:
        return cached
    indices = evenly_spaced(count, n)
    share = distributed.part(n)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=indices[share.start : share.stop],
        collate_fn=_batch_as_is,
        num_workers=dataset.workers,
        pin_memory=device.type == "cuda",
    )
    chunks = []
    with progress(len(share), f"features of {what}") as bar:
        for images, _ in loader:
            chunks.append(extractor(quantize(images).to(device, non_blocking=True)).cpu())
            bar.update(images.shape[0])
    features = Features(distributed.gather_rows(torch.cat(chunks) if chunks else torch.zeros(0, 0)))
    if key and path:
        features.moments(device)
        if distributed.local_rank() == 0:  # one writer per machine
            _write_cached(path, key, features)
    return features


# --------------------------------------------------------------------------
# Generators


@torch.no_grad()
def generator_features(
    generator: Generator,
    extractor: FeatureExtractor,
    n: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    what: str = "generated images",
) -> Features:
    """Features of ``n`` images from ``generator`` (its finest scale), with
    latents and uniformly drawn labels from a CPU generator seeded by
    ``seed``, so the same seed gives the same images on any device."""
    share = distributed.part(n)  # this process's images; the features of all are gathered
    z, labels = seeded_latents(generator, n, seed, share)
    chunks = []
    with progress(len(share), f"features of {what}") as bar:
        for images in generated_batches(generator, z, labels, batch_size, device):
            finest = images[-1]
            if finest.dim() != 4:
                raise _not_images(what, tuple(finest.shape[1:]))
            chunks.append(extractor(quantize(finest)).cpu())
            bar.update(finest.shape[0])
    return Features(distributed.gather_rows(torch.cat(chunks) if chunks else torch.zeros(0, 0)))
