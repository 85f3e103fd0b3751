"""Training objectives, one function per method with one signature.

    loss, logs = objective(x, model, config, generator)

``x`` is a batch of images (B, C, H, W) in [0, 1]; ``model`` a :class:`rvae.nets.VAE`;
``config`` an :class:`ObjectiveConfig`; ``generator`` the torch.Generator that draws the
reparameterisation noise (and the selection's random start). ``loss`` is the scalar to
*minimise* (minus the mean bound, in nats per example); ``logs`` maps term names to floats.
Adding a method is one function and one line in :data:`OBJECTIVES`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from rvae import gaussians
from rvae.attacks import latent_selection, random_selection

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class ObjectiveConfig:
    """Hyperparameters of every objective (each method reads the ones it needs)."""
    beta: float = 1.0                   # beta-VAE weight on the KL term
    gamma: float = 1.0                  # SE coupling strength
    selection: str = "adversarial"      # SE selection mechanism: "adversarial" (PGD) or "random"
    selection_eps: float = 0.1          # SE selection radius (L-inf)
    selection_budget: int = 20          # SE selection PGD iterations L


def gaussian_log_likelihood(x: Tensor, mean: Tensor, variance: float) -> Tensor:
    """log N(x; mean, variance I) summed over pixels, (B,): -D/2 log(2 pi v) - ||x - mean||^2 / (2v)."""
    dims = x[0].numel()
    squared = (x - mean).pow(2).flatten(1).sum(1)
    return -0.5 * dims * (LOG_2PI + math.log(variance)) - squared / (2 * variance)


def expected_log_prior(mu: Tensor, logvar: Tensor) -> Tensor:
    """E_q[log N(z; 0, I)] for q = N(mu, diag e^logvar), (B,): -1/2 (||mu||^2 + tr S) - d/2 log 2 pi."""
    return -0.5 * (mu.pow(2) + logvar.exp()).sum(1) - 0.5 * mu.shape[1] * LOG_2PI


def _reconstruction(x: Tensor, model, mu: Tensor, logvar: Tensor, generator) -> Tensor:
    return gaussian_log_likelihood(x, model.decode(gaussians.reparameterise(mu, logvar, generator)),
                                   model.observation_variance)


def beta_vae(x: Tensor, model, config: ObjectiveConfig, generator=None) -> tuple[Tensor, dict[str, float]]:
    """Minus the beta-VAE bound E log p(x|z) - beta KL(q(z|x) || p(z)); beta = 1 is the ELBO."""
    mu, logvar = model.encode(x)
    reconstruction = _reconstruction(x, model, mu, logvar, generator)
    kl = gaussians.kl_to_standard_normal(mu, logvar)
    bound = reconstruction - config.beta * kl
    return -bound.mean(), {"bound": bound.mean().item(), "reconstruction": reconstruction.mean().item(),
                           "kl": kl.mean().item()}


def elbo(x: Tensor, model, config: ObjectiveConfig, generator=None) -> tuple[Tensor, dict[str, float]]:
    """Minus the ELBO E log p(x|z) - KL(q(z|x) || p(z)) (config.beta is ignored)."""
    return beta_vae(x, model, ObjectiveConfig(beta=1.0), generator)


def select_partners(x: Tensor, model, config: ObjectiveConfig, generator=None) -> Tensor:
    """The SE selection mechanism: x' near x (||x' - x||_inf <= eps, in [0,1]), no gradient."""
    if config.selection == "adversarial":
        return latent_selection(model, x, config.selection_eps, config.selection_budget, generator=generator)
    if config.selection == "random":
        return random_selection(x, config.selection_eps, generator=generator)
    raise ValueError(f"unknown selection {config.selection!r}; valid: adversarial, random")


def smooth_encoder(x: Tensor, model, config: ObjectiveConfig, generator=None) -> tuple[Tensor, dict[str, float]]:
    """Minus the SE-ELBO of Smooth Encoders (appendix C), with the full entropic coupling:

        E log p(x|z_a) + E log p(z_a) + E log p(z_b) + max_Q [-gamma/2 E||z_a - z_b||^2 + H(Q)],

    z_a ~ q(z|x), z_b ~ q(z|x'), x' from the selection mechanism. The decoder sees only the
    data-fidelity term of x, as in the ELBO; the coupling regularises the encoder.
    """
    partners = select_partners(x, model, config, generator).detach()
    mu_a, logvar_a = model.encode(x)
    mu_b, logvar_b = model.encode(partners)
    reconstruction = _reconstruction(x, model, mu_a, logvar_a, generator)
    prior_fidelity = expected_log_prior(mu_a, logvar_a) + expected_log_prior(mu_b, logvar_b)
    coupling = gaussians.entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, config.gamma)
    bound = reconstruction + prior_fidelity + coupling
    w2 = gaussians.entropic_w2(mu_a, logvar_a, mu_b, logvar_b, config.gamma)
    return -bound.mean(), {"bound": bound.mean().item(), "reconstruction": reconstruction.mean().item(),
                           "kl": gaussians.kl_to_standard_normal(mu_a, logvar_a).mean().item(),
                           "entropic_w2": w2.mean().item()}


Objective = Callable[..., tuple[Tensor, dict[str, float]]]

#: Method name -> objective. A new method is one function and one line here.
OBJECTIVES: dict[str, Objective] = {
    "elbo": elbo,
    "beta_vae": beta_vae,
    "se": smooth_encoder,
}


def get_objective(name: str) -> Objective:
    """Look up a method's objective, or raise ValueError listing the valid names."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
