"""The one generic training loop: the GAN step and its state.

Each iteration asks the scheduler for a :class:`StepPlan`, runs its D steps
(one real batch each) and G steps (reusing the last real batch) and updates
the EMA generator. At every tick it hands a record of the tick to its
``tick_callbacks``; what is done with it (log files, samples, checkpoints,
metrics, the progress display) belongs to the run around the trainer
(:mod:`gankit.runs`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
import operator
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch
from torch import nn

from gankit import checkpoint as ckpt
from gankit import distributed
from gankit.contracts import (
    BuildContext,
    Dataset,
    Discriminator,
    DOutput,
    Generator,
    Loss,
    Metric,
    PenaltyContext,
    Progress,
    Regularizer,
    Scheduler,
    Stage,
    StepPlan,
)
from gankit.errors import NonFinite, UserError
from gankit.images import ImageList, to_float_images
from gankit.recipe import Recipe


def select_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and distributed.active():
        name = f"cuda:{distributed.local_rank()}"  # torchrun's processes on one machine take one GPU each
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"train.device: {name!r} asked for, but torch sees no CUDA device (use 'auto' or 'cpu')")
    return device


@attrs.define
class Components:
    """Everything a recipe builds, before training starts."""

    dataset: Dataset
    context: BuildContext
    generator: Generator
    discriminator: Discriminator
    loss: Loss
    regularizers: dict[str, Regularizer]
    scheduler: Scheduler
    metrics: dict[str, Metric]


def build(recipe: Recipe, *, dataset: Dataset | None = None, scheduler: Scheduler | None = None) -> Components:
    """Build every component of ``recipe`` (on the CPU; nothing is trained or
    decoded), but the ``dataset`` and ``scheduler`` given already built (by
    :func:`build_data_and_schedule`, for preflight's checks). Errors a
    component raises name the recipe's file and key."""
    if dataset is None:
        dataset = recipe.data.build()
    regularizers = {name: spec.build() for name, spec in recipe.regularizers.items()}
    # G, then D, then each regularizer's wraps: the order of their random draws is part of what a seed gives
    generator = recipe.generator.build(dataset.context)
    discriminator = recipe.discriminator.build(dataset.context)
    for regularizer in regularizers.values():
        generator = regularizer.wrap(generator, "generator")
        discriminator = regularizer.wrap(discriminator, "discriminator")
    return Components(
        dataset=dataset,
        context=dataset.context,
        generator=generator,
        discriminator=discriminator,
        loss=recipe.loss.build(),
        regularizers=regularizers,
        scheduler=scheduler if scheduler is not None else recipe.scheduler.build(),
        metrics={name: spec.build() for name, spec in recipe.metrics.items()},
    )


def build_data_and_schedule(recipe: Recipe) -> tuple[Dataset, Scheduler]:
    """The recipe's data and scheduler, built once for both preflight's
    checks and the :class:`Trainer`. Neither draws from torch's global
    random stream, so building them before the training seed is set leaves
    the networks' initial weights as the seed gives them."""
    return recipe.data.build(), recipe.scheduler.build()


def build_generator(recipe: Recipe, context: BuildContext) -> Generator:
    """The recipe's generator alone, wrapped by its regularizers (spectral
    norm and the like change the module's parameters, so a checkpoint's
    weights load only into the wrapped network), to load a checkpoint into."""
    generator = recipe.generator.build(context)
    for regularizer in (spec.build() for spec in recipe.regularizers.values()):
        generator = regularizer.wrap(generator, "generator")
    return generator


class InfiniteSampler(torch.utils.data.Sampler[int]):
    """Indices forever from position ``start``: a fresh seeded permutation
    per epoch (or plain order), so a data position is one integer."""

    def __init__(self, length: int, shuffle: bool, seed: int, start: int = 0, share: tuple[int, int, int] = (0, 1, 1)) -> None:
        self.length, self.shuffle, self.seed, self.start = length, shuffle, seed, start
        # (rank, processes, per-process batch): each global batch of processes x
        # batch indices is split in order, rank r taking the r-th part
        self.rank, self.processes, self.batch = share

    def _global(self) -> Iterator[int]:
        epoch, offset = divmod(self.start, self.length)
        while True:
            if self.shuffle:
                order = torch.randperm(self.length, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)).tolist()
            else:
                order = range(self.length)
            yield from order[offset:]
            epoch, offset = epoch + 1, 0

    def __iter__(self) -> Iterator[int]:
        if self.processes == 1:
            yield from self._global()
            return
        indices = self._global()
        while True:
            batch = [next(indices) for _ in range(self.processes * self.batch)]
            yield from batch[self.rank * self.batch : (self.rank + 1) * self.batch]


