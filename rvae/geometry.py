"""The stochastic pullback metric of a Gaussian encoder, and the robustness scores built on it.

Local geometry paper, sections 3-4 and supplement B. Write the encoder as a random map
z = f(x) = mu(x) + eps * sigma(x), eps ~ N(0, I_d), sigma = exp(logvar / 2), of a flattened input
x in R^N (N = C*H*W). Its Jacobian is J_f = J_mu + diag(eps) J_sigma, and averaging the pulled-back
metric J_f^T J_f over eps (E eps = 0, E eps^2 = 1) gives the *expected pullback metric* (eq. 4)

    G(x) = J_mu^T J_mu + J_sigma^T J_sigma                                       (N x N),

with J_mu, J_sigma the (d x N) Jacobians of the mean and the standard deviation. For a small
input step eta the squared latent displacement is, to second order, eta^T G eta. If the latent
space is not taken as flat but carries the decoder's pullback G_z = J_g^T J_g (J_g the N x d
Jacobian of the decoder mean g at z = mu(x); our decoders have a fixed observation variance, so
the decoder's sigma term of supplement B vanishes), the metric becomes (supplement eq. 11)

    G(x) = J_mu^T G_z J_mu + J_sigma^T G_z J_sigma.

Computation. G is never formed. Both variants are G = B^T B with a *factor*

    B = [R J_mu ; R J_sigma]          (2d x N),     R^T R = G_z  (R = I in the flat case).

For the decoder variant R is the (d x d) triangular factor of a reduced QR decomposition
J_g = Q R: then R^T R = J_g^T J_g = G_z exactly, without ever forming G_z (forming it, or
taking its Cholesky factor, would square J_g's condition number). The nonzero eigenvalues of G
are the squared singular values of B and its eigenvectors are B's right singular vectors, so a
(2d x N) factor replaces an (N x N) eigendecomposition (N = 784 against 2d = 64 on MNIST): G has
rank at most 2d, its remaining N - 2d eigenvalues are 0. Cheaper still, the nonzero eigenvalues
of B^T B are those of the small Gram matrix B B^T (2d x 2d); its eigendecomposition (in float64)
gives them, and each direction is B^T u / ||B^T u|| for an eigenvector u: about ten times cheaper
than the thin SVD of B, and equal to it to rounding.

The Jacobians are batched with ``torch.func``, one chunk of images at a time. The encoder maps N
inputs to 2d outputs, so reverse mode (one vector-Jacobian product per output, 2d of them) is
cheaper than forward mode (one Jacobian-vector product per input, N of them); the decoder maps d
latents to N pixels, so there forward mode (d products) is the cheaper one. In eval mode a
network treats the rows of a batch independently, so the Jacobian of one image's outputs with
respect to the whole chunk is block diagonal: *one* forward pass over the chunk (``vjp``) and the
2d cotangents "output k of every image" (``vmap`` over them) give every image's Jacobian at once
(``jvp`` with the d tangents "latent k of every image" for the decoder). That is the same
arithmetic as a per-image ``vmap(jacrev(f))`` but in 2d large batched products instead of 2d x b
small ones: about twice as fast on the CPU (``benchmarks/geometry_scores.py``); the tests check it
against a per-image loop and finite differences. The model is put in eval mode meanwhile
(BatchNorm must use its running statistics: in train mode an input's code would depend on the
rest of its batch, and the Jacobian would not be block diagonal) and every submodule gets its own
mode back afterwards. Chunks of ``batch_size`` images bound the memory. Log-variances clamped by
the encoder (``rvae.nets.LOGVAR_MIN``/``MAX``) have a zero derivative, as in the network itself.
When only eigenvalues are needed (the scores), ``eigvalsh`` of the Gram matrix skips its
eigenvectors.

Scores (section 3.2), from the eigenvalues lambda_1 >= ... >= lambda_k >= 0 of G:

* spectral radius rho(G) = lambda_1, the largest squared latent displacement per unit input step;
* von Neumann entropy. The paper writes S = -sum lambda log lambda, the Shannon formula applied
  to unnormalised eigenvalues. The von Neumann entropy proper is that of the trace-normalised
  matrix G / tr G, i.e. of p = lambda / sum(lambda): S = -sum p log p, between 0 (rank one: a
  single exploitable direction) and log k (isotropic). The book reports the normalised one
  (``normalise=True``): it is scale-free, so it measures the *anisotropy* of G separately from
  its *size*, which the spectral radius already measures; the literal formula mixes the two
  (S(c lambda) = c S(lambda) - c log(c) sum lambda) and is negative as soon as the eigenvalues
  exceed 1. Both use 0 log 0 = 0. A zero metric (an encoder that is locally constant) has no
  normalised spectrum: its normalised entropy is NaN.

Attack (section 3, Theorem 3.2): the step eta of L2 norm delta that maximises eta^T G eta is
delta times the top eigenvector. :func:`eigen_attack` takes x_c = clip(x + delta v, 0, 1) with v a
unit eigenvector; the paper writes x + delta lambda eta, we keep delta an L2 radius in pixel space
(|x_c - x| <= delta; the clipping to the image box can only shorten the step). Singular vectors
have no intrinsic sign: :func:`pullback_spectrum` returns each direction with its largest-magnitude
component positive (reproducible across backends), and the attack functions can instead let the
attacker take, per image and step, whichever of +v and -v moves the encoder mean further after
clipping (to first order both are equal; clipping at the box makes them differ).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.func import jvp, vjp, vmap

from rvae.nets import evaluation_mode
from rvae.progress import progress_bar

CURVATURES = ("flat", "decoder")
DEFAULT_BATCH_SIZE = 128


@dataclass(frozen=True)
class PullbackSpectrum:
    """Eigenpairs of G(x) for a batch: ``eigenvalues`` (B, k) descending, ``directions`` (B, k, N) unit rows."""
    eigenvalues: Tensor
    directions: Tensor


# ----------------------------------------------------------------------------------------------- helpers
def _check_curvature(curvature: str) -> None:
    if curvature not in CURVATURES:
        raise ValueError(f"unknown curvature {curvature!r}; valid: {', '.join(map(repr, CURVATURES))}")


def _check_images(x: Tensor) -> None:
    if x.dim() != 4 or len(x) == 0:
        raise ValueError(f"images must be a non-empty batch (B, C, H, W), not of shape {tuple(x.shape)}")


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, not {batch_size}")


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else fallback


def _chunks(x: Tensor, batch_size: int, desc: str) -> Iterator[Tensor]:
    starts = range(0, len(x), batch_size)
    for start in progress_bar(starts, desc=desc, total=len(starts)):
        yield x[start:start + batch_size]


def _encoder_jacobian_chunk(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(J, mu): J (b, 2, d, N) stacks J_mu and J_sigma; mu (b, d); model already in eval mode.

    One forward pass over the chunk, then one batched vector-Jacobian product per output unit
    (the cotangent selects that unit in every image); rows do not interact in eval mode.
    """
    b, image_shape = len(x), x.shape[1:]

    def mean_and_std(flat: Tensor) -> Tensor:                     # images (b, N) -> (b, 2, d)
        mu, logvar = model.encode(flat.view(b, *image_shape))
        return torch.stack((mu, (0.5 * logvar).exp()), dim=1)

    out, pullback = vjp(mean_and_std, x.flatten(1))
    units = out[0].numel()                                        # 2d
    basis = torch.eye(units, dtype=out.dtype, device=out.device).view(units, 1, *out.shape[1:])
    (rows,) = vmap(pullback)(basis.expand(units, *out.shape))    # (2d, b, N)
    return rows.movedim(0, 1).reshape(b, *out.shape[1:], -1), out[:, 0]


