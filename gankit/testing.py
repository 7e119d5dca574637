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

pytest is imported when :func:`contract_suite` makes a suite, not before.
``sliced_wasserstein`` is a cheap distance between two sets of images for a
plugin's own outcome tests. The outcome tests of gankit's repository, their
recipes and bounds live outside the product, in its ``outcomes/`` folder.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.metadata
import io
import math
import os
import re
import tomllib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import attrs
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
    Logger,
    Loss,
    Metric,
    PenaltyContext,
    Progress,
    Regularizer,
    Scheduler,
    Stage,
    StepPlan,
)
from gankit.errors import UserError
from gankit.hookspecs import hookimpl
from gankit.images import ImageList, image_pyramid, to_float_images
from gankit.kinds import KINDS
from gankit.loop import discriminate, frozen
from gankit.options import help_text, positive
from gankit.recipe import converter, drop_none, recipe_from_text, structure_options
from gankit.registry import BLOCK_ENV, ENTRY_POINT_GROUP, ONLY_ENV, Component, Registry, plugin_selection

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


@attrs.define(kw_only=True)
class TinyPyramidOptions:
    """How many scales the tiny multi-scale networks exchange."""

    scales: int = attrs.field(default=2, validator=positive(), metadata=help_text("images per sample, coarsest to finest, doubling"))


def _pyramid_shapes(context: BuildContext, scales: int, what: str) -> list[tuple[int, ...]]:
    if scales > 1 and (context.resolution == 1 or context.resolution < 2 ** (scales - 1)):
        raise UserError(f"{what}: {scales} scales need images of at least {2 ** (scales - 1)}x{2 ** (scales - 1)}", key="scales")
    return [_sample_shape(attrs.evolve(context, resolution=context.resolution >> (scales - 1 - i))) for i in range(scales)]


