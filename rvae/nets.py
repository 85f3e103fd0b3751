"""Encoders and decoders of the papers' appendices, and the Gaussian VAE that holds them.

Every encoder is a :class:`GaussianEncoder`: images (B, C, H, W) in [0, 1] -> (mu, logvar), each
(B, d), the mean and log-variance of a fully factorised Gaussian q(z|x). Every decoder maps
z (B, d) -> the mean of a Gaussian p(x|z) = N(x; g(z), v I), an image (B, C, H, W) in [0, 1]
(sigmoid output). :func:`build_vae` builds a :class:`VAE` by architecture name, from the
registry :data:`ARCHITECTURES` (a new architecture is one function decorated with :func:`architecture`):

``"mlp"``
    Smooth Encoders appendix C.1 and the AVAE appendix F (and the AVAE's published JAX code):
    4 hidden layers of 200 ReLU units both ways; the encoder's last linear layer has 2 d
    outputs (means and log-variances).
``"conv"``
    The AVAE appendix F ConvNet for (Color)MNIST: a 7-layer VGG-style encoder and a
    3-layer de-convolutional decoder (see :class:`ConvEncoder` and :class:`ConvDecoder` for
    what the appendix states and what is our guess).
``"tanh_mlp"``
    The local-geometry paper's MNIST/FashionMNIST MLP (its supplement A): hidden layers of 256,
    256, 512 and 32 units, BatchNorm before every tanh, two 32 x 32 linear maps to the mean and
    the log-variance; the decoder mirrors it (32, 512, 256, 256 units). See :class:`TanhMLPEncoder`.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from rvae.gaussians import reparameterise

#: Log-variances are clamped to this range: sigma in [e^-6, e^4] ~ [0.0025, 55], finite exp() always.
LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0
MLP_DEPTH = 4                                                     # hidden layers, Smooth Encoders C.1
CONV_ENCODER_CHANNELS = (8, 16, 32, 64, 128, 256, 512)           # AVAE appendix F
CONV_ENCODER_STRIDES = (2, 1, 2, 1, 2, 1, 2)
CONV_DECODER_CHANNELS = (64, 32)                                  # then the image's C channels
CONV_DECODER_STRIDES = (1, 2, 1)
TANH_MLP_ENCODER_UNITS = (256, 256, 512, 32)                     # local geometry, supplement A


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode (BatchNorm uses its running statistics); give each its own
    previous mode back on exit."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _check_shape(image_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (C, H, W) with positive sizes, not {image_shape!r}")
    return shape  # type: ignore[return-value]


class GaussianEncoder(nn.Module):
    """Base of every encoder: ``forward(x (B,C,H,W)) -> (mu (B,d), logvar (B,d))``, logvar clamped.

    A subclass sets ``self.latent_dim`` and ``self.body``, a module mapping x to (B, 2 d) units:
    the first d are the means, the last d the (unclamped) log-variances.
    """

    latent_dim: int
    body: nn.Module

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x), each (B, d); logvar clamped to [LOGVAR_MIN, LOGVAR_MAX]."""
        mu, logvar = self.body(x).chunk(2, dim=1)                 # (B, 2d) -> 2 x (B, d)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)


def _mlp(sizes: list[int]) -> list[nn.Module]:
    """Linear layers between consecutive ``sizes``, ReLU after every one but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


class MLPEncoder(GaussianEncoder):
    """Flattened image (B, C*H*W) -> ``depth`` x ``hidden`` ReLU units -> (mu, logvar), each (B, d)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, hidden: int = 200,
                 depth: int = MLP_DEPTH):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        pixels = math.prod(self.image_shape)
        self.body = nn.Sequential(nn.Flatten(), *_mlp([pixels] + [hidden] * depth + [2 * latent_dim]))


class MLPDecoder(nn.Module):
    """z (B, d) -> ``depth`` x ``hidden`` ReLU units -> sigmoid -> image mean (B, C, H, W) in [0, 1]."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, hidden: int = 200,
                 depth: int = MLP_DEPTH):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        self.body = nn.Sequential(*_mlp([latent_dim] + [hidden] * depth + [math.prod(self.image_shape)]))

    def forward(self, z: Tensor) -> Tensor:
        """Image mean (B, C, H, W) in [0, 1] from z (B, d)."""
        return torch.sigmoid(self.body(z)).view(len(z), *self.image_shape)


def _tanh_stack(sizes: list[int]) -> list[nn.Module]:
    """Linear -> BatchNorm -> tanh between consecutive ``sizes`` (every layer has the activation)."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.Tanh()]
    return layers