def _decoder_jacobian_chunk(model: nn.Module, z: Tensor) -> Tensor:
    """J_g (b, N, d): Jacobian of the flattened decoder mean at each row of z (b, d).

    One batched Jacobian-vector product per latent coordinate (the tangent moves that coordinate
    of every code); rows do not interact in eval mode.
    """
    b, d = z.shape

    def decoded(codes: Tensor) -> Tensor:                         # latents (b, d) -> (b, N)
        return model.decode(codes).reshape(b, -1)

    basis = torch.eye(d, dtype=z.dtype, device=z.device).view(d, 1, d).expand(d, b, d)
    with warnings.catch_warnings():
        # torch's first forward-mode call loads its jvp decompositions through the deprecated
        # torch.jit.script and says so once; the warning is torch's own, not about this code.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
        columns = vmap(lambda tangent: jvp(decoded, (z,), (tangent,))[1])(basis)   # (d, b, N)
    return columns.permute(1, 2, 0)


def _factor_chunk(model: nn.Module, x: Tensor, curvature: str) -> Tensor:
    """B (b, 2r, N) with G = B^T B (r = d, or min(d, N) for the decoder variant); eval mode set."""
    jacobians, mu = _encoder_jacobian_chunk(model, x)            # (b, 2, d, N), (b, d)
    if curvature == "decoder":
        r = torch.linalg.qr(_decoder_jacobian_chunk(model, mu), mode="r").R   # (b, r, d), R^T R = J_g^T J_g
        jacobians = r.unsqueeze(1) @ jacobians                   # (b, 2, r, N)
    return jacobians.flatten(1, 2)                               # rows: R J_mu, then R J_sigma


