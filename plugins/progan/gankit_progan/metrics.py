"""ProGAN's two image metrics (Karras et al. 2018, §5 and Table 1): the
sliced Wasserstein distance between the Laplacian-pyramid patches of real
and generated images, and MS-SSIM among pairs of generated images.

Both work, as the official metric code does, on 8-bit images. A float image
in [-1, 1] is quantized by :func:`gankit.metrics.features.quantize`, the
level nearest 127.5·x + 127.5, saturated to [0, 255]: the official
``Gs.run(..., out_mul=127.5, out_add=127.5, out_dtype=np.uint8)`` gives the
same levels (it differs only on exact ties, which it rounds to even). Grey
images are repeated to three channels, as the official evaluation does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from gankit import Metric, MetricContext, UserError, gather_rows, generate, process_part, process_total, quantize, seeded_latents
from gankit.options import help_text, non_negative, positive
from gankit_progan.networks import upsample_to

# --------------------------------------------------------------------------
# Shared: 8-bit images, real ones from the dataset, generated ones in chunks


def _rgb(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _stream_seed(seed: int, stream: int) -> int:
    """An independent random stream for each use, so that which real images
    are read does not change where patches are cut or how they are projected."""
    return seed * 1_000_003 + stream


def _rng(seed: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed(_stream_seed(seed, stream))


_REALS, _LATENTS, _PATCHES, _DIRECTIONS = 0, 1, 2, 3
_CHUNK = 256  # images per piece of work


def _image_resolution(ctx: MetricContext, what: str, minimum: int) -> int:
    context = ctx.dataset.context
    if context.resolution < minimum:
        raise UserError(f"{what} needs images of at least {minimum}x{minimum}; the data has resolution {context.resolution}")
    return context.resolution


def _real_chunks(ctx: MetricContext, count: int, seed: int, share: range | None = None) -> tuple[int, Iterator[torch.Tensor]]:
    """``count`` real images, or all of them when the dataset has fewer: a
    random subset drawn from ``seed``, in index order, in chunks of
    ``_CHUNK`` (only the chunks numbered in ``share``, when given)."""
    ctx.dataset.prepare()
    total = len(ctx.dataset)
    if count >= total:
        indices = list(range(total))
    else:
        indices = sorted(torch.randperm(total, generator=_rng(seed, _REALS))[:count].tolist())

    def chunks() -> Iterator[torch.Tensor]:
        for number in share if share is not None else range(_chunk_count(len(indices))):
            images, _ = ctx.dataset.__getitems__(indices[number * _CHUNK : (number + 1) * _CHUNK])
            yield _rgb(quantize(images))

    return len(indices), chunks()


def _chunk_count(count: int) -> int:
    return -(-count // _CHUNK)


def _generated_chunks(ctx: MetricContext, count: int, seed: int, resolution: int, share: range | None = None) -> Iterator[torch.Tensor]:
    """``count`` images of the generator (its finest scale), in chunks of
    ``_CHUNK`` (only the chunks numbered in ``share``, when given).
    An image smaller than the data's, from a growing generator evaluated
    early, is upsampled (nearest), as the official generator outputs it."""
    generator = ctx.generator
    z, labels = seeded_latents(generator, count, _stream_seed(seed, _LATENTS))
    for number in share if share is not None else range(_chunk_count(count)):
        start = number * _CHUNK
        chunk_labels = labels[start : start + _CHUNK] if labels is not None else None
        image = generate(generator, z[start : start + _CHUNK].to(ctx.device), chunk_labels, ctx.batch_size)[-1]
        if image.shape[-1] > resolution:
            raise ValueError(
                f"the generator makes {image.shape[-1]}x{image.shape[-1]} images, larger than the data's {resolution}x{resolution}"
            )
        yield _rgb(quantize(upsample_to(image, resolution)))


# --------------------------------------------------------------------------
# Sliced Wasserstein distance (§5; the official metrics/sliced_wasserstein.py)

#: The 5x5 binomial filter of the Laplacian pyramid (cv2.pyrDown's).
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_BINOMIAL_2D = torch.outer(_BINOMIAL, _BINOMIAL) / 256.0


def _blur(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 5x5 convolution with mirrored borders (scipy's mode='mirror')."""
    channels = images.shape[1]
    weight = kernel.to(images.device, images.dtype).expand(channels, 1, 5, 5)
    return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="reflect"), weight, groups=channels)


def pyramid_down(images: torch.Tensor) -> torch.Tensor:
    """Blur, then keep every other pixel (cv2.pyrDown)."""
    return _blur(images, _BINOMIAL_2D)[:, :, ::2, ::2]


