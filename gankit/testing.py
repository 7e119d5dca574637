"""The contract suite every registered component passes.

A plugin's tests run it on the plugin's own components with one line::

    # tests/test_contract.py of the distribution "gankit-mytechnique"
    from gankit.testing import contract_suite

    TestContract = contract_suite("gankit-mytechnique")

For each component it checks that the options round-trip through TOML, that
the component builds from its defaults (or its registered ``example``) and
keeps its kind's contract (shapes at every scale, gradients reaching every
parameter, state that survives a checkpoint), and that one short training
through gankit's own loop on the CPU runs without NaN and changes the
weights.

Training tests measure their outcome with ``sliced_wasserstein``: how far
generated images are from real ones, compared with the distance between two
real sets (the noise floor).
"""

from __future__ import annotations

import io
import math
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs
import pytest
import tomli_w
import torch
import torch.nn.functional as F
from torch import nn

from gankit.contracts import (
    BuildContext,
    Dataset,
    Discriminator,
    DOutput,
    Generator,
    ImageList,
    Loss,
    Metric,
    PenaltyContext,
    Progress,
    Regularizer,
    Scheduler,
    Stage,
    StepPlan,
    to_float_images,
)
from gankit.hookspecs import hookimpl
from gankit.recipe import converter, drop_none, recipe_from_text, structure_options
from gankit.registry import Component, Registry

TESTING_DIST = "gankit.testing"
DEFAULT_DATA: dict[str, Any] = {"type": "shapes", "resolution": 16, "size": 32}


# --------------------------------------------------------------------------
# Tiny partners, so that a loss, a regularizer or a dataset can be trained
# without depending on any particular plugin's networks.


@attrs.define(kw_only=True)
class TinyOptions:
    """No options."""


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 256, seed: int = 0) -> float:
    """Mean 1D Wasserstein distance between two equal-sized sets of
    flattened images along ``projections`` random unit directions: a cheap
    distance between image distributions for training tests."""
    a, b = a.flatten(1), b.flatten(1)
    directions = torch.randn(a.shape[1], projections, generator=torch.Generator().manual_seed(seed))
    directions /= directions.norm(dim=0, keepdim=True)
    pa, _ = (a @ directions).sort(dim=0)
    pb, _ = (b @ directions).sort(dim=0)
    return (pa - pb).abs().mean().item()


def _sample_shape(context: BuildContext) -> tuple[int, ...]:
    # 2D toy data is a resolution-1 "image" of shape [channels]
    return (context.channels,) if context.resolution == 1 else (context.channels, context.resolution, context.resolution)


class TinyGenerator(Generator):
    """A linear map from the latent to one sample, for contract tests."""

    def __init__(self, options: TinyOptions, context: BuildContext) -> None:
        super().__init__()
        self.latent_size, self.num_classes = 8, context.num_classes
        self.shape = _sample_shape(context)
        self.linear = nn.Linear(8 + context.num_classes, math.prod(self.shape))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return [torch.tanh(self.linear(z)).view(-1, *self.shape)]


class TinyDiscriminator(Discriminator):
    """A linear score of the finest sample, for contract tests."""

    def __init__(self, options: TinyOptions, context: BuildContext) -> None:
        super().__init__()
        self.resolution, self.num_classes = context.resolution, context.num_classes
        self.linear = nn.Linear(math.prod(_sample_shape(context)), 4)
        self.head = nn.Linear(4, max(1, context.num_classes))

    def prepare_reals(self, images: torch.Tensor) -> ImageList:
        return [images]

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        hidden = F.leaky_relu(self.linear(images[-1].flatten(1)), 0.2)
        scores = self.head(hidden)
        scores = scores.gather(1, labels[:, None]).squeeze(1) if self.num_classes else scores[:, 0]
        return (scores, [hidden]) if features else scores


class TinyLoss(Loss):
    """The non-saturating logistic loss, for contract tests."""

    def __init__(self, options: TinyOptions) -> None:
        pass

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:
        return F.softplus(-real.scores).mean() + F.softplus(fake.scores).mean()

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:
        return F.softplus(-fake.scores).mean()


class _TestingPlugin:
    @staticmethod
    @hookimpl
    def register_components(registry: Registry) -> None:
        registry.add("generator", "tiny", TinyGenerator, TinyOptions)
        registry.add("discriminator", "tiny", TinyDiscriminator, TinyOptions)
        registry.add("loss", "tiny", TinyLoss, TinyOptions)


