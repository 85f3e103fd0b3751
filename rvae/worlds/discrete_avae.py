"""The Autoencoding VAE (AVAE) on the discrete circle example (AVAE appendices C.1 and D).

The tables are those of :class:`rvae.worlds.discrete_vae.DiscreteVAE`: encoder q(Z=j|X=i), decoder p(X=i|Z=j),
uniform prior p(Z=j), all indexed ``[x, z]`` with shape (N_x, N_z).

AVAE adds a second encode step to the VAE. An observed x = i is encoded to z = j, decoded to a
fresh x̃ = k ~ p(X|Z=j), and x̃ is encoded again to z' = l. The target wants z' to land where z
was, through a latent coupling p_ρ(Z'=l|Z=j): a discrete von Mises on the latent circle centred
on j with a small spread ν (the paper takes ν ≈ 1e-3),

    p_ρ(l | j) ∝ exp(cos(2π(l - j)/N_z) / ν),      normalised over l.

Per observed value i the bound is

    B_i = ELBO_i + Σ_j q(j|i) Σ_k p̄(k|j) Σ_l q(l|k) [log p_ρ(l|j) - log q(l|k)],

where p̄ is the decoder table with its gradient stopped (algorithm 1 detaches x̃), so the decoder
learns from the ELBO alone and the encoder from both terms. The sum over k runs over every x the
decoder can produce, observed or not: this is how AVAE shapes the encoder off the data's support,
where the ELBO gives it no gradient at all. The objective is the count-weighted mean of B_i.

The second term is -Σ_j q(j|i) Σ_k p̄(k|j) KL(q(Z'|k) || p_ρ(Z'|j)) <= 0, so B_i <= ELBO_i. For a
tight coupling that KL is about E_q(l|k)[1 - cos(2π(l - j)/N_z)] / ν: unless a decoded k pins down
the j it came from, every informative encoder pays O(1/ν) nats, while an encoder that sends every x
to one latent value pays almost nothing. So when ν is much smaller than the decoder's own noise (the
paper's ν ≈ 1e-3 against a decoder spread of 0.3-0.4 here) the bound is maximised by collapsing
the encoder; a looser coupling (ν ≈ 0.5) keeps the fit to the data and still trains the encoder
off the data's support.

Measurements. The latent encode-decode kernel Q(Z'=l|Z=j) = Σ_x q(l|x) p(x|j) leaves p(Z) invariant
and makes Q(l|j)p(j) symmetric when q is the decoder's exact posterior p(z|x) (AVAE proposition
3.1); ``encoder_model_mismatch`` = KL(p(X|Z)p(Z) || p(X;θ)q(Z|X)) = E_p(X;θ) KL(p(Z|X) || q(Z|X))
says how far the encoder is from that posterior where the *model* puts mass, and
``autoencoding_error`` how far, on average, z' = encode(decode(z)) lands from z.
"""
from __future__ import annotations

import torch
from torch import Tensor

from rvae.worlds.discrete_vae import TWO_PI, DiscreteVAE, FitHistory, circular_distance, maximise


def coupling_table(n_z: int, spread: float) -> Tensor:
    """log p_ρ(Z'=l | Z=j) of the von Mises latent coupling, indexed [j, l], shape (N_z, N_z)."""
    if n_z < 1:
        raise ValueError(f"n_z must be a positive number of latent values, got {n_z}")
    if not spread > 0:
        raise ValueError(f"the coupling spread must be positive, got {spread}")
    steps = torch.arange(n_z, dtype=torch.float64)
    logits = torch.cos(TWO_PI * (steps[None, :] - steps[:, None]) / n_z) / spread
    return torch.log_softmax(logits, dim=1)


def _check_counts(model: DiscreteVAE, counts: Tensor) -> None:
    """ValueError unless counts is a non-negative (N_x,) vector with a positive total."""
    if counts.shape != (model.n_x,):
        raise ValueError(f"counts must have shape ({model.n_x},), got {tuple(counts.shape)}")
    if bool((counts < 0).any()) or not counts.sum() > 0:
        raise ValueError("counts must be non-negative with at least one observation")


