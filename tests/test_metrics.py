"""FID, KID and precision/recall: the scores against closed forms and toy
answers, the resize filters against independent implementations, and how
the extractor is found. A stand-in TorchScript extractor replaces Inception,
so nothing here needs the weights."""

from __future__ import annotations

import math
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gankit.datasets import ShapesDataset, ShapesOptions
from gankit.errors import UserError
from gankit.images import quantize
from gankit.metrics import inception
from gankit.metrics.features import Features, dataset_features
from gankit.metrics.inception import find_extractor, load_extractor, resize_for_inception, save_stand_in_extractor, tf1_bilinear_weights
from gankit.metrics.scores import (
    frechet_distance,
    kernel_distance,
    mean_and_covariance,
    mmd2_unbiased,
    polynomial_kernel,
    precision_recall,
)


def random_covariance(dim: int, rng: np.random.Generator) -> np.ndarray:
    factor = rng.standard_normal((dim, dim))
    return factor @ factor.T / dim + 0.1 * np.eye(dim)


def frechet_by_eigenvalues(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Our own Fréchet distance, in float64 without scipy: Tr((Σ1 Σ2)^½) is
    the sum of the square roots of the eigenvalues of the symmetric
    Σ1^½ Σ2 Σ1^½, which has the same spectrum."""
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_root)


def _torch(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [torch.from_numpy(a) for a in arrays]


# --------------------------------------------------------------------------
# FID


def test_fid_of_a_set_against_itself_is_zero():
    features = torch.randn(3000, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
    mean, cov = mean_and_covariance(features)
    assert abs(frechet_distance(mean, cov, mean, cov)) < 1e-8


def test_fid_matches_the_closed_form_of_two_gaussians():
    # Diagonal covariances commute: d² = |μ1 − μ2|² + Σ (√a − √b)²
    a, b = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 9.0, 1.0])
    mu1, mu2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 1.0, 0.0, 3.0])
    closed_form = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(*_torch(mu1, np.diag(a), mu2, np.diag(b))) == pytest.approx(closed_form, rel=1e-10)
    # ... and from samples of those Gaussians, within the estimator's error
    rng = np.random.default_rng(0)
    x = rng.normal(mu1, np.sqrt(a), size=(40000, 4))
    y = rng.normal(mu2, np.sqrt(b), size=(40000, 4))
    estimate = frechet_distance(*mean_and_covariance(torch.from_numpy(x)), *mean_and_covariance(torch.from_numpy(y)))
    assert estimate == pytest.approx(closed_form, rel=0.02)


def test_scipy_sqrtm_agrees_with_our_eigenvalue_computation():
    rng = np.random.default_rng(1)
    for dim in (2, 16, 64):
        mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
        sigma1, sigma2 = random_covariance(dim, rng), random_covariance(dim, rng)
        ours = frechet_by_eigenvalues(mu1, sigma1, mu2, sigma2)
        assert frechet_distance(*_torch(mu1, sigma1, mu2, sigma2)) == pytest.approx(ours, rel=1e-9, abs=1e-9)


def test_mean_and_covariance_match_numpy_in_chunks():
    features = torch.randn(1000, 5, generator=torch.Generator().manual_seed(2))
    mean, cov = mean_and_covariance(features, chunk=128)
    assert np.allclose(mean.numpy(), features.double().numpy().mean(0))
    assert np.allclose(cov.numpy(), np.cov(features.double().numpy(), rowvar=False))


# --------------------------------------------------------------------------
# KID


def test_mmd2_unbiased_matches_its_definition_term_by_term():
    rng = torch.Generator().manual_seed(3)
    x, y = torch.randn(5, 3, generator=rng, dtype=torch.float64), torch.randn(6, 3, generator=rng, dtype=torch.float64) + 0.5

    def k(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a @ b / 3 + 1) ** 3)  # (xᵀy/d + 1)³

    m, n = len(x), len(y)
    within_x = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    within_y = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    across = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert mmd2_unbiased(x, y) == pytest.approx(within_x + within_y - 2 * across, rel=1e-12)


def test_kid_is_unbiased_where_the_biased_estimate_is_not():
    rng = torch.Generator().manual_seed(4)
    unbiased, biased = [], []
    for _ in range(400):
        x, y = torch.randn(20, 4, generator=rng, dtype=torch.float64), torch.randn(20, 4, generator=rng, dtype=torch.float64)
        unbiased.append(mmd2_unbiased(x, y))
        # the V-statistic keeps the i = j terms
        biased.append(float(polynomial_kernel(x, x).mean() + polynomial_kernel(y, y).mean() - 2 * polynomial_kernel(x, y).mean()))
    for values, expect_zero in ((unbiased, True), (biased, False)):
        mean, standard_error = np.mean(values), np.std(values) / math.sqrt(len(values))
        if expect_zero:
            assert abs(mean) < 3 * standard_error, (mean, standard_error)
        else:
            assert mean > 10 * standard_error, (mean, standard_error)


def test_kid_averages_subsets_and_separates_distributions():
    rng = torch.Generator().manual_seed(5)
    real = torch.randn(300, 8, generator=rng)
    same = torch.randn(300, 8, generator=rng)
    shifted = torch.randn(300, 8, generator=rng) + 0.5
    near, near_sd, size = kernel_distance(real, same, subsets=20, subset_size=100, seed=0)
    far, _, _ = kernel_distance(real, shifted, subsets=20, subset_size=100, seed=0)
    assert size == 100 and near_sd > 0
    assert abs(near) < 3 * near_sd and far > near + 10 * near_sd
    assert kernel_distance(real, same, 20, 100, seed=0) == (near, near_sd, size)  # the seed fixes the subsets
    assert kernel_distance(real[:50], same, 3, 1000, seed=0)[2] == 50  # subsets never exceed the smaller set


# --------------------------------------------------------------------------
# Precision and recall


def test_precision_recall_on_a_line_counts_the_kth_neighbour():
    real = torch.arange(10, dtype=torch.float64)[:, None]  # 0 .. 9
    # With k = 3, the ball around 9 reaches 6 (radius 3) and the one around 8
    # reaches 6 and 10 (radius 2): 11.5 is inside, 13 and 20 are not.
    fake = torch.tensor([[0.5], [11.5], [13.0], [20.0]], dtype=torch.float64)
    precision, _ = precision_recall(real, fake, k=3)
    assert precision == pytest.approx(2 / 4)
    # with k = 1 the ball around 9 has radius 1 and 11.5 falls outside
    assert precision_recall(real, fake, k=1)[0] == pytest.approx(1 / 4)


def test_precision_recall_of_a_collapsed_generator():
    rng = torch.Generator().manual_seed(6)
    mode_a = torch.randn(60, 2, generator=rng)
    mode_b = torch.randn(60, 2, generator=rng) + 100.0
    real = torch.cat([mode_a, mode_b])
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    assert precision_recall(real, mode_a.clone()) == (1.0, 0.5)  # every sample is real, half the data is missed
    assert precision_recall(real, torch.randn(60, 2, generator=rng) - 100.0) == (0.0, 0.0)


def test_precision_recall_needs_more_than_k_images():
    with pytest.raises(UserError, match="more than 3"):
        precision_recall(torch.randn(3, 2), torch.randn(10, 2))


# --------------------------------------------------------------------------
# Resizing to 299x299


def test_tf1_bilinear_reproduces_tensorflow_1_resize_bilinear():
    # TF's ResizeBilinear (align_corners=False) of [[2, 2], [4, 4]] to 3x3
    # reads rows 0, 2/3 and 4/3 (clamped to 1): 2, 10/3, 4.
    image = torch.tensor([[2.0, 2.0], [4.0, 4.0]])
    rows, columns = tf1_bilinear_weights(2, 3), tf1_bilinear_weights(2, 3)
    expected = torch.tensor([[2.0, 2.0, 2.0], [10 / 3, 10 / 3, 10 / 3], [4.0, 4.0, 4.0]])
    assert torch.allclose(rows @ image @ columns.T, expected)


@pytest.mark.parametrize("size", [32, 64, 512])
def test_tf1_bilinear_matches_a_shifted_grid_sample(size):
    """An independent formulation: sample at i * in / out with
    grid_sample, whose align_corners=False grid sits half a pixel off."""
    pixels = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size)) * 255
    source = torch.arange(299, dtype=torch.float64) * size / 299  # TF1's input coordinates
    normalised = ((source + 0.5) / size * 2 - 1).float()
    grid = torch.stack(torch.meshgrid(normalised, normalised, indexing="xy"), dim=-1)[None]
    expected = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # float32 grid coordinates round to ~1e-5 pixel; half a pixel off would differ by tens
    assert torch.allclose(resize_for_inception(pixels, "tf1_bilinear"), expected, atol=0.02)


@pytest.mark.parametrize("size", [32, 512])
def test_pil_bicubic_matches_pil_on_float_pixels(size):
    pixels = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size)) * 255
    resized = resize_for_inception(pixels, "pil_bicubic")
    for channel in range(3):
        pil = np.asarray(Image.fromarray(pixels[0, channel].numpy(), mode="F").resize((299, 299), Image.Resampling.BICUBIC))
        assert np.abs(resized[0, channel].numpy() - pil).max() < 0.02


def test_quantize_rounds_like_a_png_writer():
    values = torch.tensor([-1.0, -0.999, 0.0, 1.0, 1.5, -2.0])
    assert quantize(values).tolist() == [0, 0, 128, 255, 255, 0]
    assert quantize(torch.tensor([7], dtype=torch.uint8)).tolist() == [7]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_the_extractor_sees_299x299_in_the_inception_range(tmp_path):
    """Whatever the input size, the network gets (N, 3, 299, 299) scaled to
    [-1, 0.9921875]; a grey image is repeated to three channels."""

    class Probe(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            side = torch.full_like(images[:, 0, 0, 0], float(images.shape[-1]))
            return torch.stack([images.amin(dim=(1, 2, 3)), images.amax(dim=(1, 2, 3)), side, float(images.shape[1]) + side * 0], 1)

    path = tmp_path / "probe.pt"
    torch.jit.save(torch.jit.script(Probe()), str(path))
    extractor = load_extractor(str(path))
    images = torch.tensor([0, 255], dtype=torch.uint8).repeat(2, 3, 4, 2)  # black and white stripes, 4x4
    for batch in (images, images[:, :1]):
        features = extractor(batch.contiguous())
        assert torch.allclose(features, torch.tensor([[-1.0, 0.9921875, 299.0, 3.0]] * 2), atol=1e-6)


# --------------------------------------------------------------------------
# Finding the extractor


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No extractor in any of the four places."""
    monkeypatch.delenv(inception.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(inception, "PACKAGE", "gankit_no_such_package")
    return tmp_path


def test_no_extractor_is_an_error_that_lists_the_four_ways(nowhere):
    with pytest.raises(UserError) as raised:
        find_extractor(None)
    message = raised.value.message
    assert "\n" not in message and raised.value.key == "extractor"
    for way in (
        "extractor = PATH",
        "--extractor PATH",
        "GANKIT_INCEPTION=PATH",
        str(nowhere / "torch_home" / "hub" / "checkpoints"),
        "pip install 'gankit[fid]'",
    ):
        assert way in message


def test_a_recipe_without_an_extractor_fails_when_built(nowhere, registry):
    from tiny_recipes import TINY_RECIPE

    from gankit.loop import build
    from gankit.recipe import recipe_from_text

    recipe = recipe_from_text(TINY_RECIPE + '\n[metrics.fid]\ntype = "fid"\n', "tiny.toml", registry)
    with pytest.raises(UserError, match=r"^tiny.toml: metrics.fid.extractor: no FID Inception network .* \(line \d+\)$"):
        build(recipe)


def test_the_extractor_is_found_in_order_path_environment_hub_package(nowhere, monkeypatch):
    tmp_path = nowhere
    # a package whose code must not run: only its file is read
    package = tmp_path / "site" / "fake_fid_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent("raise RuntimeError('the package was imported')\n"))
    save_stand_in_extractor(package / inception.PACKAGE_FILE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(inception, "PACKAGE", "fake_fid_package")
    found = find_extractor(None)
    assert found.path == package / inception.PACKAGE_FILE and "fake-fid-package" in found.origin
    assert "fake_fid_package" not in sys.modules

    hub = save_stand_in_extractor(tmp_path / "torch_home" / "hub" / "checkpoints" / inception.HUB_FILE_NAME)
    assert find_extractor(None) == inception.ExtractorFile(hub, "torch hub cache")

    environment = save_stand_in_extractor(tmp_path / "env.pt")
    monkeypatch.setenv(inception.ENVIRONMENT_VARIABLE, str(environment))
    assert find_extractor(None) == inception.ExtractorFile(environment, "GANKIT_INCEPTION")

    given = save_stand_in_extractor(tmp_path / "given.pt")
    assert find_extractor(str(given)) == inception.ExtractorFile(given, "path")
    with pytest.raises(UserError, match="missing.pt: no such file"):
        find_extractor(str(tmp_path / "missing.pt"))


def test_an_extractor_that_is_not_torchscript_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a network")
    with pytest.raises(UserError, match="bad.pt: not a TorchScript network"):
        load_extractor(str(bad))


def test_the_standard_file_has_no_classifier_head():
    """Why there is no Inception score: the file ends at the pool features."""
    try:
        extractor = load_extractor(None)
    except UserError:
        pytest.skip("the standard FID Inception is not installed (pip install 'gankit[fid]')")
    if not extractor.is_standard:
        pytest.skip("the extractor found is not the standard file")
    names = [name for name, _ in extractor.network.named_parameters()]
    assert names[-1].startswith("net.layers.mixed_10.") and not any("fc" in name or "logit" in name for name in names)


# --------------------------------------------------------------------------
# Dataset features and their cache


class Counting:
    """An extractor that counts the images it is shown."""

    def __init__(self, inner: inception.FeatureExtractor) -> None:
        self.inner, self.sha256, self.resize, self.images = inner, inner.sha256, inner.resize, 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.images += len(images)
        return self.inner(images)


def test_dataset_features_are_cached_by_fingerprint_and_count(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "reference"
    extractor = Counting(load_extractor(str(save_stand_in_extractor(tmp_path / "stand_in.pt"))))
    cpu = torch.device("cpu")
    data = ShapesDataset(ShapesOptions(resolution=8, size=40))
    data.prepare()
    first = dataset_features(data, extractor, None, 16, cpu)
    assert first.count == 40 and extractor.images == 40
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].name.startswith("8px-40-tf1_bilinear-")
    again = dataset_features(data, extractor, None, 16, cpu)
    assert extractor.images == 40 and torch.equal(again.values, first.values)  # read back, not recomputed
    assert torch.allclose(again.moments()[1], Features(first.values).moments()[1])
    dataset_features(data, extractor, 20, 16, cpu)  # another count: another entry
    other = ShapesDataset(ShapesOptions(resolution=8, size=40, seed=1))
    other.prepare()
    dataset_features(other, extractor, None, 16, cpu)  # other images: another entry
    assert extractor.images == 40 + 20 + 40 and len(list(folder.glob("*.pt"))) == 3
    assert not list(folder.glob(".*"))  # no partial file left behind
    dataset_features(data, extractor, None, 16, cpu, cache=False)
    assert extractor.images == 140 and len(list(folder.glob("*.pt"))) == 3
    with pytest.raises(UserError, match="41 real images asked for, but the data has 40"):
        dataset_features(data, extractor, 41, 16, cpu)


def test_features_of_a_set_against_itself_give_fid_zero(tmp_path):
    extractor = load_extractor(str(save_stand_in_extractor(tmp_path / "stand_in.pt")))
    data = ShapesDataset(ShapesOptions(resolution=16, size=64))
    data.prepare()
    features = dataset_features(data, extractor, None, 32, torch.device("cpu"), cache=False)
    assert abs(frechet_distance(*features.moments(), *features.moments())) < 1e-8


def test_feature_extraction_in_a_log_says_how_far_it_got_every_minute(tmp_path, monkeypatch, capsys):
    from gankit.metrics import features

    monkeypatch.setattr(features, "LINE_SECONDS", 0.0)
    extractor = load_extractor(str(save_stand_in_extractor(tmp_path / "stand_in.pt")))
    data = ShapesDataset(ShapesOptions(resolution=8, size=40))
    data.prepare()
    dataset_features(data, extractor, None, 16, torch.device("cpu"), cache=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("gankit: features of real images")]
    assert [line.split(":")[2].split(" of ")[0].strip() for line in lines] == ["16", "32"]  # none once all 40 are done
    assert all("of 40 images" in line and "img/s, about" in line for line in lines)