@lru_cache(maxsize=1)
def testing_registry() -> Registry:
    """Every installed plugin, plus the tiny partners under ``gankit.testing``."""
    registry = Registry()
    registry.load_entry_points()
    registry.register_plugin(_TestingPlugin, TESTING_DIST)
    return registry


# --------------------------------------------------------------------------
# The checks, usable on their own


def example_options(component: Component, folder: Path) -> dict[str, Any]:
    example = component.example
    if example is None:
        return {}
    return dict(example(folder) if callable(example) else example)


def build_example(component: Component, folder: Path, context: BuildContext | None = None, params: Any = None) -> Any:
    options = structure_options(example_options(component, folder), component.options)
    if component.kind in ("generator", "discriminator"):
        return component.factory(options, context or BuildContext())
    if component.kind == "optimizer":
        return component.factory(params, options)
    return component.factory(options)


def check_options_round_trip(component: Component, folder: Path) -> None:
    """Options written to TOML and read back are the same options."""
    options = structure_options(example_options(component, folder), component.options)
    table = drop_none(converter.unstructure(options))
    again = structure_options(tomllib.loads(tomli_w.dumps({"options": table}))["options"], component.options)
    assert again == options, f"{component.kind} {component.name}: options changed through TOML: {options} -> {again}"


def _data_for(component: Component, registry: Registry) -> dict[str, Any]:
    if component.example_data is not None:
        return dict(component.example_data)
    partner_kind = {"generator": "discriminator", "discriminator": "generator"}.get(component.kind)
    if partner_kind:
        partner = _partner(component, registry, partner_kind)
        if partner is not None and partner.example_data is not None:
            return dict(partner.example_data)
    return dict(DEFAULT_DATA)


def _dataset_for(component: Component, registry: Registry, folder: Path) -> Dataset:
    table = _data_for(component, registry)
    data_component = registry.get("dataset", table.pop("type"))
    dataset = data_component.factory(structure_options(table, data_component.options))
    dataset.prepare()
    return dataset


