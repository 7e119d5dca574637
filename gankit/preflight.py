"""Before training, what would fail only once it has started: a schedule
whose stages the networks cannot take, and networks, batches or data that
cannot fit in memory. `gankit check` and `gankit run` call :func:`preflight`
on every recipe before they build anything."""

from __future__ import annotations

import contextlib
import copy
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import torch

from gankit.contracts import BuildContext, Dataset, Progress, Scheduler, StepPlan
from gankit.errors import UserError
from gankit.kinds import ROLES
from gankit.recipe import KeyPath, Recipe


def preflight(recipe: Recipe, dataset: Dataset | None = None, scheduler: Scheduler | None = None) -> None:
    """Refuse, naming a key, what would otherwise fail after training began:
    a schedule whose stages the networks cannot take, and networks, batches
    or data that cannot fit in memory. ``dataset`` and ``scheduler`` are the
    recipe's, built once for these checks and for training (built here when
    not given). The networks are built on the meta device, which allocates
    nothing, to count their parameters; training builds its own."""
    if dataset is None:
        dataset = recipe.data.build()
    networks = _meta_networks(recipe, dataset.context)
    plans = _plans(recipe, scheduler if scheduler is not None else recipe.scheduler.build())
    _check_stages(recipe, dataset.context, networks, plans)
    _check_memory(recipe, dataset, networks, plans)


#: The most submodules, parameters and buffers one network may register. The
#: largest networks of gankit's recipes have a few hundred; far more is a
#: typing mistake, and building it even on the meta device takes time and
#: host memory that grow with the mistake.
MAX_NETWORK_PARTS = 10_000


class _TooManyParts(Exception):
    """A network being built on the meta device passed :data:`MAX_NETWORK_PARTS`."""


