"""Sample grids a person can look at."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torchvision.utils

from gankit.images import ImageList


def scale_grids(images: ImageList, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """One grid per scale of the same samples, side by side, each scale
    enlarged (nearest) to the finest so that a person can see they agree.
    Returns a float RGB image in [0, 1], shape [3, H, W] (grey is repeated)."""
    finest = images[-1].shape[-1]
    nrow = nrow or max(1, int(math.sqrt(images[-1].shape[0])))
    grids = []
    for scale in images:
        scale = scale.detach().float().cpu()
        if scale.shape[-1] != finest:
            scale = torch.nn.functional.interpolate(scale, size=(finest, finest), mode="nearest")
        grids.append(torchvision.utils.make_grid(scale, nrow=nrow, padding=padding, normalize=True, value_range=(-1, 1)))
    if len(grids) == 1:
        return grids[0].expand(3, -1, -1)
    gap = torch.ones(grids[0].shape[0], grids[0].shape[1], 4 * padding)
    parts: list[torch.Tensor] = []
    for grid in grids:
        parts += [grid, gap]
    return torch.cat(parts[:-1], dim=2).expand(3, -1, -1)


def save_scale_grids(images: ImageList, path: Path, nrow: int | None = None) -> None:
    torchvision.utils.save_image(scale_grids(images, nrow=nrow), str(path))
