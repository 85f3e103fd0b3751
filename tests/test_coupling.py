"""The rho-coupled prior: eq. (31) against Monte Carlo, the tight bound against numerical maximisation."""
from __future__ import annotations

import math

import pytest
import torch

from rvae import coupling
from rvae.gaussians import kl_to_standard_normal

DOUBLE = torch.float64


def _pair(seed: int, d: int = 3):
    generator = torch.Generator().manual_seed(seed)
    mu, mu_p = torch.randn(2, 1, d, generator=generator, dtype=DOUBLE)
    logvar, logvar_p = torch.randn(2, 1, d, generator=generator, dtype=DOUBLE) - 1.0
    return mu, logvar, mu_p, logvar_p


def _target(rho: float) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(torch.zeros(2, dtype=DOUBLE),
                                                  torch.tensor([[1.0, rho], [rho, 1.0]], dtype=DOUBLE))


@pytest.mark.parametrize("rho", [0.5, 0.97])
@pytest.mark.parametrize("psi_kind", ["optimal", "independent", "negative"])
def test_equation_31_matches_monte_carlo(rho, psi_kind):
    mu, logvar, mu_p, logvar_p = _pair(1)
    var, var_p = logvar.exp(), logvar_p.exp()
    psi = {"optimal": coupling.optimal_cross_covariance(logvar, logvar_p, rho),
           "independent": torch.zeros_like(var),
           "negative": -0.5 * (var * var_p).sqrt()}[psi_kind]
    closed_form = coupling.expected_log_joint(mu, logvar, mu_p, logvar_p, rho, psi).item()
    generator = torch.Generator().manual_seed(2)
    total, samples = 0.0, 200_000
    for k in range(mu.shape[1]):
        covariance = torch.tensor([[var[0, k], psi[0, k]], [psi[0, k], var_p[0, k]]], dtype=DOUBLE)
        noise = torch.randn(samples, 2, generator=generator, dtype=DOUBLE) @ torch.linalg.cholesky(covariance).T
        pairs = noise + torch.stack([mu[0, k], mu_p[0, k]])
        total = total + _target(rho).log_prob(pairs)
    standard_error = total.std().item() / math.sqrt(samples)
    assert closed_form == pytest.approx(total.mean().item(), abs=4 * standard_error + 1e-6)


def _pair_bound(mu, var, mu_p, var_p, rho, psi):
    """E log p_rho(z, z') + H(q(z, z')) for one dimension, written with 2 x 2 matrices."""
    covariance = torch.stack([torch.stack([var, psi]), torch.stack([psi, var_p])])
    target = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=DOUBLE)
    mean = torch.stack([mu, mu_p])
    second_moment = covariance + torch.outer(mean, mean)
    expected = -0.5 * torch.trace(torch.linalg.solve(target, second_moment)) - 0.5 * torch.logdet(2 * math.pi * target)
    return expected + 0.5 * torch.logdet(2 * math.pi * math.e * covariance)


@pytest.mark.parametrize("rho", [0.3, 0.9, 0.975])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tight_coupling_is_the_maximum_over_cross_covariances(rho, seed):
    mu, logvar, mu_p, logvar_p = _pair(seed, d=1)
    var, var_p = logvar.exp()[0, 0], logvar_p.exp()[0, 0]
    limit = (var * var_p).sqrt().item()
    grid = torch.linspace(-limit, limit, 200_003, dtype=DOUBLE)[1:-1]
    values = torch.stack([_pair_bound(mu[0, 0], var, mu_p[0, 0], var_p, rho, psi) for psi in grid[::1000]])
    coarse_best = grid[::1000][values.argmax()]
    fine = grid[(grid - coarse_best).abs() <= 2 * limit / 200]
    best = max(_pair_bound(mu[0, 0], var, mu_p[0, 0], var_p, rho, psi).item() for psi in fine)
    prior_terms = -kl_to_standard_normal(mu, logvar).item()                  # E log p(z) + H(q(z))
    tight = coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, rho, "tight").item()
    assert prior_terms + tight == pytest.approx(best, abs=1e-7)
    psi_star = coupling.optimal_cross_covariance(logvar, logvar_p, rho).item()
    assert _pair_bound(mu[0, 0], var, mu_p[0, 0], var_p, rho, torch.tensor(psi_star, dtype=DOUBLE)).item() \
        == pytest.approx(best, abs=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_factorised_coupling_is_the_independent_pair_and_never_beats_the_tight_one(seed):
    mu, logvar, mu_p, logvar_p = _pair(seed)
    rho = 0.95
    factorised = coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, rho, "factorised")
    by_hand = sum(_pair_bound(mu[0, k], logvar.exp()[0, k], mu_p[0, k], logvar_p.exp()[0, k], rho,
                              torch.tensor(0.0, dtype=DOUBLE)) for k in range(3))
    assert factorised.item() == pytest.approx(by_hand.item() + kl_to_standard_normal(mu, logvar).item(), abs=1e-10)
    assert coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, rho, "tight").item() > factorised.item()


