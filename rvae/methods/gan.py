"""A GAN with the non-saturating generator loss ("Looser is worse", appendix A.2, Algorithm A.1),
for the 2D-grid task of its section 3.1 (data and helpers: :mod:`rvae.worlds.grid2d`).

Two parameter groups, stepped in turn on fresh forward passes (``alternating``), the
discriminator first as in Algorithm A.1:

    discriminator:  minimise  -mean log D(x_real) - mean log(1 - D(G(z)))   (binary cross-entropy)
    generator:      minimise  -mean log D(G(z))                             (non-saturating)

with D(x) = sigmoid(logit(x)) and z ~ N(0, I). (Algorithm A.1 as printed says "minimizing
log D(x_r) + log(1 - D(x_f))", a sign slip: that would train D to be wrong. Its generator step,
"maximizing log D(x_f)", is the non-saturating loss.) The fakes are detached in the
discriminator's loss. Each loss uses as many fakes as the batch has real points.

How it fits the registry: the training loop trains the model it is given in the slot named
"vae" plus the method's own networks. Here the model given is the *generator* (an
:class:`MLPGenerator`: z (B, latent_dim) -> points (B, data_dim), with attributes ``latent_dim``
and ``data_dim``), so the generator group owns network "vae"; :func:`gan_networks` adds the
discriminator. Batches are real points (B, data_dim), e.g. :func:`rvae.worlds.grid2d.grid_batches`.

Not in the paper (it gives no GAN architecture or optimiser for the 2D grid): ReLU MLPs for the
generator, LeakyReLU(0.2) for the discriminator, one discriminator step per generator step, Adam
with betas (0.5, 0.999) for both (the usual GAN setting) at the run's learning rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rvae.methods import Method, ParameterGroup, register
from rvae.params import CheckedConfig, option

GAN_BETAS = (0.5, 0.999)


@dataclass(frozen=True)
class GANConfig(CheckedConfig):
    discriminator_hidden: int = option(128, "units per hidden layer of the discriminator (not in the paper)", "[1, inf)")
    discriminator_depth: int = option(2, "hidden layers of the discriminator (not in the paper)", "[1, inf)")


def _mlp(sizes: list[int], activation: type[nn.Module], **options) -> nn.Sequential:
    """Linear layers between consecutive ``sizes``, ``activation`` after every one but the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation(**options))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    """G: z (B, latent_dim) -> points (B, data_dim), ``depth`` hidden ReLU layers of ``hidden`` units."""

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        if min(latent_dim, data_dim, hidden, depth) < 1:
            raise ValueError("latent_dim, data_dim, hidden and depth must all be at least 1")
        self.latent_dim, self.data_dim = latent_dim, data_dim
        self.body = _mlp([latent_dim] + [hidden] * depth + [data_dim], nn.ReLU)

    def forward(self, z: Tensor) -> Tensor:
        """Generated points (B, data_dim) from latent vectors z (B, latent_dim)."""
        return self.body(z)

    def sample(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        """G(z) for ``count`` draws z ~ N(0, I) on ``generator`` (moved to the generator's device)."""
        return self(prior_sample(count, self.latent_dim, generator, next(self.parameters()).device))


class MLPDiscriminator(nn.Module):
    """D's logit: points (B, data_dim) -> (B,), ``depth`` hidden LeakyReLU(0.2) layers of ``hidden`` units."""

    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 2):
        super().__init__()
        if min(data_dim, hidden, depth) < 1:
            raise ValueError("data_dim, hidden and depth must all be at least 1")
        self.body = _mlp([data_dim] + [hidden] * depth + [1], nn.LeakyReLU, negative_slope=0.2)

    def forward(self, x: Tensor) -> Tensor:
        """The logit of D(x) = P(x is real), (B,), for points x (B, data_dim)."""
        return self.body(x.flatten(1)).squeeze(1)


def prior_sample(count: int, latent_dim: int, generator: torch.Generator | None = None,
                 device: torch.device | str = "cpu") -> Tensor:
    """z ~ N(0, I), (count, latent_dim), drawn on ``generator``'s device and moved to ``device``."""
    draw_on = generator.device if generator is not None else device
    return torch.randn((count, latent_dim), generator=generator, device=draw_on).to(device)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-mean log sigmoid(real) - mean log(1 - sigmoid(fake)): the binary cross-entropy of D."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: Tensor) -> Tensor:
    """-mean log sigmoid(fake): the non-saturating generator loss -log D(G(z))."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gan_losses(x: Tensor, nets, config: GANConfig, generator=None):
    """{"discriminator": BCE of D, "generator": -mean log D(G(z))} on real points x and len(x) fakes."""
    g, d = nets["vae"], nets["discriminator"]
    fake = g(prior_sample(len(x), g.latent_dim, generator, x.device))
    real_logits, fake_logits = d(x), d(fake.detach())
    losses = {"discriminator": discriminator_loss(real_logits, fake_logits), "generator": generator_loss(d(fake))}
    return losses, {"discriminator_loss": losses["discriminator"].item(), "generator_loss": losses["generator"].item(),
                    "d_real": torch.sigmoid(real_logits).mean().item(), "d_fake": torch.sigmoid(fake_logits).mean().item()}


def gan_networks(model: nn.Module, config: GANConfig) -> dict[str, nn.Module]:
    """The discriminator for the generator ``model`` (its ``data_dim`` sets D's input size)."""
    data_dim = getattr(model, "data_dim", None)
    if not isinstance(data_dim, int):
        raise TypeError(f"the GAN's generator needs an integer data_dim; a {type(model).__name__} has none")
    return {"discriminator": MLPDiscriminator(data_dim, config.discriminator_hidden, config.discriminator_depth)}


GAN_GROUPS = (ParameterGroup("discriminator", networks=("discriminator",), betas=GAN_BETAS),
              ParameterGroup("generator", networks=("vae",), betas=GAN_BETAS))

register(Method("ns_gan", "Looser is worse, appendix A.2 (Goodfellow et al. 2014)",
                "a GAN with the non-saturating generator loss; the trained model (the \"vae\" slot) is the generator",
                GANConfig, gan_losses, groups=GAN_GROUPS, networks=gan_networks, alternating=True))