def _real_batch(dataset: Dataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = dataset.__getitems__([i % len(dataset) for i in range(n)])
    return to_float_images(images), labels


def _assert_every_parameter_has_gradient(module: nn.Module, what: str) -> None:
    missing = [name for name, p in module.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"{what}: no finite gradient reaches {missing}"


def check_generator(generator: Generator, dataset: Dataset) -> None:
    assert isinstance(generator, Generator), "a generator factory must return a gankit.Generator"
    reals, _ = _real_batch(dataset, 4)
    z = generator.sample_latents(4)
    assert z.shape[0] == 4
    labels = torch.arange(4) % generator.num_classes if generator.num_classes else None
    images = generator(z, labels)
    assert isinstance(images, list) and images, "a generator returns a non-empty list of tensors"
    assert images[-1].shape == reals.shape, f"the finest output {tuple(images[-1].shape)} must match the data {tuple(reals.shape)}"
    for coarse, fine in zip(images, images[1:]):
        assert coarse.shape[:2] == fine.shape[:2], "every scale has the batch and channels of the data"
        if coarse.dim() == 4:
            assert fine.shape[-1] == 2 * coarse.shape[-1], "scales run coarsest to finest, doubling"
    for image in images:
        assert torch.isfinite(image).all()
    sum(image.square().mean() for image in images).backward()
    for stage in _growth_stages(reals):  # a growing network trains each block at some stage
        generator.set_stage(stage)
        sum(image.square().mean() for image in generator(z, labels)).backward()
    generator.set_stage(Stage(reals.shape[-1], 1.0) if reals.dim() == 4 else Stage(1, 1.0))
    _assert_every_parameter_has_gradient(generator, "generator")


def check_discriminator(discriminator: Discriminator, dataset: Dataset) -> None:
    assert isinstance(discriminator, Discriminator), "a discriminator factory must return a gankit.Discriminator"
    reals, labels = _real_batch(dataset, 4)
    images = discriminator.prepare_reals(reals)
    assert isinstance(images, list) and images[-1].shape[0] == 4
    labels = labels if discriminator.num_classes else None
    scores = discriminator(images, labels)
    assert scores.shape == (4,), f"scores must have shape [N], got {tuple(scores.shape)}"
    scores_again, features = discriminator(images, labels, features=True)
    assert isinstance(features, list) and features and all(f.shape[0] == 4 for f in features)
    (scores_again.square().mean() + sum(f.square().mean() for f in features)).backward()
    for stage in _growth_stages(reals):
        discriminator.set_stage(stage)
        discriminator(discriminator.prepare_reals(reals), labels).square().mean().backward()
    discriminator.set_stage(Stage(reals.shape[-1], 1.0) if reals.dim() == 4 else Stage(1, 1.0))
    _assert_every_parameter_has_gradient(discriminator, "discriminator")


def _growth_stages(reals: torch.Tensor) -> list[Stage]:
    """Every fade of a network that grows from 4x4 to the data's resolution;
    networks that do not grow ignore them."""
    if reals.dim() != 4:
        return []
    resolutions = [4 * 2**k for k in range(int(math.log2(reals.shape[-1] // 4)) + 1)] if reals.shape[-1] >= 4 else []
    return [Stage(resolution, 0.5) for resolution in resolutions]


def check_loss(loss: Loss) -> None:
    assert isinstance(loss, Loss)
    real = DOutput(torch.randn(6, requires_grad=True), [torch.randn(6, 5, requires_grad=True)])
    fake = DOutput(torch.randn(6, requires_grad=True), [torch.randn(6, 5, requires_grad=True)])
    d_loss = loss.discriminator_loss(real, fake)
    g_loss = loss.generator_loss(fake, real if loss.needs_reals_in_generator_phase else None)
    for value in (d_loss, g_loss):
        assert value.dim() == 0 and torch.isfinite(value)
    (g_grad,) = torch.autograd.grad(g_loss, fake.scores if not loss.needs_features else fake.features[0], allow_unused=True)
    assert g_grad is not None and g_grad.abs().sum() > 0, "the generator loss must depend on the fake output"


def check_scheduler(scheduler: Scheduler) -> None:
    assert isinstance(scheduler, Scheduler)
    for nimg in (0, 500, 1000):
        plan = scheduler.plan(Progress(nimg=nimg, total_nimg=1000, d_steps=nimg // 10, g_steps=nimg // 10))
        assert isinstance(plan, StepPlan) and plan.d_steps >= 0 and plan.g_steps >= 0
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    scheduler.load_state_dict(torch.load(buffer, weights_only=True))


def check_dataset(dataset: Dataset) -> None:
    assert isinstance(dataset, Dataset)
    dataset.prepare()
    assert len(dataset) > 0
    images, labels = dataset.__getitems__([0, len(dataset) - 1])
    assert images.shape[:2] == (2, dataset.context.channels)
    assert labels.shape == (2,) and labels.dtype == torch.int64
    if dataset.context.resolution > 1:  # 2D points are coordinates, not pixel values
        floats = to_float_images(images)
        assert floats.min() >= -1 and floats.max() <= 1
    picture = dataset.picture([to_float_images(images)])
    assert picture.dim() == 3 and picture.shape[0] == 3 and 0 <= picture.min() and picture.max() <= 1, "Dataset.picture returns an RGB image in [0, 1]"
    if dataset.context.num_classes:
        assert 0 <= labels.min() and labels.max() < dataset.context.num_classes


def check_regularizer(regularizer: Regularizer, folder: Path) -> None:
    assert isinstance(regularizer, Regularizer)
    context = BuildContext(resolution=8)
    generator = TinyGenerator(TinyOptions(), context)
    discriminator = regularizer.wrap(TinyDiscriminator(TinyOptions(), context), "discriminator")
    assert isinstance(discriminator, nn.Module)
    reals = [torch.rand(4, 3, 8, 8) * 2 - 1]
    fakes = [f.detach() for f in generator(generator.sample_latents(4))]
    real_out, fake_out = DOutput(discriminator(reals)), DOutput(discriminator(fakes))
    for step in range(4):
        term = regularizer.penalty(PenaltyContext(discriminator, generator, reals, fakes, None, None, real_out, fake_out, step))
        assert term is None or (term.dim() == 0 and torch.isfinite(term))
    regularizer.after_step(discriminator, "discriminator")


def check_component(component: Component, folder: Path, registry: Registry | None = None) -> None:
    """Build ``component`` from its defaults (or example) and check its kind's contract."""
    registry = registry or testing_registry()
    kind = component.kind
    if kind in ("generator", "discriminator"):
        dataset = _dataset_for(component, registry, folder)
        network = build_example(component, folder, dataset.context)
        (check_generator if kind == "generator" else check_discriminator)(network, dataset)
    elif kind == "optimizer":
        layer = nn.Linear(3, 1)
        before = layer.weight.detach().clone()
        optimizer = build_example(component, folder, params=layer.parameters())
        layer(torch.ones(2, 3)).sum().backward()
        optimizer.step()
        assert not torch.equal(before, layer.weight), "one optimizer step must move the weights"
    elif kind == "regularizer":
        check_regularizer(build_example(component, folder), folder)
    elif kind == "metric":
        assert isinstance(build_example(component, folder), Metric)  # it is evaluated by check_training_step
    else:
        {"loss": check_loss, "scheduler": check_scheduler, "dataset": check_dataset}[kind](build_example(component, folder))


def _partner(component: Component, registry: Registry, kind: str) -> Component | None:
    candidates = [c for c in registry.components(kind) if c.name == component.name]
    same_dist = [c for c in candidates if c.dist == component.dist]
    return (same_dist or candidates or [None])[0]


def training_recipe(component: Component, folder: Path, registry: Registry | None = None) -> str:
    """A tiny recipe that trains ``component`` with partners it fits."""
    registry = registry or testing_registry()
    tiny = f"{TESTING_DIST}:tiny"
    table: dict[str, Any] = {
        "name": "contract",
        "generator": {"type": tiny},
        "discriminator": {"type": tiny},
        "loss": {"type": tiny},
        "data": _data_for(component, registry),
        "train": {"kimg": 0.008, "batch_size": 4, "tick_kimg": 0.004, "device": "cpu", "samples": 4, "tensorboard": False, "ema_rampup": 0.0},
    }
    own = {"type": component.qualified_name, **example_options(component, folder)}
    if component.kind in ("generator", "discriminator"):
        table[component.kind] = own
        other = "discriminator" if component.kind == "generator" else "generator"
        partner = _partner(component, registry, other)
        if partner is not None:
            table[other] = {"type": partner.qualified_name, **example_options(partner, folder)}
    elif component.kind == "dataset":
        table["data"] = own
    elif component.kind == "optimizer":
        table["optimizers"] = {"generator": own, "discriminator": own}
    elif component.kind in ("regularizer", "metric"):
        table[f"{component.kind}s"] = {"under_test": own}
    else:
        table[component.kind] = own
    return tomli_w.dumps(table)


def check_training_step(component: Component, folder: Path, registry: Registry | None = None) -> dict[str, Any]:
    """Train a few steps through gankit's loop on the CPU: no NaN, and the
    weights move."""
    from gankit.loop import Trainer

    registry = registry or testing_registry()
    recipe = recipe_from_text(training_recipe(component, folder, registry), f"contract recipe for {component.qualified_name}", registry)
    trainer = Trainer(recipe, None, show_progress=False)
    before = [p.detach().clone() for p in trainer.G.parameters()]
    record = trainer.train()
    losses = {key: value for key, value in record.items() if key.startswith(("loss/", "reg/"))}
    assert losses and all(math.isfinite(value) for value in losses.values()), f"non-finite losses: {losses}"
    for network in (trainer.G, trainer.D, trainer.G_ema):
        assert all(torch.isfinite(p).all() for p in network.parameters()), "a weight became NaN or infinite"
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters())), "training did not change the generator"
    if component.kind == "metric":
        assert "metrics" in record and record["metrics"]["under_test"], "the metric was not evaluated at the end of training"
    return record


def contract_suite(dist: str | None = None, registry: Registry | None = None) -> type:
    """A pytest test class parametrized over the components registered by
    ``dist`` (every installed component when ``None``)."""
    registry = registry or testing_registry()
    components = [c for c in registry.components() if c.dist != TESTING_DIST and (dist is None or c.dist == dist)]
    ids = [f"{c.kind}-{c.name}" for c in components]
    parametrize = pytest.mark.parametrize("component", components, ids=ids)

    class ContractSuite:
        @parametrize
        def test_options_round_trip_through_toml(self, component: Component, tmp_path: Path) -> None:
            check_options_round_trip(component, tmp_path)

        @parametrize
        def test_keeps_its_contract(self, component: Component, tmp_path: Path) -> None:
            torch.manual_seed(0)
            check_component(component, tmp_path, registry)

        @parametrize
        def test_short_training_on_cpu(self, component: Component, tmp_path: Path) -> None:
            check_training_step(component, tmp_path, registry)

    ContractSuite.__name__ = ContractSuite.__qualname__ = f"ContractSuite[{dist or 'all'}]"
    return ContractSuite
