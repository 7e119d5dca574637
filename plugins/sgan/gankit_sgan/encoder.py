"""The encoder E: a classifier of the labelled real data, trained by gankit
before the GAN and frozen (Huang et al. 2017; the authors' CIFAR-10 code).

Its fc3 features are the representation h1 that SGAN's upper stack
generates and its lower stack turns into images; its fc4 head gives the
upper stack's conditional loss. It is trained once per dataset fingerprint
and cached, with its accuracy on the held-out fifth of the data.
"""

from __future__ import annotations

import sys

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gankit
from gankit.metrics import cached_model, held_out_accuracy, held_out_split, training_batches

ENCODER_FORMAT = 1


@attrs.frozen
class EncoderSettings:
    """What an encoder is and how it is trained: the cache key, with the data's fingerprint."""

    widths: tuple[int, int] = (64, 128)
    features: int = 256
    epochs: int = 3
    batch_size: int = 100
    lr: float = 1e-3
    cache: bool = True


class Encoder(nn.Module):
    """conv5x5-ReLU-maxpool twice, fc3 (the features h1, ReLU), fc4 (the
    class logits): the authors' CIFAR-10 encoder at any power-of-two size."""

    def __init__(self, resolution: int, channels: int, classes: int, widths: tuple[int, int], features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, widths[0], 5, padding=2)
        self.conv2 = nn.Conv2d(widths[0], widths[1], 5, padding=2)
        self.fc3 = nn.Linear(widths[1] * (resolution // 4) ** 2, features)
        self.fc4 = nn.Linear(features, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """h1 = E_fc3(x), non-negative (after its ReLU)."""
        x = F.max_pool2d(F.relu(self.conv1(images)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc3(x.flatten(1)))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The class logits E_fc4(h1) of features, real or generated."""
        return self.fc4(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(images))


def train_encoder(dataset: gankit.Dataset, settings: EncoderSettings, device: torch.device) -> tuple[Encoder, float]:
    """Train E with cross-entropy on four fifths of the labelled data; returns
    it in eval mode and its held-out accuracy. Its random draws come from its
    own seeded generators, so the GAN's draws do not depend on the cache."""
    context = dataset.context
    train, _ = held_out_split(len(dataset))
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(0)
        encoder = Encoder(context.resolution, context.channels, context.num_classes, settings.widths, settings.features).to(device)
        optimizer = torch.optim.Adam(encoder.parameters(), lr=settings.lr)
        order_rng = torch.Generator().manual_seed(0)
        encoder.train()
        for images, labels in training_batches(dataset, train, settings.epochs, settings.batch_size, order_rng, "training the encoder"):
            loss = F.cross_entropy(encoder(gankit.to_float_images(images).to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    encoder.eval()
    return encoder, held_out_accuracy(encoder, dataset, device)


def cached_encoder(dataset: gankit.Dataset, settings: EncoderSettings, device: torch.device) -> tuple[Encoder, float]:
    """The encoder of this dataset and these settings, from the cache or trained now."""
    context = dataset.context
    key = {
        "format": ENCODER_FORMAT,
        "dataset": dataset.fingerprint(),
        "context": [context.resolution, context.channels, context.num_classes],
        **attrs.asdict(settings, filter=lambda field, _: field.name != "cache"),
    }
    key["widths"] = list(settings.widths)  # as JSON gives it back

    def train() -> tuple[nn.Module, float]:
        print(f"gankit-sgan: training the encoder on {len(dataset)} labelled real images ({settings.epochs} epochs)", file=sys.stderr)
        return train_encoder(dataset, settings, device)

    return cached_model(  # type: ignore[return-value]
        "encoders",
        key,
        f"{context.resolution}px-{context.num_classes}classes",
        lambda: Encoder(context.resolution, context.channels, context.num_classes, settings.widths, settings.features),
        train,
        device,
        use_cache=settings.cache,
        what="encoder",
        speaker="gankit-sgan",
    )
