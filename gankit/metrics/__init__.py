"""Metrics on Inception features: FID, KID and precision/recall, with the
extractor found offline and the protocol recorded next to every score
(docs/metrics.md)."""

from gankit.metrics.components import (
    FeatureMetric,
    FeatureOptions,
    FIDOptions,
    FrechetInceptionDistance,
    KernelInceptionDistance,
    KIDOptions,
    PrecisionRecall,
    PrecisionRecallOptions,
    protocol,
)
from gankit.metrics.features import Features, dataset_features, generator_features
from gankit.metrics.inception import FeatureExtractor, find_extractor, load_extractor, save_stand_in_extractor

__all__ = [
    "FIDOptions",
    "FeatureExtractor",
    "FeatureMetric",
    "FeatureOptions",
    "Features",
    "FrechetInceptionDistance",
    "KIDOptions",
    "KernelInceptionDistance",
    "PrecisionRecall",
    "PrecisionRecallOptions",
    "dataset_features",
    "find_extractor",
    "generator_features",
    "load_extractor",
    "protocol",
    "save_stand_in_extractor",
]
