"""SGAN's two stacks (Huang et al. 2017; the authors' CIFAR-10 code): the generator holds
G1 (label and z1 to the features h1) and G0 (h1 and z0 to an image); the
discriminator holds D0 on images and D1 on features, each with a Q head
that recovers its stack's noise, and the frozen encoder E.

The generator's output is the top of the stack, G0(G1(y, z1), z0): what
sampling, metrics and the loop's adversarial loss see. What the SGAN
regularizer needs besides (z1, z0, h1) it reads from :attr:`last`.
"""

from __future__ import annotations

import sys
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

import gankit
from gankit.options import each, help_text, in_range, positive, power_of_two
from gankit_sgan.encoder import Encoder, EncoderSettings, cached_encoder

INDEPENDENT, JOINT = "independent", "joint"


def _needs_labels(context: gankit.BuildContext, what: str) -> None:
    if context.num_classes < 2:
        raise gankit.UserError(f"{what}: SGAN conditions on class labels: give labelled data (shapes, or images with labels = true)")
    if context.resolution < 8:
        raise gankit.UserError(f"{what}: SGAN's encoder pools twice: the data must be at least 8x8 (got {context.resolution})")


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x forward; ``scale`` times its gradient backward."""
    return x if scale == 1.0 else x.detach() + scale * (x - x.detach())


@attrs.frozen
class StackOutputs:
    """One forward pass of the stacks: the noise, the labels, the features
    G1 generated (h1_hat) and those G0 was fed (h1_in: h1_hat, or the
    encoder's features of real images while the stacks train independently)."""

    z1: torch.Tensor
    z0: torch.Tensor
    labels: torch.Tensor
    h1_hat: torch.Tensor
    h1_in: torch.Tensor


@attrs.define(kw_only=True)
class SGANGeneratorOptions:
    """SGAN's stacked generator: G1 (label, z1) to encoder features, G0 (features, z0) to an image."""

    z1_size: int = attrs.field(default=50, validator=positive(), metadata=help_text("z1, uniform in [-1, 1]: G1's noise"))
    z0_size: int = attrs.field(default=16, validator=positive(), metadata=help_text("z0, uniform in [-1, 1]: G0's noise"))
    features: int = attrs.field(default=256, validator=positive(), metadata=help_text("h1: the encoder's fc3 width, G1's output"))
    g1_width: int = attrs.field(default=512, validator=positive(), metadata=help_text("G1's hidden width (z1 goes through half of it)"))
    z0_width: int = attrs.field(default=128, validator=positive(), metadata=help_text("G0's two layers on z0"))
    g0_channels: int = attrs.field(
        default=256, validator=power_of_two(8), metadata=help_text("G0's channels at 4x4, halved at each doubling")
    )
    joint_weight: float = attrs.field(
        default=0.01,
        validator=in_range(0.0, 1.0),
        metadata=help_text("joint training: the weight of stack 0's loss in G1's (its gradient through h1 is scaled by it)"),
    )


class SGANGenerator(gankit.Generator):
    """SGAN's stacked generator: G1 (label, z1) to encoder features, G0 (features, z0) to an image."""

    def __init__(self, options: SGANGeneratorOptions, context: gankit.BuildContext) -> None:
        super().__init__()
        _needs_labels(context, "generator sgan")
        o = self.options = options
        self.num_classes = context.num_classes
        self.latent_size = o.z1_size + o.z0_size
        self.phase = JOINT
        self.last: StackOutputs | None = None
        self._real_features: torch.Tensor | None = None
        half = o.g1_width // 2
        # G1: z1 -> FC; y -> FC; concatenated -> FC -> FC (BN-ReLU) -> FC h1 (ReLU, like E's fc3)
        self.g1_noise = nn.Sequential(nn.Linear(o.z1_size, half), nn.BatchNorm1d(half), nn.ReLU())
        self.g1_label = nn.Sequential(nn.Linear(context.num_classes, o.g1_width), nn.BatchNorm1d(o.g1_width), nn.ReLU())
        self.g1 = nn.Sequential(
            nn.Linear(half + o.g1_width, o.g1_width),
            nn.BatchNorm1d(o.g1_width),
            nn.ReLU(),
            nn.Linear(o.g1_width, o.g1_width),
            nn.BatchNorm1d(o.g1_width),
            nn.ReLU(),
            nn.Linear(o.g1_width, o.features),
            nn.ReLU(),
        )
        # G0: z0 -> FC -> FC; concatenated with h1 -> FC to 4x4 -> stride-2 deconvolutions -> tanh
        self.g0_noise = nn.Sequential(
            nn.Linear(o.z0_size, o.z0_width), nn.BatchNorm1d(o.z0_width), nn.ReLU(),
            nn.Linear(o.z0_width, o.z0_width), nn.BatchNorm1d(o.z0_width), nn.ReLU(),
        )  # fmt: skip
        self.g0_fc = nn.Sequential(nn.Linear(o.features + o.z0_width, o.g0_channels * 16), nn.BatchNorm1d(o.g0_channels * 16), nn.ReLU())
        blocks: list[nn.Module] = []
        channels, size = o.g0_channels, 4
        while size * 2 < context.resolution:
            blocks += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1), nn.BatchNorm2d(channels // 2), nn.ReLU()]
            channels, size = channels // 2, size * 2
        blocks += [nn.ConvTranspose2d(channels, context.channels, 4, 2, 1), nn.Tanh()]
        self.g0_up = nn.Sequential(*blocks)

    def sample_latents(self, n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
        # z1 and z0 uniform in [-1, 1] (the authors' code)
        return torch.rand(n, self.latent_size, device=device, generator=generator) * 2 - 1

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z[:, : self.options.z1_size], z[:, self.options.z1_size :]

    def stack1(self, z1: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """G1(y, z1): the features h1_hat."""
        y = F.one_hot(labels, self.num_classes).to(z1.dtype)
        return self.g1(torch.cat([self.g1_noise(z1), self.g1_label(y)], dim=1))

    def stack0(self, h1: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        """G0(h1, z0): an image."""
        x = self.g0_fc(torch.cat([h1.to(z0.dtype), self.g0_noise(z0)], dim=1))
        return self.g0_up(x.view(x.shape[0], self.options.g0_channels, 4, 4))

    def set_stage(self, stage: gankit.Stage) -> None:
        self.phase = INDEPENDENT if stage.phase == INDEPENDENT else JOINT

    def feed_real_features(self, features: torch.Tensor) -> None:
        """While the stacks train independently, G0 is fed the encoder's
        features of real images: the next training pass of this size
        takes these instead of G1's."""
        self._real_features = features.detach()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> gankit.ImageList:
        if labels is None:
            raise gankit.UserError("generator sgan: it is conditional: give it labels")
        z1, z0 = self.split(z)
        h1_hat = self.stack1(z1, labels)
        fed = self._real_features
        if self.training and self.phase == INDEPENDENT:
            # independent training: G0 learns from E(x), and no gradient crosses the stacks
            h1_in = fed.to(h1_hat.dtype) if fed is not None and fed.shape == h1_hat.shape else h1_hat.detach()
        else:
            # joint training: stack 0's loss reaches G1 with joint_weight (0.01)
            h1_in = scale_gradient(h1_hat, self.options.joint_weight)
        if self.training:
            self.last = StackOutputs(z1=z1, z0=z0, labels=labels, h1_hat=h1_hat, h1_in=h1_in)
        return [self.stack0(h1_in, z0)]

    def __getstate__(self) -> dict[str, Any]:
        # the last pass's tensors carry a graph: a copy (the EMA generator) or a pickle starts without them
        return {**self.__dict__, "last": None, "_real_features": None}


@attrs.define(kw_only=True)
class SGANDiscriminatorOptions:
    """SGAN's discriminators: D0 on images, D1 on the encoder's features, each with a Q head; and the frozen encoder."""

    channels: int = attrs.field(default=64, validator=power_of_two(8), metadata=help_text("D0's first convolution, doubled per step down"))
    batch_norm: bool = attrs.field(default=True, metadata=help_text("batch norm after D0's convolutions but the first (DCGAN's)"))
    d1_width: int = attrs.field(default=256, validator=positive(), metadata=help_text("D1's two hidden layers on the features"))
    z1_size: int = attrs.field(default=50, validator=positive(), metadata=help_text("Q1's output: the generator's z1_size"))
    z0_size: int = attrs.field(default=16, validator=positive(), metadata=help_text("Q0's output: the generator's z0_size"))
    encoder_widths: list[int] = attrs.field(
        factory=lambda: [64, 128], validator=each(positive()), metadata=help_text("the encoder's two 5x5 convolutions")
    )
    encoder_features: int = attrs.field(
        default=256, validator=positive(), metadata=help_text("the encoder's fc3: the generator's features")
    )
    encoder_epochs: int = attrs.field(default=3, validator=positive(), metadata=help_text("epochs the encoder trains before the GAN"))
    encoder_batch_size: int = attrs.field(default=100, validator=positive(), metadata=help_text("the encoder's training batch"))
    encoder_lr: float = attrs.field(default=1e-3, validator=positive(), metadata=help_text("the encoder's Adam learning rate"))
    encoder_cache: bool = attrs.field(
        default=True, metadata=help_text("keep the trained encoder in $GANKIT_CACHE_DIR/encoders, keyed by the data's fingerprint")
    )


def _frozen(module: nn.Module) -> nn.Module:
    """Turn every parameter into a buffer: the checkpoint keeps it, no
    optimizer sees it, and the EMA copies it."""
    for child in module.modules():
        for name, parameter in list(child._parameters.items()):
            if parameter is not None:
                del child._parameters[name]
                child.register_buffer(name, parameter.detach())
    return module


class SGANDiscriminator(gankit.Discriminator):
    """SGAN's discriminators: D0 on images, D1 on the encoder's features, each with a Q head; and the frozen encoder."""

    def __init__(self, options: SGANDiscriminatorOptions, context: gankit.BuildContext) -> None:
        super().__init__()
        _needs_labels(context, "discriminator sgan")
        o = self.options = options
        if len(o.encoder_widths) != 2:
            raise gankit.UserError(f"expected the widths of two convolutions, got {o.encoder_widths}", key="encoder_widths")
        self.resolution, self.num_classes = context.resolution, 0  # D sees no labels: the conditional losses enforce them
        self.settings = EncoderSettings(
            widths=(o.encoder_widths[0], o.encoder_widths[1]),
            features=o.encoder_features,
            epochs=o.encoder_epochs,
            batch_size=o.encoder_batch_size,
            lr=o.encoder_lr,
            cache=o.encoder_cache,
        )
        self.encoder = _frozen(Encoder(context.resolution, context.channels, context.num_classes, self.settings.widths, o.encoder_features))
        self.register_buffer("encoder_accuracy", torch.tensor(-1.0))  # < 0: not trained yet
        # D0: stride-2 4x4 convolutions with LeakyReLU down to 4x4, then the score and Q0 (z0)
        layers: list[nn.Module] = []
        channels, size, width = context.channels, context.resolution, o.channels
        while size > 4:
            norm = [nn.BatchNorm2d(width)] if o.batch_norm and layers else []
            layers += [nn.Conv2d(channels, width, 4, 2, 1), *norm, nn.LeakyReLU(0.2)]
            channels, size, width = width, size // 2, width * 2
        self.d0 = nn.Sequential(*layers)
        self.d0_score = nn.Linear(channels * 16, 1)
        self.q0 = nn.Sequential(nn.Linear(channels * 16, 128), nn.LeakyReLU(0.2), nn.Linear(128, o.z0_size))
        # D1: an MLP on the 256-d features, then the score and Q1 (z1)
        self.d1 = nn.Sequential(
            nn.Linear(o.encoder_features, o.d1_width), nn.LeakyReLU(0.2), nn.Linear(o.d1_width, o.d1_width), nn.LeakyReLU(0.2)
        )
        self.d1_score = nn.Linear(o.d1_width, 1)
        self.q1 = nn.Linear(o.d1_width, o.z1_size)

    @property
    def encoder_ready(self) -> bool:
        return bool(self.encoder_accuracy >= 0)

    def prepare_from_data(self, dataset: gankit.Dataset) -> None:
        device = self.encoder_accuracy.device
        encoder, accuracy = cached_encoder(dataset, self.settings, device)
        self.encoder.load_state_dict(encoder.state_dict())
        self.encoder_accuracy.fill_(accuracy)
        print(f"gankit-sgan: encoder held-out accuracy {accuracy:.4f}", file=sys.stderr)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """E_fc3(x); gradients reach the images, never E."""
        return self.encoder.features(images)

    def classify_features(self, features: torch.Tensor) -> torch.Tensor:
        """E_fc4(h1): class logits of (generated) features."""
        return self.encoder.classify(features)

    def upper(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D1's score [N] and Q1's estimate of z1 for features h1."""
        hidden = self.d1(features)
        return self.d1_score(hidden).squeeze(1), self.q1(hidden)

    def lower_q(self, images: torch.Tensor) -> torch.Tensor:
        """Q0's estimate of z0 for images (on D0's layers)."""
        return self.q0(self.d0(images).flatten(1))

    def forward(self, images: gankit.ImageList, labels: torch.Tensor | None = None, features: bool = False) -> Any:
        hidden = self.d0(images[-1]).flatten(1)
        scores = self.d0_score(hidden).squeeze(1)
        if not features:
            return scores
        # D0's activations and Q0's estimate; then D1's activations, score and Q1's
        # estimate on the images' encoder features (for real images, the real h1)
        upper = self.d1(self.encode(images[-1]))
        return scores, [hidden, self.q0(hidden), upper, self.d1_score(upper), self.q1(upper)]
