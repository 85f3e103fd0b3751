"""Training objectives, one function per method with one signature.

    loss, logs = objective(x, model, config, generator)

``x`` is a batch of images (B, C, H, W) in [0, 1] (AVAE-SS uses only its batch size: it trains
on decoded prior samples); ``model`` a :class:`rvae.nets.VAE`;
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

import numpy as np

from rvae import coupling, gaussians
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
    rho: float = 0.97                   # AVAE family: correlation of p_rho(z'|z) for the decoded partner
    rho_se: float = 0.975               # AVAE family: correlation for the adversarial (SE) partner
    decoded_coupling: str = "factorised"   # AVAE family: q(z, z~) of the re-encoded sample, eqs. 13, 34, 35
    adversarial_coupling: str = "tight"    # AVAE family: q(z, z') of the SE partner, appendix C.3.1, eq. 32
    mixup_weight: float = 1.0           # mixup: weight of the penalty C of local geometry eq. 10
    mixup_shape: tuple[float, float] = (0.5, 0.5)   # mixup: shape parameters (a, b) of alpha ~ Beta(a, b)


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


# ---------------------------------------------------------------------------------------------
# Latent mixup (local geometry, section 4.2.2, eqs. 9-10)
# ---------------------------------------------------------------------------------------------
def mixup_pairs(batch_size: int, shape: tuple[float, float], generator=None) -> tuple[Tensor, Tensor]:
    """(partner, alpha), each (B,): example i is mixed with example partner[i] of the same batch
    (a random permutation) with weight alpha[i] ~ Beta(a, b), (a, b) = ``shape``.

    The Beta draws come from numpy, seeded from ``generator`` (torch has no seeded Beta sampler),
    so a seeded run is reproducible.
    """
    a, b = (float(v) for v in shape)
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"mixup_shape must be two positive numbers (a, b), not {shape!r}")
    partner = torch.randperm(batch_size, generator=generator)
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    alpha = torch.from_numpy(np.random.default_rng(seed).beta(a, b, size=batch_size)).float()
    return partner, alpha


def mixup_penalty(x: Tensor, mu: Tensor, model, config: ObjectiveConfig, generator=None) -> Tensor:
    """Eq. 10 per example, (B,):  C = ||z_m - f(x_m)||_2 + ||g(z_m) - x_m||_2  with

        x_m = alpha x_i + (1 - alpha) x_j,    z_m = alpha z_i + (1 - alpha) z_j    (eq. 9),

    j the partner of i in the batch (:func:`mixup_pairs`). The encodings are the encoder *means*:
    z_i = mu(x_i) and f(x_m) = mu(x_m) (the paper writes f for the stochastic encoder and is silent
    on sampling; a sample on both sides would add a noise floor that the penalty could only lower
    by shrinking sigma, against the KL term). g is the decoder mean. Norms are not squared, as
    printed. Gradients reach both networks through every term, z_m included.
    """
    partner, alpha = mixup_pairs(len(x), config.mixup_shape, generator)
    partner = partner.to(x.device)
    weight = alpha.to(x).view(-1, *[1] * (x.dim() - 1))
    mixed_images = weight * x + (1 - weight) * x[partner]
    mixed_codes = alpha.to(mu).unsqueeze(1) * mu + (1 - alpha.to(mu).unsqueeze(1)) * mu[partner]
    encoder_term = (mixed_codes - model.encode(mixed_images)[0]).norm(dim=1)
    decoder_term = (model.decode(mixed_codes) - mixed_images).flatten(1).norm(dim=1)
    return encoder_term + decoder_term


def mixup(x: Tensor, model, config: ObjectiveConfig, generator=None) -> tuple[Tensor, dict[str, float]]:
    """Minus [the beta-VAE bound - mixup_weight * C] (C from :func:`mixup_penalty`); beta = 1 is the paper's VAE."""
    if not (config.mixup_weight >= 0 and math.isfinite(config.mixup_weight)):
        raise ValueError(f"mixup_weight must be a finite number >= 0, not {config.mixup_weight}")
    mu, logvar = model.encode(x)
    reconstruction = _reconstruction(x, model, mu, logvar, generator)
    kl = gaussians.kl_to_standard_normal(mu, logvar)
    penalty = mixup_penalty(x, mu, model, config, generator)
    objective = reconstruction - config.beta * kl - config.mixup_weight * penalty
    return -objective.mean(), {"bound": (reconstruction - config.beta * kl).mean().item(),
                               "reconstruction": reconstruction.mean().item(), "kl": kl.mean().item(),
                               "mixup_penalty": penalty.mean().item()}


