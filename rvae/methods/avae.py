"""The AVAE family (AVAE appendix C): the ELBO's terms plus one rho-coupling per partner code.

Every bound is  [E log p(x|z)] - KL(q(z|x) || p(z)) + sum_k C_rho_k(z_k | z), where the partner
x_k is a constant (stop-gradient) input whose code z_k ~ q(z|x_k) is tied to z by the conditional
p_rho_k(z_k | z) (:func:`rvae.coupling.conditional_coupling`):

``avae``     (Algorithm 1, eq. 13): x~ = stopgradient(g(z)) is re-encoded and tied to z with rho.
``se_rho``   (Algorithm 2, eq. 32): the SE partner x' = stopgradient(PGD(x)) tied with rho_se.
``se_avae``  (Algorithm 3, eq. 35): both partners, rho and rho_se. Eq. 35 as printed has no
             data term; its KL form (appendix C.5) has p(X|Z), and without it the decoder would
             get no gradient at all, so E log p(x|z) is included.
``avae_ss``  (Algorithm 4, eq. 34): x = stopgradient(g(z'')), z'' ~ N(0, I), replaces the data;
             no data term, so only the encoder learns (post-training a VAE's encoder).
``se_rho-warm``, ``se_avae-warm``: ``se_rho`` and ``se_avae`` with the SE partner found by warm
             selection (:mod:`rvae.methods.smooth_memory`): each training example's search goes on
             from its last visit, ``selection_budget`` (default 2) PGD steps a visit instead of 20
             fresh ones. Only the partner's search changes; the bound is the same.

Stop-gradients sit exactly where the algorithms put them: decoded and attacked inputs are
constants, so the decoder's parameters are reached only through E log p(x|z).

The SE partner uses ``adversarial_coupling`` (default "tight", the C.3.1 bound of eq. 32); the
decoded partner ``decoded_coupling`` (default "factorised", as eqs. 13, 34 and 35 write it). The
tight form is degenerate for the decoded partner: an encoder that ignores its input,
q(z|x) = N(0, I), lets psi = rho supply the whole correlation and attains the bound's maximum
(0 without a data term), so AVAE-SS would learn exactly that.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rvae import coupling, gaussians
from rvae.methods import Method, register
from rvae.methods.smooth import SelectionConfig, select_partners
from rvae.methods.smooth_memory import PerturbationMemory, WarmSelectionConfig, memory_network, warm_partners
from rvae.params import CheckedConfig, option

RHO = "[0, 1)"
COUPLING_FORMS = "{tight, factorised}"
PAPER = "AVAE appendix C"


@dataclass(frozen=True)
class AVAEConfig(CheckedConfig):
    rho: float = option(0.97, "correlation of p_rho(z~|z) for the decoded partner", RHO)
    decoded_coupling: str = option("factorised", "q(z, z~) of the re-encoded sample (eqs. 13, 34, 35)", COUPLING_FORMS)


@dataclass(frozen=True)
class SEPartnerConfig(CheckedConfig):
    """How the selected (SE) partner's code is tied to z."""
    rho_se: float = option(0.975, "correlation of p_rho(z'|z) for the selected (SE) partner", RHO)
    adversarial_coupling: str = option("tight", "q(z, z') of the SE partner (appendix C.3.1, eq. 32)", COUPLING_FORMS)


@dataclass(frozen=True)
class SERhoConfig(SEPartnerConfig, SelectionConfig):
    """``se_rho``: plain selection (L fresh PGD steps) and the rho coupling."""


@dataclass(frozen=True)
class SEAVAEConfig(AVAEConfig, SERhoConfig):
    """``se_avae``: both partners."""


@dataclass(frozen=True)
class SERhoWarmConfig(SEPartnerConfig, WarmSelectionConfig):
    """``se_rho-warm``: warm selection (the example's search continued a few steps a visit) and the rho coupling."""


@dataclass(frozen=True)
class SEAVAEWarmConfig(AVAEConfig, SERhoWarmConfig):
    """``se_avae-warm``: both partners, the SE partner by warm selection."""


