"""Drawing images from a generator: the one seeded sampler that sample
grids, metrics and ``gankit sample`` share."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from gankit.contracts import Generator
from gankit.images import ImageList


def seeded_latents(generator: Generator, n: int, seed: int, share: range | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` latents and, for a conditional generator, ``n`` labels drawn
    uniformly, from a CPU random generator seeded by ``seed``: the same seed
    gives the same latents on any device. Latents are drawn first, then labels.
    With ``share`` (a process's ``gankit.distributed.part(n)``), only those
    numbered in it: the ones it would be among all ``n``."""
    rng = torch.Generator().manual_seed(seed)
    z = generator.sample_latents(n, "cpu", rng)
    labels = torch.randint(generator.num_classes, (n,), generator=rng) if generator.num_classes else None
    if share is not None:
        z, labels = z[share.start : share.stop], labels[share.start : share.stop] if labels is not None else None
    return z, labels


def grid_latents(generator: Generator, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Latents and labels for a grid of about ``n`` samples, and how many
    samples each row of the grid holds. An unconditional generator's grid is
    about square: ``n`` seeded latents, ⌊√n⌋ to a row. A conditional one's
    has one row per class, row k of class k, ⌊n / classes⌋ samples each (at
    least one), and every row the same latents: down a column only the label
    changes."""
    classes = generator.num_classes
    if not classes:
        z, _ = seeded_latents(generator, n, seed)
        return z, None, max(1, math.isqrt(n))
    per_row = max(1, n // classes)
    z, _ = seeded_latents(generator, per_row, seed)
    return z.repeat(classes, *[1] * (z.dim() - 1)), torch.arange(classes).repeat_interleave(per_row), per_row


@contextlib.contextmanager
def batch_statistics(generator: torch.nn.Module) -> Iterator[None]:
    """Within it, ``generator``'s batch norms normalize by each batch's own
    statistics (training mode) while everything else stays as it is; their
    running statistics are put back on leaving. Early in training a DCGAN-like
    generator draws far better pictures this way than from its running
    statistics, and scripts that sample without ``eval()`` do so."""
    norms = [module for module in generator.modules() if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(module.training, [buffer.clone() for buffer in module.buffers(recurse=False)]) for module in norms]
    try:
        for module in norms:
            module.train()
        yield
    finally:
        for module, (training, buffers) in zip(norms, saved, strict=True):
            module.train(training)
            for buffer, value in zip(module.buffers(recurse=False), buffers, strict=True):
                buffer.copy_(value)


@torch.no_grad()
def generated_batches(
    generator: Generator,
    z: torch.Tensor,
    labels: torch.Tensor | None,
    batch_size: int,
    device: torch.device | str | None = None,
    batch_stats: bool = False,
) -> Iterator[ImageList]:
    """Run ``generator`` in eval mode over ``z`` (and ``labels``) in batches;
    yields every scale of each batch as float32 on ``device`` (the latents'
    device when None). With ``batch_stats``, its batch norms use each batch's
    statistics instead (:func:`batch_statistics`), so ``batch_size`` matters.
    The generator's modes and running statistics are restored afterwards."""
    device = torch.device(device) if device is not None else z.device
    was_training = generator.training
    generator.eval()
    try:
        with batch_statistics(generator) if batch_stats else contextlib.nullcontext():
            for start in range(0, z.shape[0], batch_size):
                chunk_z = z[start : start + batch_size].to(device)
                chunk_labels = labels[start : start + batch_size].to(device) if labels is not None and generator.num_classes else None
                yield [image.float() for image in generator(chunk_z, chunk_labels)]
    finally:
        generator.train(was_training)


def generate(generator: Generator, z: torch.Tensor, labels: torch.Tensor | None, batch_size: int, batch_stats: bool = False) -> ImageList:
    """Every scale of the images for ``z`` (and ``labels``), generated in
    batches on the latents' device and gathered on the CPU."""
    chunks = [[image.cpu() for image in batch] for batch in generated_batches(generator, z, labels, batch_size, batch_stats=batch_stats)]
    return [torch.cat(scale) for scale in zip(*chunks, strict=True)]


def sample_images(generator: Generator, n: int, seed: int, batch_size: int, device: torch.device | str) -> Iterator[ImageList]:
    """``n`` images with seeded latents and uniform labels
    (:func:`seeded_latents`), in batches on ``device``."""
    z, labels = seeded_latents(generator, n, seed)
    return generated_batches(generator, z, labels, batch_size, device)