def _canonical_signs(directions: Tensor) -> Tensor:
    """Flip each row (..., N) so that its largest-magnitude component is positive."""
    index = directions.abs().argmax(-1, keepdim=True)
    sign = torch.sign(directions.gather(-1, index))
    return directions * torch.where(sign == 0, torch.ones_like(sign), sign)


# ------------------------------------------------------------------------------------------- Jacobians
def _checked_device(model: nn.Module, x: Tensor, curvature: str, batch_size: int) -> torch.device:
    """Validate the common arguments (ValueError) and return the device the model computes on."""
    _check_curvature(curvature)
    _check_images(x)
    _check_batch_size(batch_size)
    return _model_device(model, x.device)


def encoder_jacobians(model: nn.Module, x: Tensor, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[Tensor, Tensor]:
    """(J_mu, J_sigma), each (B, d, N): Jacobians of the encoder mean and std at images x (B, C, H, W)."""
    device = _checked_device(model, x, "flat", batch_size)
    parts = []
    with evaluation_mode(model), torch.no_grad():
        for chunk in _chunks(x, batch_size, "encoder Jacobians"):
            parts.append(_encoder_jacobian_chunk(model, chunk.to(device))[0].to(x.device))
    jacobians = torch.cat(parts)
    return jacobians[:, 0], jacobians[:, 1]


def metric_factor(model: nn.Module, x: Tensor, curvature: str = "flat",
                  batch_size: int = DEFAULT_BATCH_SIZE) -> Tensor:
    """B (B, 2d, N) with G(x) = B^T B: [J_mu; J_sigma] ("flat") or [R J_mu; R J_sigma], R^T R = G_z ("decoder")."""
    device = _checked_device(model, x, curvature, batch_size)
    with evaluation_mode(model), torch.no_grad():
        return torch.cat([_factor_chunk(model, chunk.to(device), curvature).to(x.device)
                          for chunk in _chunks(x, batch_size, "pullback factor")])


# ---------------------------------------------------------------------------------------------- spectra
def _gram_eigenpairs(factor: Tensor, keep: int, directions: bool) -> tuple[Tensor, Tensor | None]:
    """Leading ``keep`` eigenpairs of G = B^T B from the small Gram matrix B B^T (b, r, r), r = 2d <= N.

    eigh of the float64 Gram matrix costs O(r^3) per image instead of the O(r^2 N) of an SVD of B;
    a direction is v = B^T u / ||B^T u|| for an eigenvector u of B B^T (the right singular vector).
    """
    wide = factor.double()
    if not directions:                                                     # eigenvalues only: no eigenvectors
        values = torch.linalg.eigvalsh(wide @ wide.mT).flip(-1)[..., :keep]
        return values.clamp_min(0).to(factor.dtype), None
    values, vectors = torch.linalg.eigh(wide @ wide.mT)                    # ascending
    values, vectors = values.flip(-1)[..., :keep], vectors.flip(-1)[..., :keep]
    right = wide.mT @ vectors                                              # (b, N, keep)
    right = right / right.norm(dim=-2, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return values.clamp_min(0).to(factor.dtype), right.mT.to(factor.dtype)


def pullback_spectrum(model: nn.Module, x: Tensor, curvature: str = "flat", top: int | None = None,
                      batch_size: int = DEFAULT_BATCH_SIZE) -> PullbackSpectrum:
    """Top ``top`` (default all k = min(2d, N)) eigenpairs of G(x) for images x (B, C, H, W).

    Eigenvalues (B, k) descending; directions (B, k, N), unit, largest-magnitude component positive.
    Computed from the eigendecomposition of the small Gram matrix B B^T (2d x 2d) when 2d <= N,
    else from an SVD of B.
    """
    device = _checked_device(model, x, curvature, batch_size)
    if top is not None and top < 1:
        raise ValueError(f"top must be None or >= 1, not {top}")
    values, vectors = [], []
    with evaluation_mode(model), torch.no_grad():
        for chunk in _chunks(x, batch_size, "pullback spectrum"):
            factor = _factor_chunk(model, chunk.to(device), curvature)            # (b, 2d, N)
            k = min(factor.shape[-2:])
            if top is not None and top > k:
                raise ValueError(f"top = {top} exceeds the number of eigenpairs available, min(2d, N) = {k}")
            keep = k if top is None else top
            if factor.shape[-2] <= factor.shape[-1]:
                eigenvalues, directions = _gram_eigenpairs(factor, keep, directions=True)
            else:
                _, singular, vh = torch.linalg.svd(factor, full_matrices=False)  # (b, k), (b, k, N)
                eigenvalues, directions = singular[:, :keep].square(), vh[:, :keep]
            values.append(eigenvalues.to(x.device))
            vectors.append(_canonical_signs(directions).to(x.device))
    return PullbackSpectrum(torch.cat(values), torch.cat(vectors))


def _eigenvalues_of_factor(factor: Tensor) -> Tensor:
    if factor.shape[-2] <= factor.shape[-1]:
        return _gram_eigenpairs(factor, factor.shape[-2], directions=False)[0]
    return torch.linalg.svdvals(factor).square()


def pullback_eigenvalues(model: nn.Module, x: Tensor, curvature: str = "flat",
                         batch_size: int = DEFAULT_BATCH_SIZE) -> Tensor:
    """The k = min(2d, N) leading eigenvalues of G(x) (the other N - k are 0), (B, k) descending; no directions
    (from the small Gram matrix B B^T, see :func:`pullback_spectrum`)."""
    device = _checked_device(model, x, curvature, batch_size)
    with evaluation_mode(model), torch.no_grad():
        return torch.cat([_eigenvalues_of_factor(_factor_chunk(model, chunk.to(device), curvature)).to(x.device)
                          for chunk in _chunks(x, batch_size, "pullback eigenvalues")])


# ----------------------------------------------------------------------------------------------- scores
def _check_eigenvalues(eigenvalues: Tensor) -> Tensor:
    """Eigenvalues (..., k) of a PSD matrix with rounding-level negatives set to 0; larger negatives raise."""
    if eigenvalues.dim() < 1 or eigenvalues.shape[-1] == 0:
        raise ValueError(f"eigenvalues must have a non-empty last dimension, not shape {tuple(eigenvalues.shape)}")
    scale = eigenvalues.abs().amax(-1, keepdim=True)
    tolerance = math.sqrt(torch.finfo(eigenvalues.dtype).eps) * scale if eigenvalues.is_floating_point() else 0
    if (eigenvalues < -tolerance).any():
        raise ValueError("eigenvalues of a metric must be >= 0; got a clearly negative one "
                         f"(min {eigenvalues.min().item():.3g})")
    return eigenvalues.clamp_min(0)


def spectral_radius(eigenvalues: Tensor) -> Tensor:
    """rho(G) = max |lambda| over the last dimension of ``eigenvalues`` (B, k): (B,)."""
    if eigenvalues.dim() < 1 or eigenvalues.shape[-1] == 0:
        raise ValueError(f"eigenvalues must have a non-empty last dimension, not shape {tuple(eigenvalues.shape)}")
    return eigenvalues.abs().amax(-1)


def von_neumann_entropy(eigenvalues: Tensor, normalise: bool = True) -> Tensor:
    """Entropy of a spectrum (B, k) -> (B,): -sum p log p with p = lambda / sum lambda, or -sum lambda log lambda.

    ``normalise=True`` (the book's score) is the first, the von Neumann entropy of G / tr G;
    ``False`` is the paper's literal formula.
    0 log 0 = 0; a zero spectrum has normalised entropy NaN. Tiny negative (rounding) eigenvalues
    count as 0; clearly negative ones raise ValueError.
    """
    lam = _check_eigenvalues(eigenvalues)
    if not normalise:
        return -torch.xlogy(lam, lam).sum(-1)
    total = lam.sum(-1, keepdim=True)
    p = lam / total                                              # NaN rows where total == 0
    return -torch.xlogy(p, p).sum(-1)


def robustness_scores(model: nn.Module, images: Tensor, curvature: str = "flat",
                      batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, Tensor]:
    """Per-image scores, each (B,): ``spectral_radius``, ``entropy`` (normalised), ``entropy_unnormalised``."""
    eigenvalues = pullback_eigenvalues(model, images, curvature, batch_size)
    return {"spectral_radius": spectral_radius(eigenvalues),
            "entropy": von_neumann_entropy(eigenvalues, normalise=True),
            "entropy_unnormalised": von_neumann_entropy(eigenvalues, normalise=False)}


# ----------------------------------------------------------------------------------------------- attacks
def _check_step(step: float) -> float:
    step = float(step)
    if not math.isfinite(step) or step < 0:
        raise ValueError(f"a step must be a finite number >= 0, not {step}")
    return step


def _check_image_steps(step: float | Tensor, batch: int) -> float | Tensor:
    """One step for all images (a float) or one per image (a (B,) tensor), each finite and >= 0."""
    if not isinstance(step, Tensor):
        return _check_step(step)
    if step.shape != (batch,):
        raise ValueError(f"per-image steps must have shape ({batch},), not {tuple(step.shape)}")
    if not (torch.isfinite(step).all() and (step >= 0).all()):
        raise ValueError("per-image steps must be finite numbers >= 0")
    return step


def _step_along(x: Tensor, direction: Tensor, step: float | Tensor) -> Tensor:
    """clip(x + step v, 0, 1) with v (B, N) reshaped to x (B, C, H, W); step a float or (B,)."""
    if direction.shape != (len(x), x[0].numel()):
        raise ValueError(f"direction must be (B, N) = {(len(x), x[0].numel())} for images of shape "
                         f"{tuple(x.shape)}, not {tuple(direction.shape)}")
    if isinstance(step, Tensor):
        step = step.to(x).view(-1, *[1] * (x.dim() - 1))
    return (x + step * direction.reshape(x.shape).to(x)).clamp(0.0, 1.0)


def _encoder_mean(model: nn.Module, x: Tensor) -> Tensor:
    return model.encode(x)[0]


def eigen_attack(x: Tensor, direction: Tensor, step: float | Tensor, model: nn.Module | None = None) -> Tensor:
    """One-step attack x_c = clip(x + step v, 0, 1), (B, C, H, W), for unit directions v (B, N) and images x in [0, 1].

    ``step`` is one L2 length for every image or a (B,) tensor of lengths, one per image (e.g. the
    paper's literal delta * lambda_1(x)). Clipping to [0, 1] can only shorten the step:
    ||x_c - x|| <= step. Without ``model`` v is used as given; with it, each image takes whichever
    of +v and -v moves the encoder mean further after clipping (ties keep +v). The model is
    evaluated in eval mode, without gradients.
    """
    step = _check_image_steps(step, len(x))
    plus = _step_along(x, direction, step)
    if model is None:
        return plus
    minus = _step_along(x, -direction, step)
    with evaluation_mode(model), torch.no_grad():
        mu = _encoder_mean(model, x)
        gain_plus = (_encoder_mean(model, plus) - mu).norm(dim=1)
        gain_minus = (_encoder_mean(model, minus) - mu).norm(dim=1)
    take_minus = (gain_minus > gain_plus).view(-1, *[1] * (x.dim() - 1))
    return torch.where(take_minus, minus, plus)


def _check_steps(steps: Sequence[float] | Tensor) -> list[float]:
    steps = [float(s) for s in (steps.tolist() if isinstance(steps, Tensor) else steps)]
    if not steps:
        raise ValueError("steps must not be empty")
    return [_check_step(s) for s in steps]


def mse_along_directions(model: nn.Module, x: Tensor, spectrum: PullbackSpectrum, steps: Sequence[float] | Tensor,
                         n_directions: int = 5, choose_sign: bool = True,
                         batch_size: int = 512) -> Tensor:
    """Mean over images of MSE(x, decode(mu(x_c))), x_c = eigen_attack along the k-th eigendirection: (n_directions, S).

    ``spectrum`` is that of x (directions (B, >= n_directions, N)); ``choose_sign`` lets the
    attacker pick +-v per image and step (see :func:`eigen_attack`). The paper's curves use
    the top 5 directions and 40 log-spaced steps in [0.01, 10].
    """
    _check_images(x)
    _check_batch_size(batch_size)
    steps = _check_steps(steps)
    available = spectrum.directions.shape[1] if spectrum.directions.dim() == 3 else 0
    if spectrum.directions.shape[0] != len(x) or not 1 <= n_directions <= available:
        raise ValueError(f"need 1 <= n_directions <= {available} directions for each of the {len(x)} images; "
                         f"got n_directions = {n_directions} and directions of shape "
                         f"{tuple(spectrum.directions.shape)}")
    device = _model_device(model, x.device)
    total = torch.zeros(n_directions, len(steps), dtype=torch.float64)
    with evaluation_mode(model), torch.no_grad():
        for start in progress_bar(range(0, len(x), batch_size), desc="MSE along eigendirections"):
            chunk = x[start:start + batch_size].to(device)
            directions = spectrum.directions[start:start + batch_size].to(device)
            for k in range(n_directions):
                for j, step in enumerate(steps):
                    attacked = eigen_attack(chunk, directions[:, k], step, model if choose_sign else None)
                    reconstruction = model.decode(_encoder_mean(model, attacked))
                    total[k, j] += (chunk - reconstruction).pow(2).flatten(1).mean(1).sum().double().cpu()
    return (total / len(x)).to(x.dtype)


def latent_displacement(model: nn.Module, x: Tensor, direction: Tensor, steps: Sequence[float] | Tensor,
                        choose_sign: bool = True, batch_size: int = 512) -> Tensor:
    """Mean over images of ||mu(x_c) - mu(x)||, x_c = eigen_attack(x, direction, step), per step: (S,)."""
    _check_images(x)
    _check_batch_size(batch_size)
    steps = _check_steps(steps)
    if direction.shape != (len(x), x[0].numel()):
        raise ValueError(f"direction must be (B, N) = {(len(x), x[0].numel())} for images of shape "
                         f"{tuple(x.shape)}, not {tuple(direction.shape)}")
    device = _model_device(model, x.device)
    total = torch.zeros(len(steps), dtype=torch.float64)
    with evaluation_mode(model), torch.no_grad():
        for start in progress_bar(range(0, len(x), batch_size), desc="latent displacement"):
            chunk = x[start:start + batch_size].to(device)
            v = direction[start:start + batch_size].to(device)
            mu = _encoder_mean(model, chunk)
            for j, step in enumerate(steps):
                attacked = eigen_attack(chunk, v, step, model if choose_sign else None)
                total[j] += (_encoder_mean(model, attacked) - mu).norm(dim=1).sum().double().cpu()
    return (total / len(x)).to(x.dtype)


def first_crossing(steps: Sequence[float], values: Sequence[float], level: float) -> float:
    """The smallest step at which a curve sampled at increasing ``steps`` reaches ``level``.

    Linear interpolation in log(step) between the last sample below ``level`` and the first at or
    above it; ``steps[0]`` if the curve starts at or above ``level``; ``inf`` if it never gets there.
    Steps must be positive and strictly increasing (the log-spaced grids of the MSE curves).
    """
    steps_, values_ = [float(s) for s in steps], [float(v) for v in values]
    if len(steps_) != len(values_) or not steps_:
        raise ValueError(f"steps and values must be non-empty and of one length, not {len(steps_)} and {len(values_)}")
    if steps_[0] <= 0 or any(b <= a for a, b in zip(steps_, steps_[1:])):
        raise ValueError("steps must be positive and strictly increasing")
    for i, value in enumerate(values_):
        if value >= level:
            if i == 0:
                return steps_[0]
            below, above = values_[i - 1], value
            fraction = (level - below) / (above - below)
            return math.exp(math.log(steps_[i - 1]) + fraction * (math.log(steps_[i]) - math.log(steps_[i - 1])))
    return math.inf

