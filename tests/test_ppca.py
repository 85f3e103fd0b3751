"""The pPCA latent encode-decode chain with exact and inconsistent encoders (AVAE appendix B)."""
from __future__ import annotations

import pytest
import torch

from rvae.worlds import discrete_vae, ppca

pytestmark = pytest.mark.usefixtures("double_precision")

D, K = 5, 2


@pytest.fixture
def weight():
    return torch.randn(D, K, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


@pytest.mark.parametrize("v", [1e-4, 0.05, 0.3, 2.0])
def test_exact_encoder_leaves_the_prior_invariant_at_every_step(weight, v):
    encoder_mean, encoder_cov = ppca.perturbed_encoder(weight, v, torch.zeros(K, D))
    covariances = ppca.latent_chain_covariances(weight, v, encoder_mean, encoder_cov, steps=25)
    assert torch.allclose(covariances, torch.eye(K).expand(26, K, K), atol=1e-10, rtol=0)
    assert ppca.kl_to_prior(covariances[-1]) == pytest.approx(0.0, abs=1e-10)
    # a start away from the prior is pulled towards it, never past it: one step is C' = J C J + I - J²
    start = torch.diag(torch.tensor([4.0, 0.25]))
    drifting = ppca.latent_chain_covariances(weight, v, encoder_mean, encoder_cov, 3, start_cov=start)
    assert ppca.kl_to_prior(drifting[1]) < ppca.kl_to_prior(drifting[0])


@pytest.mark.parametrize("v", [0.05, 0.3, 2.0])
def test_one_step_agrees_with_the_closed_form_latent_kernel(weight, v):
    encoder_mean, encoder_cov = ppca.ppca_posterior(weight, v)
    transition, noise = ppca.latent_step(weight, v, encoder_mean, encoder_cov)
    jacobian, latent_cov = ppca.ppca_latent_transition(weight, v)
    assert torch.allclose(transition, jacobian, atol=1e-12)
    # v E Eᵀ + S = v(J + I)(WᵀW + vI)⁻¹ = I - J²: the noise exactly tops J C J up to I when C = I
    assert torch.allclose(noise, latent_cov, atol=1e-12)
    assert torch.allclose(noise, torch.eye(K) - jacobian @ jacobian, atol=1e-12)
    assert torch.allclose(jacobian, jacobian.T, atol=1e-12)


def test_chain_growth_tends_to_one_for_the_exact_encoder_as_noise_vanishes(weight):
    growths = [ppca.chain_growth(weight, ppca.ppca_posterior(weight, v)[0]) for v in (1.0, 1e-2, 1e-4, 1e-8)]
    assert all(g < 1 for g in growths)
    assert all(a < b for a, b in zip(growths, growths[1:]))
    assert growths[0] < 0.99 and growths[-1] == pytest.approx(1.0, abs=1e-7)


def _scaled_delta(weight, v, factor):
    """Δ = (factor - 1) A, so that M = factor · J and the growth is factor · λ_max/(λ_max + v)."""
    return (factor - 1.0) * ppca.ppca_posterior(weight, v)[0]


def test_an_expanding_inconsistent_encoder_drives_the_chain_away_from_the_prior(weight):
    v = 0.1
    encoder_mean, encoder_cov = ppca.perturbed_encoder(weight, v, _scaled_delta(weight, v, 1.3))
    assert ppca.chain_growth(weight, encoder_mean) > 1.1
    covariances = ppca.latent_chain_covariances(weight, v, encoder_mean, encoder_cov, steps=10)
    kls = [ppca.kl_to_prior(c) for c in covariances]
    assert kls[0] == pytest.approx(0.0, abs=1e-12)
    assert all(b > a for a, b in zip(kls, kls[1:])) and kls[-1] > 10 * kls[1] > 0


def test_a_random_inconsistent_encoder_leaves_the_prior_after_one_step(weight):
    v = 0.3
    delta = 0.2 * torch.randn(K, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    encoder_mean, encoder_cov = ppca.perturbed_encoder(weight, v, delta)
    covariances = ppca.latent_chain_covariances(weight, v, encoder_mean, encoder_cov, steps=5)
    assert all(ppca.kl_to_prior(c) > 1e-4 for c in covariances[1:])


def _lyapunov_fixed_point(transition, noise):
    """Solve C = M C Mᵀ + N by vectorisation: (I - M ⊗ M) vec C = vec N (row-major vec)."""
    k = transition.shape[0]
    vec = torch.linalg.solve(torch.eye(k * k) - torch.kron(transition, transition), noise.reshape(-1))
    return vec.reshape(k, k)


def test_a_contracting_inconsistent_encoder_settles_at_the_lyapunov_fixed_point(weight):
    v = 0.1
    delta = _scaled_delta(weight, v, 0.6) + 0.05 * torch.randn(K, D, generator=torch.Generator().manual_seed(2))
    encoder_mean, encoder_cov = ppca.perturbed_encoder(weight, v, delta)
    growth = ppca.chain_growth(weight, encoder_mean)
    assert 0.3 < growth < 0.8
    covariances = ppca.latent_chain_covariances(weight, v, encoder_mean, encoder_cov, steps=200)
    fixed = _lyapunov_fixed_point(*ppca.latent_step(weight, v, encoder_mean, encoder_cov))
    assert torch.allclose(covariances[-1], fixed, atol=1e-10)
    assert torch.allclose(covariances[-1], covariances[-2], atol=1e-12)
    assert ppca.kl_to_prior(fixed) > 0.05          # settled, but not at the prior


def test_kl_to_prior_matches_the_gaussian_formula_written_out():
    cov = torch.tensor([[2.0, 0.3], [0.3, 0.5]])
    eigenvalues = torch.linalg.eigvalsh(cov)
    by_hand = 0.5 * float((eigenvalues - 1 - eigenvalues.log()).sum())
    assert ppca.kl_to_prior(cov) == pytest.approx(by_hand, rel=1e-12)
    assert ppca.kl_to_prior(torch.eye(3)) == 0.0


@pytest.mark.parametrize("factor", [1.15, 0.7])
def test_the_recursion_matches_the_monte_carlo_chain(weight, factor):
    v, chains, steps = 0.2, 20_000, 4
    encoder_mean, encoder_cov = ppca.perturbed_encoder(weight, v, _scaled_delta(weight, v, factor))
    generator = torch.Generator().manual_seed(5)
    start = torch.randn(chains, K, generator=generator) @ torch.tensor([[1.5, 0.0], [0.4, 0.6]]).T
    samples = ppca.sample_latent_chain(weight, v, encoder_mean, encoder_cov, start, steps, generator)
    assert samples.shape == (steps + 1, chains, K)
    # the chain is linear with centred noise, so second moments about zero follow the same recursion
    second_moments = torch.einsum("tbk,tbl->tkl", samples, samples) / chains
    predicted = ppca.latent_chain_covariances(weight, v, encoder_mean, encoder_cov, steps,
                                                    start_cov=second_moments[0])
    scale = torch.linalg.matrix_norm(predicted, dim=(-2, -1))
    errors = torch.linalg.matrix_norm(second_moments - predicted, dim=(-2, -1)) / scale
    assert float(errors.max()) < 0.02
    assert not torch.allclose(predicted[-1], predicted[0], rtol=0.1)


def test_bad_shapes_and_noise_are_refused(weight):
    with pytest.raises(ValueError, match="delta"):
        ppca.perturbed_encoder(weight, 0.1, torch.zeros(D, K))
    with pytest.raises(ValueError, match="positive"):
        ppca.perturbed_encoder(weight, 0.0, torch.zeros(K, D))
    encoder_mean, encoder_cov = ppca.ppca_posterior(weight, 0.1)
    with pytest.raises(ValueError, match="start_cov"):
        ppca.latent_chain_covariances(weight, 0.1, encoder_mean, encoder_cov, 2, start_cov=torch.eye(3))
    with pytest.raises(ValueError, match="encoder_mean"):
        ppca.chain_growth(weight, encoder_mean.T)
