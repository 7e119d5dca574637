"""Recognizability: does a generator draw things a classifier of the real
data can name?

A small convolutional classifier is trained on the labelled real data (every
fifth image held out), once per dataset fingerprint, and cached with its
held-out accuracy. A classifier trained on real classes alone names almost
anything with confidence, uniform noise included, so it also learns one
more class, "none of these": real images blurred into blobs, cut into
shuffled tiles, or replaced by noise, and the images the data itself draws
as showing none of its classes (``Dataset.unrecognizable``; on ``shapes``,
shapes whose outline is a blob of no kind). Only a confident answer among
the real classes counts. Even so, images unlike anything it was trained on
(a generator's fragments and smudges) can draw a confident answer, so an
image must also lie on the real images' manifold in the classifier's
features: within the k-nearest-neighbour ball of some held-out real image
(Kynkäänniemi et al. 2019).

The score ``recognizable`` is the share of generated images named with
confidence and on the manifold, next to the same share for other held-out
real images (``recognizable_real``) and their ratio ``relative``; the two
tests' shares are reported apart (``confident``, ``on_manifold``). For a
conditional generator ``class_accuracy`` is the share that comes out as
the class that was asked for.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import distributed
from gankit.contracts import BuildContext, Dataset, Metric, MetricContext
from gankit.errors import UserError
from gankit.images import log2_int, to_float_images
from gankit.metrics.features import cached_model, progress
from gankit.options import help_text, in_range, positive
from gankit.sampling import generated_batches, seeded_latents

CLASSIFIER_FORMAT = 3  # 3: the data's own unrecognizable images join "none of these"
HELD_OUT_EVERY = 5  # every fifth image is kept out of the classifier's training


@attrs.define(kw_only=True)
class RecognizabilityOptions:
    """Share of generated images a classifier of the real data names confidently and places among real ones, beside the reals' share."""

    images: int = attrs.field(
        default=1024, validator=positive(), metadata=help_text("generated images scored, and at most as many held-out real ones")
    )
    threshold: float = attrs.field(
        default=0.9, validator=in_range(0.0, 1.0), metadata=help_text("the classifier's probability that counts as recognized")
    )
    epochs: int = attrs.field(
        default=5, validator=positive(), metadata=help_text("training epochs of the classifier (trained once per dataset, then cached)")
    )
    width: int = attrs.field(
        default=16, validator=positive(), metadata=help_text("channels of the classifier's first convolution, doubled at each step down")
    )
    neighbours: int = attrs.field(
        default=3,
        validator=positive(),
        metadata=help_text("k of the real images' k-nearest-neighbour balls in the classifier's features that an image must fall in"),
    )
    cache: bool = attrs.field(
        default=True, metadata=help_text("keep the trained classifier in $GANKIT_CACHE_DIR/classifiers (default ~/.cache/gankit)")
    )


class Classifier(nn.Module):
    """Per resolution, a 3x3 convolution and a strided one, from the data's
    resolution down to 4x4; then a linear layer on the whole 4x4 map, which
    keeps where things are (a ring and a disc differ in layout, not in
    their average colour)."""

    def __init__(self, resolution: int, channels: int, classes: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = channels
        for step in range(log2_int(resolution) - 2):
            out_channels = width * 2**step
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, 3, stride=2, padding=1),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(in_channels * 16, classes)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The last features, flattened: the head's input."""
        return self.features(images).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))


