"""The rho-coupled prior of the AVAE appendix and the Gaussian expectations the AVAE family needs.

The target pairs every code z with a second code z' through a Gaussian coupling whose two
marginals are the prior N(0, I):

    p_rho(z, z') = N(0, [[I, rho I], [rho I, I]]),   i.e.  p_rho(z' | z) = N(rho z, (1 - rho^2) I).

rho -> 1 ties z' to z; rho = 0 makes them independent. In the bounds of the AVAE family the
pair is approximated by the encoder, q(z|x) = N(mu, S) and q(z'|x') = N(mu', S') (diagonal),
and the bound needs  E_q[log p_rho(z, z')] + H[q(z, z')].

*Factorised* q (the plain derivation of appendix C.1) takes z and z' independent. The *tight*
variant (appendix C.3.1) lets q(z, z') be any Gaussian with those marginals, i.e. adds a diagonal
cross-covariance psi, and maximises the bound over it. Since log p_rho(z, z') contains
+rho/(1-rho^2) z.z', per dimension the psi-dependent part is

    gamma psi + 1/2 log(S S' - psi^2),    gamma = rho / (1 - rho^2),

which is maximal at  gamma (S S' - psi^2) = psi:  psi = (sqrt(1 + 4 gamma^2 S S') - 1) / (2 gamma),
the same cross-covariance as the Smooth Encoder's entropic coupling with strength gamma
(:func:`rvae.gaussians.entropic_cross_covariance`). Because log p_rho(z, z') = log p(z) +
log p_rho(z'|z), the bound splits into the ELBO's prior terms for z and a *conditional coupling*

    E_q[log p_rho(z' | z)] + H_q[z' | z]

for the partner, which is what :func:`conditional_coupling` returns. Several partners that are
conditionally independent given z in the target (SE-AVAE: a decoded partner with rho and an
adversarial one with rho_SE) add one conditional coupling each, tight ones included: with no
z'-z'' term in the target, the optimal joint makes z' and z'' independent given z, and the joint
entropy splits into H[z] + H[z'|z] + H[z''|z].
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from rvae.gaussians import LOG_2PI, LOG_2PI_E, entropic_cross_covariance, log_entropic_residual

COUPLINGS = ("tight", "factorised")


def check_rho(rho: float) -> float:
    """rho as a float, or ValueError unless 0 <= rho < 1."""
    rho = float(rho)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"the coupling correlation rho must satisfy 0 <= rho < 1, not {rho}")
    return rho


def coupling_strength(rho: float) -> float:
    """gamma = rho / (1 - rho^2): the weight of z.z' in log p_rho(z, z') (0.97 -> 16.4, 0.975 -> 19.8)."""
    rho = check_rho(rho)
    return rho / (1.0 - rho * rho)


def optimal_cross_covariance(logvar: Tensor, logvar_partner: Tensor, rho: float) -> Tensor:
    """psi per dimension, (B, d): the cross-covariance of q(z, z') that maximises the tight bound."""
    gamma = coupling_strength(rho)
    if gamma == 0.0:
        return torch.zeros_like(logvar)
    return entropic_cross_covariance(logvar, logvar_partner, gamma)


def expected_log_joint(mu: Tensor, logvar: Tensor, mu_partner: Tensor, logvar_partner: Tensor, rho: float,
                       cross_covariance: Tensor | float = 0.0) -> Tensor:
    """E_q[log p_rho(z, z')] for q(z, z') Gaussian with the given marginals and cross-covariance, (B,).

    The appendix's eq. (31) with its constant:
        -1/(2(1 - rho^2)) sum(S + S' + mu^2 + mu'^2 - 2 rho (psi + mu mu')) - d log 2 pi - d/2 log(1 - rho^2).
    """
    rho = check_rho(rho)
    d = mu.shape[1]
    quadratic = (logvar.exp() + logvar_partner.exp() + mu.pow(2) + mu_partner.pow(2)
                 - 2.0 * rho * (cross_covariance + mu * mu_partner)).sum(1)
    return -quadratic / (2.0 * (1.0 - rho * rho)) - d * LOG_2PI - 0.5 * d * math.log(1.0 - rho * rho)


def conditional_coupling(mu: Tensor, logvar: Tensor, mu_partner: Tensor, logvar_partner: Tensor, rho: float,
                         coupling: str = "tight") -> Tensor:
    """E_q[log p_rho(z'|z)] + H_q[z'|z] in nats, (B,): what a partner code z' adds to the bound.

    ``coupling="tight"`` uses the optimal cross-covariance psi (appendix C.3.1); ``"factorised"``
    takes q(z, z') = q(z) q(z') (psi = 0, appendix C.1). At rho = 0 both equal -KL(q(z'|x') || p(z)).
    Per dimension, with r = 1 - rho^2:
        E log p_rho(z'|z) = -[(mu' - rho mu)^2 + S' + rho^2 S - 2 rho psi] / (2 r) - 1/2 log(2 pi r)
        H[z'|z]           =  1/2 log(2 pi e (S' - psi^2 / S)),
    and at the optimum S S' - psi^2 = psi / gamma, which is how the tight entropy is computed
    (in logs: no cancellation when psi^2 is close to S S').
    """
    if coupling not in COUPLINGS:
        raise ValueError(f"unknown coupling {coupling!r}; valid: {', '.join(COUPLINGS)}")
    rho = check_rho(rho)
    residual = 1.0 - rho * rho
    if coupling == "factorised" or rho == 0.0:
        psi: Tensor | float = 0.0
        log_conditional_variance = logvar_partner
    else:
        gamma = coupling_strength(rho)
        log_residual = log_entropic_residual(logvar, logvar_partner, gamma)       # log(S S' - psi^2) = log(psi / gamma)
        psi = gamma * log_residual.exp()
        log_conditional_variance = log_residual - logvar                          # log(S' - psi^2 / S)
    squared = (mu_partner - rho * mu).pow(2) + logvar_partner.exp() + rho * rho * logvar.exp() - 2.0 * rho * psi
    expected_log_conditional = -squared / (2.0 * residual) - 0.5 * (LOG_2PI + math.log(residual))
    conditional_entropy = 0.5 * (LOG_2PI_E + log_conditional_variance)
    return (expected_log_conditional + conditional_entropy).sum(1)
