"""Smooth Encoders (SE paper, appendix C): the SE-ELBO with a selected partner x' near each x.

    E log p(x|z_a) + E log p(z_a) + E log p(z_b) + max_Q [-gamma/2 E||z_a - z_b||^2 + H(Q)],

z_a ~ q(z|x), z_b ~ q(z|x'); the coupling term has the closed form of :mod:`rvae.gaussians`.
The decoder sees only the data-fidelity term of x, as in the ELBO; the coupling regularises the
encoder. x' comes from the selection mechanism: PGD on the latent distance (``adversarial``) or a
uniform draw in the L-inf ball (``random``), and carries no gradient.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from rvae import gaussians
from rvae.attacks import latent_selection, random_selection
from rvae.methods import Method, register
from rvae.methods.vae import reconstruction_term
from rvae.params import CheckedConfig, option

SELECTIONS = ("adversarial", "random")


@dataclass(frozen=True)
class SelectionConfig(CheckedConfig):
    """How the partner x' of x is selected (shared by the SE and the AVAE family's SE partner)."""
    selection: str = option("adversarial", "adversarial (PGD on the latent distance) or random", "{adversarial, random}")
    selection_eps: float = option(0.1, "selection radius, L-inf", "[0, 1]")
    selection_budget: int = option(20, "PGD iterations L of the selection (the paper's default)", "[1, inf)")


@dataclass(frozen=True)
class SEConfig(SelectionConfig):
    gamma: float = option(1.0, "coupling strength of the entropic W2 term", "[0, inf)")


def select_partners(x: Tensor, model, config: SelectionConfig, generator=None) -> Tensor:
    """The SE selection mechanism: x' near x (||x' - x||_inf <= eps, in [0, 1]), no gradient."""
    if config.selection == "adversarial":
        return latent_selection(model, x, config.selection_eps, config.selection_budget, generator=generator)
    return random_selection(x, config.selection_eps, generator=generator)


def se_bound(x: Tensor, partners: Tensor, model, gamma: float, generator=None) -> tuple[Tensor, dict[str, float]]:
    """The SE-ELBO (B,) of x with the given partners x' (module docstring), and its logged terms.

    Every selection option of the SE family (plain, warm, free) differs only in how it finds x'.
    """
    mu_a, logvar_a = model.encode(x)
    mu_b, logvar_b = model.encode(partners)
    reconstruction = reconstruction_term(x, model, mu_a, logvar_a, generator)
    prior_fidelity = gaussians.expected_log_prior(mu_a, logvar_a) + gaussians.expected_log_prior(mu_b, logvar_b)
    bound = reconstruction + prior_fidelity + gaussians.entropic_coupling_term(mu_a, logvar_a, mu_b, logvar_b, gamma)
    w2 = gaussians.entropic_w2(mu_a, logvar_a, mu_b, logvar_b, gamma)
    return bound, {"bound": bound.mean().item(), "reconstruction": reconstruction.mean().item(),
                   "kl": gaussians.kl_to_standard_normal(mu_a, logvar_a).mean().item(),
                   "entropic_w2": w2.mean().item()}


def se_losses(x: Tensor, nets, config: SEConfig, generator=None):
    """Minus the SE-ELBO (module docstring), with the full entropic coupling."""
    model = nets["vae"]
    partners = select_partners(x, model, config, generator).detach()
    bound, logs = se_bound(x, partners, model, config.gamma, generator)
    return {"vae": -bound.mean()}, logs


register(Method("se", "Smooth Encoders, appendix C", "the SE-ELBO: an entropic W2 coupling to a selected partner x'",
                SEConfig, se_losses))
