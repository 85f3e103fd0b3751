"""The VAE and the beta-VAE: minus E_q log p(x|z) - beta KL(q(z|x) || p(z)), in nats per example."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from rvae import gaussians
from rvae.methods import Method, register
from rvae.params import CheckedConfig, option


def reconstruction_term(x: Tensor, model, mu: Tensor, logvar: Tensor, generator=None) -> Tensor:
    """log p(x | z), z ~ q(z|x) reparameterised once, (B,)."""
    z = gaussians.reparameterise(mu, logvar, generator)
    return gaussians.gaussian_log_likelihood(x, model.decode(z), model.observation_variance)


def beta_vae_terms(x: Tensor, model, beta: float, generator=None) -> tuple[Tensor, dict[str, float]]:
    """(minus the mean bound E log p(x|z) - beta KL, its logged terms); beta = 1 is the ELBO."""
    mu, logvar = model.encode(x)
    reconstruction = reconstruction_term(x, model, mu, logvar, generator)
    kl = gaussians.kl_to_standard_normal(mu, logvar)
    bound = reconstruction - beta * kl
    return -bound.mean(), {"bound": bound.mean().item(), "reconstruction": reconstruction.mean().item(),
                           "kl": kl.mean().item()}


@dataclass(frozen=True)
class ELBOConfig(CheckedConfig):
    """The ELBO has no hyperparameters of its own."""


@dataclass(frozen=True)
class BetaVAEConfig(CheckedConfig):
    beta: float = option(1.0, "weight of the KL term (1: the ELBO)", "[0, inf)")


def elbo_losses(x: Tensor, nets, config: ELBOConfig, generator=None):
    """Minus the ELBO E log p(x|z) - KL(q(z|x) || p(z))."""
    loss, logs = beta_vae_terms(x, nets["vae"], 1.0, generator)
    return {"vae": loss}, logs


def beta_vae_losses(x: Tensor, nets, config: BetaVAEConfig, generator=None):
    """Minus the beta-VAE bound E log p(x|z) - beta KL(q(z|x) || p(z))."""
    loss, logs = beta_vae_terms(x, nets["vae"], config.beta, generator)
    return {"vae": loss}, logs


register(Method("elbo", "Kingma & Welling 2014", "the evidence lower bound", ELBOConfig, elbo_losses))
register(Method("beta_vae", "Higgins et al. 2017; local geometry sec. 4.2.1",
                "the ELBO with the KL term weighted by beta", BetaVAEConfig, beta_vae_losses))