def pyramid_up(images: torch.Tensor) -> torch.Tensor:
    """Insert zeros between the pixels, then blur with 4x the filter (cv2.pyrUp)."""
    n, c, h, w = images.shape
    spread = images.new_zeros(n, c, 2 * h, 2 * w)
    spread[:, :, ::2, ::2] = images
    return _blur(spread, 4.0 * _BINOMIAL_2D)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Finest first: each level is the image less the upsampled next one;
    the last level is the blurred residual."""
    pyramid = [images.float()]
    for _ in range(1, levels):
        pyramid.append(pyramid_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - pyramid_up(pyramid[-1])
    return pyramid


def swd_resolutions(resolution: int, coarsest: int = 16) -> list[int]:
    """The pyramid's levels, finest first, down to 16x16 (the official
    code's); data smaller than that gets one level."""
    resolutions = [resolution]
    while resolutions[-1] // 2 >= coarsest:
        resolutions.append(resolutions[-1] // 2)
    return resolutions


def _patches(level: torch.Tensor, per_image: int, size: int, rng: torch.Generator) -> torch.Tensor:
    """``per_image`` random size x size patches of each image, anywhere they
    fit: [n·per_image, C·size²]."""
    n, c, h, w = level.shape
    half = size // 2
    rows = torch.randint(half, h - half, (n, per_image, 1, 1), generator=rng)
    cols = torch.randint(half, w - half, (n, per_image, 1, 1), generator=rng)
    offsets = torch.arange(-half, half + 1)
    index = ((rows + offsets[:, None]) * w + cols + offsets[None, :]).to(level.device)  # [n, P, size, size]
    index = index.reshape(n, 1, -1).expand(n, c, -1)
    patches = level.reshape(n, c, h * w).gather(2, index).reshape(n, c, per_image, size * size)
    return patches.transpose(1, 2).reshape(n * per_image, c * size * size)


def _normalize(descriptors: torch.Tensor, channels: int) -> torch.Tensor:
    """Zero mean and unit standard deviation per colour channel, over the
    set's own patches and pixels (official finalize_descriptors)."""
    per_channel = descriptors.view(descriptors.shape[0], channels, -1)
    mean = per_channel.mean(dim=(0, 2), keepdim=True)
    std = per_channel.std(dim=(0, 2), keepdim=True, unbiased=False)
    return ((per_channel - mean) / std).reshape(descriptors.shape[0], -1)


def swd_patches(
    chunks: Iterable[torch.Tensor],
    levels: int,
    patches_per_image: int,
    patch_size: int,
    seed: int,
    device: torch.device | str = "cpu",
    first_chunk: int = 0,
) -> list[torch.Tensor]:
    """The raw patch descriptors of chunks of RGB images, one tensor per
    pyramid level, finest first. Each chunk's patches are placed by a stream
    of its own, numbered from ``first_chunk``, so that a set described in
    parts (one per process) is cut where it would be described whole."""
    found: list[list[torch.Tensor]] = [[] for _ in range(levels)]
    for number, chunk in enumerate(chunks, start=first_chunk):
        rng = torch.Generator().manual_seed(_stream_seed(_stream_seed(seed, _PATCHES), number))
        for level, image in enumerate(laplacian_pyramid(chunk.to(device), levels)):
            found[level].append(_patches(image, patches_per_image, patch_size, rng))
    width = 3 * patch_size * patch_size  # a process given no chunk still returns its (empty) part
    return [torch.cat(level) if level else torch.zeros(0, width, device=device) for level in found]


def swd_descriptors(
    chunks: Iterable[torch.Tensor], levels: int, patches_per_image: int, patch_size: int, seed: int, device: torch.device | str = "cpu"
) -> list[torch.Tensor]:
    """The normalized patch descriptors of a set of RGB images, one tensor
    per pyramid level, finest first. Two sets described with the same
    ``seed`` and chunking take their patches at the same places."""
    return [_normalize(level, 3) for level in swd_patches(chunks, levels, patches_per_image, patch_size, seed, device)]


def _sorted_rows(x: torch.Tensor) -> torch.Tensor:
    """Each row sorted. On the CPU numpy's vectorized sort is several times
    faster than torch's, with the same result."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return x.sort(dim=1).values


def _sliced_wasserstein(
    a: torch.Tensor, b: torch.Tensor, directions: int, per_repeat: int, rng: torch.Generator, shared: bool = False
) -> float:
    """The mean, over random unit directions, of the mean absolute
    difference between the sorted projections of the two sets. With
    ``shared``, each process projects onto its part of the repeats (every
    process draws every direction, so each repeat's are the same) and the
    sums are added."""
    repeats = directions // per_repeat
    mine = process_part(repeats) if shared else range(repeats)
    total = torch.zeros((), dtype=torch.float64)
    for repeat in range(repeats):
        dirs = torch.randn(a.shape[1], per_repeat, generator=rng)
        if repeat not in mine:
            continue
        dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a.device)
        for part in dirs.T.split(32):  # 32 directions at a time bound the memory of the projections
            # [directions, patches], each row contiguous: sorting along rows is far faster than down columns
            gap = _sorted_rows(part @ a.T) - _sorted_rows(part @ b.T)
            total += gap.abs().sum(dim=1).double().sum().cpu()
    if shared:
        total = process_total(total)
    return float(total) / (a.shape[0] * repeats * per_repeat)


def swd_from_descriptors(
    reals: list[torch.Tensor],
    fakes: list[torch.Tensor],
    resolutions: list[int],
    directions: int = 512,
    per_repeat: int = 128,
    seed: int = 0,
    shared: bool = False,
) -> dict[str, float]:
    """SWD ×1e3 per level (``swd_<resolution>``, finest first) and their
    mean (``swd_avg``). With ``shared`` (under torchrun, every process
    holding the same descriptors) the processes share the projections."""
    per_repeat = min(per_repeat, directions)
    if directions % per_repeat:
        raise ValueError(f"directions ({directions}) must be a multiple of the directions drawn per repeat ({per_repeat})")
    rng = _rng(seed, _DIRECTIONS)
    result: dict[str, float] = {}
    for resolution, real, fake in zip(resolutions, reals, fakes, strict=True):
        if real.shape != fake.shape:
            raise ValueError(
                f"the real and generated sets must be described by as many patches: {tuple(real.shape)} vs {tuple(fake.shape)}"
            )
        result[f"swd_{resolution}"] = 1e3 * _sliced_wasserstein(real, fake, directions, per_repeat, rng, shared)
    result["swd_avg"] = sum(result.values()) / len(result)
    return result


def sliced_wasserstein_distance(
    reals: torch.Tensor,
    fakes: torch.Tensor,
    *,
    patches_per_image: int = 128,
    patch_size: int = 7,
    directions: int = 512,
    directions_per_repeat: int = 128,
    coarsest: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """The sliced Wasserstein distance of Karras et al. 2018 (§5) between two
    equally large sets of images, [N, C, H, W], uint8 or float in [-1, 1]:
    ``swd_<resolution>`` for every level of the Laplacian pyramid, finest
    first, and ``swd_avg``, all ×1e3. Deterministic given ``seed``; a set
    against itself gives exactly 0, as both are cut at the same places."""
    if reals.shape != fakes.shape:
        raise ValueError(f"reals and fakes must have the same shape: {tuple(reals.shape)} vs {tuple(fakes.shape)}")
    resolution = reals.shape[-1]
    if resolution < patch_size:
        raise ValueError(f"images of {resolution}x{resolution} are smaller than a {patch_size}x{patch_size} patch")
    resolutions = swd_resolutions(resolution, coarsest)

    def described(images: torch.Tensor) -> list[torch.Tensor]:
        chunks = (_rgb(quantize(images[start : start + _CHUNK])) for start in range(0, images.shape[0], _CHUNK))
        return swd_descriptors(chunks, len(resolutions), patches_per_image, patch_size, seed, device)

    return swd_from_descriptors(described(reals), described(fakes), resolutions, directions, directions_per_repeat, seed)


@attrs.define(kw_only=True)
class SlicedWassersteinOptions:
    """Sliced Wasserstein distance of Laplacian-pyramid patches (Karras et al. 2018, §5), ×1e3 per level."""

    images: int = attrs.field(
        default=16384, validator=positive(), metadata=help_text("how many real and how many generated images (16384 in the paper)")
    )
    seed: int = attrs.field(
        default=0, validator=non_negative(), metadata=help_text("seeds the real subset, the latents, the patches and the directions")
    )


class SlicedWasserstein(Metric):
    """Sliced Wasserstein distance of Laplacian-pyramid patches (Karras et al. 2018, §5), ×1e3 per level."""

    patches_per_image = 128
    patch_size = 7
    directions = 512

    def __init__(self, options: SlicedWassersteinOptions) -> None:
        self.options = options

    def evaluate(self, ctx: MetricContext) -> dict[str, float | int | str]:
        resolution = _image_resolution(ctx, "swd", self.patch_size)
        resolutions = swd_resolutions(resolution)
        seed = self.options.seed
        # as many generated images as real ones: the sorted projections are compared one to one
        levels = len(resolutions)
        # each process describes its share of the chunks, real and generated; the descriptors of all are gathered
        ctx.dataset.prepare()
        count = min(self.options.images, len(ctx.dataset))
        share = process_part(_chunk_count(count))

        def described(chunks: Iterator[torch.Tensor]) -> list[torch.Tensor]:
            patches = swd_patches(chunks, levels, self.patches_per_image, self.patch_size, seed, ctx.device, first_chunk=share.start)
            return [_normalize(gather_rows(level), 3) for level in patches]

        real = described(_real_chunks(ctx, count, seed, share)[1])
        fake = described(_generated_chunks(ctx, count, seed, resolution, share))
        scores = swd_from_descriptors(real, fake, resolutions, self.directions, seed=seed, shared=True)
        result: dict[str, float | int | str] = {key: round(value, 4) for key, value in scores.items()}
        result.update(
            n_real=count,
            n_fake=count,
            images="uint8",
            protocol="laplacian 5x5 binomial to 16px, 128 7x7 patches/image/level, 512 directions, x1e3",
        )
        return result


# --------------------------------------------------------------------------
# MS-SSIM among generated images (Table 1, after Odena et al. 2017)

#: Wang et al. 2003's weights for 5 scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WINDOW = 11
MS_SSIM_SIGMA = 1.5
#: The coarsest scale kept is at least this wide, so that the 11x11 window
#: has room to slide (torchmetrics asks for a little more than 11).
MS_SSIM_COARSEST = 16


def ms_ssim_scales(resolution: int) -> tuple[float, ...]:
    """The weights for images of ``resolution``: the 5 standard ones from
    256x256 up; below that only the finest scales whose coarsest is at least
    16x16 (4 at 128, 3 at 64, 2 at 32, 1 at 16), their weights scaled to the
    same total as the five, so that every kept scale keeps its share."""
    if resolution < MS_SSIM_COARSEST:
        raise UserError(
            f"ms_ssim needs images of at least {MS_SSIM_COARSEST}x{MS_SSIM_COARSEST} for its "
            f"{MS_SSIM_WINDOW}x{MS_SSIM_WINDOW} window; the data has resolution {resolution}"
        )
    scales = min(len(MS_SSIM_WEIGHTS), 1 + int(math.log2(resolution // MS_SSIM_COARSEST)))
    kept = MS_SSIM_WEIGHTS[:scales]
    return tuple(w * sum(MS_SSIM_WEIGHTS) / sum(kept) for w in kept)


def ms_ssim_pairs(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each pair (first[i], second[i]) of uint8 or [-1, 1] images,
    through torchmetrics: an 11x11 Gaussian window of σ 1.5, 2x2 average
    pooling between scales, SSIM over all channels together, negative
    values clipped to 0, as the official code does."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    weights = ms_ssim_scales(first.shape[-1])
    return multiscale_structural_similarity_index_measure(
        _rgb(quantize(first)).float(),
        _rgb(quantize(second)).float(),
        gaussian_kernel=True,
        sigma=MS_SSIM_SIGMA,
        kernel_size=MS_SSIM_WINDOW,
        reduction="none",
        data_range=255.0,
        betas=weights,
        normalize="relu",
    )


@attrs.define(kw_only=True)
class MSSSIMOptions:
    """MS-SSIM between consecutive pairs of generated images (Karras et al. 2018, Table 1): lower is more diverse."""

    pairs: int = attrs.field(
        default=10000, validator=positive(), metadata=help_text("how many pairs of generated images (10k in the paper)")
    )
    seed: int = attrs.field(default=0, validator=non_negative(), metadata=help_text("seeds the latents (and the real subset)"))
    reals: bool = attrs.field(
        default=False, metadata=help_text("also score as many pairs of real images, the level to compare with (ms_ssim_real)")
    )


class MSSSIM(Metric):
    """MS-SSIM between consecutive pairs of generated images (Karras et al. 2018, Table 1): lower is more diverse."""

    def __init__(self, options: MSSSIMOptions) -> None:
        self.options = options

    def evaluate(self, ctx: MetricContext) -> dict[str, float | int | str]:
        resolution = _image_resolution(ctx, "ms_ssim", MS_SSIM_COARSEST)
        weights = ms_ssim_scales(resolution)
        images = 2 * self.options.pairs
        result: dict[str, float | int | str] = {
            "ms_ssim": round(_mean_over_pairs(_generated_chunks(ctx, images, self.options.seed, resolution)), 5),
            "pairs": self.options.pairs,
        }
        if self.options.reals:
            count, reals = _real_chunks(ctx, images, self.options.seed)
            result["ms_ssim_real"] = round(_mean_over_pairs(reals), 5)
            result["pairs_real"] = count // 2
        result.update(scales=len(weights), window=f"{MS_SSIM_WINDOW}x{MS_SSIM_WINDOW} gaussian sigma {MS_SSIM_SIGMA}", images="uint8")
        return result


def _mean_over_pairs(chunks: Iterable[torch.Tensor]) -> float:
    """Consecutive images make the pairs (0, 1), (2, 3), ...; chunks hold an even number."""
    total, count = 0.0, 0
    for chunk in chunks:
        chunk = chunk[: chunk.shape[0] // 2 * 2]
        if chunk.shape[0]:
            scores = ms_ssim_pairs(chunk[0::2], chunk[1::2])
            total += scores.double().sum().item()
            count += scores.numel()
    return total / max(count, 1)
