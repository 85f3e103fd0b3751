"""The ConvNets of "Looser is worse" (tables 1 and 2) as architectures of :mod:`rvae.nets`.

Importing this module registers ``lcvae_conv`` (the paper's widths) and ``lcvae_conv_narrow``
(every width divided by :data:`NARROW_DIVISOR`, a stand-in for two CPU cores); then
``build_vae("lcvae_conv", ...)`` and ``Experiment(architecture="lcvae_conv")`` find them.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rvae.nets import GaussianEncoder, _check_shape, architecture

ENCODER_CHANNELS = (128, 256, 512, 1024)      # table 1
DECODER_CHANNELS = (256, 128)                 # table 2 (then the image's C channels)
NARROW_DIVISOR = 8                            # lcvae_conv_narrow: every width divided by this


class LCVAEConvEncoder(GaussianEncoder):
    """Table 1: four 4x4 convolutions of stride 2 (128, 256, 512, 1024 channels), BatchNorm and ReLU
    after each, then one linear layer to (mu, logvar), each (B, d).

    Stated in the paper: kernel 4, stride 2, padding "SAME", BatchNorm, ReLU, a linear layer with
    1024 inputs. Ours: padding 1, which takes 28x28 to 14, 7, 3, 1 and so gives the 1 x 1 x 1024 =
    1024 inputs the paper states (TensorFlow's SAME would give 2 x 2 x 1024); convolutions without
    bias (BatchNorm has one); one 1024 -> 2d layer for both means and log-variances.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, ...] = ENCODER_CHANNELS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        c, h, w = self.image_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c, h, w = out, h // 2, w // 2                          # kernel 4, stride 2, padding 1: floor(h / 2)
            if min(h, w) < 1:
                raise ValueError(f"images of {self.image_shape[1:]} are too small for {len(channels)} "
                                 f"stride-2 layers")
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, 2 * latent_dim))


class LCVAEConvDecoder(nn.Module):
    """Table 2: a linear layer z (B, d) -> 256 x H/4 x W/4, then two 4x4 transposed convolutions of
    stride 2 (256 -> 128 with BatchNorm and ReLU, 128 -> C with a sigmoid).

    Stated: the linear layer to 12544 = 256 x 7 x 7 for MNIST, the two layers with their channels,
    BatchNorm on the first only, ReLU then sigmoid. Ours: a ReLU after the linear layer (the table
    does not say), padding 1 (which doubles the size exactly), no bias before BatchNorm.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, int] = DECODER_CHANNELS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the LC-VAE decoder needs a height and width divisible by 4, not {h}x{w}")
        start = (channels[0], h // 4, w // 4)
        self.project = nn.Sequential(nn.Linear(latent_dim, math.prod(start)), nn.ReLU(), nn.Unflatten(1, start))
        self.body = nn.Sequential(nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[1]), nn.ReLU(),
                                  nn.ConvTranspose2d(channels[1], c, 4, stride=2, padding=1))

    def forward(self, z: Tensor) -> Tensor:
        """Image mean (B, C, H, W) in [0, 1] from z (B, d)."""
        return torch.sigmoid(self.body(self.project(z)))           # (B, 256, H/4, W/4) -> (B, C, H, W)


@architecture("lcvae_conv", "Looser is worse, tables 1 and 2: 4 stride-2 convolutions (128-1024 channels), "
                            "2 transposed ones (256-128)")
def _lcvae_conv_pair(image_shape, latent_dim):
    return LCVAEConvEncoder(image_shape, latent_dim), LCVAEConvDecoder(image_shape, latent_dim)


@architecture("lcvae_conv_narrow", f"lcvae_conv with every width divided by {NARROW_DIVISOR} (a CPU stand-in)")
def _lcvae_conv_narrow_pair(image_shape, latent_dim):
    return (LCVAEConvEncoder(image_shape, latent_dim, tuple(c // NARROW_DIVISOR for c in ENCODER_CHANNELS)),
            LCVAEConvDecoder(image_shape, latent_dim, tuple(c // NARROW_DIVISOR for c in DECODER_CHANNELS)))
