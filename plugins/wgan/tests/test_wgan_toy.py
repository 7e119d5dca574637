"""The 2D toy distributions, the mode-coverage metric, the scatter plot and
the MLPs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gankit import BuildContext, MetricContext, UserError
from gankit_wgan import (
    MLPDiscriminator,
    MLPDiscriminatorOptions,
    MLPGenerator,
    MLPGeneratorOptions,
    ModeCoverage,
    ModeCoverageOptions,
    Toy2dDataset,
    Toy2dOptions,
    mixture,
    mode_coverage,
)

# P(‖x − μ‖ ≤ 3σ) for an isotropic 2D Gaussian: 1 − exp(−9/2)
WITHIN_THREE_SIGMA = 1 - math.exp(-4.5)


def _points(distribution: str, n: int, seed: int = 0) -> torch.Tensor:
    return Toy2dDataset(Toy2dOptions(distribution=distribution, seed=seed)).__getitems__(list(range(n)))[0]


def test_the_mixtures_are_those_of_the_paper_code():
    ring = mixture("ring8")
    assert ring.centres.shape == (8, 2)
    assert torch.allclose(ring.centres.norm(dim=1), torch.full((8,), 2 / 1.414, dtype=torch.float64))
    assert ring.std == pytest.approx(0.02 / 1.414)
    grid = mixture("grid25")
    assert grid.centres.shape == (25, 2) and grid.centres.max().item() == pytest.approx(4 / 2.828)
    assert sorted(set(round(v, 6) for v in grid.centres[:, 0].tolist())) == [round(2 * i / 2.828, 6) for i in range(-2, 3)]
    assert grid.std == pytest.approx(0.05 / 2.828)
    assert mixture("swissroll") is None


@pytest.mark.parametrize("distribution", ["ring8", "grid25"])
def test_samples_spread_over_every_centre_with_the_stated_sigma(distribution):
    found = mixture(distribution)
    points = _points(distribution, 20000).double()
    offsets = points[:, None, :] - found.centres[None]
    nearest = offsets.norm(dim=2).argmin(dim=1)
    counts = torch.bincount(nearest, minlength=len(found.centres))
    assert counts.min() > 0.6 * counts.float().mean()  # every centre is drawn, about equally
    residual = offsets[torch.arange(len(points)), nearest]
    assert residual.std(dim=0).tolist() == pytest.approx([found.std, found.std], rel=0.05)


def test_the_swiss_roll_is_scaled_like_the_paper_code():
    points = _points("swissroll", 5000)
    radius = points.norm(dim=1)
    # t ∈ [1.5π, 4.5π], divided by 7.5, blurred by noise 0.25 / 7.5
    assert radius.min() > 1.5 * math.pi / 7.5 - 0.2 and radius.max() < 4.5 * math.pi / 7.5 + 0.2


def test_batches_are_fresh_but_reproducible_from_their_position():
    dataset = Toy2dDataset(Toy2dOptions(distribution="ring8"))
    first, _ = dataset.__getitems__(list(range(0, 64)))
    again, _ = dataset.__getitems__(list(range(0, 64)))
    second, _ = dataset.__getitems__(list(range(64, 128)))
    assert torch.equal(first, again) and not torch.allclose(first, second)
    assert dataset.context == BuildContext(resolution=1, channels=2, num_classes=0)
    assert not type(dataset).shuffle


def test_mode_coverage_of_the_true_distribution_is_complete():
    found = mixture("grid25")
    coverage = mode_coverage(_points("grid25", 2500, seed=3), found)
    assert coverage.modes == 25
    assert coverage.high_quality == pytest.approx(WITHIN_THREE_SIGMA, abs=0.01)
    assert coverage.kl < 0.02


def test_mode_coverage_of_a_collapsed_generator():
    found = mixture("ring8")
    collapsed = found.centres[2].expand(2500, 2) + 0.001 * torch.randn(2500, 2, dtype=torch.float64)
    coverage = mode_coverage(collapsed, found)
    assert coverage.modes == 1 and coverage.high_quality == 1.0
    assert coverage.kl == pytest.approx(math.log(8))  # all the mass on one of 8 modes
    half_blurred = torch.cat([collapsed[:1000], found.centres[5] + torch.full((1500, 2), 0.5, dtype=torch.float64)])
    coverage = mode_coverage(half_blurred, found)
    assert coverage.modes == 1 and coverage.high_quality == pytest.approx(0.4)
    nowhere = mode_coverage(torch.full((100, 2), 50.0), found)
    assert nowhere.modes == 0 and nowhere.high_quality == 0 and math.isinf(nowhere.kl)


def test_the_metric_scores_a_generator_and_records_its_protocol():
    dataset = Toy2dDataset(Toy2dOptions(distribution="ring8"))
    generator = MLPGenerator(MLPGeneratorOptions(hidden=8, layers=1), dataset.context)
    scores = ModeCoverage(ModeCoverageOptions(samples=300)).evaluate(MetricContext(generator, dataset, torch.device("cpu"), 64, seed=0))
    assert scores["of_modes"] == 8 and 0 <= scores["modes"] <= 8 and 0 <= scores["high_quality"] <= 1
    assert "300 samples" in scores["protocol"] and "3 sigma" in scores["protocol"]
    swiss = Toy2dDataset(Toy2dOptions(distribution="swissroll"))
    with pytest.raises(UserError, match="ring8 or grid25"):
        ModeCoverage(ModeCoverageOptions()).evaluate(MetricContext(generator, swiss, torch.device("cpu"), 64, seed=0))


def test_the_picture_is_a_scatter_plot_of_points_over_the_centres():
    dataset = Toy2dDataset(Toy2dOptions(distribution="ring8"))
    points = torch.tensor([[0.0, 0.0]] * 10)
    picture = dataset.picture([points])
    assert picture.shape == (3, 512, 512) and 0 <= picture.min() and picture.max() <= 1
    middle = picture[:, 254:258, 254:258]
    assert (middle[2] > middle[0] + 0.3).any()  # a blue point at the origin
    blank = dataset.picture([torch.tensor([[10.0, 10.0]])])  # off the plot: only the centres are drawn
    blue = (blank[2] - blank[0]) > 0.3
    red = (blank[0] > 0.7) & (blank[1] < 0.4)
    assert not blue.any() and red.sum() > 8 * 10
    for x, y in mixture("ring8").centres.tolist():  # a red cross on every centre
        column, row = round((x + 2.2) / 4.4 * 511), round((2.2 - y) / 4.4 * 511)
        assert red[row - 1 : row + 2, column - 1 : column + 2].any()


def test_the_mlps_are_those_of_the_paper_code_and_refuse_images():
    context = BuildContext(resolution=1, channels=2)
    generator = MLPGenerator(MLPGeneratorOptions(), context)
    critic = MLPDiscriminator(MLPDiscriminatorOptions(), context)
    linears = [m for m in generator.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 512), (512, 512), (512, 512), (512, 2)]
    linears = [m for m in critic.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 512), (512, 512), (512, 512), (512, 1)]
    assert generator(torch.randn(5, 2))[0].shape == (5, 2) and critic([torch.randn(5, 2)]).shape == (5,)
    with pytest.raises(UserError, match="2D points"):
        MLPGenerator(MLPGeneratorOptions(), BuildContext(resolution=32))


def test_a_toy_run_draws_scatter_plots_in_its_folder_tensorboard_and_gankit_sample(tmp_path):
    from PIL import Image

    from gankit.cli import main

    recipe = Path(__file__).resolve().parents[3] / "recipes" / "toy_ring8_wgangp.toml"
    run = tmp_path / "run"
    overrides = [
        "train.kimg=0.32",
        "train.batch_size=16",
        "train.tick_kimg=0.16",
        "loggers.tensorboard={}",
        "generator.hidden=16",
        "discriminator.hidden=16",
    ]
    assert main(["run", str(recipe), "--run-dir", str(run), "--progress", "lines", *(a for o in overrides for a in ("--set", o))]) == 0
    for name in ("reals.png", "fakes-000000000000.png"):
        assert Image.open(run / "samples" / name).size == (512, 512)
    assert any((run / "tensorboard").iterdir())
    out = tmp_path / "sampled.png"
    assert main(["sample", str(run), "--n", "500", "--out", str(out)]) == 0
    assert Image.open(out).size == (512, 512)