def test_without_correlation_the_coupling_is_the_partners_kl_term():
    mu, logvar, mu_p, logvar_p = _pair(5)
    for form in coupling.COUPLINGS:
        value = coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, 0.0, form)
        assert torch.allclose(value, -kl_to_standard_normal(mu_p, logvar_p), atol=1e-12)


@pytest.mark.parametrize("rho", [0.5, 0.97])
def test_coupling_is_never_positive_and_zero_exactly_when_q_copies_the_target_conditional(rho):
    mu, logvar, mu_p, logvar_p = _pair(7)
    assert (coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, rho) < 0).all()
    # q(z') = N(rho mu, rho^2 S + 1 - rho^2) is the marginal of q(z) pushed through p_rho(z'|z)
    matched_logvar = torch.log(rho ** 2 * logvar.exp() + 1 - rho ** 2)
    assert coupling.conditional_coupling(mu, logvar, rho * mu, matched_logvar, rho).abs().max() < 1e-10
    assert coupling.conditional_coupling(mu, logvar, rho * mu, matched_logvar, rho, "factorised").item() < -0.1


def _c_vine_correlation(u: torch.Tensor) -> torch.Tensor:
    """A valid 3 x 3 correlation matrix from three unconstrained numbers (partial-correlation vine)."""
    r12, r13, partial = torch.tanh(u)
    r23 = r12 * r13 + partial * torch.sqrt((1 - r12 ** 2) * (1 - r13 ** 2))
    one = torch.ones((), dtype=DOUBLE)
    return torch.stack([torch.stack([one, r12, r13]), torch.stack([r12, one, r23]), torch.stack([r13, r23, one])])


def test_two_partner_bound_splits_into_two_pairwise_couplings():
    """SE-AVAE ties z' (rho) and z'' (rho_SE) to z: the best joint q(z, z', z'') gives the sum of the
    two tight pairwise couplings (the target has no z'-z'' term)."""
    rho, rho_se = 0.95, 0.975
    generator = torch.Generator().manual_seed(3)
    mean = torch.randn(3, generator=generator, dtype=DOUBLE)
    logvars = torch.randn(3, generator=generator, dtype=DOUBLE) - 1.0
    std = (0.5 * logvars).exp()
    target = torch.tensor([[1.0, rho, rho_se], [rho, 1.0, rho * rho_se], [rho_se, rho * rho_se, 1.0]], dtype=DOUBLE)

    def bound(u):
        covariance = std[:, None] * _c_vine_correlation(u) * std[None, :]
        second_moment = covariance + torch.outer(mean, mean)
        return (-0.5 * torch.trace(torch.linalg.solve(target, second_moment)) - 0.5 * torch.logdet(2 * math.pi * target)
                + 0.5 * torch.logdet(2 * math.pi * math.e * covariance))

    u = torch.zeros(3, dtype=DOUBLE, requires_grad=True)
    optimiser = torch.optim.LBFGS([u], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = -bound(u)
        loss.backward()
        return loss

    optimiser.step(closure)
    mu, logvar = mean[None, :1], logvars[None, :1]
    closed_form = (-kl_to_standard_normal(mu, logvar)
                   + coupling.conditional_coupling(mu, logvar, mean[None, 1:2], logvars[None, 1:2], rho)
                   + coupling.conditional_coupling(mu, logvar, mean[None, 2:3], logvars[None, 2:3], rho_se))
    assert closed_form.item() == pytest.approx(bound(u.detach()).item(), abs=1e-8)


def test_coupling_strength_and_argument_checks():
    assert coupling.coupling_strength(0.97) == pytest.approx(0.97 / (1 - 0.97 ** 2))
    assert coupling.coupling_strength(0.0) == 0.0
    mu, logvar, mu_p, logvar_p = _pair(0)
    for rho in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="rho"):
            coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, rho)
    with pytest.raises(ValueError, match="unknown coupling"):
        coupling.conditional_coupling(mu, logvar, mu_p, logvar_p, 0.5, "joint")


def test_gradients_stay_finite_at_the_clamped_log_variance_extremes():
    mu = torch.zeros(2, 2, dtype=DOUBLE, requires_grad=True)
    logvar = torch.tensor([[-12.0, 8.0], [8.0, -12.0]], dtype=DOUBLE, requires_grad=True)
    logvar_p = torch.tensor([[-12.0, -12.0], [8.0, 8.0]], dtype=DOUBLE, requires_grad=True)
    value = coupling.conditional_coupling(mu, logvar, mu + 0.1, logvar_p, 0.975).sum()
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(t.grad).all() for t in (mu, logvar, logvar_p))


def test_conditional_coupling_gradient_matches_finite_differences():
    mu, logvar, mu_p, logvar_p = (t.requires_grad_() for t in _pair(9))
    assert torch.autograd.gradcheck(lambda *a: coupling.conditional_coupling(*a, 0.9),
                                    (mu, logvar, mu_p, logvar_p))
