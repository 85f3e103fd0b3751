"""Wasserstein autoencoders (Tolstikhin et al. 2018, as the AAE/WAE slides present them): minimise

    E_x E_{q(z|x)} c(x, G(z))  +  lambda * D_Z(Q_Z, P_Z),

a reconstruction cost plus a penalty on how far the aggregated posterior Q_Z is from the prior
P_Z = N(0, I), the relaxation of the Wasserstein distance W_c(P_X, P_G) = inf over encoders with
Q_Z = P_Z of the expected cost. Here c(x, y) = cost_weight * ||x - y||^2 (summed over pixels; the
WAE authors use 0.05 for MNIST), and the code is the encoder mean (deterministic, as theirs) or a
draw from q(z|x) (see :class:`rvae.methods.aae.AAEConfig`).

- ``wae_mmd``: D_Z = MMD_k^2, estimated by the unbiased U-statistic (:func:`rvae.kernels.mmd_u`) between the
  batch's codes and as many prior draws, with the inverse multiquadric kernel
  k(x, y) = C / (C + ||x - y||^2) summed over C = 2 d sigma^2 * s for the scales s of the WAE
  authors' code (0.1, 0.2, 0.5, 1, 2, 5, 10), sigma^2 = 1 the prior's variance; lambda = 10
  (their MNIST value). One parameter group (the VAE), Adam with beta1 = 0.5 as theirs.
- ``wae_gan``: D_Z = the Jensen-Shannon divergence, through a latent discriminator D(z) (the AAE's):
  alternating updates, D first (minimising lambda times its binary cross-entropy), then the
  encoder and decoder on cost + lambda * (-mean log D(z~)); lambda = 1, as the authors' MNIST run.
  With c(x, y) = ||x - y||^2 / (2 v) this is the AAE's objective (:mod:`rvae.methods.aae`).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from rvae.methods import Method, ParameterGroup, register
from rvae.methods.aae import ENCODER_KINDS, encode_codes, latent_adversary_terms, latent_discriminator
from rvae.methods.gan import GAN_BETAS, prior_sample
from rvae.params import CheckedConfig, option

WAE_BETAS = (0.5, 0.999)

_ENCODER_HELP = "the code z~: the encoder mean (deterministic) or a draw from q(z|x) (gaussian)"
_ENCODER_VALID = "{" + ", ".join(ENCODER_KINDS) + "}"


@dataclass(frozen=True)
class WAEMMDConfig(CheckedConfig):
    weight: float = option(10.0, "lambda, the weight of MMD^2 (the WAE paper's MNIST: 10)", "[0, inf)")
    cost_weight: float = option(0.05, "c(x, y) = cost_weight * ||x - y||^2 (the WAE code's MNIST: 0.05)", "(0, inf)")
    encoder: str = option("deterministic", _ENCODER_HELP, _ENCODER_VALID)
    prior_variance: float = option(1.0, "sigma^2 of the prior, which sets the kernel scales C = 2 d sigma^2 s",
                                   "(0, inf)")


@dataclass(frozen=True)
class WAEGANConfig(CheckedConfig):
    weight: float = option(1.0, "lambda, the weight of the adversarial penalty (the WAE paper's MNIST: 1)", "[0, inf)")
    cost_weight: float = option(0.05, "c(x, y) = cost_weight * ||x - y||^2 (the WAE code's MNIST: 0.05)", "(0, inf)")
    encoder: str = option("deterministic", _ENCODER_HELP, _ENCODER_VALID)
    discriminator_hidden: int = option(512, "units per hidden layer of D(z) (the WAE paper's MNIST D)", "[1, inf)")
    discriminator_depth: int = option(4, "hidden layers of D(z) (the WAE paper's MNIST D)", "[1, inf)")


def squared_error_cost(x: Tensor, reconstruction: Tensor, cost_weight: float) -> Tensor:
    """cost_weight * ||x - reconstruction||^2 summed over pixels, (B,)."""
    return cost_weight * (x - reconstruction).pow(2).flatten(1).sum(1)


def wae_mmd_losses(x: Tensor, nets, config: WAEMMDConfig, generator=None):
    """{"vae": mean cost + lambda * MMD_u^2(codes, prior draws)}."""
    model = nets["vae"]
    codes, _, _ = encode_codes(model, x, config.encoder, generator)
    cost = squared_error_cost(x, model.decode(codes), config.cost_weight).mean()
    # imported here, not at the top: finding a method imports every method module, and a chapter
    # counts every non-method module it loaded (rvae.book.provenance); this one counts where it is used
    from rvae.kernels import IMQ_SCALES, imq_kernel, mmd_u
    prior = prior_sample(len(codes), codes.shape[1], generator, codes.device)
    mmd = mmd_u(codes, prior, lambda a, b: imq_kernel(a, b, IMQ_SCALES, config.prior_variance))
    return {"vae": cost + config.weight * mmd}, {"cost": cost.item(), "mmd": mmd.item()}


def wae_gan_losses(x: Tensor, nets, config: WAEGANConfig, generator=None):
    """{"discriminator": lambda * D's BCE, "autoencoder": mean cost + lambda * -mean log D(z~)}."""
    model = nets["vae"]
    codes, _, _ = encode_codes(model, x, config.encoder, generator)
    cost = squared_error_cost(x, model.decode(codes), config.cost_weight).mean()
    d_loss, e_loss, logs = latent_adversary_terms(codes, nets["discriminator"], generator)
    losses = {"discriminator": config.weight * d_loss, "autoencoder": cost + config.weight * e_loss}
    return losses, {"cost": cost.item(), "discriminator_loss": d_loss.item(), "encoder_adversarial": e_loss.item(),
                    **logs}


register(Method("wae_mmd", "Tolstikhin et al. 2018 (WAE-MMD); AAE/WAE slides",
                "Wasserstein autoencoder: squared-error cost plus lambda * MMD^2 (IMQ kernels, U-statistic) "
                "between codes and prior draws",
                WAEMMDConfig, wae_mmd_losses, groups=(ParameterGroup("vae", betas=WAE_BETAS),)))
register(Method("wae_gan", "Tolstikhin et al. 2018 (WAE-GAN); AAE/WAE slides",
                "Wasserstein autoencoder: squared-error cost plus lambda * a latent discriminator's "
                "non-saturating loss (alternating with D)",
                WAEGANConfig, wae_gan_losses,
                groups=(ParameterGroup("discriminator", networks=("discriminator",), betas=GAN_BETAS),
                        ParameterGroup("autoencoder", networks=("vae",), betas=WAE_BETAS)),
                networks=latent_discriminator, alternating=True))
