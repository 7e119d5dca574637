"""The contract suite itself: it fails, saying why, when there is nothing to
check, and its checks catch what real components get wrong."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import torch
import torch.nn.functional as F
from fake_plugins import make_distribution

from gankit.contracts import BuildContext, Dataset, DOutput, Loss, PenaltyContext, Regularizer
from gankit.datasets import ShapesDataset, ShapesOptions
from gankit.registry import BLOCK_ENV, Component, Registry
from gankit.testing import (
    CONDITIONAL_CLASSES,
    TESTING_DIST,
    TinyDiscriminator,
    TinyOptions,
    TinyPyramidDiscriminator,
    TinyPyramidGenerator,
    TinyPyramidOptions,
    check_component,
    check_conditional_network,
    check_discriminator,
    check_lazy_regularizer,
    check_loss,
    check_regularizer,
    distribution_problem,
    lazy_option,
)
from gankit.testing import testing_registry as _testing_registry  # not collected as a test

# Loads, but its hook is not marked with @gankit.hookimpl, so it adds nothing.
EMPTY_PLUGIN = """
def register_components(registry):
    pass
"""

NOT_INSTALLED = "is not installed (no distribution of that name in this environment; pip install -e it first)"


@pytest.fixture
def site(plugin_site: Path) -> Path:
    """The conftest plugins, plus one that registers nothing and one whose
    entry point is in a misnamed group."""
    make_distribution(plugin_site, "gankit-empty", "emptyplugin", EMPTY_PLUGIN)
    make_distribution(plugin_site, "gankit-misgrouped", "misgroupedplugin", "")
    entry_points = plugin_site / "gankit_misgrouped-1.2.3.dist-info" / "entry_points.txt"
    entry_points.write_text("[gankit.plugins]\nmisgrouped = misgroupedplugin\n")
    return plugin_site


def _registry_from(site: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.syspath_prepend(str(site))
    registry = Registry()
    distributions = importlib.metadata.distributions(path=[str(site)])
    registry.load_entry_points(ep for dist in distributions for ep in dist.entry_points if ep.group == "gankit")
    return registry


# --------------------------------------------------------------------------
# Nothing to check is a failure, with its reason


@pytest.mark.parametrize(
    ("dist", "expected"),
    [
        ("gankit-nothere", f"gankit-nothere {NOT_INSTALLED}"),
        ("gankit-toyplugn", f"gankit-toyplugn {NOT_INSTALLED}; did you mean 'gankit-toyplugin'?"),
        ("toyplugin", f"toyplugin {NOT_INSTALLED}; 'toyplugin' is the entry point of gankit-toyplugin, and contract_suite takes"),
        ("gankit-misgrouped", "gankit-misgrouped is installed but has no `gankit` entry point; it has entry points only in 'gankit.plug"),
        ("gankit-broken", "gankit-broken failed to import: RuntimeError: this plugin is broken on purpose (entry point 'brokenplugin')"),
        ("gankit-empty", "gankit-empty registered no components (its entry point 'emptyplugin' loaded, but added nothing"),
    ],
    ids=["missing", "misspelled", "entry-point-name", "no-entry-point", "broken", "empty"],
)
def test_distribution_problem_names_the_case(site: Path, monkeypatch: pytest.MonkeyPatch, dist: str, expected: str):
    problem = distribution_problem(dist, _registry_from(site, monkeypatch))
    assert problem is not None and problem.startswith(expected), problem


def test_a_distribution_is_found_by_any_spelling_of_its_name(site: Path, monkeypatch: pytest.MonkeyPatch):
    registry = _registry_from(site, monkeypatch)
    for name in ("gankit-toyplugin", "gankit_toyplugin", "Gankit.ToyPlugin"):
        assert distribution_problem(name, registry) is None


def test_a_blocked_distribution_says_which_variable_blocks_it(site: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(BLOCK_ENV, "gankit-toyplugin")
    problem = distribution_problem("gankit-toyplugin", _registry_from(site, monkeypatch))
    assert problem == (
        f"gankit-toyplugin is installed with a `gankit` entry point but was not loaded: {BLOCK_ENV}=gankit-toyplugin blocks it"
    )


def test_every_installed_component_reports_plugins_that_failed(site: Path, monkeypatch: pytest.MonkeyPatch):
    registry = _registry_from(site, monkeypatch)
    assert distribution_problem(None, registry) == "gankit-broken failed to import: RuntimeError: this plugin is broken on purpose"


def test_every_installed_component_is_fine_here():
    assert distribution_problem(None, _testing_registry()) is None
    assert distribution_problem("gankit", _testing_registry()) is None


SUITES = """
from gankit.testing import contract_suite

