"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016).

The architecture guidelines of §3 of the paper, as this module follows them:

* no pooling: strided convolutions in D, fractional-strided (transposed)
  convolutions in G;
* batch normalisation in both networks, except on the G output layer and the
  D input layer;
* no fully connected hidden layers;
* ReLU in G except for the tanh output; LeakyReLU in D.

Training details of §4: weights drawn from N(0, 0.02) and a leak of 0.2.
Class conditioning follows Mirza & Osindero (2014) by default: the label is
fed to both networks alongside their usual input. The generator may instead
take it through conditional batch normalization (de Vries et al. 2017), and
the discriminator through a projection (Miyato & Koyama 2018).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from gankit import BuildContext, Discriminator, Generator, UserError
from gankit.layers import ConditionalBatchNorm2d, MinibatchDiscrimination, ProjectionHead
from gankit.options import help_text, one_of, positive

MIN_RESOLUTION = 16
LEAK = 0.2  # §4: "the slope of the leak was set to 0.2 in all models"
INIT_STD = 0.02  # §4: "zero-centered Normal distribution with standard deviation 0.02"


def _at_least_base_channels(instance: object, attribute: "attrs.Attribute[int]", value: int) -> None:
    base = getattr(instance, "base_channels")
    if value < base:
        raise ValueError(f"'{attribute.name}' must be >= base_channels (got {value} < {base})")


