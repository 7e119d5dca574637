"""Image utilities every component may use: the list-of-scales type, value
ranges, and the pyramids of multi-scale and growing networks.

Images travel as a list of tensors, coarsest to finest, float values in
[-1, 1]; a single-scale network uses a list of one.
"""

from __future__ import annotations

import torch
from torch import nn

ImageList = list[torch.Tensor]


def is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


def log2_int(value: int) -> int:
    """The exponent of a power of two; ValueError for anything else."""
    if not is_power_of_two(value):
        raise ValueError(f"{value} is not a power of two")
    return value.bit_length() - 1


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] to float [-1, 1]; float input is returned as it is."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0)
    return images


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Images to uint8 [0, 255]: float [-1, 1] is rounded to the nearest
    level as a PNG writer would (StyleGAN2-ADA's ``x * 127.5 + 128``, clamped
    and truncated); uint8 passes unchanged."""
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 127.5 + 128.0).clamp_(0, 255).to(torch.uint8)


def downsample_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """2x2 average pooling, repeated until ``resolution`` is reached."""
    size = images.shape[-1]
    if size % resolution or not is_power_of_two(size // resolution):
        raise ValueError(f"cannot pool {size}x{size} images down to {resolution}x{resolution}")
    factor = size // resolution
    return images if factor == 1 else nn.functional.avg_pool2d(images, factor)


def image_pyramid(images: torch.Tensor, scales: int) -> ImageList:
    """The real pyramid of MSG-GAN and ProGAN: repeated 2x2 average pooling,
    returned coarsest to finest."""
    pyramid = [images]
    for _ in range(scales - 1):
        pyramid.append(nn.functional.avg_pool2d(pyramid[-1], 2))
    return pyramid[::-1]
