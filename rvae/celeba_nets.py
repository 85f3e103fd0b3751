"""The CelebA ConvNets of the AVAE appendix F as architectures of :mod:`rvae.nets`.

Importing this module registers ``celeba_conv`` (the appendix's widths) and ``celeba_conv_narrow``
(every width divided by :data:`NARROW_DIVISOR`, a stand-in for two CPU cores); then
``build_vae("celeba_conv", (3, 64, 64), ...)`` and ``Experiment(architecture="celeba_conv")`` find them.

Stated in appendix F: a "VGG" encoder of 4 convolutions with 128, 256, 512 and 1024 output channels,
stride 2, 5x5 kernels; a decoder of 4 layers with 512, 256, 128 and 3 output channels, stride 2, 5x5
kernels; BatchNorm on every convolutional layer. Our readings where it is silent: padding 2 (so each
stride-2 layer halves the size exactly: 64 -> 32 -> 16 -> 8 -> 4), ReLU after each BatchNorm, no bias
before a BatchNorm, one linear layer from the last map to (mu, logvar); the decoder starts with a
linear layer to the encoder's last map (1024 x H/16 x W/16, mirrored), then four transposed 5x5
convolutions of stride 2 (padding 2, output padding 1: each doubles the size), BatchNorm and ReLU after
all but the last, a sigmoid on the last. Height and width must be divisible by 16.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rvae.nets import GaussianEncoder, _check_shape, architecture

ENCODER_CHANNELS = (128, 256, 512, 1024)      # appendix F
DECODER_CHANNELS = (512, 256, 128)            # appendix F (then the image's C channels)
KERNEL, STRIDE, PADDING = 5, 2, 2             # 5x5, stride 2; padding 2 halves (or doubles) sizes exactly
NARROW_DIVISOR = 8                            # celeba_conv_narrow: every width divided by this


def _check_divisible(image_shape: tuple[int, int, int], layers: int) -> tuple[int, int, int]:
    c, h, w = _check_shape(image_shape)
    factor = STRIDE ** layers
    if h % factor or w % factor:
        raise ValueError(f"the CelebA ConvNet needs a height and width divisible by {factor}, not {h}x{w}")
    return c, h, w


class CelebAConvEncoder(GaussianEncoder):
    """Image (B, C, H, W) -> (mu, logvar), each (B, d): four 5x5 stride-2 convolutions (BatchNorm, ReLU),
    then one linear layer from the (channels[-1], H/16, W/16) map."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, ...] = ENCODER_CHANNELS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_divisible(image_shape, len(channels)), latent_dim
        c, h, w = self.image_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, KERNEL, stride=STRIDE, padding=PADDING, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU()]
            c, h, w = out, h // STRIDE, w // STRIDE
        self.feature_shape = (c, h, w)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, 2 * latent_dim))


class CelebAConvDecoder(nn.Module):
    """z (B, d) -> image mean (B, C, H, W) in [0, 1]: a linear layer to (start_channels, H/16, W/16),
    then four 5x5 stride-2 transposed convolutions (channels, then C), a sigmoid at the end."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, ...] = DECODER_CHANNELS, start_channels: int = ENCODER_CHANNELS[-1]):
        super().__init__()
        self.image_shape, self.latent_dim = _check_divisible(image_shape, len(channels) + 1), latent_dim
        c, h, w = self.image_shape
        scale = STRIDE ** (len(channels) + 1)
        self.start_shape = (start_channels, h // scale, w // scale)
        self.project = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start_shape), bias=False),
                                     nn.Unflatten(1, self.start_shape), nn.BatchNorm2d(start_channels), nn.ReLU())
        sizes = (start_channels, *channels, c)
        layers: list[nn.Module] = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            layers.append(nn.ConvTranspose2d(sizes[i], sizes[i + 1], KERNEL, stride=STRIDE, padding=PADDING,
                                             output_padding=STRIDE - 1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(sizes[i + 1]), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Image mean (B, C, H, W) in [0, 1] from z (B, d)."""
        return torch.sigmoid(self.body(self.project(z)))


@architecture("celeba_conv", "AVAE appendix F (CelebA): 4 stride-2 5x5 convolutions (128-1024 channels), "
                             "4 transposed ones (512-256-128-C), BatchNorm")
def _celeba_conv_pair(image_shape, latent_dim):
    return CelebAConvEncoder(image_shape, latent_dim), CelebAConvDecoder(image_shape, latent_dim)


@architecture("celeba_conv_narrow", f"celeba_conv with every width divided by {NARROW_DIVISOR} (a CPU stand-in)")
def _celeba_conv_narrow_pair(image_shape, latent_dim):
    return (CelebAConvEncoder(image_shape, latent_dim, tuple(c // NARROW_DIVISOR for c in ENCODER_CHANNELS)),
            CelebAConvDecoder(image_shape, latent_dim, tuple(c // NARROW_DIVISOR for c in DECODER_CHANNELS),
                              ENCODER_CHANNELS[-1] // NARROW_DIVISOR))
