"""The sliced Wasserstein distance and MS-SSIM (Karras et al. 2018, §5 and
Table 1) against the official metric code's definitions and against
distortions they must see."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit import BuildContext, MetricContext, default_registry, quantize
from gankit_progan import MSSSIM, MSSSIMOptions, SlicedWasserstein, SlicedWassersteinOptions, ms_ssim_pairs, sliced_wasserstein_distance
from gankit_progan.metrics import _normalize, _patches, laplacian_pyramid, ms_ssim_scales, pyramid_down, pyramid_up, swd_resolutions
from gankit_progan.networks import ProGANGenerator, ProGANGeneratorOptions


def _shapes(resolution: int, size: int):
    shapes = default_registry().get("dataset", "shapes")
    return shapes.factory(shapes.options(resolution=resolution, size=size))


@pytest.fixture(scope="module")
def shapes32() -> torch.Tensor:
    dataset = _shapes(resolution=32, size=256)
    return dataset.__getitems__(list(range(256)))[0]


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = 3
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = torch.outer(kernel, kernel) / kernel.sum() ** 2
    floats = images.float()
    blurred = F.conv2d(F.pad(floats, (radius,) * 4, mode="reflect"), kernel.expand(3, 1, -1, -1), groups=3)
    return blurred.round().clamp(0, 255).to(torch.uint8)


def test_float_images_are_quantized_as_the_official_code_does():
    floats = torch.rand(100_000, generator=torch.Generator().manual_seed(0)) * 2.4 - 1.2
    official = (floats * 127.5 + 127.5).round().clamp(0, 255).to(torch.uint8)  # Gs.run(out_mul=127.5, out_add=127.5, out_dtype=uint8)
    levels = floats.double() * 127.5 + 127.5
    # within float32's rounding of a half level the two formulas may round to either neighbour (about 1 value in 200,000)
    on_a_half = (levels - levels.floor() - 0.5).abs() < 1e-4
    difference = quantize(floats).int() - official.int()
    assert torch.equal(difference[~on_a_half], torch.zeros_like(difference[~on_a_half]))
    assert difference[on_a_half].abs().max() <= 1


def test_the_pyramid_matches_the_official_scipy_filters():
    ndimage = pytest.importorskip("scipy.ndimage")
    import numpy as np

    images = torch.rand(2, 3, 32, 32) * 255
    binomial = np.float32([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]) / 256.0
    official_down = ndimage.convolve(images.numpy(), binomial[None, None], mode="mirror")[:, :, ::2, ::2]
    assert np.allclose(pyramid_down(images).numpy(), official_down, atol=1e-3)
    small = torch.rand(2, 3, 16, 16) * 255
    spread = np.zeros((2, 3, 32, 32), np.float32)
    spread[:, :, ::2, ::2] = small.numpy()
    official_up = ndimage.convolve(spread, binomial[None, None] * 4.0, mode="mirror")
    assert np.allclose(pyramid_up(small).numpy(), official_up, atol=1e-3)


def test_the_laplacian_pyramid_reconstructs_the_image():
    images = torch.rand(2, 3, 64, 64) * 255
    pyramid = laplacian_pyramid(images, 3)
    assert [level.shape[-1] for level in pyramid] == [64, 32, 16] == swd_resolutions(64)
    rebuilt = pyramid_up(pyramid_up(pyramid[2]) + pyramid[1]) + pyramid[0]
    assert torch.allclose(rebuilt, images, atol=1e-3)


def test_patches_are_7x7_neighbourhoods_where_they_fit():
    level = torch.arange(2 * 3 * 12 * 12, dtype=torch.float32).reshape(2, 3, 12, 12)
    patches = _patches(level, 50, 7, torch.Generator().manual_seed(0)).reshape(2, 50, 3, 7, 7)
    for image in range(2):
        for patch in patches[image]:
            top, left = divmod(int(patch[0, 0, 0].item()) - image * 3 * 144, 12)
            assert 0 <= top <= 5 and 0 <= left <= 5  # the centre is at least 3 pixels from every border
            assert torch.equal(patch, level[image, :, top : top + 7, left : left + 7])


def test_descriptors_are_normalized_per_channel():
    descriptors = torch.randn(500, 3 * 49) * torch.tensor([1.0, 5.0, 0.1]).repeat_interleave(49) + 3
    per_channel = _normalize(descriptors, 3).view(500, 3, 49)
    assert torch.allclose(per_channel.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(per_channel.std(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-4)


def test_swd_keys_are_every_level_finest_first_and_the_average():
    images = torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)
    result = sliced_wasserstein_distance(images, images.flip(0), patches_per_image=16, directions=64, directions_per_repeat=32)
    assert list(result) == ["swd_64", "swd_32", "swd_16", "swd_avg"]
    assert result["swd_avg"] == pytest.approx(sum(result[k] for k in ("swd_64", "swd_32", "swd_16")) / 3)


def test_swd_of_a_set_with_itself_is_0_and_grows_with_blur_and_noise(shapes32):
    reals, others = shapes32[:48], shapes32[128:176]
    options = {"patches_per_image": 32, "directions": 64, "directions_per_repeat": 32}
    assert sliced_wasserstein_distance(reals, reals, **options)["swd_avg"] == 0.0
    baseline = sliced_wasserstein_distance(reals, others, **options)  # another sample of the same distribution
    blurred = [sliced_wasserstein_distance(reals, _blur(others, sigma), **options) for sigma in (1.0, 3.0)]
    torch.manual_seed(0)
    noisy = [
        sliced_wasserstein_distance(reals, quantize(others.float() / 127.5 - 1 + amount * torch.randn(others.shape)), **options)
        for amount in (0.05, 0.2)
    ]
    for distorted in (blurred, noisy):
        for key in ("swd_32", "swd_avg"):  # the finest level carries both distortions
            scores = [baseline[key]] + [result[key] for result in distorted]
            assert scores == sorted(scores), (key, scores)
        assert distorted[0]["swd_32"] > 1.5 * baseline["swd_32"]


def test_swd_is_deterministic_given_the_seed(shapes32):
    a, b = shapes32[:64], shapes32[64:128]
    options = {"patches_per_image": 16, "directions": 64}
    once = sliced_wasserstein_distance(a, b, seed=3, **options)
    assert once == sliced_wasserstein_distance(a, b, seed=3, **options)
    assert once != sliced_wasserstein_distance(a, b, seed=4, **options)


def _context(generator, size: int = 40, resolution: int = 32) -> MetricContext:
    dataset = _shapes(resolution=resolution, size=size)
    dataset.prepare()
    return MetricContext(generator=generator.eval(), dataset=dataset, device=torch.device("cpu"), batch_size=16, seed=0)


def _generator(resolution: int = 32) -> ProGANGenerator:
    torch.manual_seed(0)
    return ProGANGenerator(ProGANGeneratorOptions(latent_size=16, fmap_base=64, fmap_max=16), BuildContext(resolution=resolution))


def test_the_swd_metric_uses_every_real_image_when_there_are_fewer_than_asked():
    metric = SlicedWasserstein(SlicedWassersteinOptions(images=100, seed=1))
    result = metric.evaluate(_context(_generator(), size=12))
    assert [key for key in result if key.startswith("swd_")] == ["swd_32", "swd_16", "swd_avg"]
    assert result["n_real"] == result["n_fake"] == 12
    assert all(isinstance(result[key], float) and result[key] > 0 for key in ("swd_32", "swd_16", "swd_avg"))
    assert result == metric.evaluate(_context(_generator(), size=12))  # deterministic given the seed


def test_ms_ssim_keeps_the_scales_an_11x11_window_fits():
    assert ms_ssim_scales(1024) == ms_ssim_scales(256) == pytest.approx((0.0448, 0.2856, 0.3001, 0.2363, 0.1333))
    assert [len(ms_ssim_scales(r)) for r in (128, 64, 32, 16)] == [4, 3, 2, 1]
    assert sum(ms_ssim_scales(32)) == pytest.approx(sum(ms_ssim_scales(256)))
    assert ms_ssim_scales(64)[1] / ms_ssim_scales(64)[0] == pytest.approx(0.2856 / 0.0448)


def test_ms_ssim_is_1_for_identical_images_and_falls_with_difference(shapes32):
    a, b = shapes32[:16], shapes32[16:32]
    assert torch.allclose(ms_ssim_pairs(a, a), torch.ones(16), atol=1e-3)
    blurred = ms_ssim_pairs(a, _blur(a, 1.0)).mean()
    unrelated = ms_ssim_pairs(a, b).mean()
    assert 1.0 > blurred > unrelated > 0.0
    # at 256x256 and above, the library's standard five scales
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    big = F.interpolate(shapes32[:2].float(), size=256, mode="bilinear").round()
    other = F.interpolate(shapes32[2:4].float(), size=256, mode="bilinear").round()
    standard = multiscale_structural_similarity_index_measure(big, other, data_range=255.0, reduction="none")
    assert torch.allclose(ms_ssim_pairs(big.to(torch.uint8), other.to(torch.uint8)), standard, atol=1e-5)


def test_ms_ssim_metric_sees_a_collapsed_generator():
    class Collapsed(torch.nn.Module):  # one image, whatever the latent
        latent_size, num_classes = 16, 0

        def __init__(self, generator):
            super().__init__()
            self.generator = generator

        def sample_latents(self, n, device="cpu", generator=None):
            return torch.randn(n, 16, device=device, generator=generator)

        def forward(self, z, labels=None):
            return self.generator(z[:1].expand_as(z).contiguous(), labels)

    generator = _generator()
    metric = MSSSIM(MSSSIMOptions(pairs=16, reals=True))
    diverse = metric.evaluate(_context(generator))
    collapsed = metric.evaluate(_context(Collapsed(generator)))
    assert collapsed["ms_ssim"] == pytest.approx(1.0, abs=1e-4)
    assert diverse["ms_ssim"] < 0.9 and 0 < diverse["ms_ssim_real"] < 0.9
    assert diverse["scales"] == 2 and diverse["pairs"] == 16 and diverse["pairs_real"] == 16
