"""gankit: a plugin-based registry of GAN components, TOML recipes and one training loop.

This module is gankit's public API: everything a plugin, a benchmark or a
notebook may use is importable from here, together with the modules named
in :data:`PUBLIC_MODULES`, the one list of them: ``gankit.options`` (option
validators), ``gankit.layers`` (shared network blocks), ``gankit.networks``
(small networks plugins share), ``gankit.metrics`` (Inception features and
the distances on them) and ``gankit.testing`` (the contract suite). Every
other module is private and may change; ``tests/test_layering.py`` reads the
list and checks that no plugin, benchmark or script imports another.

A metric that shares its work among torchrun's processes takes its
:func:`process_part` of the items, puts the parts back together with
:func:`gather_rows` and adds counts with :func:`process_total`; on one
process they change nothing.

A loss whose discriminator side is the logistic loss of GANs' first paper
calls :func:`logistic_discriminator_loss`, with the ``label_smoothing``
option of :func:`gankit.options.label_smoothing_option`.

Importing gankit is cheap: the run and the training loop are imported on
first use of ``Run``, ``Trainer``, ``update_ema`` or ``select_device``.
"""

from typing import TYPE_CHECKING, Any

from gankit.checkpoint import load as load_checkpoint
from gankit.contracts import (
    BuildContext,
    Dataset,
    Discriminator,
    DOutput,
    Generator,
    Logger,
    Loss,
    Metric,
    MetricContext,
    PenaltyContext,
    Phase,
    Progress,
    Regularizer,
    Role,
    Scheduler,
    Stage,
    StepPlan,
)
from gankit.distributed import gather_rows
from gankit.distributed import part as process_part
from gankit.distributed import total as process_total
from gankit.errors import NonFinite, UserError
from gankit.hookspecs import hookimpl
from gankit.images import ImageList, downsample_to, image_pyramid, is_power_of_two, log2_int, quantize, to_float_images
from gankit.objectives import logistic_discriminator_loss
from gankit.recipe import Recipe, load_recipe, recipe_from_text
from gankit.registry import Registry, default_registry
from gankit.sampling import batch_statistics, generate, generated_batches, sample_images, seeded_latents

if TYPE_CHECKING:
    from gankit.loop import Trainer, select_device, update_ema
    from gankit.runs import Interrupted, Run, environment

__version__ = "0.1.0"

#: The modules besides ``gankit`` itself that plugins, benchmarks and
#: scripts may import; every other gankit module is private.
PUBLIC_MODULES: tuple[str, ...] = ("gankit.options", "gankit.layers", "gankit.networks", "gankit.metrics", "gankit.testing")

_LAZY = {
    "Run": "gankit.runs",
    "Interrupted": "gankit.runs",
    "environment": "gankit.runs",
    "Trainer": "gankit.loop",
    "update_ema": "gankit.loop",
    "select_device": "gankit.loop",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")


__all__ = [
    "BuildContext",
    "DOutput",
    "Dataset",
    "Discriminator",
    "Generator",
    "ImageList",
    "Interrupted",
    "Logger",
    "Loss",
    "Metric",
    "MetricContext",
    "PenaltyContext",
    "Phase",
    "Progress",
    "Recipe",
    "Registry",
    "Regularizer",
    "Role",
    "Run",
    "Scheduler",
    "Stage",
    "StepPlan",
    "Trainer",
    "NonFinite",
    "PUBLIC_MODULES",
    "UserError",
    "__version__",
    "batch_statistics",
    "default_registry",
    "downsample_to",
    "environment",
    "generate",
    "gather_rows",
    "generated_batches",
    "hookimpl",
    "image_pyramid",
    "is_power_of_two",
    "load_recipe",
    "load_checkpoint",
    "log2_int",
    "logistic_discriminator_loss",
    "process_part",
    "process_total",
    "quantize",
    "recipe_from_text",
    "sample_images",
    "seeded_latents",
    "select_device",
    "to_float_images",
    "update_ema",
]