TestMissing = contract_suite("gankit-nothere")
TestMisspelled = contract_suite("gankit-toyplugn")
TestNoEntryPoint = contract_suite("gankit-misgrouped")
TestBroken = contract_suite("gankit-broken")
TestEmpty = contract_suite("gankit-empty")
TestGood = contract_suite("gankit_toyplugin")
"""


def _pytest(site: Path, folder: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_plugin_contract.py").write_text(code)
    # wide enough that pytest's summary does not cut the reasons short
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "1000"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_plugin_contract.py", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_pytest_fails_each_case_with_its_reason(site: Path, tmp_path: Path):
    result = _pytest(site, tmp_path, SUITES, "-k", "test_registers_components")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    expected = {
        "TestMissing": f"gankit-nothere {NOT_INSTALLED}",
        "TestMisspelled": f"gankit-toyplugn {NOT_INSTALLED}; did you mean 'gankit-toyplugin'?",
        "TestNoEntryPoint": "gankit-misgrouped is installed but has no `gankit` entry point",
        "TestBroken": "gankit-broken failed to import: RuntimeError: this plugin is broken on purpose",
        "TestEmpty": "gankit-empty registered no components",
    }
    for suite, reason in expected.items():
        assert f"FAILED test_plugin_contract.py::{suite}::test_registers_components - Failed: {reason}" in output, output
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("5 failed, 1 passed,") and "error" not in summary and "skipped" not in output, output


def test_a_plugin_that_is_not_installed_fails_its_ci(site: Path, tmp_path: Path):
    # The whole file, as a plugin's CI runs it: one failure, nothing skipped, no collection error.
    result = _pytest(site, tmp_path, 'from gankit.testing import contract_suite\n\nTestContract = contract_suite("gankit-nothere")\n')
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"FAILED test_plugin_contract.py::TestContract::test_registers_components - Failed: gankit-nothere {NOT_INSTALLED}" in output
    assert result.stdout.strip().splitlines()[-1].startswith("1 failed in") and "skipped" not in output, output


# --------------------------------------------------------------------------
# The tiny multi-scale partners keep the contract themselves


@pytest.mark.parametrize("scales", [1, 2, 3])
def test_tiny_pyramid_networks_keep_their_contract(scales: int, tmp_path: Path):
    registry = _testing_registry()
    for kind in ("generator", "discriminator"):
        component = attrs.evolve(registry.get(kind, f"{TESTING_DIST}:tiny_pyramid"), example={"scales": scales})
        check_component(component, tmp_path, registry)


def test_tiny_pyramid_exchanges_every_scale():
    context = BuildContext(resolution=8, num_classes=3)
    generator = TinyPyramidGenerator(TinyPyramidOptions(scales=3), context)
    discriminator = TinyPyramidDiscriminator(TinyPyramidOptions(scales=3), context)
    labels = torch.tensor([0, 1, 2, 0])
    fakes = generator(generator.sample_latents(4), labels)
    assert [tuple(f.shape) for f in fakes] == [(4, 3, 2, 2), (4, 3, 4, 4), (4, 3, 8, 8)]
    assert [tuple(r.shape) for r in discriminator.prepare_reals(torch.zeros(4, 3, 8, 8))] == [tuple(f.shape) for f in fakes]
    scores, features = discriminator(fakes, labels, features=True)
    assert scores.shape == (4,) and [f.shape[1] for f in features] == [4, 8, 12]


# --------------------------------------------------------------------------
# The new checks catch what they are for


class SingleScaleGradientPenalty(Regularizer):
    """Assumes one scale: passes the finest real image alone."""

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor:
        reals = [ctx.reals[-1].detach().requires_grad_(True)]
        (gradient,) = torch.autograd.grad(ctx.discriminator(reals).sum(), reals, create_graph=True)
        return gradient.square().sum()


def test_regularizer_that_assumes_one_scale_fails_with_the_setting(tmp_path: Path):
    check_regularizer(SingleScaleGradientPenalty(), tmp_path, scales=1)
    with pytest.raises(ValueError, match="expected 2 scales, got 1") as failure:
        check_component(_component("regularizer", lambda options: SingleScaleGradientPenalty()), tmp_path)
    assert "(while checking the regularizer with 2 scales)" in failure.value.__notes__


@attrs.define(kw_only=True)
class LazyOptions:
    interval: int = 1


class LazyDrift(Regularizer):
    def __init__(self, options: LazyOptions, scaled: bool = True, zero_when_skipped: bool = False) -> None:
        self.interval, self.scaled, self.zero_when_skipped = options.interval, scaled, zero_when_skipped

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        term = ctx.real_out.scores.square().mean()
        if ctx.step % self.interval:
            return term * 0 if self.zero_when_skipped else None
        return term * (self.interval if self.scaled else 1)


def test_lazy_regularizer_is_checked_on_its_steps_and_its_skipped_ones(tmp_path: Path):
    component = _component("regularizer", LazyDrift, LazyOptions)
    assert lazy_option(component) == "interval"
    check_component(component, tmp_path)
    unscaled = _component("regularizer", lambda options: LazyDrift(options, scaled=False), LazyOptions)
    with pytest.raises(AssertionError, match=r"the term at step 0 is .*, expected 3 x .* a lazy term is scaled by its interval"):
        check_lazy_regularizer(unscaled, tmp_path, "interval")
    eager = _component("regularizer", lambda options: LazyDrift(options, zero_when_skipped=True), LazyOptions)
    with pytest.raises(AssertionError, match=r"and None on the others; it returned terms on steps \[0, 1, 2, 3, 4, 5\] of 0..5"):
        check_lazy_regularizer(eager, tmp_path, "interval")


class HalfPrecisionUnsafeDiscriminator(TinyDiscriminator):
    """Accumulates into a float32 buffer: fine in float32, an error under
    autocast, where the scores are bf16."""

    def forward(self, images: list[torch.Tensor], labels: torch.Tensor | None = None, features: bool = False):
        scores = super().forward(images, labels, features)
        raw = scores[0] if features else scores
        total = torch.zeros(raw.shape[0]).index_add(0, torch.arange(raw.shape[0]), raw)
        return (total, scores[1]) if features else total


def test_discriminator_that_breaks_under_bf16_autocast_fails(tmp_path: Path):
    dataset = ShapesDataset(ShapesOptions(resolution=8, size=8))
    dataset.prepare()
    with pytest.raises(RuntimeError) as failure:
        check_discriminator(HalfPrecisionUnsafeDiscriminator(TinyOptions(), dataset.context), dataset)
    assert "(while checking the discriminator under torch.autocast('cpu', dtype=torch.bfloat16))" in failure.value.__notes__


class LabelBlindDiscriminator(TinyDiscriminator):
    """Says it is conditional but scores every label alike."""

    def forward(self, images: list[torch.Tensor], labels: torch.Tensor | None = None, features: bool = False):
        return super().forward(images, None if labels is None else torch.zeros_like(labels), features)


class Unlabelled(Dataset):
    """Images without labels, as 2D toy data or an image folder has them."""

    context = BuildContext(resolution=8, num_classes=0)

    def __len__(self) -> int:
        return 4

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.rand(len(indices), 3, 8, 8) * 2 - 1, torch.zeros(len(indices), dtype=torch.int64)


def test_conditional_discriminator_that_ignores_labels_fails(tmp_path: Path):
    component = _component("discriminator", LabelBlindDiscriminator, TinyOptions)
    with pytest.raises(AssertionError, match="a conditional discriminator .* must use its labels"):
        check_component(component, tmp_path)  # shapes are labelled: checked conditional at once
    with pytest.raises(AssertionError, match="a conditional discriminator .* must use its labels") as failure:
        check_conditional_network(component, tmp_path, Unlabelled())  # given labels the data does not have
    assert f"built for data with {CONDITIONAL_CLASSES} classes" in failure.value.__notes__[0]


class FinestFeatureMatching(Loss):
    """A feature loss that reads the finest scale's feature: fine with any number of scales."""

    needs_features = True

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        return F.softplus(-real.scores).mean() + F.softplus(fake.scores).mean()

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        return fake.features[-1].square().mean() + F.softplus(-fake.scores).mean()


class StackedFeatures(FinestFeatureMatching):
    """Stacks the features of every scale, as if they had one shape."""

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        return torch.stack(fake.features).square().mean()


def test_feature_loss_meets_features_of_several_shapes():
    check_loss(FinestFeatureMatching())
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size") as failure:
        check_loss(StackedFeatures())
    assert "(while checking the loss with 2 scales)" in failure.value.__notes__


def _component(kind: str, factory: Callable[..., Any], options: type = TinyOptions) -> Component:
    return Component(kind=kind, name="under_test", factory=factory, options=options, dist="gankit-test", summary="")
