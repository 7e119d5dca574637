"""Horizontal mirroring by index doubling, as StyleGAN2-ADA's ``--mirror``
does it: index ``count + i`` is image ``i`` flipped, so a flip is decided by
the data position alone and a resumed run sees the same flips."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import torch

from gankit.contracts import Dataset
from gankit.images import ImageList


def gather_mirrored(
    indices: list[int], count: int, mirrored: bool, fetch: Callable[[torch.Tensor], torch.Tensor], what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fetch the images ``indices`` name from ``count`` stored ones (twice
    as many indices when ``mirrored``); returns the images and the stored
    index each came from, for looking up labels."""
    index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
    length = count * (2 if mirrored else 1)
    if index.numel() and (index.min() < 0 or index.max() >= length):
        raise IndexError(f"{what} dataset index out of range (size {length}): {indices}")
    flipped = index >= count
    source = index - count * flipped
    images = fetch(source)
    if flipped.any():
        images[flipped] = images[flipped].flip(-1)
    return images, source


class WithoutMirrors(Dataset):
    """The first half of a dataset mirrored by :func:`gather_mirrored`: its
    images as stored, without their mirror copies
    (:meth:`Dataset.without_mirrors`). Reads go to the dataset itself, so
    nothing is decoded or kept twice."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.context = dataset.context
        self.shuffle = dataset.shuffle
        self.workers = dataset.workers

    def __len__(self) -> int:
        return len(self.dataset) // 2  # read anew: a dataset may drop undecodable files when prepared

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        if index.numel() and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"dataset index out of range (size {len(self)}, without mirror copies): {indices}")
        return self.dataset.__getitems__(index.tolist())

    def prepare(self) -> None:
        self.dataset.prepare()

    def unrecognizable(self, count: int, rng: torch.Generator) -> torch.Tensor | None:
        return self.dataset.unrecognizable(count, rng)

    def describe(self) -> str:
        return self.dataset.describe()

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.dataset.fingerprint()} without mirror copies".encode()).hexdigest()

    def picture(self, images: ImageList, nrow: int | None = None) -> torch.Tensor:
        return self.dataset.picture(images, nrow)


class HflipMirrored(Dataset):
    """A dataset whose options' ``hflip`` adds mirror copies by
    :func:`gather_mirrored`'s index doubling: it says so, and hands metrics
    its stored images through :class:`WithoutMirrors`."""

    options: Any

    @property
    def mirrored(self) -> bool:
        return self.options.hflip

    def without_mirrors(self) -> Dataset:
        return WithoutMirrors(self) if self.options.hflip else self
