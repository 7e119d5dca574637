"""Building blocks that any plugin's networks may use; this package is part of
gankit's public API. Each module holds one paper's blocks:

- :mod:`.progan`: equalized learning rate, pixel norm, minibatch standard
  deviation and the channel rule (Karras et al. 2018);
- :mod:`.attention`: SAGAN's self-attention block (Zhang et al. 2019);
- :mod:`.conditional`: conditional batch normalization (de Vries et al. 2017)
  and the projection discriminator's head (Miyato & Koyama 2018);
- :mod:`.salimans`: minibatch discrimination (Salimans et al. 2016);
- :mod:`.style`: StyleGAN's mapping network, AdaIN, noise inputs, blur and
  truncation trick (Karras et al. 2019).

Import them from ``gankit.layers``; the module a block lives in may change.
"""

from gankit.layers.attention import SelfAttention2d
from gankit.layers.conditional import ConditionalBatchNorm2d, ProjectionHead
from gankit.layers.progan import (
    LEAK,
    RELU_GAIN,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    lrelu,
    nf,
)
from gankit.layers.salimans import MinibatchDiscrimination
from gankit.layers.style import AdaIN, Blur2d, MappingNetwork, NoiseInjection, instance_norm, truncate

__all__ = [
    "LEAK",
    "RELU_GAIN",
    "AdaIN",
    "Blur2d",
    "ConditionalBatchNorm2d",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MinibatchDiscrimination",
    "MinibatchStdDev",
    "PixelNorm",
    "ProjectionHead",
    "SelfAttention2d",
    "MappingNetwork",
    "NoiseInjection",
    "instance_norm",
    "lrelu",
    "nf",
    "truncate",
]