def _whole_batch(batch: Any) -> Any:
    return batch  # Dataset.__getitems__ already returns a batch


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """The G phase: the discriminator passes gradients to its inputs but
    keeps none itself; each parameter's flag is restored afterwards."""
    flags = [parameter.requires_grad for parameter in module.parameters()]
    _set_requires_grad(module, False)
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)


def discriminate(discriminator: Discriminator, images: ImageList, labels: torch.Tensor | None, features: bool) -> DOutput:
    """A discriminator's output as losses and regularizers see it: float32
    scores of shape [N] and float32 features; labels reach a conditional
    discriminator only."""
    result = discriminator(images, labels if discriminator.num_classes else None, features=features)
    if features:
        scores, feats = result
        return DOutput(scores.reshape(-1).float(), [f.float() for f in feats])
    return DOutput(result.reshape(-1).float())


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema = lerp(model, ema, beta) for parameters; buffers (batch-norm
    statistics, counters) are copied, as in StyleGAN2-ADA's training loop."""
    ema_params = [p for p in ema.parameters()]
    model_params = [p.detach() for p in model.parameters()]
    if ema_params:
        torch._foreach_lerp_(ema_params, model_params, 1.0 - beta)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers(), strict=True):
        ema_buffer.copy_(buffer)


TickCallback = Callable[[dict[str, Any]], None]
StepCallback = Callable[["Trainer"], None]


def _out_of_range(values: dict[str, float], limit: float, option: str) -> str:
    """The values that are not finite, and those past ``limit`` with the
    train option that sets it: ``loss/D = nan``, ``loss/G = 1.6e+14 past
    train.loss_limit = 1e+06``; the empty string when there are none."""
    found = [f"{name} = {value:g}" for name, value in values.items() if not math.isfinite(value)]
    past = [f"{name} = {value:.3g}" for name, value in values.items() if math.isfinite(value) and abs(value) > limit]
    if past:
        found.append(f"{' and '.join(past)} past train.{option} = {limit:.3g}")
    return ", ".join(found)