class TanhMLPEncoder(GaussianEncoder):
    """The local-geometry paper's encoder: image -> 256, 256, 512, 32 tanh units -> (mu, logvar), each (B, d).

    Stated in its supplement A: four hidden layers of 256, 256, 512 and 32 units, tanh, BatchNorm
    before every activation, the mean and the standard deviation from two 32 x 32 linear maps
    (d = 32). Ours: the second map gives the *log-variance* (as in every encoder of the book; the
    supplement parameterises the standard deviation, with an unstated positivity transform), and
    the two maps are stored as one 32 -> 2d linear layer, which is the same function. The last
    hidden width is ``units[-1]``, so other d work too. In train mode BatchNorm couples the
    examples of a batch: attack and score in eval mode.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 units: tuple[int, ...] = TANH_MLP_ENCODER_UNITS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        pixels = math.prod(self.image_shape)
        self.body = nn.Sequential(nn.Flatten(), *_tanh_stack([pixels, *units]), nn.Linear(units[-1], 2 * latent_dim))


class TanhMLPDecoder(nn.Module):
    """The mirror of :class:`TanhMLPEncoder`: z (B, d) -> 32, 512, 256, 256 tanh units -> sigmoid image (B, C, H, W)."""

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 units: tuple[int, ...] = tuple(reversed(TANH_MLP_ENCODER_UNITS))):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        self.body = nn.Sequential(*_tanh_stack([latent_dim, *units]), nn.Linear(units[-1], math.prod(self.image_shape)))

    def forward(self, z: Tensor) -> Tensor:
        """Image mean (B, C, H, W) in [0, 1] from z (B, d)."""
        return torch.sigmoid(self.body(z)).view(len(z), *self.image_shape)


class ConvEncoder(GaussianEncoder):
    """VGG-style ConvNet of the AVAE appendix F: image (B, C, H, W) -> (mu, logvar), each (B, d).

    Stated in the appendix: 7 convolutions with 3x3 kernels, output channels 8, 16, 32, 64,
    128, 256, 512, strides 2, 1, 2, 1, 2, 1, 2, BatchNorm between the convolutional layers.
    Our guesses (the appendix is silent): padding 1 (so 28x28 maps go 14, 14, 7, 7, 4, 4, 2 and
    64x64 ones 32, 32, 16, 16, 8, 8, 4), ReLU after each BatchNorm, convolutions without bias
    (BatchNorm has one), and one linear layer from the flattened last map to the 2 d outputs.
    Any H, W >= 1 work. BatchNorm makes the encoding of an example depend on its batch in
    train mode: attack and evaluate in eval mode.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, ...] = CONV_ENCODER_CHANNELS, strides: tuple[int, ...] = CONV_ENCODER_STRIDES):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        c, h, w = self.image_shape
        layers: list[nn.Module] = []
        for out, stride in zip(channels, strides):
            layers += [nn.Conv2d(c, out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c, h, w = out, (h - 1) // stride + 1, (w - 1) // stride + 1   # 3x3, padding 1
        self.feature_shape = (c, h, w)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, 2 * latent_dim))


