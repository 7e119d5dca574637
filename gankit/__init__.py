"""gankit: a plugin-based registry of GAN components, TOML recipes and one training loop."""

from gankit.contracts import (
    BuildContext,
    Dataset,
    Discriminator,
    DOutput,
    Generator,
    Loss,
    Metric,
    MetricContext,
    PenaltyContext,
    Progress,
    Regularizer,
    Scheduler,
    Stage,
    StepPlan,
)
from gankit.errors import UserError
from gankit.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = [
    "BuildContext",
    "DOutput",
    "Dataset",
    "Discriminator",
    "Generator",
    "Loss",
    "Metric",
    "MetricContext",
    "PenaltyContext",
    "Progress",
    "Regularizer",
    "Scheduler",
    "Stage",
    "StepPlan",
    "UserError",
    "__version__",
    "hookimpl",
]