class Trainer:
    """Trains the components of one recipe: networks, optimizers, gradient
    scalers, the EMA generator, counters and random state, with
    :meth:`state_dict` for checkpoints. It writes no files; a
    :class:`gankit.runs.Run` registers callbacks that do."""

    def __init__(self, recipe: Recipe, *, dataset: Dataset | None = None, scheduler: Scheduler | None = None) -> None:
        """``dataset`` and ``scheduler``, when given, are the recipe's
        already built (:func:`build_data_and_schedule`); the rest is built
        here, under ``train.seed``."""
        self.recipe = recipe
        self.options = recipe.train
        self.device = select_device(self.options.device)
        self.rank, self.processes = distributed.rank(), distributed.world_size()
        distributed.setup(self.device)
        self._configure_torch()

        torch.manual_seed(self.options.seed)
        parts = build(recipe, dataset=dataset, scheduler=scheduler)
        self.dataset, self.context = parts.dataset, parts.context
        self.loss, self.regularizers = parts.loss, parts.regularizers
        # D's features are computed in a phase when its loss or one of its
        # regularizers reads them
        self._needs_features = {
            phase: self.loss.needs_features or any(r.needs_features for r in self.regularizers.values() if r.phase == phase)
            for phase in ("D", "G")
        }
        self.scheduler, self.metrics = parts.scheduler, parts.metrics
        if self.options.sync_batchnorm and self.processes > 1:
            if self.device.type != "cuda":
                raise UserError("train.sync_batchnorm: PyTorch's SyncBatchNorm runs on CUDA devices only")
            parts.generator = nn.SyncBatchNorm.convert_sync_batchnorm(parts.generator)
            parts.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(parts.discriminator)
        memory_format = torch.channels_last if self.options.channels_last else torch.contiguous_format
        self.G = parts.generator.to(self.device, memory_format=memory_format).train()
        self.D = parts.discriminator.to(self.device, memory_format=memory_format).train()
        distributed.broadcast_module(self.G)
        distributed.broadcast_module(self.D)
        self.G_ema = copy.deepcopy(self.G).eval()
        _set_requires_grad(self.G_ema, False)
        self.optimizers = {
            "generator": recipe.optimizers["generator"].build(self.G.parameters()),
            "discriminator": recipe.optimizers["discriminator"].build(self.D.parameters()),
        }
        self.base_lrs = {role: [group["lr"] for group in opt.param_groups] for role, opt in self.optimizers.items()}
        precision = self.options.precision
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.scalers = {role: torch.amp.GradScaler(self.device.type, enabled=precision == "fp16") for role in self.optimizers}
        self.num_classes = max(self.G.num_classes, self.D.num_classes)
        self.latent_rng = torch.Generator(self.device).manual_seed(self.options.seed + 1)
        self.noise_rng = torch.Generator(self.device).manual_seed(self.options.seed + 3)  # PenaltyContext.uniform

        self.total_nimg = self.options.total_nimg
        self.nimg = 0  # real images shown to D: also the data position of the next batch
        self.d_steps = 0
        self.g_steps = 0
        self.tick = 0
        self.tick_start_nimg = 0
        self.stage: Stage | None = None
        self.batch_size = self.options.batch_size
        self.tick_callbacks: list[TickCallback] = []
        self.step_callbacks: list[StepCallback] = []
        self.stop_requested = False
        self.train_seconds = 0.0  # time spent in training iterations, summed over resumes (train.minutes)
        self.out_of_time = False  # a tick ended past train.minutes: the run is finished for its budget
        self.prepared_from_data = False  # the networks' prepare_from_data ran, or a checkpoint holds what it made
        self._stats: dict[str, tuple[torch.Tensor, int]] = {}  # name: (sum over the tick, count)
        self.lr_factor = 1.0  # lowered by each rollback after a non-finite step (train.on_nonfinite)
        self._consecutive_skips = 0
        self._tick_skips = 0
        self._warned_blowup = False  # train.on_blowup = warn says it once; each tick's record says it again
        self.reuses_fakes = False  # this iteration's D phase keeps G(z) for the G phase (train.reuse_fakes)
        self._reused_fakes: tuple[ImageList, torch.Tensor | None] | None = None
        self.compiled = False
        if self.options.compile:
            self._compile()
        self._separate_random_streams()

    def _compile(self) -> None:
        # nn.Module.compile compiles in place: state_dict keys, set_stage and
        # the EMA copy (made above, eager) stay as they are
        for network in (self.G, self.D):
            network.compile(mode=self.options.compile_mode)
        self.compiled = True

    def _uncompile(self, error: RuntimeError) -> None:
        for network in (self.G, self.D):
            network._compiled_call_impl = None  # back to eager; the only way nn.Module.compile offers
        self.compiled = False
        print(
            f"gankit: train.compile: torch.compile cannot differentiate this step twice ({str(error).splitlines()[0]}); "
            "a gradient penalty or R1 needs it, so the networks run eagerly from here",
            file=sys.stderr,
        )

    @property
    def finished(self) -> bool:
        """train.kimg reached, or a tick ended past train.minutes."""
        return self.nimg >= self.total_nimg or self.out_of_time

    def _time_is_up(self) -> bool:
        minutes = self.options.minutes
        return minutes is not None and distributed.any_true(self.train_seconds >= 60 * minutes, self.device)

    # -- set-up -------------------------------------------------------------

    def _configure_torch(self) -> None:
        if self.options.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        else:
            torch.backends.cudnn.benchmark = True

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        dataset = self.dataset
        share = (self.rank, self.processes, self.local_batch_size)
        sampler = InfiniteSampler(len(dataset), type(dataset).shuffle, self.options.seed, start=self.nimg, share=share)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.local_batch_size,
            sampler=sampler,
            collate_fn=_whole_batch,
            num_workers=dataset.workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=False,
            # Each new iterator draws its workers' base seed from this generator,
            # not the global RNG: a resumed run makes one more loader than an
            # uninterrupted one, and must not shift the draws of the training step.
            generator=torch.Generator().manual_seed(self.options.seed),
        )
        return iter(loader)

    # -- state --------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": ckpt.FORMAT,
            "recipe": self.recipe.resolved_toml(),
            "context": attrs.asdict(self.context),
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "generator_ema": self.G_ema.state_dict(),
            "optimizers": {role: opt.state_dict() for role, opt in self.optimizers.items()},
            "scalers": {role: scaler.state_dict() for role, scaler in self.scalers.items()},
            "scheduler": self.scheduler.state_dict(),
            "progress": {
                "nimg": self.nimg,
                "d_steps": self.d_steps,
                "g_steps": self.g_steps,
                "tick": self.tick,
                "tick_start_nimg": self.tick_start_nimg,
                "batch_size": self.batch_size,
                "lr_factor": self.lr_factor,
                "train_seconds": self.train_seconds,
            },
            "stage": attrs.asdict(self.stage) if self.stage else None,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "latent": self.latent_rng.get_state(),
                "noise": self.noise_rng.get_state(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        self.G_ema.load_state_dict(state["generator_ema"])
        for role, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][role])
        for role, scaler in self.scalers.items():
            if state["scalers"].get(role):
                scaler.load_state_dict(state["scalers"][role])
        self.scheduler.load_state_dict(state["scheduler"])
        progress = state["progress"]
        self.nimg = progress["nimg"]
        self.d_steps, self.g_steps = progress["d_steps"], progress["g_steps"]
        self.tick, self.tick_start_nimg = progress["tick"], progress["tick_start_nimg"]
        self.batch_size = progress["batch_size"]
        self.lr_factor = float(progress.get("lr_factor", 1.0))
        self.train_seconds = float(progress.get("train_seconds", 0.0))  # not in checkpoints older than train.minutes
        self.out_of_time = False  # a resume with a larger budget goes on
        self.prepared_from_data = True
        if state["stage"]:
            self._set_stage(Stage(**state["stage"]))
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self._separate_random_streams()
        self.latent_rng.set_state(state["rng"]["latent"])
        if "noise" in state["rng"]:  # not in checkpoints older than PenaltyContext.uniform
            self.noise_rng.set_state(state["rng"]["noise"])

    # -- one iteration -------------------------------------------------------

    def _progress(self) -> Progress:
        return Progress(nimg=self.nimg, total_nimg=self.total_nimg, d_steps=self.d_steps, g_steps=self.g_steps)

    def _set_stage(self, stage: Stage) -> None:
        self.stage = stage
        for network in (self.G, self.D, self.G_ema):
            network.set_stage(stage)

    def _apply(self, plan: StepPlan) -> bool:
        """Apply a plan; returns whether the data loader must be rebuilt."""
        if plan.stage is not None and plan.stage != self.stage:
            self._set_stage(plan.stage)
        if plan.reset_optimizers:
            for opt in self.optimizers.values():
                opt.state.clear()
        for role, opt in self.optimizers.items():
            for group, base in zip(opt.param_groups, self.base_lrs[role], strict=True):
                group["lr"] = base * plan.lr_scale * self.lr_factor
        batch_size = plan.batch_size or self.options.batch_size
        if batch_size != self.batch_size:
            self.batch_size = batch_size
            return True
        return False

    @property
    def local_batch_size(self) -> int:
        """This process's share of the (global) batch size."""
        if self.batch_size % self.processes:
            raise UserError(
                f"train.batch_size: a batch of {self.batch_size} does not split evenly among {self.processes} processes; "
                "give a multiple of the process count (a scheduler's per-stage batch sizes too)"
            )
        return self.batch_size // self.processes

    def _latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        # every process draws the whole batch's latents from the same stream and
        # keeps its part: the training does not depend on how the batch is split
        total, part = n * self.processes, slice(self.rank * n, (self.rank + 1) * n)
        z = self.G.sample_latents(total, self.device, self.latent_rng)
        labels = torch.randint(self.num_classes, (total,), device=self.device, generator=self.latent_rng) if self.num_classes else None
        if self.processes == 1:
            return z, labels
        return z[part], labels[part] if labels is not None else None

    def prepare_from_data(self) -> None:
        """What the networks learn from the data before the first step (a
        stacked GAN's encoder), once per training: a checkpoint keeps it.
        :meth:`train` calls it; call it earlier to look at the networks
        before they train."""
        if self.prepared_from_data:
            return
        self.dataset.prepare()
        self.G.prepare_from_data(self.dataset)
        self.D.prepare_from_data(self.dataset)
        distributed.broadcast_module(self.G)
        distributed.broadcast_module(self.D)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.prepared_from_data = True

    def _separate_random_streams(self) -> None:
        # Processes other than 0 leave torch's global stream (dropout, a
        # component's own draws) for one of their own; latents and
        # PenaltyContext.uniform have shared, split-aware streams instead.
        if self.rank:
            torch.manual_seed(self.options.seed * 1_000_003 + self.nimg * 1009 + self.rank)

    def _uniform(self, n: int) -> torch.Tensor:
        """PenaltyContext.uniform: drawn for the whole batch, this process's part kept."""
        noise = torch.rand(n * self.processes, device=self.device, generator=self.noise_rng)
        return noise[self.rank * n : (self.rank + 1) * n]

    def _generate(self, z: torch.Tensor, labels: torch.Tensor | None) -> ImageList:
        return self.G(z, labels if self.G.num_classes else None)

    def _record(self, name: str, value: torch.Tensor) -> None:
        # A running sum on the value's device: no host sync per step, and one
        # live tensor per name (thousands of kept scalars fragment the CPU heap).
        total, count = self._stats.get(name, (0.0, 0))
        self._stats[name] = (value.detach().float() + total, count + 1)

    def _penalties(self, phase: str, context: PenaltyContext) -> dict[str, torch.Tensor]:
        terms = {}
        for name, regularizer in self.regularizers.items():
            if regularizer.phase == phase and (term := regularizer.penalty(context)) is not None:
                terms[f"reg/{name}"] = term
        return terms

    def _finite(self, phase: str, step: int, objective: torch.Tensor, terms: dict[str, torch.Tensor]) -> bool:
        """Whether this step's objective is finite, so that its update may be
        taken. One host sync per phase step: a NaN must not reach the weights
        unnoticed. When it is not finite, train.on_nonfinite decides: skip the
        update (returns False), or raise :class:`NonFinite` naming the term."""
        limit = self.options.loss_limit if self.options.on_blowup == "nonfinite" else math.inf
        sane = torch.isfinite(objective) & (objective.detach().abs() <= limit)  # NaN fails both, in the same host sync
        if distributed.all_agree(bool(sane), self.device):  # every process takes the step, or none
            self._consecutive_skips = 0
            return True
        bad = _out_of_range({name: float(term.detach()) for name, term in terms.items()}, limit, "loss_limit")
        where = f"{phase} step {step}: {bad or _out_of_range({'the objective': float(objective.detach())}, limit, 'loss_limit')}"
        if distributed.active():
            where += f" (on process {self.rank})" if bad else " (on another process)"
        if self.options.on_nonfinite == "skip":
            self.check_weights()  # a step cannot be skipped past weights that are already lost
            if self._consecutive_skips < self.options.nonfinite_skip_limit:
                self._consecutive_skips += 1
                self._tick_skips += 1
                return False
            where += f" ({self._consecutive_skips} steps skipped in a row before it)"
        raise NonFinite(where, self.nimg / 1000)

    def discard_tick(self) -> None:
        """Forget the statistics of the tick in progress (after a rollback)."""
        self._stats.clear()
        self._tick_skips = 0
        self._consecutive_skips = 0
        self._reused_fakes = None

    def check_weights(self) -> None:
        """Raise :class:`NonFinite` when a parameter or buffer of a network is
        NaN or infinite, or with ``train.on_blowup = nonfinite`` a parameter
        passes ``train.weight_limit``; a run calls it before writing a checkpoint."""
        for role, network in (("generator", self.G), ("discriminator", self.D), ("generator_ema", self.G_ema)):
            for name, tensor in itertools.chain(network.named_parameters(), network.named_buffers()):
                if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                    raise NonFinite(f"weights: {role}.{name} holds NaN or infinite values", self.nimg / 1000)
        if self.options.on_blowup == "nonfinite" and (largest := self._largest_weight())[1] > self.options.weight_limit:
            raise NonFinite(f"weights: {_out_of_range(dict([largest]), self.options.weight_limit, 'weight_limit')}", self.nimg / 1000)

    def _largest_weight(self) -> tuple[str, float]:
        """The parameter of G or D with the largest magnitude, and that magnitude (one host sync)."""
        named = [
            (f"{role}.{name}", parameter)
            for role, network in (("generator", self.G), ("discriminator", self.D))
            for name, parameter in network.named_parameters()
            if parameter.is_floating_point() and parameter.numel()
        ]
        if not named:
            return "", 0.0
        peaks = torch.stack([parameter.detach().abs().max().float() for _, parameter in named])
        index = int(peaks.argmax())
        return named[index][0], float(peaks[index])

    def _watch_blowup(self, record: dict[str, Any]) -> None:
        """A tick whose mean loss or penalty passes ``train.loss_limit``, or
        whose weights pass ``train.weight_limit``, while still finite: a run
        on its way to NaN, or one that trains on without learning. Say so
        (the record's ``blowup``), or with ``train.on_blowup = nonfinite``
        handle it as a NaN."""
        options = self.options
        losses = {name: value for name, value in record.items() if name.startswith(("loss/", "reg/")) and math.isfinite(value)}
        where, largest = self._largest_weight()
        weights = {where: largest} if math.isfinite(largest) else {}  # NaN weights are check_weights' to report
        found = [_out_of_range(losses, options.loss_limit, "loss_limit"), _out_of_range(weights, options.weight_limit, "weight_limit")]
        blowup = "; ".join(filter(None, found))
        if not blowup:
            return
        if options.on_blowup == "nonfinite":
            raise NonFinite(f"tick {self.tick}: {blowup}", self.nimg / 1000)
        record["blowup"] = blowup
        if not self._warned_blowup and self.rank == 0:
            self._warned_blowup = True
            print(
                f"gankit: warning: at {self.nimg / 1000:g} kimg {record['blowup']}: training has likely blown up; lower the learning "
                "rates, or set train.on_blowup = nonfinite to handle it as train.on_nonfinite says (docs/reliability.md)",
                file=sys.stderr,
                flush=True,
            )

    def _optimize(self, role: str, network: nn.Module, objective: torch.Tensor) -> None:
        opt, scaler = self.optimizers[role], self.scalers[role]
        opt.zero_grad(set_to_none=True)
        scaler.scale(objective).backward()
        distributed.average_gradients(network)
        scaler.step(opt)
        scaler.update()
        for regularizer in self.regularizers.values():
            regularizer.after_step(network, role)  # type: ignore[arg-type]

    def _step(self, phase: str, step: int, role: str, network: nn.Module, terms: dict[str, torch.Tensor]) -> bool:
        """Check and take one phase's update; returns whether it was taken."""
        objective = functools.reduce(operator.add, terms.values())
        if not self._finite(phase, step, objective, terms):
            return False
        for name, term in terms.items():
            self._record(name, term)
        self._optimize(role, network, objective)
        return True

    def d_step(self, reals: ImageList, real_labels: torch.Tensor | None) -> None:
        features = self._needs_features["D"]
        z, fake_labels = self._latents(reals[-1].shape[0])
        if self.reuses_fakes:
            # train.reuse_fakes: G's weights do not change in the D phase, so
            # G(z) made here with its graph is exactly the G phase's G(z)
            with self._autocast():
                generated = self._generate(z, fake_labels)
            self._reused_fakes = (generated, fake_labels)
            fakes = [image.detach() for image in generated]
        else:
            with torch.no_grad(), self._autocast():
                fakes = [image.detach() for image in self._generate(z, fake_labels)]
        with self._autocast():
            real_out = discriminate(self.D, reals, real_labels, features)
            fake_out = discriminate(self.D, fakes, fake_labels, features)
            terms = {"loss/D": self.loss.discriminator_loss(real_out, fake_out)}
            context = PenaltyContext(
                self.D, self.G, reals, fakes, real_labels, fake_labels, real_out, fake_out, self.d_steps, uniform=self._uniform
            )
            terms |= self._penalties("D", context)
        if self._step("D", self.d_steps, "discriminator", self.D, terms):
            self._record("scores/real", real_out.scores.mean())
            self._record("scores/fake", fake_out.scores.mean())
        self.d_steps += 1

    def g_step(self, reals: ImageList, real_labels: torch.Tensor | None) -> None:
        features = self._needs_features["G"]
        if self._reused_fakes is not None:
            fakes, fake_labels = self._reused_fakes
            self._reused_fakes = None
        else:
            z, fake_labels = self._latents(reals[-1].shape[0])
            with self._autocast():
                fakes = self._generate(z, fake_labels)
        with frozen(self.D):
            with self._autocast():
                real_out = None
                fake_out = discriminate(self.D, fakes, fake_labels, features)
                if self.loss.needs_reals_in_generator_phase:
                    with torch.no_grad():
                        real_out = discriminate(self.D, reals, real_labels, features)
                terms = {"loss/G": self.loss.generator_loss(fake_out, real_out)}
                context = PenaltyContext(
                    self.D, self.G, reals, fakes, real_labels, fake_labels, real_out, fake_out, self.g_steps, uniform=self._uniform
                )
                terms |= self._penalties("G", context)
            self._step("G", self.g_steps, "generator", self.G, terms)
        self.g_steps += 1

    def _compiled_call(self, phase_step: Callable[[ImageList, torch.Tensor | None], None], *args: Any) -> None:
        if not self.compiled:
            return phase_step(*args)
        try:
            return phase_step(*args)
        except RuntimeError as error:
            if "double backward" not in str(error):
                raise
            self._uncompile(error)
            self._reused_fakes = None
            return phase_step(*args)  # the failed try took no optimizer step

    def _ema_beta(self) -> float:
        halflife_nimg = self.options.ema_halflife_kimg * 1000
        if self.options.ema_rampup > 0:
            halflife_nimg = min(halflife_nimg, self.nimg * self.options.ema_rampup)
        return 0.5 ** (self.batch_size / halflife_nimg) if halflife_nimg > 0 else 0.0

    # -- ticks ---------------------------------------------------------------

    def _memory_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _tick_record(self, elapsed: float, tick_nimg: int, tick_seconds: float) -> dict[str, Any]:
        record: dict[str, Any] = {
            "tick": self.tick,
            "kimg": round(self.nimg / 1000, 3),
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
            "batch_size": self.batch_size,
            "lr": {role: opt.param_groups[0]["lr"] for role, opt in self.optimizers.items()},
            "img_per_s": round(tick_nimg / max(tick_seconds, 1e-9), 2),
            "sec_per_kimg": round(tick_seconds / max(tick_nimg / 1000, 1e-9), 3),
            "elapsed_s": round(elapsed, 2),
            "train_s": round(self.train_seconds, 2),
            "memory_mb": round(self._memory_mb(), 1),
        }
        if self.out_of_time and self.nimg < self.total_nimg:
            record["stopped"] = f"train.minutes: {self.options.minutes:g} minutes of training reached"
        if self._tick_skips:
            record["nonfinite_skipped"] = self._tick_skips
            self._tick_skips = 0
        if self.stage is not None:
            # what the stage says: a growing network's resolution and fade, a stacked one's phase
            unset = {"resolution": 0, "phase": ""}
            record["stage"] = {key: value for key, value in attrs.asdict(self.stage).items() if unset.get(key, None) != value}
        names = sorted(self._stats)
        if names:
            means = torch.stack([torch.as_tensor(self._stats[name][0]).float() / self._stats[name][1] for name in names])
            means = distributed.mean(means)  # the statistics of the whole batch, not of process 0's part
            for name, value in zip(names, means.tolist(), strict=True):
                record[name] = round(value, 5)
        self._stats.clear()
        return record

    # -- the loop ------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train until ``train.kimg`` or until :attr:`stop_requested` is set
        (checked after every iteration); returns the last tick's record,
        as the tick callbacks left it."""
        started = time.perf_counter()
        self.dataset.prepare()
        self.prepare_from_data()
        batches = self._batches()
        record: dict[str, Any] = {}
        tick_time, tick_nimg0 = time.perf_counter(), self.nimg
        self.out_of_time = self._time_is_up()  # resumed without a larger budget: nothing to train
        while not self.finished and not distributed.any_true(self.stop_requested, self.device):
            iteration_start = time.perf_counter()
            plan = self.scheduler.plan(self._progress())
            if self._apply(plan):
                batches = self._batches()
            reals: ImageList = []
            real_labels: torch.Tensor | None = None
            for _ in range(plan.d_steps):
                images, labels = next(batches)
                self.nimg += images.shape[0] * self.processes
                images = to_float_images(images.to(self.device, non_blocking=True))
                if self.options.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                reals = self.D.prepare_reals(images)
                real_labels = labels.to(self.device) if self.num_classes else None
                self.reuses_fakes = self.options.reuse_fakes and plan.d_steps == 1 and plan.g_steps > 0
                self._compiled_call(self.d_step, reals, real_labels)
            for _ in range(plan.g_steps):
                self._compiled_call(self.g_step, reals, real_labels)
            update_ema(self.G_ema, self.G, self._ema_beta())
            for step_callback in self.step_callbacks:
                step_callback(self)
            self.train_seconds += time.perf_counter() - iteration_start
            if self.finished or self.nimg >= self.tick_start_nimg + self.options.tick_kimg * 1000:
                self.out_of_time = self._time_is_up()
                self.tick += 1
                now = time.perf_counter()
                record = self._tick_record(now - started, self.nimg - tick_nimg0, now - tick_time)
                self._watch_blowup(record)
                self.tick_start_nimg = self.nimg
                for tick_callback in self.tick_callbacks:
                    tick_callback(record)
                tick_time, tick_nimg0 = time.perf_counter(), self.nimg
        return record
