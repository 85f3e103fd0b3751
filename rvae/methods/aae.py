"""The adversarial autoencoder (AAE; Makhzani et al. 2016, as the AAE/WAE slides present it): an
autoencoder whose aggregated posterior q(z) = E_x q(z|x) is pushed towards the prior p(z) = N(0, I)
by a discriminator D(z) in the latent space, in place of the VAE's per-example KL term.

Each step has the slides' two phases, the second in two parts (alternating updates, in this order):

    autoencoder   (encoder + decoder):  minimise  -mean log p(x | z~),  z~ ~ q(z|x)      reconstruction
    discriminator (D):                  minimise  -mean log D(z) - mean log(1 - D(z~)),  z ~ p(z)
    encoder       (encoder only):       minimise  -weight * mean log D(z~)                non-saturating

The encoder is the generator of the latent GAN. -log p(x|z) is the book's Gaussian decoder's
(variance ``model.observation_variance``), so the reconstruction phase is the VAE's reconstruction
term; ``weight`` (1 in the slides, which give none) scales the encoder's adversarial loss.

``encoder="deterministic"`` uses z~ = mu(x), the encoder's mean (its log-variance head gets no
gradient); ``"gaussian"`` draws z~ = mu + sigma * eps, reparameterised. The slides' third choice, a
"universal approximator" posterior (noise fed into the encoder), is not implemented.

The discriminator is :class:`rvae.methods.gan.MLPDiscriminator` on latent vectors: LeakyReLU(0.2)
layers, by default those of the WAE paper's MNIST discriminator (4 x 512; the slides give none),
and both adversarial players use Adam with betas (0.5, 0.999), the usual GAN setting.

With the squared-error cost, WAE-GAN (:mod:`rvae.methods.wae`) minimises the same objective: the
encoder and decoder's total loss here is cost / (2 v) + constant + weight * adversarial, which is
WAE-GAN's with cost weight 1 / (2 v) and lambda = weight; the two differ in their schedule (three
updates a step here, two there). :func:`latent_adversary_terms` is shared by both.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rvae import gaussians
from rvae.methods import Method, ParameterGroup, register
from rvae.methods.gan import GAN_BETAS, MLPDiscriminator, discriminator_loss, generator_loss, prior_sample
from rvae.params import CheckedConfig, option

ENCODER_KINDS = ("deterministic", "gaussian")


@dataclass(frozen=True)
class AAEConfig(CheckedConfig):
    encoder: str = option("deterministic", "the code z~: the encoder mean (deterministic) or a draw from "
                          "q(z|x) (gaussian)", "{deterministic, gaussian}")
    weight: float = option(1.0, "weight of the encoder's adversarial loss (the slides: 1)", "[0, inf)")
    discriminator_hidden: int = option(512, "units per hidden layer of D(z) (the WAE paper's MNIST D)", "[1, inf)")
    discriminator_depth: int = option(4, "hidden layers of D(z) (the WAE paper's MNIST D)", "[1, inf)")


def encode_codes(model, x: Tensor, encoder: str, generator=None) -> tuple[Tensor, Tensor, Tensor]:
    """(z~, mu, logvar): the codes of x (B, d) under the ``encoder`` kind, with the encoder's outputs."""
    mu, logvar = model.encode(x)
    if encoder == "deterministic":
        return mu, mu, logvar
    if encoder == "gaussian":
        return gaussians.reparameterise(mu, logvar, generator), mu, logvar
    raise ValueError(f"unknown encoder kind {encoder!r}; valid: {', '.join(ENCODER_KINDS)}")


def latent_adversary_terms(codes: Tensor, discriminator: nn.Module, generator=None) -> tuple[Tensor, Tensor, dict]:
    """(D's loss, the encoder's non-saturating loss, logs) for codes (B, d) against B prior draws.

    D sees the codes detached (its loss moves D only); the encoder's loss goes through D (whose
    optimiser must not step on it).
    """
    prior = prior_sample(len(codes), codes.shape[1], generator, codes.device)
    real_logits, fake_logits = discriminator(prior), discriminator(codes.detach())
    d_loss, e_loss = discriminator_loss(real_logits, fake_logits), generator_loss(discriminator(codes))
    return d_loss, e_loss, {"d_prior": torch.sigmoid(real_logits).mean().item(),
                            "d_codes": torch.sigmoid(fake_logits).mean().item()}


def aae_losses(x: Tensor, nets, config: AAEConfig, generator=None):
    """{"autoencoder": -mean log p(x|z~), "discriminator": D's BCE, "encoder": weight * -mean log D(z~)}."""
    model = nets["vae"]
    codes, _, _ = encode_codes(model, x, config.encoder, generator)
    reconstruction = -gaussians.gaussian_log_likelihood(x, model.decode(codes), model.observation_variance).mean()
    d_loss, e_loss, logs = latent_adversary_terms(codes, nets["discriminator"], generator)
    losses = {"autoencoder": reconstruction, "discriminator": d_loss, "encoder": config.weight * e_loss}
    return losses, {"reconstruction": reconstruction.item(), "discriminator_loss": d_loss.item(),
                    "encoder_adversarial": e_loss.item(), **logs}


def latent_discriminator(model: nn.Module, config) -> dict[str, nn.Module]:
    """D(z) for the model's latent size, sized by the config's discriminator fields."""
    return {"discriminator": MLPDiscriminator(model.latent_dim, config.discriminator_hidden, config.discriminator_depth)}


def aae_networks(model: nn.Module, config: AAEConfig) -> dict[str, nn.Module]:
    """D(z), and the model's encoder under its own name (the regularisation phase steps only it)."""
    return {**latent_discriminator(model, config), "encoder": model.encoder}


AAE_GROUPS = (ParameterGroup("autoencoder", networks=("vae",)),
              ParameterGroup("discriminator", networks=("discriminator",), betas=GAN_BETAS),
              ParameterGroup("encoder", networks=("encoder",), betas=GAN_BETAS))

register(Method("aae", "Makhzani et al. 2016; AAE/WAE slides",
                "adversarial autoencoder: reconstruction, then a latent discriminator D(z) against the prior, "
                "then the encoder against D",
                AAEConfig, aae_losses, groups=AAE_GROUPS, networks=aae_networks, alternating=True))
