"""A run: one training in its folder, from start to resume to sampling.

:class:`Run` owns everything around the :class:`~gankit.loop.Trainer`: the
numbered run folder, env.json and resolved.toml, checkpoints, SIGINT and
SIGTERM, the loggers, the sample grids, metric evaluations and the progress
display. It does its per-tick work in callbacks it registers on the trainer;
tests and scripts can add their own (``run.trainer.tick_callbacks``).

From Python::

    from gankit import Run

    run = Run.start("recipes/quickstart.toml", ["train.kimg=20"])
    run.train()
    run = Run.resume(run.run_dir, ["train.kimg=40"])
    run.train()
    images = Run.from_checkpoint(run.run_dir).sample(16, seed=0)
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import torch
import tqdm

import gankit
from gankit import checkpoint as ckpt
from gankit import distributed
from gankit.contracts import BuildContext, Dataset, Generator, Logger, MetricContext, Stage
from gankit.errors import NonFinite, UserError
from gankit.images import ImageList, to_float_images
from gankit.loggers import drop_ticks_after
from gankit.loop import Trainer, build_data_and_schedule, build_generator, select_device
from gankit.pictures import save_scale_grids
from gankit.preflight import preflight, size_text
from gankit.recipe import Change, ComponentSpec, Recipe, load_recipe, recipe_from_text, resume_changes
from gankit.registry import Registry, default_registry
from gankit.sampling import generate, grid_latents, seeded_latents

Progress = Literal["auto", "bar", "lines", "none"]

_NUMBERED = re.compile(r"^(\d{5})-")


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was written."""

    def __init__(self, signum: int, run_dir: Path | None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir = run_dir


class Run:
    """One training and its folder. Make one with :meth:`start`,
    :meth:`in_memory`, :meth:`resume` or :meth:`from_checkpoint`."""

    def __init__(
        self, recipe: Recipe, trainer: Trainer | None, run_dir: Path | None, registry: Registry, progress: Progress = "auto"
    ) -> None:
        self.recipe = recipe
        self.trainer = trainer
        self.run_dir = run_dir if is_writer() else None  # where this process writes: nowhere but on rank 0
        self.folder = run_dir  # where every process reads checkpoints from
        self.registry = registry
        self.progress = ("bar" if sys.stderr.isatty() else "lines") if progress == "auto" else progress
        if not is_writer():
            self.progress = "none"  # one progress display for all of torchrun's processes
        self.checkpoint: Path | None = None  # the checkpoint this run was loaded from
        self._generator: Generator | None = None  # from_checkpoint's, when there is no trainer
        self._context: BuildContext | None = None
        self._loggers: dict[str, Logger] = {}
        self._signal: int | None = None
        self._extra_signals = 0
        self._lock: Any = None
        self._bar: Any = None
        if trainer is not None:
            # a conditional generator's grid has one row per class (grid_latents)
            z, labels, self._grid_rows = grid_latents(trainer.G, self.recipe.train.samples, self.recipe.train.seed + 2)
            self.fixed_z = z.to(trainer.device)
            self.fixed_labels = labels.to(trainer.device) if labels is not None else None
            trainer.tick_callbacks += [self._evaluate_at_tick, self._log, self._save_at_tick, self._show_tick]
            trainer.step_callbacks.append(self._advance_bar)

    # -- making one ---------------------------------------------------------

    @classmethod
    def start(
        cls,
        recipe: Recipe | str | Path,
        overrides: Sequence[str] = (),
        *,
        run_dir: Path | str | None = None,
        registry: Registry | None = None,
        progress: Progress = "auto",
    ) -> Run:
        """Check ``recipe`` (a file, or one already loaded) with
        :func:`~gankit.preflight.preflight`, build it and make its run
        folder: ``run_dir`` (see :func:`claim_run_dir`), or else the next
        ``train.out_dir/NNNNN-name``. Nothing is made when either fails."""
        registry = registry or default_registry()
        recipe, source_file = _loaded(recipe, overrides, registry)
        # read now: the recipe may be the recipe.toml of the folder claim_run_dir clears
        source = source_file.read_bytes() if source_file is not None else None
        dataset, scheduler = build_data_and_schedule(recipe)
        preflight(recipe, dataset, scheduler)
        trainer = Trainer(recipe, dataset=dataset, scheduler=scheduler)
        folder: Path | str | None = None
        if is_writer():
            try:
                folder = claim_run_dir(Path(run_dir)) if run_dir is not None else new_run_dir(Path(recipe.train.out_dir), recipe.name)
            except UserError as error:
                distributed.from_rank_zero(error.message)  # the other processes stop with it instead of waiting
                raise
        folder = distributed.from_rank_zero(folder)
        if isinstance(folder, str):
            raise UserError(folder)
        run = cls(recipe, trainer, folder, registry, progress)
        if run.run_dir is not None:
            with run._full_disk_is_one_line():
                if source is not None:
                    (run.run_dir / "recipe.toml").write_bytes(source)
                (run.run_dir / "resolved.toml").write_text(recipe.resolved_toml())
        return run

    @classmethod
    def in_memory(
        cls, recipe: Recipe | str | Path, overrides: Sequence[str] = (), *, registry: Registry | None = None, progress: Progress = "lines"
    ) -> Run:
        """A run with no folder, for tests, benchmarks and notebooks: it
        trains and evaluates its metrics, and writes nothing."""
        registry = registry or default_registry()
        recipe, _ = _loaded(recipe, overrides, registry)
        return cls(recipe, Trainer(recipe), None, registry, progress)

    @classmethod
    def resume(
        cls, run_dir: Path | str, overrides: Sequence[str] = (), *, registry: Registry | None = None, progress: Progress = "auto"
    ) -> Run:
        """Continue a run from its newest checkpoint. Overrides may change
        what does not shape its checkpoints (a longer ``train.kimg``, an
        optimizer's hyperparameters, which the loaded optimizers take; see
        :data:`gankit.kinds.OnResume`); any other is refused before anything
        is loaded. Changes are written to its resolved.toml, each resume
        noted at its top with the kimg it was made at; log.jsonl loses the
        ticks logged after the checkpoint, which the run logs again."""
        run_dir = Path(run_dir)
        registry = registry or default_registry()
        if not (run_dir / "resolved.toml").is_file():
            raise UserError(f"{run_dir}: not a gankit run folder (no resolved.toml)")
        if _stopped_before_a_checkpoint(run_dir):
            raise UserError(
                f"{run_dir}: this run stopped before its first checkpoint, so there is nothing to resume; "
                f"start it again with: gankit run RECIPE --run-dir {run_dir}"
            )
        state_path = ckpt.find(run_dir)
        before = load_recipe(run_dir / "resolved.toml", registry)
        recipe = load_recipe(run_dir / "resolved.toml", registry, overrides) if overrides else before
        changes = resume_changes(before, recipe)
        hyperparameters = _optimizer_changes(before, recipe)
        dataset, scheduler = build_data_and_schedule(recipe)
        if changes:
            preflight(recipe, dataset, scheduler)
        trainer = Trainer(recipe, dataset=dataset, scheduler=scheduler)
        state = ckpt.load(state_path, trainer.device)
        with ckpt.restoring(state_path, f"the networks of {run_dir / 'resolved.toml'}"):
            trainer.load_state_dict(state)
        for role, values in hyperparameters.items():  # loading restored the checkpoint's
            for group in trainer.optimizers[role].param_groups:
                group.update(values)
        run = cls(recipe, trainer, run_dir, registry, progress)
        run.checkpoint = state_path
        if run.run_dir is not None:
            with run._full_disk_is_one_line():
                lock_run_dir(run_dir).close()  # another process training in it would see its log changed
                drop_ticks_after(run_dir / "log.jsonl", trainer.tick)
                if changes:
                    _note_resume(run_dir / "resolved.toml", recipe, changes, trainer.nimg, state_path)
        return run

    @classmethod
    def from_checkpoint(cls, path: Path | str, *, raw: bool = False, device: str = "cpu", registry: Registry | None = None) -> Run:
        """The generator of a run's newest checkpoint (or of a checkpoint
        file), built from the checkpoint's own recipe, in eval mode on
        ``device``: its moving average, or with ``raw`` the trained network.
        Such a run samples and evaluates; it does not train."""
        registry = registry or default_registry()
        found = ckpt.find(Path(path))
        state = ckpt.load(found)
        recipe = recipe_from_text(state["recipe"], f"{found} (its recipe)", registry)
        with ckpt.restoring(found, "a gankit build context"):
            context = BuildContext(**state["context"])
        generator = build_generator(recipe, context)
        with ckpt.restoring(found, "the generator its own recipe builds"):
            generator.load_state_dict(state["generator" if raw else "generator_ema"])
            if state["stage"]:
                generator.set_stage(Stage(**state["stage"]))
        run = cls(recipe, None, None, registry, "none")
        run.checkpoint, run._context = found, context
        run._generator = generator.to(select_device(device)).eval()
        return run

    # -- what it holds --------------------------------------------------------

    @property
    def generator(self) -> Generator:
        """The generator samples and metrics use: the EMA generator while
        training, the checkpoint's after :meth:`from_checkpoint`."""
        if self.trainer is not None:
            return self.trainer.G_ema
        assert self._generator is not None
        return self._generator

    @property
    def context(self) -> BuildContext:
        return self.trainer.context if self.trainer is not None else self._context  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        return next(iter(self.generator.parameters()), torch.empty(0)).device

    def dataset(self) -> Dataset:
        """The recipe's data (built, not yet prepared)."""
        return self.trainer.dataset if self.trainer is not None else self.recipe.data.build()

    # -- training -------------------------------------------------------------

    def train(self) -> dict[str, Any]:
        """Train to ``train.kimg``; returns the last tick's record. SIGINT or
        SIGTERM writes a checkpoint and raises :class:`Interrupted`. A loss,
        penalty or weight that becomes NaN or infinite is handled as
        ``train.on_nonfinite`` says; when the run stops for it,
        :class:`~gankit.errors.NonFinite` is raised and no checkpoint holds it."""
        trainer = self._trainer()
        trainer.dataset.prepare()
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with self._full_disk_is_one_line():
                self._open()
                record = self._train_with_rollbacks(trainer)
                if self._signal is not None and not trainer.finished:
                    self.save_checkpoint()  # still under this run's handlers: a second Ctrl-C cannot cut it short
                    raise Interrupted(self._signal, self.run_dir)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self._close()
        return record

    def _train_with_rollbacks(self, trainer: Trainer) -> dict[str, Any]:
        options = self.recipe.train
        rollbacks = 0
        while True:
            try:
                return trainer.train()
            except NonFinite as error:
                newest = self._newest_checkpoint()
                if options.on_nonfinite != "rollback" or newest is None or rollbacks >= options.rollback_limit:
                    why = f" after {rollbacks} rollbacks" if options.on_nonfinite == "rollback" and newest is not None else ""
                    raise NonFinite(f"{error.where}{why}; {self._last_good(newest)}", error.kimg) from None
                rollbacks += 1
                lr_factor = trainer.lr_factor * options.rollback_lr_scale
                trainer.load_state_dict(ckpt.load(newest, trainer.device))
                trainer.lr_factor = lr_factor
                trainer.discard_tick()
                if self.run_dir is not None:
                    drop_ticks_after(self.run_dir / "log.jsonl", trainer.tick)
                print(
                    f"gankit: {error.where}; rolled back to {newest.name} ({trainer.nimg / 1000:g} kimg) with learning rates "
                    f"x{lr_factor:g} (rollback {rollbacks} of {options.rollback_limit})",
                    file=sys.stderr,
                )

    def _newest_checkpoint(self) -> Path | None:
        found = ckpt.list_checkpoints(self.folder / "checkpoints") if self.folder is not None else []
        return found[-1] if found else None

    def _last_good(self, newest: Path | None) -> str:
        if newest is None:
            return "no checkpoint was written before it" if self.run_dir is not None else "this run has no folder to keep checkpoints in"
        return (
            f"the last good checkpoint is {newest.name}: resume it with lower learning rates "
            f"(gankit run --resume {self.run_dir} --set ...), or set train.on_nonfinite = rollback"
        )

    def _trainer(self) -> Trainer:
        if self.trainer is None:
            raise UserError("this run was loaded from a checkpoint to sample or evaluate; resume its folder to train it")
        return self.trainer

    def _on_signal(self, signum: int, frame: Any) -> None:
        trainer = self._trainer()
        if self._signal is None:
            self._signal = signum
            trainer.stop_requested = True
            return
        # the first signal's checkpoint is on its way: a second one only says
        # what stopping at once would lose; a third Ctrl-C does stop at once
        newest = self._newest_checkpoint()
        since = f"{newest.name}" if newest is not None else "the start"
        self._extra_signals += 1
        if signum == signal.SIGINT and self._extra_signals >= 2:
            print(f"gankit: stopping at once; the progress since {since} is lost", file=sys.stderr, flush=True)
            raise KeyboardInterrupt
        print(
            f"gankit: already stopping: a checkpoint at {trainer.nimg / 1000:g} kimg is written when the current step ends; "
            f"Ctrl-C once more stops at once and loses the progress since {since}",
            file=sys.stderr,
            flush=True,
        )

    def _open(self) -> None:
        trainer = self._trainer()
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._lock = lock_run_dir(self.run_dir)
            env = environment(self.recipe.train.seed, trainer.device, _plugin_versions(self.registry))
            write_json(self.run_dir / "env.json", {**env, "processes": distributed.world_size()})
            resolved = self.recipe.resolved()
            for name, spec in self.recipe.loggers.items():
                logger: Logger = spec.build()
                logger.open(self.run_dir, resolved, resumed=trainer.nimg > 0)
                self._loggers[name] = logger
            if trainer.nimg == 0:
                self._save_reals()
                self.save_samples()
        if self.progress == "bar":
            total = trainer.total_nimg / 1000
            self._bar = tqdm.tqdm(
                total=total,
                initial=trainer.nimg / 1000,
                unit="kimg",
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.%df}/%s kimg [{elapsed}<{remaining}{postfix}]" % (_kimg_decimals(total), _kimg_text(total)),
            )

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        for logger in self._loggers.values():
            logger.close()
        self._loggers.clear()
        if self._lock is not None:
            self._lock.close()  # closing the file releases its lock
            self._lock = None

    # -- per step and per tick --------------------------------------------------

    def _advance_bar(self, trainer: Trainer) -> None:
        if self._bar is not None:
            self._bar.update(trainer.nimg / 1000 - self._bar.n)

    def _evaluate_at_tick(self, record: dict[str, Any]) -> None:
        trainer = self._trainer()
        every = self.recipe.train.metric_ticks
        if trainer.metrics and (trainer.finished or (every and trainer.tick % every == 0)):
            # every process takes its part of the work (gankit.distributed.part) and ends with the same scores
            results = self.evaluate()
            if is_writer():
                record["metrics"] = results

    def _log(self, record: dict[str, Any]) -> None:
        for logger in self._loggers.values():
            logger.log(record)

    def _save_at_tick(self, record: dict[str, Any]) -> None:
        trainer, options = self._trainer(), self.recipe.train
        if trainer.finished or (options.sample_ticks and trainer.tick % options.sample_ticks == 0):
            self.save_samples()
        if trainer.finished or (options.checkpoint_ticks and trainer.tick % options.checkpoint_ticks == 0):
            self.save_checkpoint()

    def _show_tick(self, record: dict[str, Any]) -> None:
        minutes = self.recipe.train.minutes
        if self._bar is not None:
            # the bar's own estimate follows kimg; a time budget that ends the run sooner has its own
            left = f", ETA {_duration(remaining_seconds(record, self._trainer().total_nimg, minutes))}" if minutes is not None else ""
            self._bar.set_postfix_str(_postfix(record) + left, refresh=False)
        elif self.progress == "lines":
            print(_tick_line(record, self._trainer().total_nimg, minutes), file=sys.stderr, flush=True)

    # -- outputs -----------------------------------------------------------------

    def save_checkpoint(self) -> Path | None:
        """Write the trainer's state atomically into checkpoints/ and drop
        the oldest beyond ``train.keep_checkpoints``. A write that fails (a
        full disk) leaves the older checkpoints as they were and raises a
        :class:`UserError` that names the last good one."""
        trainer = self._trainer()
        trainer.check_weights()  # a NaN never reaches a checkpoint (on every process: they hold the same weights)
        if self.folder is None:
            return None
        folder = self.folder / "checkpoints"
        path = ckpt.checkpoint_path(folder, trainer.nimg)
        failure = None
        if self.run_dir is not None:
            state = trainer.state_dict()
            try:
                ckpt.save_atomic(state, path)
            except OSError as error:
                if ckpt.is_disk_full(error):
                    failure = self._full_disk(folder, ckpt.state_nbytes(state), f": {path.name} was not written")
                else:
                    failure = f"{path}: not written, {error.strerror or error}; {self._last_checkpoint()}"
            else:
                ckpt.rotate(folder, self.recipe.train.keep_checkpoints)
        # the other processes go on only once the checkpoint is whole: a rollback may read it
        if not distributed.all_agree(failure is None, trainer.device):
            raise UserError(failure or f"{path}: not written by process 0")
        return path

    @contextlib.contextmanager
    def _full_disk_is_one_line(self) -> Iterator[None]:
        """A full disk met while writing the run folder (a log line, a
        sample grid, env.json) becomes a :class:`UserError` naming the folder
        and the space the next checkpoint needs; a checkpoint's own write
        says so itself (:meth:`save_checkpoint`)."""
        try:
            yield
        except Exception as error:
            if self.run_dir is None or not ckpt.is_disk_full(error):
                raise
            newest = self._newest_checkpoint()
            need = ckpt.state_nbytes(self.trainer.state_dict()) if self.trainer is not None else newest.stat().st_size if newest else 0
            raise UserError(self._full_disk(self.run_dir, need)) from None

    def _full_disk(self, folder: Path, need: int, lost: str = "") -> str:
        free = ckpt.free_bytes(folder)
        now = f", and {size_text(free)} is" if free is not None else ""
        return f"{folder}: the disk is full{lost}; a checkpoint needs about {size_text(need)} free there{now}; {self._last_checkpoint()}"

    def _last_checkpoint(self) -> str:
        newest = self._newest_checkpoint()
        if newest is None:
            return "no checkpoint was written before it"
        return f"the last good checkpoint is {newest.name} (gankit run --resume {self.folder} once there is room)"

    def save_samples(self) -> Path | None:
        """The fixed latents through the EMA generator, as
        samples/fakes-NNNNNNNNNNNN.png (named by images shown, like checkpoints)."""
        trainer = self._trainer()
        if self.run_dir is None:
            return None
        path = self.run_dir / "samples" / f"fakes-{trainer.nimg:012d}.png"
        path.parent.mkdir(exist_ok=True)
        images = generate(trainer.G_ema, self.fixed_z, self.fixed_labels, self.recipe.train.batch_size)
        trainer.dataset.save_picture(images, path, nrow=self._grid_rows)
        if self._loggers:
            picture = trainer.dataset.picture(images, nrow=self._grid_rows)
            for logger in self._loggers.values():
                logger.log_picture("samples", picture, trainer.nimg / 1000)
        return path

    def _save_reals(self) -> None:
        trainer = self._trainer()
        if self.run_dir is None:
            return
        samples, dataset = self.recipe.train.samples, trainer.dataset
        indices = list(range(0, len(dataset), max(1, len(dataset) // samples)))[:samples]
        images, _ = dataset.__getitems__(indices)
        reals = trainer.D.prepare_reals(to_float_images(images).to(trainer.device))
        path = self.run_dir / "samples" / "reals.png"
        path.parent.mkdir(exist_ok=True)
        # square, whatever the fakes' layout: these are not sorted by class
        dataset.save_picture(reals, path, nrow=max(1, math.isqrt(samples)))

    # -- sampling and evaluating -------------------------------------------------

    def sample(
        self, n: int, seed: int = 0, labels: torch.Tensor | None = None, batch_size: int = 64, batch_stats: bool = False
    ) -> ImageList:
        """``n`` images (every scale, on the CPU) from :attr:`generator`, with
        latents seeded by ``seed``. A conditional generator gets ``labels``,
        or by default the classes in turn. ``batch_stats``: batch norms use
        each batch of ``batch_size``'s own statistics
        (:func:`gankit.batch_statistics`)."""
        generator = self.generator
        z, _ = seeded_latents(generator, n, seed)
        if labels is None and generator.num_classes:
            labels = torch.arange(n) % generator.num_classes
        return generate(generator, z.to(self.device), labels.to(self.device) if labels is not None else None, batch_size, batch_stats)

    def save_picture(self, images: ImageList, path: Path) -> None:
        """Draw ``images`` as the recipe's data draws its samples (a scatter
        plot for 2D data), or as plain grids when the data is not on this machine."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            dataset = self.dataset()
        except UserError:
            save_scale_grids(images, path)
        else:
            dataset.save_picture(images, path)

    def evaluate(self, batch_size: int | None = None) -> dict[str, Any]:
        """Every metric of the recipe on :attr:`generator`, each with the
        seconds it took and which network it scored."""
        trainer = self._trainer()
        results: dict[str, Any] = {}
        # one context: metrics that read the same features share them
        # the real images as the published protocols take them, without hflip's mirror copies
        reals = trainer.dataset.without_mirrors()
        context = MetricContext(self.generator, reals, trainer.device, batch_size or self.recipe.train.batch_size, self.recipe.train.seed)
        for name, metric in trainer.metrics.items():
            start = time.perf_counter()
            results[name] = {**metric.evaluate(context), "seconds": round(time.perf_counter() - start, 2), "network": "ema"}
        return results


def _optimizer_changes(before: Recipe, after: Recipe) -> dict[str, dict[str, Any]]:
    """For each optimizer whose options ``after`` changes, the param_groups
    entries that change: loading a checkpoint restores the old ones. An
    option that changes no entry could not reach the loaded optimizer, and
    is refused."""
    found: dict[str, dict[str, Any]] = {}
    for role, spec in after.optimizers.items():
        old = before.optimizers[role]
        if spec.options == old.options:
            continue
        hyperparameters = _hyperparameters(old)
        for field in attrs.fields(type(spec.options)):
            value = getattr(spec.options, field.name)
            if value != getattr(old.options, field.name):
                one = attrs.evolve(old, options=attrs.evolve(old.options, **{field.name: value}))
                if _hyperparameters(one) == hyperparameters:
                    raise after.error(
                        spec.path + (field.name,),
                        f"cannot change when resuming: the {spec.name} optimizer the checkpoint restores has no "
                        "hyperparameter it sets; start a new run to change it",
                    )
        found[role] = {key: value for key, value in _hyperparameters(spec).items() if hyperparameters.get(key) != value}
    return found


def _hyperparameters(spec: ComponentSpec) -> dict[str, Any]:
    """What an optimizer built from ``spec`` keeps in its param_groups."""
    group = spec.build([torch.nn.Parameter(torch.zeros(1))]).param_groups[0]
    return {key: value for key, value in group.items() if key != "params"}


#: resolved.toml's first lines: one comment for each resume that changed the recipe
_RESUMED = "# resumed at "


def _note_resume(path: Path, recipe: Recipe, changes: list[Change], nimg: int, checkpoint: Path) -> None:
    """Write ``recipe`` to resolved.toml below the notes of earlier resumes
    and one for this resume: comments, so ``gankit run`` still reads it and a
    new run started from it has no history."""
    notes = [line for line in path.read_text().splitlines() if line.startswith(_RESUMED)]
    notes.append(f"{_RESUMED}{nimg / 1000:g} kimg ({checkpoint.name}) with {', '.join(str(change) for change in changes)}")
    path.write_text("\n".join(notes) + "\n" + recipe.resolved_toml())


def _loaded(recipe: Recipe | str | Path, overrides: Sequence[str], registry: Registry) -> tuple[Recipe, Path | None]:
    """A recipe as given, or read from its file with ``overrides``; and the file."""
    if isinstance(recipe, Recipe):
        if overrides:
            raise ValueError("overrides apply to a recipe file; this recipe is already loaded")
        return recipe, None
    return load_recipe(Path(recipe), registry, overrides), Path(recipe)


# --------------------------------------------------------------------------
# The console


def _kimg_decimals(total_kimg: float) -> int:
    return 0 if total_kimg >= 10 else 1 if total_kimg >= 1 else 3


def _kimg_text(kimg: float) -> str:
    return f"{kimg:.{_kimg_decimals(kimg)}f}"


def _postfix(record: dict[str, Any]) -> str:
    parts = [f"{record['img_per_s']:.0f} img/s"]
    parts += [f"{key.split('/')[-1]} {value:.3f}" for key, value in record.items() if key.startswith(("loss/", "reg/"))]
    return ", ".join(parts)


def remaining_seconds(record: dict[str, Any], total_nimg: int, minutes: float | None) -> float:
    """Seconds of training left after a tick: to train.kimg at the tick's
    speed, or to train.minutes, whichever comes first."""
    remaining = (total_nimg / 1000 - record["kimg"]) * record["sec_per_kimg"]
    if minutes is not None:
        remaining = min(remaining, 60 * minutes - record.get("train_s", 0.0))
    return max(remaining, 0.0)


def _tick_line(record: dict[str, Any], total_nimg: int, minutes: float | None = None) -> str:
    kimg, total = record["kimg"], total_nimg / 1000
    remaining = remaining_seconds(record, total_nimg, minutes)
    decimals = max(1, _kimg_decimals(total))
    return f"tick {record['tick']:<4d} kimg {kimg:8.{decimals}f}/{_kimg_text(total)}  {_postfix(record)}  ETA {_duration(remaining)}"


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


# --------------------------------------------------------------------------
# Run folders: one per training, numbered, never overwritten


def lock_run_dir(run_dir: Path) -> Any:
    """An exclusive lock on ``run_dir`` (its .lock file), held while the
    returned file is open; a :class:`UserError` when another process holds it.
    The lock is the kernel's (flock): a killed process releases it."""
    handle = open(run_dir / ".lock", "a+")  # noqa: SIM115 - held open for as long as the lock is
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{run_dir}: in use by {holder}, which is training in it; wait for it to end or stop it") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"gankit process {os.getpid()}")
    handle.flush()
    return handle


def is_writer() -> bool:
    """Only the first process writes the run folder (rank 0 under torchrun)."""
    return distributed.rank() == 0


def new_run_dir(out_dir: Path, name: str) -> Path:
    """``out_dir/NNNNN-name``, numbered after the highest run already there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for entry in out_dir.iterdir() if (m := _NUMBERED.match(entry.name))]
    number = max(numbers, default=-1) + 1
    while True:
        path = out_dir / f"{number:05d}-{name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another run took the number first
            number += 1


def claim_run_dir(path: Path) -> Path:
    """A folder the user named: new, empty, or a run that stopped before its
    first checkpoint (data that failed to prepare, Ctrl-C, a kill), which
    holds nothing to resume and is cleared so the same command works again."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        if not _stopped_before_a_checkpoint(path):
            raise UserError(
                f"{path}: the run folder exists and is not empty; gankit never overwrites a run (resume it with --resume {path})"
            )
        lock_run_dir(path).close()  # a run still preparing in it is not cleared under its feet
        for entry in path.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


# what a run writes into its folder before its first checkpoint
_BEFORE_A_CHECKPOINT = {"recipe.toml", "resolved.toml", "env.json", "log.jsonl", "samples", "tensorboard", "checkpoints", ".lock"}


def _stopped_before_a_checkpoint(path: Path) -> bool:
    """``path`` is a run folder gankit made (it has resolved.toml) that holds
    only what a run writes before its first checkpoint: nothing a user made,
    nothing to resume."""
    if not path.is_dir():
        return False
    names = {entry.name for entry in path.iterdir()}
    return "resolved.toml" in names and names <= _BEFORE_A_CHECKPOINT and not ckpt.list_checkpoints(path / "checkpoints")


def gankit_checkout() -> dict[str, Any] | None:
    """The git commit of the checkout gankit itself is imported from (not of
    the current directory), and whether it has uncommitted changes; None for
    an installed copy outside a repository."""
    package = Path(gankit.__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(package), *args], capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    # an installed copy may sit inside some other repository (a venv in a project): it must be gankit's own tracked files
    if not top or git("ls-files", "--error-unmatch", str(package / "__init__.py")) is None:
        return None
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def cpu_name() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux), else what the platform says."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(seed: int | None = None, device: torch.device | None = None, plugins: dict[str, str] | None = None) -> dict[str, Any]:
    """What a result depends on besides the recipe: versions, gankit's commit, the machine, the seed, the command."""
    device = device or torch.device("cpu")
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "gankit": gankit.__version__,
        "plugins": plugins or {},
        "numpy": importlib.metadata.version("numpy"),
        "git": gankit_checkout(),
        "seed": seed,
        "device": str(device),
        "command": sys.argv,
    }


def _plugin_versions(registry: Registry) -> dict[str, str]:
    return {plugin.dist: plugin.version for plugin in registry.plugins if not plugin.error}


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
