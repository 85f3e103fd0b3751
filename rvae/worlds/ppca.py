"""Probabilistic PCA (AVAE appendix B): closed forms of the exact posterior and of the data and latent
transition kernels, and the latent encode-decode chain with an inconsistent encoder.

pPCA decodes z ~ N(0, I_K) to x = W z + n, n ~ N(0, v I_D). Its exact posterior is
q*(z|x) = N(A x, S) with A = (WᵀW + vI)⁻¹Wᵀ and S = v(WᵀW + vI)⁻¹ (:func:`ppca_posterior`).
Take any Gaussian encoder N(E x, S_q). One step of the latent chain, z → x ~ p(x|z) → z' ~ q(z'|x),
is linear-Gaussian:

    z' = E W z + E n + e,    e ~ N(0, S_q),

so z_{t+1} = M z_t + noise with M = E W and noise covariance N = v E Eᵀ + S_q, and a chain started
centred with covariance C_0 stays centred with C_{t+1} = M C_t Mᵀ + N.

For the exact encoder (E = A, S_q = S) write G = WᵀW and P = G + vI. G and P commute, so
M = J = P⁻¹G is symmetric and

    J Jᵀ + v A Aᵀ + S = P⁻¹ (G² + vG + vP) P⁻¹ = P⁻¹ P² P⁻¹ = I:

the noise tops M C Mᵀ up to exactly I when C = I, i.e. the prior N(0, I) is invariant (AVAE
proposition 3.1), and N = I - J² = v(J + I)P⁻¹ is the covariance of
:func:`ppca_latent_transition`. An inconsistent encoder E = A + Δ breaks the invariance:
when the spectral radius of M exceeds 1 the chain's covariance grows without bound, and when it is
below 1 it settles at the fixed point of the discrete Lyapunov equation C = M C Mᵀ + N, which is
in general not I.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from rvae.progress import progress_bar


# ---------------------------------------------------------------------------------------------
# Probabilistic PCA (AVAE appendix B): x = W z + noise, z ~ N(0, I), noise ~ N(0, v I)
# ---------------------------------------------------------------------------------------------
def ppca_posterior(weight: Tensor, v: float) -> tuple[Tensor, Tensor]:
    """Exact posterior q*(z|x) = N(A x, S): A = (WᵀW + vI)⁻¹Wᵀ (K, D), S = v(WᵀW + vI)⁻¹ (K, K)."""
    k = weight.shape[1]
    precision = weight.T @ weight + v * torch.eye(k, dtype=weight.dtype)
    return torch.linalg.solve(precision, weight.T), v * torch.linalg.inv(precision)


def ppca_data_transition(weight: Tensor, v: float) -> tuple[Tensor, Tensor]:
    """Q(X'|X=x) = ∫ p(x'|z) q*(z|x) dz = N(P x, v(P + I)), with P = W(WᵀW + vI)⁻¹Wᵀ (D, D)."""
    encoder_mean, _ = ppca_posterior(weight, v)
    projector = weight @ encoder_mean
    return projector, v * (projector + torch.eye(weight.shape[0], dtype=weight.dtype))


def ppca_latent_transition(weight: Tensor, v: float) -> tuple[Tensor, Tensor]:
    """Q(Z'|Z=z) = ∫ q*(z'|x) p(x|z) dx = N(J z, v(J + I)(WᵀW + vI)⁻¹), J = (WᵀW + vI)⁻¹WᵀW."""
    encoder_mean, encoder_cov = ppca_posterior(weight, v)
    jacobian = encoder_mean @ weight
    identity = torch.eye(weight.shape[1], dtype=weight.dtype)
    return jacobian, (jacobian + identity) @ encoder_cov


def projection_defect(matrix: Tensor) -> float:
    """‖M² - M‖_F: zero exactly when M is a projection."""
    return float(torch.linalg.matrix_norm(matrix @ matrix - matrix))


def encode_decode_chain(weight: Tensor, encoder_mean: Tensor, start: Tensor, steps: int) -> Tensor:
    """Iterate the mean of decode∘encode, x_{t+1} = W A x_t, from ``start`` (D,): shape (steps+1, D).

    With the exact encoder A and v -> 0 the chain stops after one step (W A is a projection);
    with an inconsistent encoder A + Δ it keeps moving inside the range of W.
    """
    transition = weight @ encoder_mean
    states = [start]
    for _ in range(steps):
        states.append(transition @ states[-1])
    return torch.stack(states)


def _check_model(weight: Tensor, v: float, encoder_mean: Tensor | None = None,
                 encoder_cov: Tensor | None = None) -> None:
    """ValueError unless W is (D, K), v > 0, E is (K, D) and S_q is (K, K)."""
    if weight.dim() != 2:
        raise ValueError(f"weight must be a (D, K) matrix, got shape {tuple(weight.shape)}")
    if not v > 0:
        raise ValueError(f"the observation noise variance v must be positive, got {v}")
    d, k = weight.shape
    if encoder_mean is not None and encoder_mean.shape != (k, d):
        raise ValueError(f"encoder_mean must have shape ({k}, {d}), got {tuple(encoder_mean.shape)}")
    if encoder_cov is not None and encoder_cov.shape != (k, k):
        raise ValueError(f"encoder_cov must have shape ({k}, {k}), got {tuple(encoder_cov.shape)}")


def perturbed_encoder(weight: Tensor, v: float, delta: Tensor) -> tuple[Tensor, Tensor]:
    """An inconsistent encoder: mean matrix A + Δ (K, D) and the exact posterior covariance S (K, K)."""
    _check_model(weight, v)
    if delta.shape != (weight.shape[1], weight.shape[0]):
        raise ValueError(f"delta must have the encoder's shape ({weight.shape[1]}, {weight.shape[0]}), "
                         f"got {tuple(delta.shape)}")
    encoder_mean, encoder_cov = ppca_posterior(weight, v)
    return encoder_mean + delta, encoder_cov


def latent_step(weight: Tensor, v: float, encoder_mean: Tensor, encoder_cov: Tensor) -> tuple[Tensor, Tensor]:
    """One step of the latent chain: the mean map M = E W and noise covariance N = v E Eᵀ + S_q, (K, K) each."""
    _check_model(weight, v, encoder_mean, encoder_cov)
    return encoder_mean @ weight, v * encoder_mean @ encoder_mean.T + encoder_cov


def latent_chain_covariances(weight: Tensor, v: float, encoder_mean: Tensor, encoder_cov: Tensor,
                             steps: int, start_cov: Tensor | None = None) -> Tensor:
    """C_0 = start_cov (default I), C_{t+1} = M C_t Mᵀ + N for t < steps: shape (steps+1, K, K)."""
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    transition, noise = latent_step(weight, v, encoder_mean, encoder_cov)
    k = weight.shape[1]
    covariance = torch.eye(k, dtype=weight.dtype) if start_cov is None else start_cov
    if covariance.shape != (k, k):
        raise ValueError(f"start_cov must have shape ({k}, {k}), got {tuple(covariance.shape)}")
    covariances = [covariance]
    for _ in range(steps):
        covariance = transition @ covariance @ transition.T + noise
        covariances.append(covariance)
    return torch.stack(covariances)


def kl_to_prior(cov: Tensor) -> float:
    """KL(N(0, C) || N(0, I)) = (tr C - K - log det C) / 2 in nats, for one (K, K) covariance."""
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square matrix, got shape {tuple(cov.shape)}")
    _, log_det = torch.linalg.slogdet(cov)
    return float(0.5 * (torch.trace(cov) - cov.shape[0] - log_det))


def chain_growth(weight: Tensor, encoder_mean: Tensor) -> float:
    """Spectral radius of M = E W: above 1 the chain's mean and spread grow, below 1 they settle."""
    if encoder_mean.shape != (weight.shape[1], weight.shape[0]):
        raise ValueError(f"encoder_mean must have shape ({weight.shape[1]}, {weight.shape[0]}), "
                         f"got {tuple(encoder_mean.shape)}")
    return float(torch.linalg.eigvals(encoder_mean @ weight).abs().max())


def sample_latent_chain(weight: Tensor, v: float, encoder_mean: Tensor, encoder_cov: Tensor, start: Tensor,
                        steps: int, generator: torch.Generator) -> Tensor:
    """B Monte Carlo chains from start (B, K): x ~ N(W z, vI), then z' ~ N(E x, S_q); (steps+1, B, K)."""
    _check_model(weight, v, encoder_mean, encoder_cov)
    if start.dim() != 2 or start.shape[1] != weight.shape[1]:
        raise ValueError(f"start must have shape (B, {weight.shape[1]}), got {tuple(start.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    encoder_factor = torch.linalg.cholesky(encoder_cov)
    states = [start]
    for _ in progress_bar(range(steps), desc="ppca chain"):
        z = states[-1]
        x = z @ weight.T + math.sqrt(v) * torch.randn(z.shape[0], weight.shape[0], generator=generator,
                                                      dtype=weight.dtype)
        noise = torch.randn(z.shape[0], weight.shape[1], generator=generator, dtype=weight.dtype)
        states.append(x @ encoder_mean.T + noise @ encoder_factor.T)
    return torch.stack(states)