def unrecognizable(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Images of the "none of these" class made from real ones: in equal
    parts blurred (a box filter an eighth to a quarter of the image wide),
    cut into 4x4 tiles and shuffled, and uniform noise."""
    n, _, size, _ = images.shape
    kind = torch.arange(n) % 3
    out = images.clone()
    blurred = kind == 0
    if blurred.any():
        width = max(3, size // 8 + 1) | 1
        out[blurred] = F.avg_pool2d(F.pad(images[blurred], [width // 2] * 4, mode="replicate"), width, stride=1)
    tiled = kind == 1
    if tiled.any():
        tile = size // 4
        tiles = images[tiled].unfold(2, tile, tile).unfold(3, tile, tile)  # [n, c, 4, 4, tile, tile]
        order = torch.randperm(16, generator=rng)
        tiles = tiles.reshape(*tiles.shape[:2], 16, tile, tile)[:, :, order].reshape(*tiles.shape[:2], 4, 4, tile, tile)
        out[tiled] = tiles.permute(0, 1, 2, 4, 3, 5).reshape(-1, images.shape[1], size, size)
    noise = kind == 2
    if noise.any():
        out[noise] = torch.rand(out[noise].shape, generator=rng) * 2 - 1
    return out


def held_out_split(count: int) -> tuple[list[int], list[int]]:
    """The indices a classifier of the real data trains on, and those it is
    tested on: every fifth image is held out."""
    held_out = list(range(0, count, HELD_OUT_EVERY))
    return [i for i in range(count) if i % HELD_OUT_EVERY], held_out


def real_halves(count: int, images: int) -> tuple[list[int], list[int]]:
    """The held-out real images (:func:`held_out_split`) that span the real
    manifold, and those scored against it as generated ones are: every
    other one each, at most ``images`` of each."""
    held_out = held_out_split(count)[1]
    return held_out[0::2][:images], held_out[1::2][:images]


def _key(dataset: Dataset, options: RecognizabilityOptions) -> dict[str, Any]:
    context = dataset.context
    return {
        "format": CLASSIFIER_FORMAT,
        "dataset": dataset.fingerprint(),
        "resolution": context.resolution,
        "classes": context.num_classes,
        "epochs": options.epochs,
        "width": options.width,
    }


def _new_classifier(context: BuildContext, options: RecognizabilityOptions) -> Classifier:
    # one output per real class, and one for "none of these"
    return Classifier(context.resolution, context.channels, context.num_classes + 1, options.width)


def _probabilities(classifier: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return F.softmax(classifier(images).float(), dim=1)


def _features_and_probabilities(classifier: Classifier, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's last features (its head's input) and its probabilities, on the CPU."""
    features = classifier.embed(images)
    return features.float().cpu(), F.softmax(classifier.head(features).float(), dim=1).cpu()


class RealManifold:
    """The real images' k-nearest-neighbour balls in the classifier's
    features (Kynkäänniemi et al. 2019, §3): an image lies on the manifold
    when it falls in at least one. A classifier answers with confidence for
    images unlike any it was trained on; the balls catch those."""

    def __init__(self, features: torch.Tensor, neighbours: int) -> None:
        if features.shape[0] <= neighbours:
            raise UserError(f"recognizability needs more than {neighbours} held-out real images; the data holds {features.shape[0]}")
        self.features = features
        # the k-th neighbour other than the point itself
        self.radii = torch.cdist(features, features).kthvalue(neighbours + 1, dim=1).values

    def contains(self, features: torch.Tensor) -> torch.Tensor:
        return (torch.cdist(features, self.features) <= self.radii[None]).any(dim=1)


def _named(probabilities: torch.Tensor, threshold: float, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which images are named as one of the ``classes`` real classes with a
    probability of at least ``threshold`` (the last output is "none of
    these"), and the class each is given."""
    best, predicted = probabilities.max(dim=1)
    return (best >= threshold) & (predicted < classes), predicted


def _real_batches(
    dataset: Dataset, indices: list[int], batch_size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The real images ``indices`` in batches, as floats on ``device``, with their labels."""
    for start in range(0, len(indices), batch_size):
        images, labels = dataset.__getitems__(indices[start : start + batch_size])
        yield to_float_images(images).to(device), labels


@torch.no_grad()
def _classify(
    classifier: nn.Module, dataset: Dataset, indices: list[int], batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's probabilities for the real images ``indices``, on the CPU, and their labels."""
    batches = [(_probabilities(classifier, images).cpu(), labels) for images, labels in _real_batches(dataset, indices, batch_size, device)]
    return torch.cat([p for p, _ in batches]), torch.cat([labels for _, labels in batches])


@torch.no_grad()
def _real_features(
    classifier: Classifier, dataset: Dataset, indices: list[int], batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's features and probabilities for the real images ``indices``, on the CPU."""
    parts = [_features_and_probabilities(classifier, images) for images, _ in _real_batches(dataset, indices, batch_size, device)]
    return torch.cat([f for f, _ in parts]), torch.cat([p for _, p in parts])


@torch.no_grad()
def held_out_accuracy(classifier: nn.Module, dataset: Dataset, device: torch.device, batch_size: int = 256) -> float:
    """Top-1 accuracy of a classifier in eval mode on the held-out fifth of
    ``dataset`` (:func:`held_out_split`)."""
    probabilities, labels = _classify(classifier, dataset, held_out_split(len(dataset))[1], batch_size, device)
    return float((probabilities.argmax(dim=1) == labels).float().mean())


def training_batches(
    dataset: Dataset, indices: list[int], epochs: int, batch_size: int, order_rng: torch.Generator, what: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) of ``indices`` in whole batches, shuffled each epoch
    by ``order_rng`` (drawn lazily, so the caller may draw from it between
    batches), with progress shown as :func:`progress` does: a network that
    trains on real data before anything else is not silent for minutes."""
    steps_per_epoch = len(indices) // batch_size
    with progress(epochs * steps_per_epoch * batch_size, what) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(indices), generator=order_rng).tolist()
            for start in range(0, steps_per_epoch * batch_size, batch_size):
                yield dataset.__getitems__(sorted(indices[i] for i in order[start : start + batch_size]))
                bar.update(batch_size)


def train_classifier(
    dataset: Dataset, options: RecognizabilityOptions, device: torch.device, batch_size: int = 64
) -> tuple[Classifier, float]:
    """Train on every image but each fifth; returns the classifier in eval
    mode and its accuracy on the held-out fifth. Its random draws come from
    its own seeded generator, so a training that evaluates it draws what one
    that does not would."""
    context = dataset.context
    train, _ = held_out_split(len(dataset))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():  # metrics run under no_grad
        torch.manual_seed(0)
        classifier = _new_classifier(context, options).to(device)
        optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
        order_rng = torch.Generator().manual_seed(0)
        classifier.train()
        batches = training_batches(dataset, train, options.epochs, batch_size, order_rng, "training the recognizability classifier")
        for images, labels in batches:
            images = to_float_images(images)
            junk_count = batch_size // 4
            drawn = dataset.unrecognizable(junk_count // 4, order_rng)  # the data's own, where it can draw them
            drawn = images[:0] if drawn is None else to_float_images(drawn)
            junk = torch.cat([unrecognizable(images[: junk_count - drawn.shape[0]], order_rng), drawn])
            images = torch.cat([images, junk])
            labels = torch.cat([labels, torch.full((junk.shape[0],), context.num_classes, dtype=labels.dtype)])
            loss = F.cross_entropy(classifier(images.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    classifier.eval()
    return classifier, held_out_accuracy(classifier, dataset, device)


def cached_classifier(dataset: Dataset, options: RecognizabilityOptions, device: torch.device) -> tuple[Classifier, float]:
    """The classifier of this dataset and these options, from the cache or trained now."""
    context = dataset.context
    key = _key(dataset, options)

    def train() -> tuple[nn.Module, float]:
        print(f"gankit: training the recognizability classifier on {len(dataset)} real images ({options.epochs} epochs)", file=sys.stderr)
        return train_classifier(dataset, options, device)

    return cached_model(  # type: ignore[return-value]
        "classifiers",
        key,
        f"{key['resolution']}px-{key['classes']}classes",
        lambda: _new_classifier(context, options),
        train,
        device,
        use_cache=options.cache,
        what="classifier",
    )


class Recognizability(Metric):
    """Share of generated images a classifier of the real data names confidently and places among real ones, beside the reals' share."""

    def __init__(self, options: RecognizabilityOptions) -> None:
        self.options = options

    @torch.no_grad()
    def evaluate(self, ctx: MetricContext) -> dict[str, float | int | str]:
        dataset, options = ctx.dataset, self.options
        context = dataset.context
        if context.num_classes < 2 or context.resolution < 8:
            raise UserError("recognizability needs labelled images of at least 8x8 pixels (the shapes data, or images with labels = true)")
        assert ctx.generator is not None
        classifier, accuracy = cached_classifier(dataset, options, ctx.device)

        train = held_out_split(len(dataset))[0]
        reference, held_out = real_halves(len(dataset), options.images)
        manifold = RealManifold(_real_features(classifier, dataset, reference, ctx.batch_size, ctx.device)[0], options.neighbours)
        real_features, real_probabilities = _real_features(classifier, dataset, held_out, ctx.batch_size, ctx.device)
        real_confident = _named(real_probabilities, options.threshold, context.num_classes)[0]
        real_on_manifold = manifold.contains(real_features)

        generator = ctx.generator
        # this process's images; the counts of all are summed
        z, labels = seeded_latents(generator, options.images, ctx.seed, distributed.part(options.images))
        # [recognizable images, images named with confidence, images on the real manifold,
        #  images of the class asked for, then how many recognizable images of each class]
        counts = torch.zeros(4 + context.num_classes, dtype=torch.long)
        done = 0
        for images in generated_batches(generator, z, labels, ctx.batch_size, ctx.device):
            finest = images[-1]
            if finest.shape[-1] < context.resolution:  # a growing generator evaluated early
                finest = F.interpolate(finest, size=context.resolution, mode="nearest")
            features, probabilities = _features_and_probabilities(classifier, finest)
            confident, predicted = _named(probabilities, options.threshold, context.num_classes)
            on_manifold = manifold.contains(features)
            recognized = confident & on_manifold
            counts[0] += int(recognized.sum())
            counts[1] += int(confident.sum())
            counts[2] += int(on_manifold.sum())
            counts[4:] += torch.bincount(predicted[recognized], minlength=context.num_classes)[: context.num_classes]
            if labels is not None:
                counts[3] += int((predicted == labels[done : done + finest.shape[0]]).sum())
            done += finest.shape[0]
        counts = distributed.total(counts)
        recognized_count, confident_count, on_manifold_count, asked_for = (int(c) for c in counts[:4])
        found = counts[4:]
        recognizable = recognized_count / options.images
        recognizable_real = float((real_confident & real_on_manifold).float().mean())
        result: dict[str, float | int | str] = {
            "recognizable": round(recognizable, 4),
            "recognizable_real": round(recognizable_real, 4),
            "relative": round(recognizable / max(recognizable_real, 1e-9), 4),
            "confident": round(confident_count / options.images, 4),
            "confident_real": round(float(real_confident.float().mean()), 4),
            "on_manifold": round(on_manifold_count / options.images, 4),
            "on_manifold_real": round(float(real_on_manifold.float().mean()), 4),
            "classes_drawn": int((found > 0).sum()),
            "classifier_accuracy": round(accuracy, 4),
            "protocol": (
                f"{options.images} generated and {len(held_out)} held-out real images, confidence >= {options.threshold:g} "
                f"and within the {options.neighbours}-nearest-neighbour balls of {len(reference)} other held-out real images "
                f"in the classifier's features; classifier trained {options.epochs} epochs on {len(train)} real images"
            ),
        }
        if labels is not None:
            result["class_accuracy"] = round(asked_for / options.images, 4)
        return result
