"""Horizontal mirroring by index doubling, as StyleGAN2-ADA's ``--mirror``
does it: index ``count + i`` is image ``i`` flipped, so a flip is decided by
the data position alone and a resumed run sees the same flips."""

from __future__ import annotations

from collections.abc import Callable

import torch


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