class TinyPyramidGenerator(Generator):
    """Linear maps from the latent to every scale of a pyramid, for contract
    tests of multi-scale techniques (MSG-GAN's exchange of several scales)."""

    def __init__(self, options: TinyPyramidOptions, context: BuildContext) -> None:
        super().__init__()
        self.latent_size, self.num_classes = 8, context.num_classes
        self.shapes = _pyramid_shapes(context, options.scales, "tiny_pyramid generator")
        self.linears = nn.ModuleList(nn.Linear(8 + context.num_classes, math.prod(shape)) for shape in self.shapes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:
        if self.num_classes:
            z = torch.cat([z, F.one_hot(labels, self.num_classes).to(z.dtype)], dim=1)
        return [torch.tanh(linear(z)).view(-1, *shape) for linear, shape in zip(self.linears, self.shapes)]


class TinyPyramidDiscriminator(Discriminator):
    """A linear score of every scale of a pyramid, for contract tests of
    multi-scale techniques."""

    def __init__(self, options: TinyPyramidOptions, context: BuildContext) -> None:
        super().__init__()
        self.scales, self.resolution, self.num_classes = options.scales, context.resolution, context.num_classes
        shapes = _pyramid_shapes(context, options.scales, "tiny_pyramid discriminator")
        # Widths differ per scale, so that a loss reading features meets a list of several shapes.
        widths = [4 * (i + 1) for i in range(len(shapes))]
        self.linears = nn.ModuleList(nn.Linear(math.prod(shape), width) for shape, width in zip(shapes, widths))
        self.head = nn.Linear(sum(widths), max(1, context.num_classes))

    def prepare_reals(self, images: torch.Tensor) -> ImageList:
        return image_pyramid(images, self.scales)

    def forward(self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        if len(images) != self.scales:
            raise ValueError(f"tiny_pyramid discriminator: expected {self.scales} scales, got {len(images)}")
        hidden = [F.leaky_relu(linear(image.flatten(1)), 0.2) for linear, image in zip(self.linears, images)]
        scores = self.head(torch.cat(hidden, dim=1))
        scores = scores.gather(1, labels[:, None]).squeeze(1) if self.num_classes else scores[:, 0]
        return (scores, hidden) if features else scores


class _TestingPlugin:
    @staticmethod
    @hookimpl
    def register_components(registry: Registry) -> None:
        registry.add("generator", "tiny", TinyGenerator, TinyOptions)
        registry.add("discriminator", "tiny", TinyDiscriminator, TinyOptions)
        registry.add("loss", "tiny", TinyLoss, TinyOptions)
        registry.add("generator", "tiny_pyramid", TinyPyramidGenerator, TinyPyramidOptions)
        registry.add("discriminator", "tiny_pyramid", TinyPyramidDiscriminator, TinyPyramidOptions)


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
    kind = KINDS[component.kind]
    argument = params if kind.call == "parameters+options" else context or BuildContext()
    return kind.call_factory(component.factory, options, argument)


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


#: Autocast as ``train.precision = "bf16"`` runs it, on the CPU.
AUTOCAST_DTYPE = torch.bfloat16
#: Labels a conditional network is checked with, when the data has none.
CONDITIONAL_CLASSES = 3


def _autocast(dtype: torch.dtype | None) -> contextlib.AbstractContextManager[Any]:
    return torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _checking(what: str) -> Iterator[None]:
    """Name the setting a check failed in: the same component passes in some
    and fails in others (several scales, labels, bf16)."""
    try:
        yield
    except Exception as error:
        error.add_note(f"(while checking {what})")
        raise


def _assert_finite_float(value: torch.Tensor, what: str) -> None:
    assert isinstance(value, torch.Tensor) and value.is_floating_point(), f"{what}: expected a floating-point tensor, got {value!r:.80}"
    assert torch.isfinite(value).all(), f"{what}: not finite"


def _assert_finite_scalar(value: torch.Tensor | None, what: str) -> None:
    assert isinstance(value, torch.Tensor) and value.dim() == 0, f"{what}: expected a scalar tensor, got {value!r:.80}"
    _assert_finite_float(value, what)


def _assert_finite_gradients(module: nn.Module, what: str) -> None:
    bad = [name for name, p in module.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{what}: non-finite gradients reach {bad}"


def _assert_some_gradient(module: nn.Module, what: str) -> None:
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters()), f"{what}: no gradient reaches the network"


def _check_scales(images: ImageList, what: str, batch: int) -> None:
    assert isinstance(images, list) and images and all(isinstance(i, torch.Tensor) for i in images), f"{what}: expected a list of tensors"
    shapes = [tuple(image.shape) for image in images]
    assert all(shape[0] == batch for shape in shapes), f"{what}: every scale has the batch's {batch} samples, got {shapes}"
    for coarse, fine in zip(images, images[1:]):
        assert coarse.shape[:2] == fine.shape[:2], f"{what}: every scale has the batch and channels of the data, got {shapes}"
        if coarse.dim() == 4:
            assert fine.shape[-1] == 2 * coarse.shape[-1], f"{what}: scales run coarsest to finest, doubling; got {shapes}"


def check_generator(generator: Generator, dataset: Dataset) -> None:
    assert isinstance(generator, Generator), "a generator factory must return a gankit.Generator"
    reals, _ = _real_batch(dataset, 4)
    z = generator.sample_latents(4)
    assert z.shape[0] == 4
    labels = torch.arange(4) % generator.num_classes if generator.num_classes else None
    images = generator(z, labels)
    _check_scales(images, "generator output", 4)
    assert images[-1].shape == reals.shape, f"the finest output {tuple(images[-1].shape)} must match the data {tuple(reals.shape)}"
    for image in images:
        assert torch.isfinite(image).all()
    sum(image.square().mean() for image in images).backward()
    for stage in _growth_stages(reals):  # a growing network trains each block at some stage
        generator.set_stage(stage)
        sum(image.square().mean() for image in generator(z, labels)).backward()
    generator.set_stage(Stage(reals.shape[-1], 1.0) if reals.dim() == 4 else Stage(1, 1.0))
    _assert_every_parameter_has_gradient(generator, "generator")
    if generator.num_classes > 1:
        with torch.no_grad():
            same, other = generator(z, labels)[-1], generator(z, (labels + 1) % generator.num_classes)[-1]
        assert not torch.allclose(same, other), "a conditional generator (num_classes > 0) must use its labels: all gave the same images"
    with _checking(f"the generator under torch.autocast('cpu', dtype={AUTOCAST_DTYPE})"), _autocast(AUTOCAST_DTYPE):
        images = generator(z, labels)
        _check_scales(images, "generator output under autocast", 4)
        assert images[-1].shape == reals.shape, f"under autocast the finest output {tuple(images[-1].shape)} must match the data's"
        for image in images:
            _assert_finite_float(image, "generator output under autocast")
        objective = sum(image.float().square().mean() for image in images)
    objective.backward()  # outside autocast, as the loop does
    _assert_finite_gradients(generator, "generator under autocast")


def check_discriminator(discriminator: Discriminator, dataset: Dataset) -> None:
    assert isinstance(discriminator, Discriminator), "a discriminator factory must return a gankit.Discriminator"
    reals, labels = _real_batch(dataset, 4)
    images = discriminator.prepare_reals(reals)
    _check_scales(images, "prepare_reals", 4)
    labels = labels if discriminator.num_classes else None
    scores = discriminator(images, labels)
    assert scores.shape == (4,), f"scores must have shape [N], got {tuple(scores.shape)}"
    _assert_finite_float(scores, "discriminator scores")
    scores_again, features = discriminator(images, labels, features=True)
    assert isinstance(features, list) and features and all(f.shape[0] == 4 for f in features)
    (scores_again.square().mean() + sum(f.square().mean() for f in features)).backward()
    for stage in _growth_stages(reals):
        discriminator.set_stage(stage)
        discriminator(discriminator.prepare_reals(reals), labels).square().mean().backward()
    discriminator.set_stage(Stage(reals.shape[-1], 1.0) if reals.dim() == 4 else Stage(1, 1.0))
    _assert_every_parameter_has_gradient(discriminator, "discriminator")
    images = discriminator.prepare_reals(reals)
    if labels is not None and discriminator.num_classes > 1:
        with torch.no_grad():
            same, other = discriminator(images, labels), discriminator(images, (labels + 1) % discriminator.num_classes)
        assert not torch.allclose(same, other), "a conditional discriminator (num_classes > 0) must use its labels: all gave one score"
    with _checking(f"the discriminator under torch.autocast('cpu', dtype={AUTOCAST_DTYPE})"), _autocast(AUTOCAST_DTYPE):
        scores = discriminator(images, labels)
        assert scores.shape == (4,), f"under autocast scores must have shape [N], got {tuple(scores.shape)}"
        _assert_finite_float(scores, "discriminator scores under autocast")
        objective = scores.float().square().mean()
    objective.backward()
    _assert_finite_gradients(discriminator, "discriminator under autocast")


class _LabelledView(Dataset):
    """A dataset's samples with ``num_classes`` labels, so that a conditional
    network can be checked on data that has none."""

    def __init__(self, dataset: Dataset, num_classes: int) -> None:
        self.dataset = dataset
        self.context = attrs.evolve(dataset.context, num_classes=num_classes)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images, _ = self.dataset.__getitems__(indices)
        return images, torch.tensor(indices, dtype=torch.int64) % self.context.num_classes


def _has_bool_option(options: type, name: str) -> bool:
    return any(field.name == name and isinstance(field.default, bool) for field in attrs.fields(options))


def check_conditional_network(component: Component, folder: Path, dataset: Dataset) -> None:
    """Build a generator or discriminator for labelled data and check it again
    with labels. A network whose options have a boolean ``conditional`` is
    built with it on; one that stays unconditional (``num_classes == 0``)
    ignores labels and is not checked again."""
    labelled = dataset if dataset.context.num_classes > 1 else _LabelledView(dataset, CONDITIONAL_CLASSES)
    table = example_options(component, folder)
    if "conditional" not in table and _has_bool_option(component.options, "conditional"):
        table["conditional"] = True
    what = f"{component.kind} {component.name} built for data with {labelled.context.num_classes} classes ({table or 'defaults'})"
    with _checking(what):
        network = component.factory(structure_options(table, component.options), labelled.context)
        if network.num_classes:
            (check_generator if component.kind == "generator" else check_discriminator)(network, labelled)


def _growth_stages(reals: torch.Tensor) -> list[Stage]:
    """Every fade of a network that grows from 4x4 to the data's resolution;
    networks that do not grow ignore them."""
    if reals.dim() != 4:
        return []
    resolutions = [4 * 2**k for k in range(int(math.log2(reals.shape[-1] // 4)) + 1)] if reals.shape[-1] >= 4 else []
    return [Stage(resolution, 0.5) for resolution in resolutions]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Tiny networks gain nothing from threads, and on a busy machine every
    parallel op waits milliseconds for a core: 50x slower than one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _tiny_networks(scales: int, num_classes: int) -> tuple[TinyPyramidGenerator, TinyPyramidDiscriminator]:
    context, options = BuildContext(resolution=8, num_classes=num_classes), TinyPyramidOptions(scales=scales)
    return TinyPyramidGenerator(options, context), TinyPyramidDiscriminator(options, context)


def _tiny_reals(discriminator: nn.Module) -> ImageList:
    return discriminator.prepare_reals(torch.rand(4, 3, 8, 8) * 2 - 1)


def _setting(scales: int, num_classes: int = 0, dtype: torch.dtype | None = None) -> str:
    parts = [f"{scales} scale{'s' if scales > 1 else ''}"]
    if num_classes:
        parts.append(f"conditional networks ({num_classes} classes)")
    if dtype is not None:
        parts.append(f"torch.autocast('cpu', dtype={dtype})")
    return ", ".join(parts)


#: (scales, classes, autocast) settings losses and regularizers are checked in.
SETTINGS: tuple[tuple[int, int, torch.dtype | None], ...] = (
    (1, 0, None),
    (2, 0, None),
    (3, 0, None),
    (2, CONDITIONAL_CLASSES, None),
    (1, 0, AUTOCAST_DTYPE),
    (3, CONDITIONAL_CLASSES, AUTOCAST_DTYPE),
)


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
    for scales, num_classes, dtype in SETTINGS:
        with _checking(f"the loss with {_setting(scales, num_classes, dtype)}"):
            check_loss_with_networks(loss, scales=scales, num_classes=num_classes, dtype=dtype)


@one_thread()
def check_loss_with_networks(loss: Loss, *, scales: int = 1, num_classes: int = 0, dtype: torch.dtype | None = None) -> None:
    """Both phases as the loop runs them, between tiny networks that exchange
    ``scales`` images; a feature loss gets one feature per scale, of several
    shapes."""
    torch.manual_seed(0)
    generator, discriminator = _tiny_networks(scales, num_classes)
    reals, features = _tiny_reals(discriminator), loss.needs_features
    labels = torch.arange(4) % num_classes if num_classes else None
    z = generator.sample_latents(4)
    with torch.no_grad(), _autocast(dtype):
        fakes = [image.detach() for image in generator(z, labels)]
    with _autocast(dtype):
        real_out, fake_out = discriminate(discriminator, reals, labels, features), discriminate(discriminator, fakes, labels, features)
        d_loss = loss.discriminator_loss(real_out, fake_out)
    _assert_finite_scalar(d_loss, "discriminator_loss")
    d_loss.backward()
    _assert_some_gradient(discriminator, "discriminator_loss must depend on the discriminator's output")
    _assert_finite_gradients(discriminator, "discriminator_loss")
    with _autocast(dtype):
        fake_out = discriminate(discriminator, generator(z, labels), labels, features)
        real_out = None
        if loss.needs_reals_in_generator_phase:
            with torch.no_grad():
                real_out = discriminate(discriminator, reals, labels, features)
        g_loss = loss.generator_loss(fake_out, real_out)
    _assert_finite_scalar(g_loss, "generator_loss")
    g_loss.backward()
    _assert_some_gradient(generator, "generator_loss must depend on the fake output")
    _assert_finite_gradients(generator, "generator_loss")


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
    assert picture.dim() == 3 and picture.shape[0] == 3 and 0 <= picture.min() and picture.max() <= 1, (
        "Dataset.picture returns an RGB image in [0, 1]"
    )
    if dataset.context.num_classes:
        assert 0 <= labels.min() and labels.max() < dataset.context.num_classes


def _penalty(
    regularizer: Regularizer,
    generator: nn.Module,
    discriminator: nn.Module,
    reals: ImageList,
    labels: torch.Tensor | None,
    step: int,
    dtype: torch.dtype | None,
) -> torch.Tensor | None:
    """``regularizer``'s term in its phase, with the context the loop builds."""
    z = generator.sample_latents(reals[-1].shape[0])
    features = regularizer.needs_features
    if regularizer.phase == "D":
        with torch.no_grad(), _autocast(dtype):
            fakes = [image.detach() for image in generator(z, labels)]
        with _autocast(dtype):
            real_out, fake_out = discriminate(discriminator, reals, labels, features), discriminate(discriminator, fakes, labels, features)
            return regularizer.penalty(PenaltyContext(discriminator, generator, reals, fakes, labels, labels, real_out, fake_out, step))
    with frozen(discriminator), _autocast(dtype):
        fakes = generator(z, labels)
        fake_out = discriminate(discriminator, fakes, labels, features)
        return regularizer.penalty(PenaltyContext(discriminator, generator, reals, fakes, labels, labels, None, fake_out, step))


@one_thread()
def check_regularizer(
    regularizer: Regularizer, folder: Path, *, scales: int = 1, num_classes: int = 0, dtype: torch.dtype | None = None, steps: int = 4
) -> None:
    """Wrap tiny networks that exchange ``scales`` images and run ``steps``
    steps of the regularizer's phase: every term it returns is a finite scalar
    whose gradients are finite, and its ``after_step`` leaves finite weights."""
    assert isinstance(regularizer, Regularizer)
    torch.manual_seed(0)
    generator, discriminator = _tiny_networks(scales, num_classes)
    generator, discriminator = regularizer.wrap(generator, "generator"), regularizer.wrap(discriminator, "discriminator")
    assert isinstance(generator, nn.Module) and isinstance(discriminator, nn.Module), "Regularizer.wrap returns the module or a wrapper"
    reals = _tiny_reals(discriminator)
    labels = torch.arange(4) % num_classes if num_classes else None
    network = discriminator if regularizer.phase == "D" else generator
    for step in range(steps):
        term = _penalty(regularizer, generator, discriminator, reals, labels, step, dtype)
        if term is not None:
            _assert_finite_scalar(term, f"penalty at step {step}")
            if term.requires_grad:
                network.zero_grad(set_to_none=True)
                term.backward()
                _assert_finite_gradients(network, f"penalty at step {step}")
        regularizer.after_step(discriminator, "discriminator")  # the loop calls it after each network's step
        regularizer.after_step(generator, "generator")
    for module, what in ((generator, "generator"), (discriminator, "discriminator")):
        assert all(torch.isfinite(p).all() for p in module.parameters()), f"a {what} weight became NaN or infinite"


#: Option names of a lazy regularizer's interval (Karras et al. 2020, §3.1).
LAZY_OPTIONS = ("interval", "every")


def lazy_option(component: Component) -> str | None:
    """The name of a regularizer's lazy interval option, if it has one."""
    for field in attrs.fields(component.options):
        if field.name in LAZY_OPTIONS and isinstance(field.default, int) and not isinstance(field.default, bool):
            return field.name
    return None


@one_thread()
def _lazy_terms(component: Component, folder: Path, option: str, interval: int, steps: int) -> list[float | None]:
    regularizer = component.factory(structure_options({**example_options(component, folder), option: interval}, component.options))
    torch.manual_seed(0)
    generator, discriminator = _tiny_networks(1, 0)
    generator, discriminator = regularizer.wrap(generator, "generator"), regularizer.wrap(discriminator, "discriminator")
    reals = _tiny_reals(discriminator)
    terms: list[float | None] = []
    for step in range(steps):
        torch.manual_seed(1 + step)  # a penalty that samples (interpolates, noise) draws the same at every interval
        term = _penalty(regularizer, generator, discriminator, reals, None, step, None)
        if term is not None:
            _assert_finite_scalar(term, f"penalty with {option} = {interval} at step {step}")
        terms.append(None if term is None else term.item())
    return terms


def check_lazy_regularizer(component: Component, folder: Path, option: str, interval: int = 3) -> None:
    """With ``option = k`` a lazy regularizer returns its term on one step in
    every k, scaled by k so that its mean per step is unchanged, and ``None``
    on the steps it skips (Karras et al. 2020, §3.1)."""
    steps = 2 * interval
    every, lazy = _lazy_terms(component, folder, option, 1, steps), _lazy_terms(component, folder, option, interval, steps)
    what = f"regularizer {component.name}"
    skipped = [step for step, term in enumerate(every) if term is None]
    assert not skipped, f"{what}: with {option} = 1 the penalty must apply on every step; it returned None on steps {skipped}"
    active = [step for step, term in enumerate(lazy) if term is not None]
    assert len(active) == 2 and active[1] - active[0] == interval, (
        f"{what}: with {option} = {interval} the penalty must return a term on one step in every {interval} and None on the others;"
        f" it returned terms on steps {active} of 0..{steps - 1}"
    )
    for step in active:
        assert math.isclose(lazy[step], interval * every[step], rel_tol=1e-3, abs_tol=1e-6), (  # type: ignore[arg-type, operator]
            f"{what}: with {option} = {interval} the term at step {step} is {lazy[step]:.6g}, expected {interval} x {every[step]:.6g}:"
            " a lazy term is scaled by its interval, so that its mean per step does not change"
        )


def check_component(component: Component, folder: Path, registry: Registry | None = None) -> None:
    """Build ``component`` from its defaults (or example) and check its kind's contract."""
    registry = registry or testing_registry()
    kind = component.kind
    if kind in ("generator", "discriminator"):
        dataset = _dataset_for(component, registry, folder)
        network = build_example(component, folder, dataset.context)
        (check_generator if kind == "generator" else check_discriminator)(network, dataset)
        if not network.num_classes:  # else it was checked with labels just now
            check_conditional_network(component, folder, dataset)
    elif kind == "optimizer":
        layer = nn.Linear(3, 1)
        before = layer.weight.detach().clone()
        optimizer = build_example(component, folder, params=layer.parameters())
        layer(torch.ones(2, 3)).sum().backward()
        optimizer.step()
        assert not torch.equal(before, layer.weight), "one optimizer step must move the weights"
    elif kind == "regularizer":
        for scales, num_classes, dtype in SETTINGS:
            with _checking(f"the regularizer with {_setting(scales, num_classes, dtype)}"):
                check_regularizer(build_example(component, folder), folder, scales=scales, num_classes=num_classes, dtype=dtype)
        option = lazy_option(component)
        if option is not None:
            check_lazy_regularizer(component, folder, option)
    elif kind == "metric":
        assert isinstance(build_example(component, folder), Metric)  # it is evaluated by check_training_step
    elif kind == "logger":
        check_logger(build_example(component, folder), folder)
    else:
        {"loss": check_loss, "scheduler": check_scheduler, "dataset": check_dataset}[kind](build_example(component, folder))


def check_logger(logger: Logger, folder: Path) -> None:
    """A logger takes a record with nested learning rates and metrics, and a
    picture, between open and close."""
    assert isinstance(logger, Logger), f"a logger must subclass gankit.Logger, got {type(logger).__name__}"
    logger.open(folder, {"name": "contract", "train": {"kimg": 0.008}}, resumed=False)
    record = {"tick": 1, "kimg": 0.004, "loss/D": 0.5, "lr": {"generator": 1e-3}, "metrics": {"fid": {"fid": 1.5, "protocol": "contract"}}}
    logger.log(record)
    logger.log_picture("samples", torch.rand(3, 8, 8), 0.004)
    logger.close()


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
        "train": {"kimg": 0.008, "batch_size": 4, "tick_kimg": 0.004, "device": "cpu", "samples": 4, "ema_rampup": 0.0},
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
    elif KINDS[component.kind].named:
        table[KINDS[component.kind].recipe_key] = {"under_test": own}
    else:
        table[component.kind] = own
    return tomli_w.dumps(table)


def check_training_step(component: Component, folder: Path, registry: Registry | None = None) -> dict[str, Any]:
    """Train a few steps through gankit's loop on the CPU: no NaN, and the
    weights move."""
    from gankit.runs import Run

    registry = registry or testing_registry()
    recipe = recipe_from_text(training_recipe(component, folder, registry), f"contract recipe for {component.qualified_name}", registry)
    if component.kind == "logger":  # loggers are opened by runs that have a folder
        run = Run.start(recipe, run_dir=folder / "contract-run", registry=registry, progress="none")
    else:
        run = Run.in_memory(recipe, registry=registry, progress="none")
    trainer = run.trainer
    assert trainer is not None
    before = [p.detach().clone() for p in trainer.G.parameters()]
    record = run.train()
    losses = {key: value for key, value in record.items() if key.startswith(("loss/", "reg/"))}
    assert losses and all(math.isfinite(value) for value in losses.values()), f"non-finite losses: {losses}"
    for network in (trainer.G, trainer.D, trainer.G_ema):
        assert all(torch.isfinite(p).all() for p in network.parameters()), "a weight became NaN or infinite"
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.G.parameters())), "training did not change the generator"
    if component.kind == "metric":
        assert "metrics" in record and record["metrics"]["under_test"], "the metric was not evaluated at the end of training"
    return record


def _canonical(name: str) -> str:
    # PEP 503: "gankit_wgan", "Gankit.WGAN" and "gankit-wgan" name one distribution
    return re.sub(r"[-_.]+", "-", name).lower()


def _suite_components(dist: str | None, registry: Registry) -> list[Component]:
    key = None if dist is None else _canonical(dist)
    return [c for c in registry.components() if c.dist != TESTING_DIST and (key is None or _canonical(c.dist) == key)]


def _name_hint(dist: str) -> str:
    """Which installed distribution a name that is none probably meant."""
    entry_points = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.dist]
    plugin_dists = {_canonical(ep.dist.name): ep.dist.name for ep in entry_points}
    owners = sorted({ep.dist.name for ep in entry_points if _canonical(ep.name) == _canonical(dist)})
    if owners:
        return f"; {dist!r} is the entry point of {' and '.join(owners)}, and contract_suite takes the distribution's name: {owners[0]!r}"
    # a high cutoff: every plugin's name shares "gankit-", and a wrong guess misleads more than none
    near = difflib.get_close_matches(_canonical(dist), plugin_dists, n=3, cutoff=0.85)
    if near:
        return f"; did you mean {' or '.join(repr(plugin_dists[name]) for name in near)}?"
    every = {_canonical(name): name for d in importlib.metadata.distributions() if (name := d.metadata["Name"])}
    near = difflib.get_close_matches(_canonical(dist), every, n=3, cutoff=0.85)
    return f"; did you mean {' or '.join(repr(every[name]) for name in near)}?" if near else ""


def _not_loaded_reason(names: set[str]) -> str:
    blocked, only = plugin_selection()
    if names & blocked:
        return f"{BLOCK_ENV}={os.environ[BLOCK_ENV]} blocks it"
    if only and not names & only:
        return f"{ONLY_ENV}={os.environ[ONLY_ENV]} leaves it out"
    return "the registry was loaded before it was installed, or not from entry points"


def distribution_problem(dist: str | None, registry: Registry) -> str | None:
    """Why the contract suite cannot check ``dist``: it is not installed, has
    no ``gankit`` entry point, failed to import or registered nothing. With
    ``dist=None`` (every installed component): the plugins that failed to
    import. ``None`` when there is nothing wrong."""
    if dist is None:
        failed = [f"{plugin.dist} failed to import: {plugin.error}" for plugin in registry.plugins if plugin.error]
        if failed:
            return "; ".join(failed)
        return None if _suite_components(None, registry) else "no gankit components are installed (pip install -e gankit first)"
    key = _canonical(dist)
    failed = [plugin for plugin in registry.plugins if plugin.error and _canonical(plugin.dist) == key]
    if failed:
        return "; ".join(f"{dist} failed to import: {plugin.error} (entry point {plugin.entry_point!r})" for plugin in failed)
    if _suite_components(dist, registry):
        return None
    # importlib.metadata tells the cases apart: the registry only sees what has a gankit entry point
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return f"{dist} is not installed (no distribution of that name in this environment; pip install -e it first){_name_hint(dist)}"
    entry_points = [ep for ep in distribution.entry_points if ep.group == ENTRY_POINT_GROUP]
    if not entry_points:
        groups = sorted({ep.group for ep in distribution.entry_points})
        found = f"; it has entry points only in {', '.join(repr(group) for group in groups)}" if groups else ""
        return (
            f"{dist} is installed but has no `gankit` entry point{found}"
            " (declare one under [project.entry-points.gankit] in its pyproject.toml and reinstall it)"
        )
    loaded = [plugin.entry_point for plugin in registry.plugins if _canonical(plugin.dist) == key]
    if loaded:
        return (
            f"{dist} registered no components (its entry point {', '.join(map(repr, loaded))} loaded, but added nothing:"
            " does it define `register_components` decorated with @gankit.hookimpl, and call registry.add?)"
        )
    names = {distribution.metadata["Name"], dist, *(ep.name for ep in entry_points)}
    return f"{dist} is installed with a `gankit` entry point but was not loaded: {_not_loaded_reason(names)}"


def contract_suite(dist: str | None = None, registry: Registry | None = None) -> type:
    """A pytest test class parametrized over the components registered by
    ``dist`` (every installed component when ``None``).

    Its ``test_registers_components`` fails with the reason when ``dist`` is
    not installed, has no ``gankit`` entry point, failed to import or
    registered nothing, where an empty parametrization would be reported as
    skipped and a broken plugin's CI would pass. Failing a test rather than
    raising here keeps the rest of the session running and gives pytest's
    summary one line that says what is wrong."""
    # pytest only now: gankit does not depend on it, and importing
    # gankit.testing (for its checks or tiny networks) should not need it
    import pytest

    registry = registry or testing_registry()
    problem = distribution_problem(dist, registry)
    components = _suite_components(dist, registry)
    ids = [f"{c.kind}-{c.name}" for c in components]
    parametrize = pytest.mark.parametrize("component", components, ids=ids)

    class ContractSuite:
        def test_registers_components(self) -> None:
            if problem is not None:
                pytest.fail(problem, pytrace=False)

        if components:  # an empty parametrization would add "skipped" lines next to the failure

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