def avae_bound(model: DiscreteVAE, counts: Tensor, coupling_spread: float) -> Tensor:
    """Count-weighted mean of the AVAE bound B_i (module docstring), a scalar; decoder detached in term 2."""
    _check_counts(model, counts)
    log_q = model.log_encoder()                                   # (N_x, N_z) [x, z]
    q = log_q.exp()
    decoded = model.log_decoder().detach().exp()                  # p̄(k|j), (N_x, N_z) [k, j]
    log_coupling = coupling_table(model.n_z, coupling_spread)     # (N_z, N_z) [j, l]
    # inner[k, j] = Σ_l q(l|k) [log p_ρ(l|j) - log q(l|k)]
    inner = q @ log_coupling.T - (q * log_q).sum(1, keepdim=True)
    per_latent = (decoded * inner).sum(0)                         # Σ_k p̄(k|j) inner[k, j], (N_z,)
    per_row = model.elbo_per_x() + q @ per_latent                 # B_i, (N_x,)
    return (counts * per_row).sum() / counts.sum()


def fit_avae(model: DiscreteVAE, counts: Tensor, coupling_spread: float, steps: int = 2000,
             learning_rate: float = 0.02) -> FitHistory:
    """Maximise :func:`avae_bound` over all tables with Adam, full batch; the bound per step."""
    return maximise(lambda: avae_bound(model, counts, coupling_spread), model.parameters(), steps,
                    learning_rate, "AVAE")


# ---------------------------------------------------------------------------------------------
# Measurements (from tables, so that exact posteriors can be measured too)
# ---------------------------------------------------------------------------------------------
def latent_transition(log_encoder: Tensor, log_decoder: Tensor) -> Tensor:
    """Q(Z'=l | Z=j) = Σ_x q(l|x) p(x|j) from two (N_x, N_z) log tables, indexed [j, l], (N_z, N_z)."""
    if log_encoder.shape != log_decoder.shape:
        raise ValueError(f"encoder and decoder tables differ in shape: {tuple(log_encoder.shape)} "
                         f"vs {tuple(log_decoder.shape)}")
    return log_decoder.exp().T @ log_encoder.exp()


def exact_posterior(log_decoder: Tensor, log_prior: Tensor) -> Tensor:
    """log p(Z=j | X=i) ∝ log p(X=i|Z=j) + log p(Z=j) (Bayes), shape (N_x, N_z); rows normalise."""
    return torch.log_softmax(log_decoder + log_prior[None, :], dim=1)


def joint_tables(model: DiscreteVAE, counts: Tensor) -> dict[str, Tensor]:
    """The five panels of the appendix's figure 8 as detached float64 tensors (see module docstring)."""
    _check_counts(model, counts)
    with torch.no_grad():
        empirical = counts.to(torch.float64) / counts.sum()
        q = model.log_encoder().exp()
        marginal = model.model_marginal()
        return {
            "empirical": empirical,                                       # π̂(X), (N_x,)
            "data_encoder": empirical[:, None] * q,                       # π̂(X) q(Z|X)
            "model_encoder": marginal[:, None] * q,                       # p(X;θ) q(Z|X)
            "decoder": (model.log_decoder() + model.log_prior()[None, :]).exp(),   # p(X|Z) p(Z)
            "model": marginal,                                            # p(X;θ), (N_x,)
        }


def posterior_mismatch(log_encoder: Tensor, log_decoder: Tensor, log_prior: Tensor) -> float:
    """KL(p(X|Z)p(Z) || p(X)q(Z|X)) in nats from (N_x, N_z) log tables and the (N_z,) log prior."""
    log_joint = log_decoder + log_prior[None, :]                          # log p(x, z)
    log_marginal = torch.logsumexp(log_joint, dim=1, keepdim=True)        # log p(x)
    return float((log_joint.exp() * (log_joint - log_marginal - log_encoder)).sum())


def encoder_model_mismatch(model: DiscreteVAE) -> float:
    """E_p(X;θ) KL(p(Z|X) || q(Z|X)) of a model: 0 only when the encoder is the decoder's posterior."""
    with torch.no_grad():
        return posterior_mismatch(model.log_encoder(), model.log_decoder(), model.log_prior())


def autoencoding_error(model: DiscreteVAE) -> float:
    """E_p(Z) E_Q(Z'|Z) of the circular distance (in turns) between z' and z: 0 when z' = z always."""
    with torch.no_grad():
        transition = latent_transition(model.log_encoder(), model.log_decoder())     # [j, l]
        positions = torch.arange(model.n_z, dtype=torch.float64) / model.n_z
        distance = circular_distance(positions[:, None], positions[None, :])
        prior = model.log_prior().exp()
        return float((prior[:, None] * transition * distance).sum())

