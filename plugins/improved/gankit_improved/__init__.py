"""The techniques of Salimans et al. 2016, "Improved Techniques for Training
GANs", for gankit: feature matching (a loss), minibatch discrimination (a
layer, a toy critic and an option of the DCGAN discriminator), historical
averaging (a regularizer).

Minibatch discrimination is a block of ``gankit.layers``; one-sided label smoothing is an option of gankit-dcgan's
logistic losses."""

from __future__ import annotations

from typing import Any

import gankit
from gankit_improved.feature_matching import FeatureMatchingLoss, FeatureMatchingOptions
from gankit_improved.historical_averaging import HistoricalAveraging, HistoricalAveragingOptions, HistoricalMean
from gankit_improved.toy import MinibatchMLPDiscriminator, MinibatchMLPOptions

__all__ = [
    "FeatureMatchingLoss",
    "FeatureMatchingOptions",
    "HistoricalAveraging",
    "HistoricalAveragingOptions",
    "HistoricalMean",
    "MinibatchMLPDiscriminator",
    "MinibatchMLPOptions",
    "register_components",
]

TOY_DATA = {"type": "toy2d", "distribution": "ring8"}


@gankit.hookimpl
def register_components(registry: Any) -> None:
    registry.add("loss", "feature_matching", FeatureMatchingLoss, FeatureMatchingOptions)
    registry.add("regularizer", "historical_averaging", HistoricalAveraging, HistoricalAveragingOptions)
    registry.add(
        "discriminator",
        "minibatch_mlp",
        MinibatchMLPDiscriminator,
        MinibatchMLPOptions,
        example={"hidden": 16, "kernels": 8},
        example_data=TOY_DATA,
    )