class ConvDecoder(nn.Module):
    """De-convolutional decoder of the AVAE appendix F: z (B, d) -> image mean (B, C, H, W) in [0, 1].

    Stated in the appendix: 3 transposed convolutions with 3x3 kernels, output channels 64, 32
    and C (3 for ColorMNIST), strides 1, 2, 1, BatchNorm between the convolutional layers.
    Our guesses: a linear layer first maps z to a 64-channel map of half the image size
    (H/2 x W/2: the only stride-2 layer doubles it), followed by BatchNorm and ReLU; padding 1
    (output padding 1 on the stride-2 layer); ReLU after each BatchNorm; a sigmoid on the
    last layer. H and W must be even (28x28 and 64x64 both are).
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, ...] = CONV_DECODER_CHANNELS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        c, h, w = self.image_shape
        if h % 2 or w % 2:
            raise ValueError(f"the conv decoder needs an even image height and width, not {h}x{w}")
        self.start_shape = (channels[0], h // 2, w // 2)
        self.project = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start_shape), bias=False),
                                     nn.Unflatten(1, self.start_shape), nn.BatchNorm2d(channels[0]), nn.ReLU())
        layers: list[nn.Module] = []
        sizes = (channels[0], *channels, c)                          # 64 -> 64 -> 32 -> C
        for i, stride in enumerate(CONV_DECODER_STRIDES):
            last = i == len(CONV_DECODER_STRIDES) - 1
            layers.append(nn.ConvTranspose2d(sizes[i], sizes[i + 1], 3, stride=stride, padding=1,
                                             output_padding=stride - 1, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(sizes[i + 1]), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        """Image mean (B, C, H, W) in [0, 1] from z (B, d)."""
        return torch.sigmoid(self.body(self.project(z)))             # (B,64,H/2,W/2) -> (B,C,H,W)


class VAE(nn.Module):
    """A Gaussian VAE: encoder q(z|x) = N(mu, diag e^logvar), decoder p(x|z) = N(g(z), v I), prior N(0, I)."""

    def __init__(self, encoder: GaussianEncoder, decoder: nn.Module, observation_variance: float = 0.5):
        super().__init__()
        if observation_variance <= 0:
            raise ValueError(f"observation_variance must be positive, not {observation_variance}")
        self.encoder, self.decoder = encoder, decoder
        self.observation_variance = float(observation_variance)
        self.latent_dim = encoder.latent_dim

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x), each (B, d), for images x (B, C, H, W)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder mean g(z), images (B, C, H, W) in [0, 1], for latents z (B, d)."""
        return self.decoder(z)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x_mean (B,C,H,W), mu (B,d), logvar (B,d), z (B,d)) for x (B,C,H,W), z ~ q(z|x) reparameterised."""
        mu, logvar = self.encode(x)
        z = reparameterise(mu, logvar, generator)
        return self.decode(z), mu, logvar, z


@dataclass(frozen=True)
class Architecture:
    """A named encoder/decoder pair: ``build(image_shape, latent_dim, **options) -> (encoder, decoder)``."""
    name: str
    source: str
    build: Callable[..., tuple[GaussianEncoder, nn.Module]]


#: Architecture name -> :class:`Architecture`. A new one is one decorated builder function.
ARCHITECTURES: dict[str, Architecture] = {}


def architecture(name: str, source: str):
    """Register the decorated ``build(image_shape, latent_dim, **options)`` under ``name``."""
    def register(build):
        ARCHITECTURES[name] = Architecture(name, source, build)
        return build
    return register


@architecture("mlp", "Smooth Encoders C.1; AVAE appendix F: 4 x 200 ReLU units both ways")
def _mlp_pair(image_shape, latent_dim, hidden: int = 200):
    return MLPEncoder(image_shape, latent_dim, hidden), MLPDecoder(image_shape, latent_dim, hidden)


@architecture("tanh_mlp", "local geometry, supplement A: 256-256-512-32 tanh units with BatchNorm")
def _tanh_mlp_pair(image_shape, latent_dim):
    return TanhMLPEncoder(image_shape, latent_dim), TanhMLPDecoder(image_shape, latent_dim)


@architecture("conv", "AVAE appendix F: 7-layer VGG-style encoder, 3-layer de-convolutional decoder (any even H, W)")
def _conv_pair(image_shape, latent_dim):
    return ConvEncoder(image_shape, latent_dim), ConvDecoder(image_shape, latent_dim)


def build_vae(architecture: str = "mlp", image_shape: tuple[int, int, int] = (1, 28, 28), latent_dim: int = 32,
              observation_variance: float = 0.5, **options) -> VAE:
    """A :class:`VAE` of the named architecture (a key of :data:`ARCHITECTURES`) for images of ``image_shape`` (C, H, W).

    ``options`` go to the architecture's builder (e.g. ``hidden``, the width of the "mlp" layers).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; valid: {', '.join(ARCHITECTURES)}")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be >= 1, not {latent_dim}")
    encoder, decoder = ARCHITECTURES[architecture].build(_check_shape(image_shape), latent_dim, **options)
    return VAE(encoder, decoder, observation_variance)


def reconstruct(model: VAE, images: Tensor) -> Tensor:
    """Decoded means g(mu(x)), (B, C, H, W), in evaluation mode and without gradients."""
    with evaluation_mode(model), torch.no_grad():
        return model.decode(model.encode(images)[0])
