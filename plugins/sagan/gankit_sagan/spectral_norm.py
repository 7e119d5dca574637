"""Spectral normalization (Miyato, Kataoka, Koyama & Yoshida 2018) as a
regularizer that wraps networks when they are built.

Each weight W is used as W / σ(W), σ(W) its largest singular value (eq. 8),
estimated by power iteration with a vector u that persists from one update
to the next (Algorithm 1). PyTorch's own parametrization does exactly this:
in training mode every forward runs ``n_power_iterations`` steps on u; in
evaluation mode it reuses the last estimate. A convolution's weight is taken
as the matrix [out, in·k·k] (§3.2 / Appendix C.1 of the paper).

SAGAN (Zhang et al. 2019, §4) applies it to every layer of both the
generator and the discriminator.
"""

from __future__ import annotations

import attrs
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from gankit import Regularizer, Role, UserError
from gankit.layers import ConditionalBatchNorm2d
from gankit.options import each, help_text, one_of, positive

ROLES = ("generator", "discriminator")

#: The layers whose weight is a linear map; a conditional batch norm's
#: per-class gains and shifts are not one and stay as they are (SAGAN's and
#: BigGAN's generators normalize the convolutions around them, not the tables).
WEIGHT_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Embedding,
)


@attrs.define(kw_only=True)
class SpectralNormOptions:
    """Spectral normalization (Miyato et al. 2018): each weight layer of the chosen networks divided by its largest singular value."""

    networks: list[str] = attrs.field(
        factory=lambda: list(ROLES),
        validator=each(one_of(ROLES)),
        metadata=help_text("the networks whose layers are normalized: generator, discriminator or both (SAGAN: both)"),
    )
    n_power_iterations: int = attrs.field(
        default=1,
        validator=positive(),
        metadata=help_text("power iterations per forward pass in training, on the persistent u (1 in the paper's Algorithm 1)"),
    )


def weight_layers(module: nn.Module) -> list[nn.Module]:
    """The layers of ``module`` that spectral normalization wraps: linear,
    convolution and embedding layers, except those inside a conditional
    batch norm and those already parametrized."""
    tables = {id(inner) for norm in module.modules() if isinstance(norm, ConditionalBatchNorm2d) for inner in norm.modules()}
    return [
        layer
        for layer in module.modules()
        if isinstance(layer, WEIGHT_LAYERS) and id(layer) not in tables and not parametrize.is_parametrized(layer, "weight")
    ]


class SpectralNorm(Regularizer):
    """Spectral normalization (Miyato et al. 2018): each weight layer of the chosen networks divided by its largest singular value."""

    def __init__(self, options: SpectralNormOptions) -> None:
        if not options.networks:
            raise UserError("name at least one network: generator, discriminator or both", key="networks")
        self.options = options

    def wrap(self, module: nn.Module, role: Role) -> nn.Module:
        if role not in self.options.networks:
            return module
        for layer in weight_layers(module):
            # torch picks the output dimension itself (dim 1 of a transposed convolution's weight)
            spectral_norm(layer, n_power_iterations=self.options.n_power_iterations)
        return module
