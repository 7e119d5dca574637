"""The contracts every component kind fulfils.

A technique is a set of components; the training loop knows them only through
the classes below. Images travel as a list of tensors, coarsest to finest,
values in [-1, 1]; a single-scale network uses a list of one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs
import torch
from torch import nn

from gankit.errors import UserError
from gankit.images import ImageList, downsample_to, is_power_of_two

Role = Literal["generator", "discriminator"]
Phase = Literal["D", "G"]


@attrs.frozen
class BuildContext:
    """What the data tells the networks when they are built."""

    resolution: int = attrs.field(default=32)
    channels: int = 3
    num_classes: int = 0  # 0: the data has no labels

    @resolution.validator
    def _power_of_two(self, attribute: attrs.Attribute, value: int) -> None:
        if not is_power_of_two(value):
            raise ValueError(f"'resolution' must be a power of two: {value}")


@attrs.frozen
class Stage:
    """Where a network trained in stages is: a growing one's current output
    resolution and the weight of the newest block while it fades in (1.0
    once it has); a network trained in parts, its named ``phase`` (a
    stacked GAN's stacks train "independent", then "joint")."""

    resolution: int = 0  # 0: the networks do not grow
    alpha: float = 1.0
    phase: str = ""  # "": the networks are trained as one


# --------------------------------------------------------------------------
# Networks


class Network(nn.Module):
    """What the loop asks of both networks besides their forward pass: the
    base of :class:`Generator` and :class:`Discriminator`."""

    num_classes: int = 0

    def set_stage(self, stage: Stage) -> None:
        """Networks that grow follow the scheduler's stage; the rest ignore it."""

    def prepare_from_data(self, dataset: Dataset) -> None:
        """Learn what the network needs from the real data before its first
        step (a frozen encoder trained on the labelled data, a data-dependent
        initialization); the rest do nothing. Called once, on a fresh
        training: a checkpoint keeps what it learnt."""


class Generator(Network):
    """Latent (and label) to a list of images, coarsest to finest.

    Subclasses set ``latent_size`` and ``num_classes`` (0 when unconditional)
    and implement :meth:`forward`.
    """

    latent_size: int

    def sample_latents(self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` latents. Normalisation belongs in :meth:`forward`, so
        that a latent saved to disk means the same thing everywhere."""
        return torch.randn(n, self.latent_size, device=device, generator=generator)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> ImageList:  # pragma: no cover - contract
        raise NotImplementedError

    def set_truncation(self, psi: float, cutoff: int | None = None) -> int | None:
        """The truncation trick (Karras et al. 2019, Appendix B) for what it
        generates from now on: pull each intermediate latent toward the
        average one by ``psi`` (1: no change, 0: the average), in the first
        ``cutoff`` layers (None: the generator's default). Returns the
        cutoff it applies (None: every layer), for the metric protocol. A
        generator that keeps an average latent overrides this; the rest
        refuse with a UserError."""
        raise UserError(f"the {type(self).__name__} generator has no truncation trick: it keeps no average latent to pull toward")


class Discriminator(Network):
    """A list of images (and label) to one score per image.

    With ``features=True`` it also returns intermediate activations, for
    losses such as feature matching (Salimans et al. 2016).
    """

    def forward(
        self, images: ImageList, labels: torch.Tensor | None = None, features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:  # pragma: no cover - contract
        raise NotImplementedError

    def prepare_reals(self, images: torch.Tensor) -> ImageList:
        """Bring a real batch at the data's resolution to the list this
        network takes. The default gives one scale, 2x2-average-pooled down to
        :attr:`input_resolution` when the data is larger. Multi-scale networks
        return the whole pyramid; growing ones fade it like their fakes."""
        return [downsample_to(images, self.input_resolution)]

    @property
    def input_resolution(self) -> int:
        return getattr(self, "resolution")


@attrs.define
class DOutput:
    """One discriminator evaluation: scores of shape [N] and, when a loss or
    regularizer asked, the intermediate features."""

    scores: torch.Tensor
    features: list[torch.Tensor] | None = None


# --------------------------------------------------------------------------
# Objectives


class Loss:
    """The adversarial objective of the D and G phases."""

    #: Relativistic losses and feature matching read the real batch's
    #: discriminator output in the generator phase.
    needs_reals_in_generator_phase: ClassVar[bool] = False
    #: Feature matching needs the discriminator's intermediate features.
    needs_features: ClassVar[bool] = False

    def discriminator_loss(self, real: DOutput, fake: DOutput) -> torch.Tensor:  # pragma: no cover - contract
        raise NotImplementedError

    def generator_loss(self, fake: DOutput, real: DOutput | None) -> torch.Tensor:  # pragma: no cover - contract
        raise NotImplementedError


@attrs.define
class PenaltyContext:
    """What a regularizer may read when it adds its term."""

    discriminator: Discriminator
    generator: Generator
    reals: ImageList
    fakes: ImageList  # detached in the D phase
    real_labels: torch.Tensor | None
    fake_labels: torch.Tensor | None
    real_out: DOutput | None
    fake_out: DOutput
    step: int  # how many steps of this phase have run before this one
    #: ``uniform(n)``: n numbers uniform in [0, 1) on the batch's device, one per
    #: sample of this process's batch. Per-sample noise (the gradient penalty's
    #: interpolation) should come from here, not torch.rand: under torchrun the
    #: loop draws the whole batch's noise and gives each process its part, so
    #: that a run does not depend on how its batch is split among processes.
    uniform: Callable[[int], torch.Tensor] = attrs.field(
        default=attrs.Factory(lambda self: lambda n: torch.rand(n, device=self.reals[-1].device), takes_self=True)
    )


class Regularizer:
    """An extra term or constraint.

    It can do any of three things: add a loss term in its ``phase``
    (gradient penalty, R1, drift); act on the network after that phase's
    optimizer step (weight clipping); wrap a module when it is built
    (spectral norm). Lazy intervals are its own business: return ``None``
    from :meth:`penalty` on the steps it skips and scale the term on the rest.
    """

    phase: Phase = "D"
    #: The discriminator outputs in ``ctx`` carry its intermediate features,
    #: as for a loss with ``needs_features`` (AC-GAN's auxiliary classifier).
    needs_features: ClassVar[bool] = False

    def wrap(self, module: nn.Module, role: Role) -> nn.Module:
        return module

    def penalty(self, ctx: PenaltyContext) -> torch.Tensor | None:
        return None

    def after_step(self, module: nn.Module, role: Role) -> None:
        pass


# --------------------------------------------------------------------------
# Schedule


@attrs.frozen
class Progress:
    """How far a training has come; a scheduler decides from this alone and
    from its own ``state_dict``."""

    nimg: int  # real images shown to the discriminator
    total_nimg: int
    d_steps: int
    g_steps: int

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0


@attrs.frozen
class StepPlan:
    """What the next iteration of the loop does."""

    d_steps: int = 1
    g_steps: int = 1
    batch_size: int | None = None  # None: the recipe's train.batch_size
    stage: Stage | None = None  # None: the networks do not grow
    lr_scale: float = 1.0  # multiplies every optimizer's base learning rate
    reset_optimizers: bool = False


class Scheduler:
    """Decides what each iteration does: D/G step ratio, growth stage and
    fade, batch size and learning rate."""

    def plan(self, progress: Progress) -> StepPlan:  # pragma: no cover - contract
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


# --------------------------------------------------------------------------
# Data and evaluation


class Dataset(torch.utils.data.Dataset):
    """Real samples. ``__getitems__`` returns a whole batch at once:
    ``(images, labels)`` with images uint8 in [0, 255] or float in [-1, 1],
    shape [N, C, H, W], and labels int64 [N] (zeros when unlabelled).

    2D toy data is the one exception to the image layout: its context has
    resolution 1, its samples are points of shape [N, channels], and their
    coordinates are not bounded to [-1, 1]."""

    context: BuildContext
    #: Finite datasets are reshuffled each epoch; a generative one
    #: (sampled fresh for every index) is read in order.
    shuffle: ClassVar[bool] = True
    #: DataLoader worker processes; 0 reads in the training process.
    workers: int = 0

    def __len__(self) -> int:  # pragma: no cover - contract
        raise NotImplementedError

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - contract
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """One sample, ``(image, label)``, through :meth:`__getitems__`."""
        if index < 0:
            index += len(self)
        images, labels = self.__getitems__([index])
        return images[0], int(labels[0])

    def prepare(self) -> None:
        """Do the slow part (decoding, caching) just before training; building
        the dataset only checks its options, so `gankit check` stays fast."""

    def unrecognizable(self, count: int, rng: torch.Generator) -> torch.Tensor | None:
        """``count`` images in the data's layout that look like its images
        but show none of its classes, drawn from ``rng``; None (the default)
        where the data cannot draw such images. The recognizability
        metric's classifier learns them as "none of these", next to the
        blurred, shuffled and noise images it makes of any data."""
        return None

    def without_mirrors(self) -> Dataset:
        """The data as the published metric protocols take their real
        images: without the mirror copies ``hflip`` adds (StyleGAN2-ADA's
        metrics set ``xflip=False``; StudioGAN, Mimicry, torch-fidelity and
        clean-fid read the images as they are). Metrics score this set
        (docs/metrics.md). The default, for data with no mirror copies, is
        the data itself; :class:`gankit.datasets.mirror.WithoutMirrors` is
        the view a mirrored dataset returns."""
        return self

    @property
    def mirrored(self) -> bool:
        """Whether the data holds mirror copies of its images (``hflip``)."""
        return False

    def describe(self) -> str:
        """Where the samples come from, for a metric's protocol: a path
        (with the folder inside an archive that names the split), or how
        built-in data was made. The default is the class's name."""
        return type(self).__name__

    def fingerprint(self) -> str:
        """A hash that changes when the samples do: metrics key the reference
        features they cache on it (docs/metrics.md). The default hashes the
        class, the length, the context and 16 samples spread evenly through
        the data, with their labels; a dataset that can tell more cheaply
        (file names, sizes and dates) may override it."""
        count = len(self)
        digest = hashlib.sha256(f"{type(self).__module__}.{type(self).__qualname__} {count} {self.context}".encode())
        images, labels = self.__getitems__(sorted({round(i * (count - 1) / 15) for i in range(16)}))
        digest.update(images.cpu().contiguous().numpy().tobytes())
        digest.update(labels.cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def picture(self, images: ImageList, nrow: int | None = None) -> torch.Tensor:
        """Draw samples for a person to look at: a float RGB image in [0, 1],
        shape [3, H, W]. The default is a grid per scale, side by side, every
        scale enlarged to the finest; 2D data draws a scatter plot instead."""
        from gankit.pictures import scale_grids

        return scale_grids(images, nrow=nrow)

    def save_picture(self, images: ImageList, path: Path, nrow: int | None = None) -> None:
        """Write :meth:`picture` to a PNG file."""
        import torchvision.utils

        torchvision.utils.save_image(self.picture(images, nrow), str(path))


@attrs.define
class MetricContext:
    """What a metric evaluates: ``generator`` against the real ``dataset``.

    ``fakes``, when given, is a set of images scored in the generator's place
    (``gankit eval --real A --real B``); only metrics whose
    ``scores_image_sets`` is true are given one. ``shared`` holds work that
    several metrics of one evaluation reuse (the generated images' features,
    say): key it by everything the work depends on."""

    generator: Generator | None  # the EMA generator, in eval mode; None when ``fakes`` is given
    dataset: Dataset
    device: torch.device
    batch_size: int
    seed: int
    fakes: Dataset | None = None
    shared: dict[Any, Any] = attrs.Factory(dict)


class Metric:
    """A score of a generator against data. :meth:`evaluate` returns named
    numbers; string-valued entries record the protocol next to them."""

    #: True for a metric that can score a set of images instead of a
    #: generator (``MetricContext.fakes``), as metrics on Inception features can.
    scores_image_sets: ClassVar[bool] = False

    def evaluate(self, ctx: MetricContext) -> dict[str, float | int | str]:  # pragma: no cover - contract
        raise NotImplementedError


# --------------------------------------------------------------------------
# Logging


class Logger:
    """Where a run's tick records and sample pictures go besides the console:
    log.jsonl, TensorBoard, or a third party's experiment tracker.

    A run with a folder opens each logger once, before the first record,
    and closes it when training ends or stops; a run kept in memory opens
    none. A record is a JSON-ready dict (``tick``, ``kimg``, losses, scores,
    ``lr``, ``img_per_s`` and, on ticks that evaluated them, ``metrics``).
    """

    def open(self, run_dir: Path, resolved_recipe: dict[str, Any], resumed: bool) -> None:
        """``resolved_recipe`` is every option of the run, as in resolved.toml."""

    def log(self, record: dict[str, Any]) -> None:
        pass

    def log_picture(self, name: str, picture: torch.Tensor, kimg: float) -> None:
        """``picture`` is a float RGB image in [0, 1], shape [3, H, W]."""

    def close(self) -> None:
        pass
