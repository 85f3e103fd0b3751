"""The discrete 'von Mises' VAE of the Smooth Encoder paper (sec. 2.2).

Observations and latents live on discrete circles, ``X in {0..N_x-1}`` and ``Z in {0..N_z-1}``.
Every conditional table is a normalised ``exp(cos(.)/spread)`` bump (a discretised von Mises
density), so there are no boundary effects and each row/column of a table is one free
'network output': the table model emulates an encoder/decoder of unlimited capacity.

    decoder  p(X=i | Z=j) ∝ exp(cos(2π(m_j  - i/N_x)) / v)        (columns sum to 1)
    encoder  q(Z=j | X=i) ∝ exp(cos(2π(μ_i - j/N_z)) / σ_i)      (rows sum to 1)
    prior    p(Z=j) = 1/N_z

Tables are indexed ``[i, j]`` = ``[x, z]`` throughout, shape ``(N_x, N_z)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from rvae.errors import NonFiniteLossError
from rvae.progress import progress_bar

TWO_PI = 2.0 * math.pi


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def circular_bumps(centres: Tensor, n: int) -> Tensor:
    """cos(2π(centre_r - k/n)) for every centre r and grid point k: shape (R, n), values in [-1, 1]."""
    grid = torch.arange(n, dtype=centres.dtype, device=centres.device) / n
    return torch.cos(TWO_PI * (centres[:, None] - grid[None, :]))


def von_mises_target(n_x: int, centres=(0.2, 0.6), concentrations=(3.0, 6.0),
                     weights=(1.0, 0.6)) -> Tensor:
    """A smooth multimodal target π(X) on the circle: a mixture of discrete von Mises bumps, (N_x,)."""
    centres_t = torch.tensor(centres, dtype=torch.float64)
    logits = circular_bumps(centres_t, n_x) * torch.tensor(concentrations, dtype=torch.float64)[:, None]
    bumps = torch.softmax(logits, dim=1)                                   # (K, N_x)
    mix = torch.tensor(weights, dtype=torch.float64)
    return (mix[:, None] * bumps).sum(0) / mix.sum()


def sample_counts(target: Tensor, n_samples: int, seed: int) -> Tensor:
    """A multinomial 'dataset': how often each x was drawn in n_samples draws from target, (N_x,)."""
    generator = torch.Generator().manual_seed(seed)
    draws = torch.multinomial(target.float(), n_samples, replacement=True, generator=generator)
    return torch.bincount(draws, minlength=target.numel()).to(torch.float64)


def circular_index_distance(n: int) -> Tensor:
    """d[j, k] = min(|j-k|, n-|j-k|): the number of steps between grid points on the circle, (n, n)."""
    idx = torch.arange(n)
    diff = (idx[:, None] - idx[None, :]).abs()
    return torch.minimum(diff, n - diff).to(torch.float64)


def circular_distance(a: Tensor, b: Tensor) -> Tensor:
    """Distance between positions a, b on the unit circle [0, 1) (elementwise), in [0, 0.5]."""
    d = torch.remainder(a - b, 1.0)
    return torch.minimum(d, 1.0 - d)


class DiscreteVAE(nn.Module):
    """Tabular encoder (μ_i, σ_i), decoder means m_j, fixed decoder spread v and a uniform prior.

    Positions (μ, m) are on the unit circle, in turns. All computations are in float64 so that
    identities such as 'row i receives exactly zero gradient' can be checked exactly.
    """

    def __init__(self, n_x: int, n_z: int, decoder_spread: float, init_encoder_spread: float = 0.3,
                 seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.n_x, self.n_z = n_x, n_z
        self.decoder_spread = decoder_spread
        self.mu = nn.Parameter(torch.rand(n_x, generator=generator, dtype=torch.float64))
        self.log_sigma = nn.Parameter(torch.full((n_x,), math.log(init_encoder_spread), dtype=torch.float64))
        self.m = nn.Parameter(torch.rand(n_z, generator=generator, dtype=torch.float64))

    def log_encoder(self) -> Tensor:
        """log q(Z=j | X=i), shape (N_x, N_z); each row normalises."""
        logits = circular_bumps(self.mu, self.n_z) / self.log_sigma.exp()[:, None]
        return torch.log_softmax(logits, dim=1)

    def log_decoder(self) -> Tensor:
        """log p(X=i | Z=j), shape (N_x, N_z); each column normalises."""
        logits = circular_bumps(self.m, self.n_x).T / self.decoder_spread      # (N_x, N_z)
        return torch.log_softmax(logits, dim=0)

    def log_prior(self) -> Tensor:
        """log p(Z=j) for the uniform prior, shape (N_z,)."""
        return torch.full((self.n_z,), -math.log(self.n_z), dtype=torch.float64)

    def model_marginal(self) -> Tensor:
        """p(X=i) = Σ_j p(X=i|Z=j) p(Z=j), shape (N_x,)."""
        return torch.logsumexp(self.log_decoder() + self.log_prior()[None, :], dim=1).exp()

    def elbo_per_x(self) -> Tensor:
        """ELBO_i = E_q(Z|X=i)[log p(X=i|Z) + log p(Z) - log q(Z|X=i)] for every i, shape (N_x,)."""
        log_q = self.log_encoder()
        integrand = self.log_decoder() + self.log_prior()[None, :] - log_q
        return (log_q.exp() * integrand).sum(1)


# ---------------------------------------------------------------------------------------------
# Objectives on a count vector s (s_i = how often x = i was observed)
# ---------------------------------------------------------------------------------------------
def batch_elbo(model: DiscreteVAE, counts: Tensor) -> Tensor:
    """Mean ELBO over the dataset, (1/L) Σ_i s_i ELBO_i: rows with s_i = 0 contribute exactly 0."""
    return (counts * model.elbo_per_x()).sum() / counts.sum()


def elbo_kl_form(model: DiscreteVAE, counts: Tensor) -> Tensor:
    """Equation (2) of the SE paper: -Σ_ij s_i q_ij log(s_i q_ij / (p_ij p_j)), with 0 log 0 = 0.

    It equals Σ_i s_i ELBO_i - Σ_i s_i log s_i: the negative KL between the (unnormalised) tables
    s_i q(Z|X=i) and p(X|Z)p(Z). Written out independently of :func:`batch_elbo` on purpose.
    """
    q = model.log_encoder().exp()
    joint_model = model.log_decoder().exp() * model.log_prior().exp()[None, :]
    joint_data = counts[:, None] * q
    return -(torch.special.xlogy(joint_data, joint_data) - torch.special.xlogy(joint_data, joint_model)).sum()


def entropic_ot(log_a: Tensor, log_b: Tensor, cost: Tensor, gamma: float, iterations: int = 200) -> Tensor:
    """min over couplings Q of (a, b) of  γ/2 <C, Q> + KL(Q || a⊗b), for a batch of pairs.

    log_a, log_b: (B, n) log-marginals; cost: (n, n). Returns (B,) values >= 0. Note that
    max_Q [-γ/2 <C,Q> + H(Q)] = H(a) + H(b) - entropic_ot(a, b): the coupling term of the SE-ELBO.

    Sinkhorn scalings u, v (Q = diag(a u) K diag(b v), K = exp(-γC/2)) are found without
    autograd; the value is then the dual objective
        <log u, a> + <log v, b> - Σ_jk a_j u_j K_jk v_k b_k + 1
    evaluated at those (detached) scalings. At convergence it equals the primal value, and by the
    envelope theorem its gradient in (a, b) is the true gradient, so no iteration is unrolled.
    """
    kernel = torch.exp(-0.5 * gamma * cost)                               # (n, n)
    a, b = log_a.exp(), log_b.exp()
    tiny = torch.finfo(a.dtype).tiny ** 0.5
    with torch.no_grad():
        a_fixed, b_fixed = a.detach(), b.detach()
        v = torch.ones_like(b_fixed)
        for _ in range(iterations):
            u = 1.0 / ((v * b_fixed) @ kernel.T).clamp_min(tiny)          # (B, n)
            v = 1.0 / ((u * a_fixed) @ kernel).clamp_min(tiny)
    mass = (((a * u) @ kernel) * (b * v)).sum(1)                          # Σ Q, -> 1
    return (a * u.log()).sum(1) + (b * v.log()).sum(1) - mass + 1.0


def latent_cost(n_z: int) -> Tensor:
    """Squared angular distance between latent grid points, (2π d/N_z)^2, shape (N_z, N_z)."""
    return (TWO_PI * circular_index_distance(n_z) / n_z) ** 2


@torch.no_grad()
def select_discrete_partners(log_q: Tensor, rows: Tensor, radius: int, gamma: float, iterations: int) -> Tensor:
    """The SE selection mechanism on the circle: for each x in rows, the x' within ``radius`` steps
    whose encoder row is farthest (entropic-OT divergence) from q(Z|X=x). Returns (R,) indices."""
    n_x, n_z = log_q.shape
    offsets = torch.tensor([o for o in range(-radius, radius + 1) if o != 0])
    candidates = torch.remainder(rows[:, None] + offsets[None, :], n_x)          # (R, 2r)
    log_a = log_q[rows][:, None, :].expand(-1, offsets.numel(), -1).reshape(-1, n_z)
    log_b = log_q[candidates.reshape(-1)]
    divergence = entropic_ot(log_a, log_b, latent_cost(n_z), gamma, iterations)
    best = divergence.view(len(rows), -1).argmax(1)
    return candidates[torch.arange(len(rows)), best]


def smooth_encoder_elbo(model: DiscreteVAE, counts: Tensor, radius: int, gamma: float,
                        iterations: int = 100) -> Tensor:
    """Mean SE-ELBO: for each observed x and its selected neighbour x',

        ELBO_x + E_q(Z|x')[log p(Z)] + H(q(Z|x')) - entropic_ot(q(Z|x), q(Z|x')),

    i.e. data fidelity for x, prior fidelity for both and the entropic coupling, weighted by s_x.
    The decoder sees exactly the ELBO's terms; only the encoder gets the extra coupling.
    """
    rows = torch.nonzero(counts > 0).squeeze(1)
    log_q = model.log_encoder()
    partners = select_discrete_partners(log_q.detach(), rows, radius, gamma, iterations)
    log_b = log_q[partners]
    prior_fidelity_b = (log_b.exp() * (model.log_prior()[None, :] - log_b)).sum(1)   # E log p + H
    coupling = entropic_ot(log_q[rows], log_b, latent_cost(model.n_z), gamma, iterations)
    per_row = model.elbo_per_x()[rows] + prior_fidelity_b - coupling
    return (counts[rows] * per_row).sum() / counts.sum()


@dataclass
class FitHistory:
    """Objective value per optimisation step (higher is better)."""
    objective: list[float]


def maximise(objective: Callable[[], Tensor], parameters, steps: int, learning_rate: float,
             name: str) -> FitHistory:
    """Full-batch Adam ascent on ``objective()`` for ``steps`` steps; NonFiniteLossError on NaN/inf."""
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    optimiser = torch.optim.Adam(parameters, lr=learning_rate)
    history = []
    for step in progress_bar(range(steps), desc=f"toy {name}"):
        value = objective()
        if not torch.isfinite(value):
            raise NonFiniteLossError(f"the toy {name} objective became {value.item()} at step {step}; "
                                     "lower the learning rate or raise the spreads")
        optimiser.zero_grad()
        (-value).backward()
        optimiser.step()
        history.append(value.item())
    return FitHistory(history)


def fit(model: DiscreteVAE, counts: Tensor, objective: str = "elbo", steps: int = 2000,
        learning_rate: float = 0.02, radius: int = 2, gamma: float = 20.0,
        sinkhorn_iterations: int = 100) -> FitHistory:
    """Maximise the ELBO ('elbo') or the SE-ELBO ('se') over all tables with Adam, full batch."""
    if objective not in {"elbo", "se"}:
        raise ValueError(f"objective must be 'elbo' or 'se', got {objective!r}")
    if objective == "elbo":
        return maximise(lambda: batch_elbo(model, counts), model.parameters(), steps, learning_rate, objective)
    return maximise(lambda: smooth_encoder_elbo(model, counts, radius, gamma, sinkhorn_iterations),
                    model.parameters(), steps, learning_rate, objective)


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------
def categorical_kl(p: Tensor, q: Tensor) -> float:
    """KL(p || q) in nats for two distributions on the same finite set (0 log 0 = 0)."""
    return float((torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum())


def mode_jumps(positions: Tensor) -> Tensor:
    """How far a table's mode moves between neighbours k and k+1 (circularly), in turns, shape (n,).

    Applied to the encoder means μ (one per x) it measures how smooth the encoder is; applied to
    the decoder means m (one per z), how smooth the decoder is. Independent uniform modes give 0.25.
    """
    positions = positions.detach()
    return circular_distance(positions, torch.roll(positions, -1))


def smoothness_report(model: DiscreteVAE, counts: Tensor) -> dict[str, float]:
    """Mean encoder-mode jump between neighbouring x, on the data's support and off it.

    A neighbour pair (i, i+1) is 'on support' when both were observed and 'off support' when
    neither was; pairs at the edge of the support are counted in neither.
    """
    jumps = mode_jumps(model.mu)
    seen = counts > 0
    both = seen & torch.roll(seen, -1)
    neither = ~seen & ~torch.roll(seen, -1)
    return {
        "jump_on_support": float(jumps[both].mean()) if both.any() else float("nan"),
        "jump_off_support": float(jumps[neither].mean()) if neither.any() else float("nan"),
        "pairs_on_support": int(both.sum()),
        "pairs_off_support": int(neither.sum()),
    }


def off_support_gradient(model: DiscreteVAE, counts: Tensor) -> float:
    """Largest |∂ELBO/∂(μ_i, log σ_i)| over the rows i that were never observed (exactly 0.0)."""
    model.zero_grad()
    batch_elbo(model, counts).backward()
    unseen = counts == 0
    grads = torch.cat([model.mu.grad[unseen].abs(), model.log_sigma.grad[unseen].abs()])
    model.zero_grad()
    return float(grads.max()) if grads.numel() else 0.0