def _only_when_conditional(instance: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    # a way of conditioning on an unconditional network is a mistake, not a no-op
    if value != attribute.default and not getattr(instance, "conditional"):
        raise ValueError(f"'{attribute.name}' needs conditional = true (got {value!r})")


def _conditional_option() -> Any:
    return attrs.field(
        default=False,
        metadata=help_text("class-conditional: the label enters as `conditioning` says; needs labelled data"),
    )


def _conditioning_option(other: str, choices: str) -> Any:
    """How the label enters a conditional network: ``concat`` (Mirza &
    Osindero 2014, the default) or the network's ``other`` way."""
    return attrs.field(
        default="concat",
        validator=[one_of(("concat", other)), _only_when_conditional],
        metadata=help_text("how the label enters, when conditional: " + choices),
    )


def _levels(context: BuildContext, what: str) -> int:
    """How many factor-of-two steps lie between 4x4 and the data's resolution."""
    resolution = context.resolution
    if resolution < MIN_RESOLUTION or resolution & (resolution - 1):
        raise UserError(f"dcgan {what} needs a power-of-two resolution >= {MIN_RESOLUTION} (the data's is {resolution})")
    return resolution.bit_length() - 1 - 2  # log2(resolution / 4)


def _channels(resolution: int, feature_size: int, base: int, largest: int) -> int:
    """Channels of a feature map ``feature_size`` pixels wide: ``base`` at
    resolution / 2, doubled each halving towards 4x4, capped at ``largest``.
    G and D share this rule, so that G mirrors D."""
    return min(base * (resolution // 2) // feature_size, largest)


def _opening(
    network: DCGANGenerator | DCGANDiscriminator,
    options: DCGANGeneratorOptions | DCGANDiscriminatorOptions,
    context: BuildContext,
    what: str,
) -> tuple[int, Callable[[int], int]]:
    """What G and D first do alike: check the resolution and the labels,
    keep the options, resolution and class count on ``network``, and return
    the number of factor-of-two steps and the width rule of :func:`_channels`."""
    levels = _levels(context, what)
    if options.conditional and context.num_classes <= 0:
        raise UserError("needs labelled data (data.labels = true)", key="conditional")
    network.options = options
    network.resolution = context.resolution
    network.num_classes = context.num_classes if options.conditional else 0

    def width(feature_size: int) -> int:
        return _channels(context.resolution, feature_size, options.base_channels, options.max_channels)

    return levels, width


def init_weights(module: nn.Module) -> None:
    """§4: convolution weights from N(0, 0.02), normalisation gains from
    N(1, 0.02), biases zero."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.affine:
        nn.init.normal_(module.weight, 1.0, INIT_STD)
        nn.init.zeros_(module.bias)
    elif isinstance(module, ConditionalBatchNorm2d):
        # the same rule per class: each class draws its own gains, so the
        # label changes the output from the first step
        nn.init.normal_(module.scale.weight, 1.0, INIT_STD)
        nn.init.zeros_(module.shift.weight)
    elif isinstance(module, ProjectionHead):
        # the same N(0, 0.02) for ψ and the class embedding: with their own
        # initialization the projection of the summed features starts with
        # scores about 10 apart, where the sigmoid of the loss saturates
        nn.init.normal_(module.linear.weight, 0.0, INIT_STD)
        nn.init.zeros_(module.linear.bias)
        nn.init.normal_(module.embed.weight, 0.0, INIT_STD)


# --------------------------------------------------------------------------
# Generator


@attrs.define(kw_only=True)
class DCGANGeneratorOptions:
    """The DCGAN generator: transposed convolutions from a 4x4 projection of z up to the data's resolution."""

    latent_size: int = attrs.field(default=100, validator=positive(), metadata=help_text("size of z, drawn from N(0, I); 100 in the paper"))
    base_channels: int = attrs.field(
        default=64,
        validator=positive(),
        metadata=help_text("channels of the finest hidden feature map (resolution / 2); doubled each block towards 4x4"),
    )
    max_channels: int = attrs.field(
        default=512, validator=[positive(), _at_least_base_channels], metadata=help_text("cap on the channels of any feature map")
    )
    conditional: bool = _conditional_option()
    embedding_size: int = attrs.field(
        default=50, validator=positive(), metadata=help_text("size of the learned label embedding, when conditioning is concat")
    )
    conditioning: Literal["concat", "batchnorm"] = _conditioning_option(
        "batchnorm",
        "concat (its embedding joins z; Mirza & Osindero 2014) or batchnorm "
        "(every batch norm scales and shifts by the class; de Vries et al. 2017)",
    )


class DCGANGenerator(Generator):
    """The DCGAN generator: transposed convolutions from a 4x4 projection of z up to the data's resolution."""

    def __init__(self, options: DCGANGeneratorOptions, context: BuildContext) -> None:
        super().__init__()
        levels, width = _opening(self, options, context, "generator")
        self.latent_size = options.latent_size
        # Mirza & Osindero 2014: y joins z in the input layer, here through a
        # learned embedding (left at N(0, 1), the scale of z).
        concat = self.num_classes > 0 and options.conditioning == "concat"
        self.embedding = nn.Embedding(self.num_classes, options.embedding_size) if concat else None
        in_channels = options.latent_size + (options.embedding_size if concat else 0)

        def norm(channels: int) -> nn.Module:
            # de Vries et al. 2017 §3: the class picks each batch norm's γ and β
            if self.num_classes and options.conditioning == "batchnorm":
                return ConditionalBatchNorm2d(channels, self.num_classes)
            return nn.BatchNorm2d(channels)

        # §3 and Fig. 1: z is projected and reshaped to a 4x4 map; a 4x4
        # transposed convolution of z as a 1x1 map is that projection. No
        # bias in front of batch norm, which subtracts it again.
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_channels, width(4), 4, 1, 0, bias=False),
            norm(width(4)),
            nn.ReLU(inplace=True),
        ]
        # §3: fractional-strided convolutions in place of upsampling, each
        # doubling the size and halving the channels, with batch norm and ReLU.
        size = 4
        for _ in range(levels - 1):
            layers += [
                nn.ConvTranspose2d(width(size), width(2 * size), 4, 2, 1, bias=False),
                norm(width(2 * size)),
                nn.ReLU(inplace=True),
            ]
            size *= 2
        # §3: no batch norm on the output layer, which uses tanh.
        layers += [nn.ConvTranspose2d(width(size), context.channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
        if self.num_classes and labels is None:
            raise ValueError("this generator is conditional: pass labels")
        if self.embedding is not None:
            z = torch.cat([z, self.embedding(labels)], dim=1)
        x = z[:, :, None, None]
        for layer in self.net:
            x = layer(x, labels) if isinstance(layer, ConditionalBatchNorm2d) else layer(x)
        return [x]


# --------------------------------------------------------------------------
# Discriminator


@attrs.define(kw_only=True)
class DCGANDiscriminatorOptions:
    """The DCGAN discriminator: strided convolutions and LeakyReLU down to 4x4, then one 4x4 convolution to a score."""

    base_channels: int = attrs.field(
        default=64, validator=positive(), metadata=help_text("channels after the first strided convolution; doubled each block")
    )
    max_channels: int = attrs.field(
        default=512, validator=[positive(), _at_least_base_channels], metadata=help_text("cap on the channels of any feature map")
    )
    norm: Literal["batch", "layer", "none"] = attrs.field(
        default="batch",
        validator=one_of(("batch", "layer", "none")),
        metadata=help_text(
            "normalisation after every convolution but the first: batch (DCGAN), "
            "layer (GroupNorm(1, C), WGAN-GP's choice under a gradient penalty) or none"
        ),
    )
    conditional: bool = _conditional_option()
    conditioning: Literal["concat", "projection"] = _conditioning_option(
        "projection",
        "concat (one-hot label maps join the image channels; Mirza & Osindero 2014) "
        "or projection (the score adds embed(y)·φ(x), φ the summed last features; Miyato & Koyama 2018)",
    )
    auxiliary_classifier: bool = attrs.field(
        default=False,
        metadata=help_text(
            "a linear head that predicts the class from the last features summed over positions (AC-GAN, Odena et al. "
            "2017), trained by the auxiliary_classifier regularizer; needs labelled data"
        ),
    )
    minibatch_discrimination: bool = attrs.field(
        default=False,
        metadata=help_text(
            "minibatch discrimination (Salimans et al. 2016 §3.2) before the last layer: B = 100 closeness features "
            "(kernels of C = 5, as the paper's code) join the flattened 4x4 features, and a linear layer gives the score"
        ),
    )


def _norm(kind: str, channels: int) -> nn.Module | None:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        # Gulrajani et al. 2017 §4: batch norm makes a sample's gradient
        # depend on the batch, which the per-sample gradient penalty forbids;
        # layer norm over (C, H, W) does not.
        return nn.GroupNorm(1, channels)
    return None


def _score_head(options: DCGANDiscriminatorOptions, channels: int, num_classes: int) -> nn.Module:
    """§3: no fully connected hidden layer; "the last convolution layer is
    flattened and then fed into a single sigmoid output", here a 4x4 valid
    convolution to one logit (the sigmoid lives in the loss); or, when
    conditioning is projection, the projection head."""
    # built even when the projection replaces it: its draws from the random stream come first, and a seed's networks depend on that order
    head: nn.Module = nn.Conv2d(channels, 1, 4, 1, 0)
    if num_classes and options.conditioning == "projection":
        # Miyato & Koyama 2018, eq. 3: ψ(φ(x)) + embed(y)ᵀφ(x), with φ the
        # last activations summed over positions, as their networks pool
        head = ProjectionHead(channels, num_classes)
    return head


def _minibatch_head(head: nn.Module, channels: int) -> tuple[MinibatchDiscrimination, nn.Linear]:
    """Salimans et al. 2016 §3.2: each sample's closeness to the rest of its
    batch joins the last features; a linear layer reads both, in place of
    ``head``."""
    if isinstance(head, ProjectionHead):
        raise UserError("does not combine with conditioning = projection", key="minibatch_discrimination")
    minibatch = MinibatchDiscrimination(channels * 4 * 4, kernels=100, kernel_dim=5)
    linear = nn.Linear(channels * 4 * 4 + 100, 1)
    nn.init.normal_(linear.weight, 0.0, INIT_STD)  # §4's rule, which init_weights gives convolutions
    nn.init.zeros_(linear.bias)
    return minibatch, linear


def _auxiliary_classifier(options: DCGANDiscriminatorOptions, context: BuildContext, channels: int, concat: bool) -> nn.Linear | None:
    """Odena et al. 2017 §3: D also gives P(C | X), the class of its input,
    from its last features summed over positions; None when the option is off."""
    if not options.auxiliary_classifier:
        return None
    if context.num_classes <= 0:
        raise UserError("needs labelled data (data.labels = true)", key="auxiliary_classifier")
    if concat:
        raise UserError(
            "does not combine with conditioning = concat, whose features already depend on the label; "
            "use conditioning = projection or an unconditional discriminator",
            key="auxiliary_classifier",
        )
    classifier = nn.Linear(channels, context.num_classes)
    nn.init.normal_(classifier.weight, 0.0, INIT_STD)
    nn.init.zeros_(classifier.bias)
    return classifier


class DCGANDiscriminator(Discriminator):
    """The DCGAN discriminator: strided convolutions and LeakyReLU down to 4x4, then one 4x4 convolution to a score."""

    def __init__(self, options: DCGANDiscriminatorOptions, context: BuildContext) -> None:
        super().__init__()
        levels, width = _opening(self, options, context, "discriminator")
        # §3: strided convolutions in place of pooling, each halving the size,
        # LeakyReLU after each; batch norm everywhere but the input layer.
        blocks: list[nn.Sequential] = []
        concat = self.num_classes > 0 and options.conditioning == "concat"
        channels, size = context.channels + (self.num_classes if concat else 0), context.resolution
        for index in range(levels):
            size //= 2
            norm = None if index == 0 else _norm(options.norm, width(size))
            layers: list[nn.Module] = [nn.Conv2d(channels, width(size), 4, 2, 1, bias=norm is None)]
            if norm is not None:
                layers.append(norm)
            layers.append(nn.LeakyReLU(LEAK))
            blocks.append(nn.Sequential(*layers))
            channels = width(size)
        self.blocks = nn.ModuleList(blocks)
        self.head = _score_head(options, channels, self.num_classes)
        self.minibatch: MinibatchDiscrimination | None = None
        if options.minibatch_discrimination:
            self.minibatch, self.head = _minibatch_head(self.head, channels)
        self.classifier = _auxiliary_classifier(options, context, channels, concat)
        self.apply(init_weights)

    def class_logits(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The auxiliary classifier's logits [N, classes] from the
        activations ``forward(..., features=True)`` returns: the last block's,
        summed over positions as the projection head sums them, through one
        linear layer. Reading them from D's own pass costs no second one."""
        if self.classifier is None:
            raise UserError(
                "discriminator dcgan has no auxiliary classifier, which regularizer auxiliary_classifier needs: "
                "set discriminator.auxiliary_classifier = true"
            )
        return self.classifier(features[-1].sum(dim=(2, 3)))

    def forward(
        self, images: list[torch.Tensor], labels: torch.Tensor | None = None, features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        x = images[-1]
        if self.num_classes and labels is None:
            raise ValueError("this discriminator is conditional: pass labels")
        if self.num_classes and self.options.conditioning == "concat":
            # Mirza & Osindero 2014: y is given to D with x, here as one
            # constant map per class.
            onehot = F.one_hot(labels, self.num_classes).to(x.dtype)
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        activations: list[torch.Tensor] = []
        for block in self.blocks:
            x = block(x)
            activations.append(x)
        if self.minibatch is not None:
            scores = self.head(self.minibatch(x)).reshape(-1)
        elif isinstance(self.head, ProjectionHead):
            scores = self.head(x.sum(dim=(2, 3)), labels)
        else:
            scores = self.head(x).reshape(-1)
        return (scores, activations) if features else scores
