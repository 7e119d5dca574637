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
from gankit.metrics.features import Features, cache_folder, cached_model, dataset_features, generator_features
from gankit.metrics.inception import (
    RESIZE_FILTERS,
    FeatureExtractor,
    find_extractor,
    load_extractor,
    resize_for_inception,
    save_stand_in_extractor,
)
from gankit.metrics.recognizability import held_out_accuracy, held_out_split, real_halves, training_batches
from gankit.metrics.scores import frechet_distance, kernel_distance, mean_and_covariance, precision_recall

__all__ = [
    "RESIZE_FILTERS",
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
    "cache_folder",
    "cached_model",
    "dataset_features",
    "find_extractor",
    "frechet_distance",
    "generator_features",
    "held_out_accuracy",
    "held_out_split",
    "real_halves",
    "kernel_distance",
    "load_extractor",
    "mean_and_covariance",
    "precision_recall",
    "protocol",
    "resize_for_inception",
    "save_stand_in_extractor",
    "training_batches",
]
