"""A procedural dataset that needs no download: one coloured, textured shape
per image on a solid or gradient background, labelled by the shape's kind.

Every image is drawn from its own generator, seeded by ``(seed, index)``, so
image ``i`` is the same whatever the dataset's size or the order of reading.
Shapes are drawn from signed distance functions, which gives exact
antialiasing without supersampling and lets a whole batch be drawn with a few
numpy operations.

The fill texture (stripes, checks or dots) has a fixed number of periods
across the image, too fine for a 16x16 image to hold. It is band-limited
analytically, so it fades out where a resolution cannot show it instead of
aliasing: 32x32 images are plain, 64x64 and larger carry the texture, and
multi-scale networks have detail to learn at their finest scales.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import torch

from gankit.contracts import BuildContext
from gankit.datasets.mirror import HflipMirrored, gather_mirrored
from gankit.options import help_text, non_negative, positive, power_of_two


@attrs.define(kw_only=True)
class ShapesOptions:
    """The built-in ``shapes`` dataset: coloured shapes on varied backgrounds,
    labelled by kind (circle, square, triangle, ring, cross, star)."""

    resolution: int = attrs.field(default=32, validator=power_of_two(8), metadata=help_text("image size in pixels, a power of two >= 8"))
    size: int = attrs.field(
        default=10000, validator=positive(), metadata=help_text("number of distinct images (generated in memory by prepare)")
    )
    seed: int = attrs.field(default=0, validator=non_negative(), metadata=help_text("seeds the images; image i depends only on (seed, i)"))
    hflip: bool = attrs.field(
        default=False, metadata=help_text("add horizontal mirror images: the dataset doubles, index size + i being image i flipped")
    )


KINDS: tuple[str, ...] = ("circle", "square", "triangle", "ring", "cross", "star")

#: Texture periods across the image: a 16x16 image cannot hold them.
_TEXTURE_FREQUENCY = 20.0
#: Outline width as a fraction of the image: one pixel at 32x32.
_OUTLINE_WIDTH = 1.0 / 32.0
#: How far the fill's luminance keeps from the background's.
_CONTRAST = 0.3
#: Images drawn per numpy batch: large enough to amortise numpy's overhead,
#: small enough to stay in cache at 32x32.
_CHUNK = 128

# Layout of the uniform numbers each image draws; fixed, so that image i stays
# the same when features are added at the end.
_KIND, _EXTENT, _CX, _CY, _ANGLE = 0, 1, 2, 3, 4
_GRADIENT, _BG1, _BG2, _BG2_LUMA, _GRADIENT_ANGLE = 5, 6, 9, 12, 13
_FILL, _FILL_SIDE, _FILL_LUMA = 14, 17, 18
_TEXTURE, _TEXTURE_ANGLE, _TEXTURE_PHASE = 19, 20, 21
_OUTLINE, _STAR_RATIO = 24, 25
_DRAWS = 26
#: An outline that is none of KINDS, drawn only as an unrecognizable image:
#: a circle whose radius varies smoothly with the angle.
_BLOB = len(KINDS)
#: The blob's radius is r (1 + sum_k a_k cos(k theta + phi_k)), k = 1, 2, 3,
#: a_k uniform in these ranges: from an egg to a bean or a rounded
#: triangle, always visibly not a circle.
_BLOB_AMPLITUDES = ((0.0, 0.2), (0.12, 0.3), (0.12, 0.3))

_LUMA = np.array([0.299, 0.587, 0.114])


class ShapesDataset(HflipMirrored):
    """Procedural coloured shapes, labelled by kind; deterministic from the seed."""

    shuffle: ClassVar[bool] = True
    kinds: ClassVar[tuple[str, ...]] = KINDS

    def __init__(self, options: ShapesOptions) -> None:
        self.options = options
        self.context = BuildContext(resolution=options.resolution, channels=3, num_classes=len(KINDS))
        self.workers = 0  # in memory: reading is an index, not worth a process
        self._images: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.options.size * (2 if self.options.hflip else 1)

    def prepare(self) -> None:
        if self._images is None:
            self._images, self._labels = render_shapes(self.options.seed, range(self.options.size), self.options.resolution)

    def describe(self) -> str:
        options = self.options
        return f"the built-in shapes (seed {options.seed}, {options.size} images at {options.resolution}x{options.resolution})"

    def unrecognizable(self, count: int, rng: torch.Generator) -> torch.Tensor:
        """Images like the data's, backgrounds, colours, sizes and outlines
        drawn as for a real image, whose shape is a blob of none of the six
        kinds: the answer a classifier should give "none of these" to."""
        seed = int(torch.randint(2**31, (1,), generator=rng))
        return render_blobs([self.options.seed, seed], count, self.options.resolution)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        self.prepare()
        assert self._images is not None and self._labels is not None
        stored = self._images
        images, source = gather_mirrored(indices, self.options.size, self.options.hflip, lambda source: stored[source], "shapes")
        return images, self._labels[source]


def render_shapes(seed: int, indices: range | list[int], resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``indices`` of the dataset seeded ``seed``: uint8 [N, 3, R, R]
    and int64 labels [N]."""
    draws = np.stack([np.random.default_rng([seed, int(i)]).random(_DRAWS) for i in indices]) if len(indices) else np.zeros((0, _DRAWS))
    params = _parameters(draws)
    return _draw_in_chunks(params, resolution), torch.from_numpy(params["kind"].astype(np.int64))