def coupled_bound(model, partners: dict[str, tuple[Tensor, float, str]], mu: Tensor, logvar: Tensor,
                  reconstruction: Tensor | None) -> dict[str, Tensor]:
    """Terms (each (B,)) of  [E log p(x|z)] - KL(q(z|x) || p(z)) + sum_k C_rho_k(z_k | z).

    ``partners`` maps a name to (x_k, rho_k, form_k): the partner input, already detached.
    ``bound`` is the sum of the others.
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


def _data_bound(x: Tensor, model, generator, decoded: tuple[float, str] | None,
                adversarial: tuple[Tensor, float, str] | None) -> dict[str, Tensor]:
    """The bound on data x with a decoded partner (rho, form) and/or a selected one (x', rho, form)."""
    mu, logvar, reconstructed = _encode_and_decode(x, model, generator)
    reconstruction = gaussians.gaussian_log_likelihood(x, reconstructed, model.observation_variance)
    partners: dict[str, tuple[Tensor, float, str]] = {}
    if decoded is not None:
        partners["decoded"] = (reconstructed.detach(), *decoded)
    if adversarial is not None:
        partners["adversarial"] = adversarial
    return coupled_bound(model, partners, mu, logvar, reconstruction)


def _selected(x: Tensor, model, config: SERhoConfig | SERhoWarmConfig, generator,
              memory: PerturbationMemory | None) -> tuple[Tensor, float, str]:
    """(x', rho_se, form) of the SE partner: plain selection, or warm selection from ``memory``."""
    if memory is not None:
        partners = warm_partners(x, model, memory, config, generator)
    else:
        partners = select_partners(x, model, config, generator).detach()
    return partners, config.rho_se, config.adversarial_coupling


def avae_terms(x: Tensor, model, config: AVAEConfig, generator=None) -> dict[str, Tensor]:
    """Per-example terms of the AVAE bound (Algorithm 1, eq. 13)."""
    return _data_bound(x, model, generator, (config.rho, config.decoded_coupling), None)


def se_rho_terms(x: Tensor, model, config: SERhoConfig | SERhoWarmConfig, generator=None,
                 memory: PerturbationMemory | None = None) -> dict[str, Tensor]:
    """Per-example terms of the SE bound in the appendix's rho form (Algorithm 2, eq. 32); with ``memory``, the
    partner by warm selection."""
    return _data_bound(x, model, generator, None, _selected(x, model, config, generator, memory))


def se_avae_terms(x: Tensor, model, config: SEAVAEConfig | SEAVAEWarmConfig, generator=None,
                  memory: PerturbationMemory | None = None) -> dict[str, Tensor]:
    """Per-example terms of the SE-AVAE bound (Algorithm 3, eq. 35, with its data term); with ``memory``, the
    SE partner by warm selection."""
    adversarial = _selected(x, model, config, generator, memory)
    return _data_bound(x, model, generator, (config.rho, config.decoded_coupling), adversarial)


def avae_ss_terms(x: Tensor, model, config: AVAEConfig, generator=None) -> dict[str, Tensor]:
    """Per-example terms of the AVAE-SS bound (Algorithm 4, eq. 34): x is replaced by decoded prior samples."""
    with torch.no_grad():
        prior_sample = torch.randn((x.shape[0], model.latent_dim), generator=generator,
                                   device=generator.device if generator is not None else x.device)
        x = model.decode(prior_sample.to(x.device))
    mu, logvar, decoded = _encode_and_decode(x, model, generator)
    return coupled_bound(model, {"decoded": (decoded.detach(), config.rho, config.decoded_coupling)}, mu, logvar, None)


def _losses(terms_of):
    def losses(x: Tensor, nets, config, generator=None):
        memory = {"memory": nets["memory"]} if "memory" in nets else {}          # the warm options' kept searches
        terms = terms_of(x, nets["vae"], config, generator, **memory)
        return {"vae": -terms["bound"].mean()}, {name: value.mean().item() for name, value in terms.items()}
    losses.__name__ = terms_of.__name__.replace("_terms", "_losses")
    losses.__doc__ = f"Minus the mean bound of :func:`{terms_of.__name__}`."
    return losses


register(Method("avae", f"{PAPER}, Algorithm 1", "the ELBO plus a rho-coupling of z to the code of its decoded g(z)",
                AVAEConfig, _losses(avae_terms)))
register(Method("se_rho", f"{PAPER}, Algorithm 2", "the SE in the appendix's form: a rho-coupling to a selected partner",
                SERhoConfig, _losses(se_rho_terms)))
register(Method("se_avae", f"{PAPER}, Algorithm 3", "both couplings: the decoded and the selected partner",
                SEAVAEConfig, _losses(se_avae_terms)))
register(Method("se_rho-warm", f"{PAPER}, Algorithm 2; warm-started selection (this book)",
                "se_rho with the partner's search continued from the example's last visit, a few PGD steps a visit",
                SERhoWarmConfig, _losses(se_rho_terms), networks=memory_network))
register(Method("se_avae-warm", f"{PAPER}, Algorithm 3; warm-started selection (this book)",
                "se_avae with the partner's search continued from the example's last visit, a few PGD steps a visit",
                SEAVAEWarmConfig, _losses(se_avae_terms), networks=memory_network))
register(Method("avae_ss", f"{PAPER}, Algorithm 4",
                "post-training of the encoder on decoded prior samples (no data term; start from a trained VAE)",
                AVAEConfig, _losses(avae_ss_terms)))