# ---------------------------------------------------------------------------------------------
# The AVAE family (AVAE appendix C): the ELBO's terms plus one rho-coupling per partner code
# ---------------------------------------------------------------------------------------------
def _coupled_bound(model, partners: dict[str, tuple[Tensor, float, str]], mu: Tensor, logvar: Tensor,
                   reconstruction: Tensor | None) -> dict[str, Tensor]:
    """Terms (each (B,)) of  [E log p(x|z)] - KL(q(z|x) || p(z)) + sum_k C_rho_k(z_k | z).

    ``partners`` maps a name to (x_k, rho_k, form_k): the partner input, already detached, whose
    code z_k ~ q(z|x_k) is tied to z by p_rho_k(z_k | z); C is
    :func:`rvae.coupling.conditional_coupling` with coupling form_k. ``bound`` is the sum of the others.
    """
    terms: dict[str, Tensor] = {}
    if reconstruction is not None:
        terms["reconstruction"] = reconstruction
    terms["kl"] = gaussians.kl_to_standard_normal(mu, logvar)
    bound = (reconstruction if reconstruction is not None else 0.0) - terms["kl"]
    for name, (partner, rho, form) in partners.items():
        mu_k, logvar_k = model.encode(partner)
        terms[f"coupling_{name}"] = coupling.conditional_coupling(mu, logvar, mu_k, logvar_k, rho, form)
        bound = bound + terms[f"coupling_{name}"]
    terms["bound"] = bound
    return terms


def _encode_and_decode(x: Tensor, model, generator) -> tuple[Tensor, Tensor, Tensor]:
    """(mu, logvar, g(z)): x's code and the decoded mean of one reparameterised sample z."""
    mu, logvar = model.encode(x)
    return mu, logvar, model.decode(gaussians.reparameterise(mu, logvar, generator))


def bound_terms(method: str, x: Tensor, model, config: ObjectiveConfig, generator=None) -> dict[str, Tensor]:
    """The per-example terms (each (B,), differentiable) of one AVAE-family bound; ``bound`` is their sum.

    ``avae``     (Algorithm 1, eq. 13): x~ = stopgradient(g(z)) is re-encoded and tied to z with rho.
    ``se_rho``   (Algorithm 2, eq. 32): the SE partner x' = stopgradient(PGD(x)) tied with rho_se.
    ``se_avae``  (Algorithm 3, eq. 35): both partners, rho and rho_se. Eq. 35 as printed has no
                 data term; its KL form (appendix C.5) has p(X|Z), and without it the decoder
                 would get no gradient at all, so E log p(x|z) is included.
    ``avae_ss``  (Algorithm 4, eq. 34): x = stopgradient(g(z'')), z'' ~ N(0, I), replaces the data;
                 no data term, so only the encoder learns (post-training a VAE's encoder).
    Stop-gradients sit exactly where the algorithms put them: decoded and attacked inputs are
    constants, so the decoder's parameters are reached only through E log p(x|z).

    The SE partner uses ``config.adversarial_coupling`` (default "tight", the C.3.1 bound of
    eq. 32); the decoded partner ``config.decoded_coupling`` (default "factorised", as eqs. 13,
    34 and 35 write it). The tight form is degenerate for the decoded partner: an encoder that
    ignores its input, q(z|x) = N(0, I), lets psi = rho supply the whole correlation and attains
    the bound's maximum (0 without a data term), so AVAE-SS would learn exactly that.
    """
    if method == "avae_ss":
        with torch.no_grad():
            prior_sample = torch.randn((x.shape[0], model.latent_dim), generator=generator,
                                       device=generator.device if generator is not None else x.device)
            x = model.decode(prior_sample.to(x.device))
        mu, logvar, decoded = _encode_and_decode(x, model, generator)
        return _coupled_bound(model, {"decoded": (decoded.detach(), config.rho, config.decoded_coupling)},
                              mu, logvar, None)
    partners: dict[str, tuple[Tensor, float, str]] = {}
    if method in ("se_rho", "se_avae"):
        partners["adversarial"] = (select_partners(x, model, config, generator).detach(), config.rho_se,
                                   config.adversarial_coupling)
    if method not in ("avae", "se_rho", "se_avae"):
        raise ValueError(f"{method!r} is not an AVAE-family method; valid: avae, se_rho, se_avae, avae_ss")
    mu, logvar, decoded = _encode_and_decode(x, model, generator)
    reconstruction = gaussian_log_likelihood(x, decoded, model.observation_variance)
    if method in ("avae", "se_avae"):
        partners = {"decoded": (decoded.detach(), config.rho, config.decoded_coupling), **partners}
    return _coupled_bound(model, partners, mu, logvar, reconstruction)


def _family_objective(method: str) -> Callable[..., tuple[Tensor, dict[str, float]]]:
    def objective(x: Tensor, model, config: ObjectiveConfig, generator=None) -> tuple[Tensor, dict[str, float]]:
        terms = bound_terms(method, x, model, config, generator)
        return -terms["bound"].mean(), {name: value.mean().item() for name, value in terms.items()}
    objective.__name__ = method
    objective.__doc__ = f"Minus the mean {method} bound; see :func:`bound_terms`."
    return objective


avae = _family_objective("avae")
se_rho = _family_objective("se_rho")
se_avae = _family_objective("se_avae")
avae_ss = _family_objective("avae_ss")


Objective = Callable[..., tuple[Tensor, dict[str, float]]]

#: Method name -> objective. A new method is one function and one line here.
OBJECTIVES: dict[str, Objective] = {
    "elbo": elbo,
    "beta_vae": beta_vae,
    "se": smooth_encoder,
    "mixup": mixup,
    "avae": avae,
    "se_rho": se_rho,
    "se_avae": se_avae,
    "avae_ss": avae_ss,
}


def get_objective(name: str) -> Objective:
    """Look up a method's objective, or raise ValueError listing the valid names."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