def render_blobs(seed: list[int], count: int, resolution: int) -> torch.Tensor:
    """``count`` images drawn as real ones are, each shape replaced by a
    blob (``_BLOB``): uint8 [N, 3, R, R]."""
    draws = np.random.default_rng(seed).random((count, _DRAWS + 2 * len(_BLOB_AMPLITUDES)))
    params = _parameters(draws[:, :_DRAWS])
    params["kind"] = np.full(count, _BLOB)
    low, high = np.array(_BLOB_AMPLITUDES).T
    params["blob_amplitudes"] = low + (high - low) * draws[:, _DRAWS : _DRAWS + len(_BLOB_AMPLITUDES)]
    params["blob_phases"] = 2 * np.pi * draws[:, _DRAWS + len(_BLOB_AMPLITUDES) :]
    return _draw_in_chunks(params, resolution)


def _draw_in_chunks(params: dict[str, np.ndarray], resolution: int) -> torch.Tensor:
    """:func:`_draw` over every image of ``params``, ``_CHUNK`` at a time: uint8 [N, 3, R, R]."""
    count = len(params["kind"])
    images = np.empty((count, 3, resolution, resolution), dtype=np.uint8)
    for start in range(0, count, _CHUNK):
        part = {key: value[start : start + _CHUNK] for key, value in params.items()}
        images[start : start + _CHUNK] = _draw(part, resolution)
    return torch.from_numpy(images)


# --------------------------------------------------------------------------
# Parameters: uniform draws to shapes, colours and textures, for all images


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ _LUMA