@contextlib.contextmanager
def _counting_parts(limit: int) -> Iterator[None]:
    """Raise :class:`_TooManyParts` inside the constructor that registers the
    ``limit``-th submodule, parameter or buffer, so that a network of a
    hundred million layers is refused after a few thousand, not built."""
    count = 0

    def count_one(*_: Any) -> None:
        nonlocal count
        count += 1
        if count > limit:
            raise _TooManyParts

    registration = torch.nn.modules.module
    handles = [
        registration.register_module_module_registration_hook(count_one),
        registration.register_module_parameter_registration_hook(count_one),
        registration.register_module_buffer_registration_hook(count_one),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _meta_networks(recipe: Recipe, context: BuildContext) -> dict[str, torch.nn.Module] | None:
    networks = {}
    for role in ROLES:
        spec = recipe.components[role]
        try:
            with torch.device("meta"), _counting_parts(MAX_NETWORK_PARTS):
                networks[role] = spec.build(context)
        except _TooManyParts:
            raise recipe.error(
                spec.culprit(),
                f"the {role} would be built of more than {MAX_NETWORK_PARTS:,} layers, parameters and buffers, "
                "gankit's bound on one network (its recipes' largest have a few hundred)",
            ) from None
        except UserError:
            raise
        except Exception:  # a factory that reads its tensors' values cannot run on meta: building for real will tell
            return None
    return networks


def _plans(recipe: Recipe, scheduler: Scheduler, points: int = 1000) -> list[tuple[int, StepPlan]]:
    """The scheduler's plans at ``points`` places spread over the training,
    and at its last image."""
    # asked of a copy: a scheduler may keep state from one plan to the next
    # (ProGAN's phase), and training's must start from none
    scheduler = copy.deepcopy(scheduler)
    total, batch = recipe.train.total_nimg, recipe.train.batch_size
    places = sorted({total * i // points for i in range(points)} | {total - 1}) if total else []  # none: training is over at once
    return [(nimg, scheduler.plan(Progress(nimg=nimg, total_nimg=total, d_steps=nimg // batch, g_steps=nimg // batch))) for nimg in places]


def _check_stages(
    recipe: Recipe, context: BuildContext, networks: dict[str, torch.nn.Module] | None, plans: list[tuple[int, StepPlan]]
) -> None:
    data = f"the data's {context.resolution}x{context.resolution}"
    if getattr(recipe.data.options, "resolution", None) == context.resolution:
        data += f" (data.resolution = {context.resolution})"
    seen = set()
    for nimg, plan in plans:
        stage = plan.stage
        if stage is None or stage in seen:
            continue
        seen.add(stage)
        asks = f"at {nimg / 1000:g} kimg the schedule asks for a {stage.resolution}x{stage.resolution} stage"
        if stage.resolution > context.resolution:
            raise _schedule_error(recipe, stage.resolution, f"{asks}, larger than {data}")
        for network in (networks or {}).values():
            try:
                network.set_stage(stage)
            except UserError as error:
                raise _schedule_error(recipe, stage.resolution, f"at {nimg / 1000:g} kimg: {error.message}") from None


def _schedule_error(recipe: Recipe, resolution: int, message: str) -> UserError:
    return recipe.error(_scheduler_key(recipe, resolution), message)


def _scheduler_key(recipe: Recipe, number: int) -> KeyPath:
    """The scheduler's option that holds ``number`` (a resolution, a batch
    size), itself or as a value of its table; else the scheduler's table.
    Generic code cannot tell which option made a plan, but the one holding
    the plan's number is the one to look at."""
    spec = recipe.scheduler
    found = spec.path
    for field in attrs.fields(type(spec.options)):
        value = getattr(spec.options, field.name)
        if type(value) is int and value == number:
            found = spec.path + (field.name,)
        elif isinstance(value, Mapping):
            found = next((spec.path + (field.name, str(key)) for key, item in value.items() if item == number), found)
    return found


@attrs.frozen
class _Need:
    """Memory some part of training needs at the least, and the key that sets it."""

    path: KeyPath
    what: str
    nbytes: int
    on_device: bool  # else in the host's memory


def _check_memory(recipe: Recipe, dataset: Any, networks: dict[str, torch.nn.Module] | None, plans: list[tuple[int, StepPlan]]) -> None:
    context = dataset.context
    values = context.channels * context.resolution**2  # per sample; 2D toy data has resolution 1
    needs = []
    # in memory: a dataset that says so with an ``in_memory`` attribute (the images dataset), else one
    # read by no worker process from a finite store that it shuffles (shapes)
    if getattr(dataset, "in_memory", dataset.workers == 0 and type(dataset).shuffle):
        stored = len(dataset.without_mirrors())  # mirror images (hflip) are flipped when read, not stored
        needs.append(
            _Need(
                recipe.data.culprit(),
                f"{stored:,} images of {context.channels}x{context.resolution}x{context.resolution} kept in memory need",
                stored * values,
                False,
            )
        )
    if networks is not None:
        for role, network in networks.items():
            count = sum(parameter.numel() for parameter in network.parameters())
            # weights and gradients in float32, and the generator's moving average
            copies, held = (3, "weights, gradients and moving average") if role == "generator" else (2, "weights and gradients")
            needs.append(
                _Need(recipe.components[role].culprit(), f"the {role}'s {count:,} parameters ({held}) need", count * 4 * copies, True)
            )
    batch, path = recipe.train.batch_size, ("train", "batch_size")
    for _, plan in plans:
        if plan.batch_size and plan.batch_size > batch:
            batch, path = plan.batch_size, _scheduler_key(recipe, plan.batch_size)
    latent = getattr((networks or {}).get("generator"), "latent_size", 0)
    # the uint8 batch, the float32 reals and fakes, and the latents
    needs.append(_Need(path, f"a batch of {batch:,} samples needs", batch * (values * 9 + latent * 4), True))

    device = _training_device(recipe.train.device)
    on_cuda = device.type == "cuda"
    pools = [("this machine's memory", host_memory(), [need for need in needs if not (on_cuda and need.on_device)])]
    if on_cuda:
        pools.append((f"the memory of {device}", device_memory(device), [need for need in needs if need.on_device]))
    for where, capacity, pool in pools:
        total = sum(need.nbytes for need in pool)
        if capacity is None or total <= capacity:
            continue
        worst = max(pool, key=lambda need: need.nbytes)
        rest = f" ({size_text(total)} with the rest of training)" if worst.nbytes <= capacity else ""
        raise recipe.error(
            worst.path, f"{worst.what} at least {size_text(worst.nbytes)}{rest}, more than the {size_text(capacity)} of {where}"
        )


def _training_device(name: str) -> torch.device:
    """The device training would use; a CUDA device torch cannot see is
    reported by training itself, and its memory is not known here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def host_memory() -> int | None:
    """This machine's physical memory in bytes, or None where it cannot tell."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def device_memory(device: torch.device) -> int | None:
    """A CUDA device's memory in bytes, or None where torch cannot see it."""
    index = device.index or 0
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        return None
    return int(torch.cuda.get_device_properties(index).total_memory)


def size_text(nbytes: float) -> str:
    """``nbytes`` as people read it: 2.9 MiB."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
    power = min(int(math.log(max(nbytes, 1), 1024)), len(units) - 1)
    return f"{nbytes / 1024**power:.1f} {units[power]}"