def _with_luma(rgb: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Move colours towards black or white until their luminance is
    ``target``, keeping their hue."""
    luma = _luma(rgb)[:, None]
    target = target[:, None]
    darker = rgb * target / np.maximum(luma, 1e-6)
    lighter = 1.0 - (1.0 - rgb) * (1.0 - target) / np.maximum(1.0 - luma, 1e-6)
    return np.clip(np.where(target < luma, darker, lighter), 0.0, 1.0)


def _parameters(u: np.ndarray) -> dict[str, np.ndarray]:
    n = len(u)
    kind = np.minimum((u[:, _KIND] * len(KINDS)).astype(np.int64), len(KINDS) - 1)
    extent = 0.35 + 0.4 * u[:, _EXTENT]  # the shape's width, as a fraction of the image
    radius = extent / 2
    margin = np.minimum(1.1 * radius, 0.5)  # triangles and stars reach 1.1 radii
    cx = margin + (1 - 2 * margin) * u[:, _CX]
    cy = margin + (1 - 2 * margin) * u[:, _CY]

    # Background: a gradient's two ends stay within 0.25 of each other in
    # luminance, so that one fill colour can contrast with both.
    bg1 = u[:, _BG1 : _BG1 + 3]
    bg2_luma = np.clip(_luma(bg1) + 0.5 * (u[:, _BG2_LUMA] - 0.5), 0.0, 1.0)
    bg2 = _with_luma(u[:, _BG2 : _BG2 + 3], bg2_luma)
    gradient = u[:, _GRADIENT] < 0.6
    bg2 = np.where(gradient[:, None], bg2, bg1)
    low, high = np.minimum(_luma(bg1), _luma(bg2)), np.maximum(_luma(bg1), _luma(bg2))

    # Fill: darker or lighter than the whole background, by at least _CONTRAST.
    can_dark, can_light = low >= _CONTRAST, high <= 1 - _CONTRAST
    dark = can_dark & (~can_light | (u[:, _FILL_SIDE] < 0.5))
    fill_luma = np.where(
        dark,
        (low - _CONTRAST) * u[:, _FILL_LUMA],
        (high + _CONTRAST) + (1 - high - _CONTRAST) * u[:, _FILL_LUMA],
    )
    fill = _with_luma(u[:, _FILL : _FILL + 3], fill_luma)
    # The texture's second colour goes away from the background where there
    # is room, so that it keeps the shape's contrast; the outline contrasts
    # with the fill.
    away = np.where(dark, 0.0, 1.0)
    room = np.abs(away - _luma(fill)) >= 0.35
    towards = np.where(room, away, 1.0 - away)[:, None]
    texture_colour = fill + 0.45 * (towards - fill)
    outline_colour = fill + 0.75 * (np.where(_luma(fill) > 0.5, 0.0, 1.0)[:, None] - fill)

    # Texture: 0 plain, 1 stripes, 2 checks, 3 hexagonal dots, as a sum of
    # 1, 2 or 3 cosine waves of the same frequency.
    texture = np.minimum((u[:, _TEXTURE] * 4).astype(np.int64), 3)
    waves = np.zeros((n, 3))
    waves[:, 0] = texture >= 1
    waves[:, 1] = texture >= 2
    waves[:, 2] = texture == 3
    waves /= np.maximum(waves.sum(1, keepdims=True), 1)
    step = np.where(texture == 2, np.pi / 2, 2 * np.pi / 3)[:, None]
    wave_angles = 2 * np.pi * u[:, _TEXTURE_ANGLE][:, None] + step * np.arange(3)
    return {
        "kind": kind,
        "radius": radius,
        "cx": cx,
        "cy": cy,
        "angle": 2 * np.pi * u[:, _ANGLE],
        "bg1": bg1,
        "bg2": bg2,
        "gradient_angle": 2 * np.pi * u[:, _GRADIENT_ANGLE],
        "fill": fill,
        "texture_colour": texture_colour,
        "outline_colour": outline_colour,
        "outline": u[:, _OUTLINE] < 0.6,
        "wave_weights": waves,
        "wave_angles": wave_angles,
        "wave_phases": 2 * np.pi * u[:, _TEXTURE_PHASE : _TEXTURE_PHASE + 3],
        "star_ratio": 0.4 + 0.15 * u[:, _STAR_RATIO],
    }


# --------------------------------------------------------------------------
# Drawing: signed distances (negative inside, in image widths), after
# Inigo Quilez's 2D distance functions


def _box(x: np.ndarray, y: np.ndarray, half_x: np.ndarray, half_y: np.ndarray) -> np.ndarray:
    dx, dy = np.abs(x) - half_x, np.abs(y) - half_y
    return np.hypot(np.maximum(dx, 0), np.maximum(dy, 0)) + np.minimum(np.maximum(dx, dy), 0)


def _triangle(x: np.ndarray, y: np.ndarray, half_side: np.ndarray) -> np.ndarray:
    k = np.float32(np.sqrt(3.0))
    x = np.abs(x) - half_side
    y = y + half_side / k
    fold = x + k * y > 0
    x, y = np.where(fold, (x - k * y) / 2, x), np.where(fold, (-k * x - y) / 2, y)
    x = x - np.clip(x, -2 * half_side, 0)
    return -np.hypot(x, y) * np.sign(y)


def _star(x: np.ndarray, y: np.ndarray, radius: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    k1x, k1y = np.float32(0.809016994375), np.float32(-0.587785252292)
    x = np.abs(x)
    for kx, ky in ((k1x, k1y), (-k1x, k1y)):
        d = 2 * np.maximum(kx * x + ky * y, 0)
        x, y = x - d * kx, y - d * ky
    x = np.abs(x)
    y = y - radius
    bax, bay = ratio * -k1y, ratio * k1x - 1
    h = np.clip((x * bax + y * bay) / (bax * bax + bay * bay), 0, radius)
    return np.hypot(x - bax * h, y - bay * h) * np.sign(y * bax - x * bay)


def _distance(kind: int, x: np.ndarray, y: np.ndarray, r: np.ndarray, star_ratio: np.ndarray) -> np.ndarray:
    name = KINDS[kind]
    if name == "circle":
        return np.hypot(x, y) - r
    if name == "square":
        return _box(x, y, 0.8 * r, 0.8 * r)
    if name == "triangle":
        return _triangle(x, y, 1.1 * r * np.float32(np.sqrt(3.0) / 2))  # circumradius 1.1 r
    if name == "ring":
        return np.abs(np.hypot(x, y) - 0.75 * r) - 0.25 * r
    if name == "cross":
        return np.minimum(_box(x, y, r, 0.3 * r), _box(x, y, 0.3 * r, r))
    return _star(x, y, 1.1 * r, star_ratio)


def _blob(x: np.ndarray, y: np.ndarray, r: np.ndarray, amplitudes: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """A star-shaped blob, its largest radius 1.1 r (a triangle's or star's
    reach); the radial distance is divided by the boundary's slope, which
    makes it a signed distance to first order."""
    rho, theta = np.hypot(x, y), np.arctan2(y, x)
    scale = 1.1 * r / (1 + amplitudes.sum(axis=1, keepdims=True)[:, :, None])  # [n, 1, 1]
    radius, slope = np.ones_like(theta), np.zeros_like(theta)
    for k in range(amplitudes.shape[1]):
        a, phi = amplitudes[:, k, None, None], phases[:, k, None, None]
        radius = radius + a * np.cos((k + 1) * theta + phi)
        slope = slope - (k + 1) * a * np.sin((k + 1) * theta + phi)
    radius, slope = scale * radius, scale * slope
    return (rho - radius) / np.sqrt(1 + (slope / np.maximum(rho, 1e-6)) ** 2)


def _draw(p: dict[str, np.ndarray], resolution: int) -> np.ndarray:
    n = len(p["kind"])
    f32 = np.float32

    def col(values: np.ndarray) -> np.ndarray:  # [n] -> [n, 1, 1] for broadcasting over pixels
        return values.astype(f32)[:, None, None]

    grid = (np.arange(resolution, dtype=f32) + 0.5) / resolution  # pixel centres in image widths
    gx, gy = grid[None, None, :], grid[None, :, None]

    # Background gradient spans the image exactly, corner to corner.
    ca, sa = col(np.cos(p["gradient_angle"])), col(np.sin(p["gradient_angle"]))
    t = np.clip(0.5 + ((gx - 0.5) * ca + (gy - 0.5) * sa) / (np.abs(ca) + np.abs(sa)), 0, 1)[:, None]
    bg1, bg2 = p["bg1"].astype(f32)[:, :, None, None], p["bg2"].astype(f32)[:, :, None, None]
    background = bg1 + (bg2 - bg1) * t

    # Shape coordinates: centred, rotated by the shape's angle.
    x0, y0 = gx - col(p["cx"]), gy - col(p["cy"])
    c, s = col(np.cos(p["angle"])), col(np.sin(p["angle"]))
    x, y = x0 * c + y0 * s, y0 * c - x0 * s
    distance = np.empty((n, resolution, resolution), dtype=f32)
    for kind in range(len(KINDS)):
        chosen = p["kind"] == kind
        if chosen.any():
            distance[chosen] = _distance(kind, x[chosen], y[chosen], col(p["radius"][chosen]), col(p["star_ratio"][chosen]))
    blobs = p["kind"] == _BLOB
    if blobs.any():
        amplitudes, phases = p["blob_amplitudes"][blobs].astype(f32), p["blob_phases"][blobs].astype(f32)
        distance[blobs] = _blob(x[blobs], y[blobs], col(p["radius"][blobs]), amplitudes, phases)

    # A linear ramp one pixel wide is the box-filtered coverage of an edge.
    coverage = np.clip(0.5 - distance * resolution, 0, 1)
    inner = np.clip(0.5 - (distance + _OUTLINE_WIDTH) * resolution, 0, 1)
    inner = np.where(col(p["outline"]) > 0, inner, coverage)

    # Texture: cosine waves, each scaled by the box filter's response at its
    # frequency and faded out before the Nyquist limit, so that a resolution
    # too low for it shows the plain fill instead of moire.
    frequency = _TEXTURE_FREQUENCY / resolution  # cycles per pixel
    texture = np.zeros((n, resolution, resolution), dtype=f32)
    for w in range(3):
        weight = p["wave_weights"][:, w]
        if not weight.any():
            continue
        fx, fy = frequency * np.cos(p["wave_angles"][:, w]), frequency * np.sin(p["wave_angles"][:, w])
        response = np.sinc(fx) * np.sinc(fy) * np.clip((0.5 - frequency) / 0.15, 0, 1)
        if not (weight * response).any():
            continue
        phase = 2 * np.pi * (gx * col(fx * resolution) + gy * col(fy * resolution)) + col(p["wave_phases"][:, w])
        texture += col(weight * response) * (0.5 + 0.5 * np.cos(phase))
    fill, other = p["fill"].astype(f32)[:, :, None, None], p["texture_colour"].astype(f32)[:, :, None, None]
    shape = fill + (other - fill) * texture[:, None]

    outline = p["outline_colour"].astype(f32)[:, :, None, None]
    image = background * (1 - coverage[:, None]) + shape * inner[:, None] + outline * (coverage - inner)[:, None]
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
