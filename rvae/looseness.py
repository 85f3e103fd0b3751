"""Class radius, collision probability and the diversity bound of "Looser is worse" (Manoj, 2018).

Setting. A deterministic generator ``g`` maps latent vectors z ~ N(0, I_d) to images and a
classifier ``c`` gives each image one of K labels. A *label function* is the composition
``c(g(z))``: it takes a batch of latent vectors (N, d) and returns N integer labels. The class
of z is the set of latent points with the same label (it need not be connected), and the
**class radius** of z (definition 2.5) is

    r(z) = inf { ||z - z'|| : c(g(z')) != c(g(z)) },

the distance from z to the nearest latent point of another class. The paper's "class radius" of
a model is E[r(z)] under the prior.

Estimating r(z). :func:`class_radius` searches along rays: from each z it draws M random unit
directions (in antithetic pairs u, -u), marches outward on a grid of radii up to a maximum,
bisects between the last grid point with z's label and the first without, and keeps the nearest
point found. A few rounds of local refinement then perturb the best direction and bisect again
along any perturbed ray whose end point at the current distance is of another class. Every
reported distance is the distance to a point whose label was *evaluated* and differs (pushed
64 ulps past the bisected boundary so that float rounding cannot flip it back), so the result
is an **upper bound** on r(z) (not an estimate that can fall on either side). It is tight
as the number of directions grows in low dimension, and it can miss a class thinner than one
grid step along every searched ray (which only loosens the bound). A certified *lower* bound
needs knowledge of the classifier that labels alone cannot give; :func:`class_radius` reports
one only when the caller supplies it (``lower_bound``, e.g. a closed form or a Lipschitz margin),
otherwise NaN. :func:`expected_class_radius` averages the per-z upper bounds over z drawn from
the prior, so it is an upper estimate of E[r(z)], with a t-interval for the Monte Carlo error.

The bounds (appendix B, after Fawzi, Fawzi and Fawzi 2018, "Adversarial vulnerability for any
classifier"). Write p_i for the probability of class i, phi and Phi for the standard normal
density and distribution function. Gaussian isoperimetry says that the set of points within
distance t of the other classes (prior mass 1 - p_i = Phi(a_i)) has mass at least
Phi(a_i + t); hence P[r(z) > t] <= sum_i (1 - Phi(a_i + t)), and integrating over t,

    E[r(z)] <= sum_i [ p_i Phi^-1(p_i) + phi(Phi^-1(p_i)) ]          (lemmas B.1 and B.4),

valid for every p (:func:`isoperimetric_bound`). When every p_i <= 1/5, the Gaussian tail
inequality Phi^-1(1 - x) >= sqrt(log(1 / (4 pi x^2 log(1/x)))) (lemma B.2) bounds each term by
p_i h(p_i) with h(x) = log(4 pi log(1/x)) / sqrt(2 log(1/x)) (:func:`per_class_bound`), and h is
concave on (0, 1) (lemma B.6), so Jensen's inequality with weights p_i gives theorem 3.1,

    E[r(z)] <= h(||p||^2),   ||p||^2 = sum_i p_i^2 = P[c(g(z1)) = c(g(z2))]

(:func:`diversity_bound`). h is increasing on (0, exp(-e^2 / (4 pi))] ~ (0, 0.555] and
||p||^2 >= 1/K, so the bound is smallest for the uniform p (theorem 3.2, :func:`uniform_bound`):
log(4 pi log K) / sqrt(2 log K), which decreases to 0 as K grows (theorem 3.3).

Library and hand-written code. Normal distribution functions come from ``scipy.stats.norm`` and
``torch.special``, intervals from ``scipy.stats.t``, integrals from ``scipy.integrate.quad``, root
finding from ``scipy.optimize.brentq``, nearest means from ``torch.cdist``. Hand-written: the ray
search (library root finders bracket one continuous scalar function at a time; here we need a
batched search on integer labels, which is a march and a bisection), the unbiased collision
estimator and its exact variance (a few lines of counting), and the closed forms of the toy
examples, each derived in its docstring.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import integrate, optimize
from scipy import stats as scipy_stats
from torch import Tensor, nn

from rvae.nets import evaluation_mode
from rvae.stats import CONFIDENCE, Evidence

#: A composed classifier c(g(.)): a batch of latent vectors (N, d) to N integer labels.
LabelFn = Callable[[torch.Tensor], torch.Tensor]

#: Theorem 3.1 needs every class probability at most this.
MAX_CLASS_PROBABILITY = 0.2


# --------------------------------------------------------------------------------------------
# The class-radius search
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassRadius:
    """A bracket on r(z) for each of N latent points.

    ``upper``: distance to ``points``, latent points whose label was evaluated and differs
    from z's (inf where none was found); ``found``: whether one was found; ``lower``: a certified
    lower bound where the caller supplied one, else NaN; ``labels``: the labels c(g(z)).
    """
    upper: torch.Tensor
    lower: torch.Tensor
    found: torch.Tensor
    points: torch.Tensor
    labels: torch.Tensor


def _labels(label_fn: LabelFn, z: torch.Tensor, chunk: int) -> torch.Tensor:
    """label_fn over z in chunks of at most ``chunk`` rows, as a flat long tensor."""
    if z.shape[0] == 0:
        return torch.empty(0, dtype=torch.long, device=z.device)
    parts = [torch.as_tensor(label_fn(block)).reshape(-1).long() for block in z.split(chunk)]
    out = torch.cat(parts).to(z.device)
    if out.shape[0] != z.shape[0]:
        raise ValueError(f"label_fn returned {out.shape[0]} labels for {z.shape[0]} points; it "
                         "must return one integer label per row")
    return out


def _bisect(label_fn: LabelFn, z: torch.Tensor, u: torch.Tensor, label: torch.Tensor,
            lo: torch.Tensor, hi: torch.Tensor, steps: int, chunk: int) -> torch.Tensor:
    """Shrink [lo, hi] along rays z + t u, keeping label(z + lo u) == label != label(z + hi u).

    Returns hi: the ray parameter of an evaluated point of another class.
    """
    for _ in range(steps):
        mid = (lo + hi) / 2
        other = _labels(label_fn, z + mid[:, None] * u, chunk) != label
        hi = torch.where(other, mid, hi)
        lo = torch.where(other, lo, mid)
    return hi


def _unit_directions(n: int, m: int, d: int, generator: torch.Generator | None,
                     like: torch.Tensor) -> torch.Tensor:
    """(n, m, d) random unit vectors, uniform on the sphere, in antithetic pairs (u, -u)."""
    half = torch.randn(n, m // 2, d, generator=generator, dtype=like.dtype)
    half = half / torch.linalg.vector_norm(half, dim=-1, keepdim=True)
    return torch.cat([half, -half], dim=1).to(like.device)


def class_radius(label_fn: LabelFn, z: torch.Tensor, directions: int = 64,
                 max_radius: float = 6.0, steps: int = 48, bisections: int = 24,
                 refine_rounds: int = 16, refine_directions: int = 16,
                 generator: torch.Generator | None = None, chunk: int = 65536,
                 lower_bound: Callable[[torch.Tensor], torch.Tensor] | None = None
                 ) -> ClassRadius:
    """Bracket the class radius r(z) of each row of z (N, d) by a seeded ray search.

    Directional search gives an upper bound: from each z, ``directions`` random unit rays (in
    antithetic pairs) are marched out to ``max_radius`` in ``steps`` equal steps; the rays whose
    label changes first are bisected ``bisections`` times, and ``refine_rounds`` rounds of
    ``refine_directions`` perturbations of the best ray (angular scales from 0.003 to 1 radian)
    are bisected from z whenever they end in another class at the current distance. Every
    reported distance is to an evaluated point of another class, so ``upper`` >= r(z); it is
    tight as the number of directions grows in low dimension. A class thinner than one step
    along every ray can be missed. Where no ray changes label within ``max_radius``, ``upper``
    is inf and ``found`` is False (that certifies nothing). ``lower`` holds ``lower_bound(z)``
    if given (checked not to exceed ``upper``), else NaN. ``label_fn`` is called on at most
    ``chunk`` rows at a time; the cost is about directions x (steps to the first change) calls
    per z for the march, plus refine_rounds x refine_directions x (1 + bisections) at most.
    """
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] < 1:
        raise ValueError(f"z must be a non-empty (N, d) batch with d >= 1; got shape {tuple(z.shape)}")
    if directions < 2 or directions % 2:
        raise ValueError(f"directions must be an even number >= 2 (antithetic pairs); got {directions}")
    if not (max_radius > 0 and steps >= 1 and bisections >= 0 and refine_rounds >= 0
            and refine_directions >= 1 and chunk >= 1):
        raise ValueError("max_radius must be positive, steps, refine_directions and chunk at "
                         "least 1, bisections and refine_rounds non-negative")
    z = z.detach()
    n, d = z.shape
    with torch.no_grad():
        label = _labels(label_fn, z, chunk)
        u = _unit_directions(n, directions, d, generator, z)
        radii = max_radius * torch.arange(1, steps + 1, dtype=z.dtype, device=z.device) / steps

        # March: stop a row once any of its rays has changed label (later steps cannot win).
        first = torch.full((n, directions), steps, dtype=torch.long, device=z.device)
        open_rows = torch.ones(n, dtype=torch.bool, device=z.device)
        for k in range(steps):
            rows = open_rows.nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            pts = z[rows, None, :] + radii[k] * u[rows]
            other = (_labels(label_fn, pts.reshape(-1, d), chunk).reshape(len(rows), directions)
                     != label[rows, None])
            first[rows] = torch.where(other, k, first[rows])
            open_rows[rows] = ~other.any(dim=1)

        # Bisect every ray that changed at its row's first step.
        row_first = first.min(dim=1).values
        row_idx, dir_idx = ((first == row_first[:, None]) & (first < steps)).nonzero(as_tuple=True)
        k = first[row_idx, dir_idx]
        lo = torch.where(k > 0, radii[(k - 1).clamp(min=0)], torch.zeros_like(radii[k]))
        t = _bisect(label_fn, z[row_idx], u[row_idx, dir_idx], label[row_idx], lo, radii[k],
                    bisections, chunk)
        upper = torch.full((n,), math.inf, dtype=z.dtype, device=z.device)
        upper = upper.scatter_reduce(0, row_idx, t, reduce="amin")
        best_u = torch.zeros_like(z)
        winner = t == upper[row_idx]
        best_u[row_idx[winner]] = u[row_idx[winner], dir_idx[winner]]
        found = torch.isfinite(upper)

        # Refine: perturb the best ray; bisect from z along perturbations that end in another class.
        rows = found.nonzero().squeeze(1)
        for _ in range(refine_rounds if rows.numel() else 0):
            scale = 10 ** torch.empty(len(rows), refine_directions, 1, dtype=z.dtype).uniform_(
                -2.5, 0, generator=generator)
            noise = torch.randn(len(rows), refine_directions, d, generator=generator, dtype=z.dtype)
            cand = best_u[rows, None, :] + scale.to(z.device) * noise.to(z.device)
            cand = cand / torch.linalg.vector_norm(cand, dim=-1, keepdim=True)
            ends = z[rows, None, :] + upper[rows, None, None] * cand
            other = (_labels(label_fn, ends.reshape(-1, d), chunk).reshape(len(rows), -1)
                     != label[rows, None])
            r_i, c_i = other.nonzero(as_tuple=True)
            if r_i.numel() == 0:
                continue
            g_rows = rows[r_i]
            t = _bisect(label_fn, z[g_rows], cand[r_i, c_i], label[g_rows],
                        torch.zeros_like(upper[g_rows]), upper[g_rows], bisections, chunk)
            new_upper = upper.scatter_reduce(0, g_rows, t, reduce="amin")
            better = t == new_upper[g_rows]
            better &= t < upper[g_rows]
            best_u[g_rows[better]] = cand[r_i[better], c_i[better]]
            upper = new_upper

        # A point bisected to within rounding of the boundary can change label with the batch
        # size (float32 kernels differ), so every point is pushed outward along its ray by 64
        # ulps, then re-checked in one batch, pushing again (doubling) where the label is not
        # yet another class. The reported distances are those of the final points.
        points = torch.full_like(z, math.nan)
        rows = found.nonzero().squeeze(1)
        push = 64 * torch.finfo(z.dtype).eps * upper[rows].clamp(min=1.0)
        upper[rows] += push
        for _ in range(40):
            points[rows] = z[rows] + upper[rows, None] * best_u[rows]
            same = _labels(label_fn, points[rows], chunk) == label[rows]
            if not same.any():
                break
            upper[rows[same]] += push[same]
            push[same] *= 2
        else:
            raise ValueError("no point of another class kept its label when re-evaluated; "
                             "the class radius needs a deterministic label function")
        upper = torch.where(found, torch.linalg.vector_norm(points - z, dim=1), upper)

        lower = torch.full_like(upper, math.nan)
        if lower_bound is not None:
            lower = torch.as_tensor(lower_bound(z), dtype=z.dtype, device=z.device).reshape(n)
            if (lower > upper * (1 + 1e-6) + 1e-9).any():
                raise ValueError("lower_bound exceeds the distance to a point of another class "
                                 "that the search found, so it is not a valid lower bound")
    return ClassRadius(upper=upper, lower=lower, found=found, points=points, labels=label)


@dataclass(frozen=True)
class RadiusEstimate:
    """E[r(z)] estimated as the mean of per-z upper bounds, with a t-interval (``low``, ``high``).

    ``mean`` is inf and the interval NaN when the search found no other class for some z
    (``found_fraction`` < 1). The interval covers Monte Carlo error over z, not the search's
    own (upward) bias.
    """
    mean: float
    low: float
    high: float
    sem: float
    n: int
    found_fraction: float
    confidence: float
    radius: ClassRadius
    z: torch.Tensor


def expected_class_radius(label_fn: LabelFn, dim: int, n: int, seed: int = 0,
                          confidence: float = 0.95, dtype: torch.dtype | None = None,
                          device: torch.device | str = "cpu", **search) -> RadiusEstimate:
    """Upper estimate of E[r(z)] over z ~ N(0, I_dim): n draws, :func:`class_radius` on each.

    Seeded by ``seed`` (latents and search directions); ``search`` goes to :func:`class_radius`.
    The interval is the Student-t interval mean +- t_{n-1} * s / sqrt(n) (``scipy.stats.t``).
    """
    if dim < 1 or n < 2:
        raise ValueError(f"dim must be >= 1 and n >= 2; got dim={dim}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence}")
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, dim, generator=generator, dtype=dtype or torch.get_default_dtype())
    z = z.to(device)
    radius = class_radius(label_fn, z, generator=generator, **search)
    values = radius.upper.double().cpu().numpy()
    found_fraction = float(radius.found.float().mean())
    if found_fraction < 1:
        mean, low, high, sem = math.inf, math.nan, math.nan, math.nan
    else:
        mean, sem = float(values.mean()), float(scipy_stats.sem(values))
        if sem > 0:
            low, high = (float(v) for v in scipy_stats.t.interval(confidence, n - 1, loc=mean,
                                                                   scale=sem))
        else:
            low = high = mean
    return RadiusEstimate(mean=mean, low=low, high=high, sem=sem, n=n,
                          found_fraction=found_fraction, confidence=confidence,
                          radius=radius, z=z)


def capped_mean_radius(estimate: RadiusEstimate, cap: float) -> float:
    """The mean of min(r_upper(z), cap): finite even where some searches found no other class.

    For *ranking* models (a z whose search found nothing counts as the largest radius); it is not
    an upper bound on E[r] when any search failed (E[r] may then be infinite).
    """
    if not cap > 0:
        raise ValueError(f"cap must be positive; got {cap}")
    return float(estimate.radius.upper.clamp(max=cap).double().mean())


def decoded_label_fn(model: nn.Module, classifier: nn.Module, device: str | torch.device = "cpu") -> LabelFn:
    """c(g(z)): the classifier's label (argmax) of the decoder mean ``model.decode(z)`` for latent
    batches z (N, d). Both networks in evaluation mode (BatchNorm on running statistics), no
    gradients; labels come back on the CPU."""
    def label_fn(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), evaluation_mode(model), evaluation_mode(classifier):
            return classifier(model.decode(z.to(device, torch.get_default_dtype()))).argmax(dim=1).cpu()
    return label_fn


# --------------------------------------------------------------------------------------------
# Holes: prior mass far from every code of the data
# --------------------------------------------------------------------------------------------

def nearest_code_distance(z: torch.Tensor, codes: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(N,) distance from each row of z (N, d) to its nearest row of ``codes`` (M, d) (``torch.cdist``)."""
    if z.ndim != 2 or codes.ndim != 2 or z.shape[1] != codes.shape[1] or len(codes) == 0:
        raise ValueError(f"z (N, d) and a non-empty codes (M, d) are needed; got {tuple(z.shape)}, {tuple(codes.shape)}")
    codes = codes.to(z.dtype)
    return torch.cat([torch.cdist(block, codes).min(dim=1).values for block in z.split(chunk)])


def prior_reference_distances(dim: int, n_codes: int, n_prior: int, seed: int = 0) -> torch.Tensor:
    """(n_prior,) distances from prior draws to the nearest of ``n_codes`` codes drawn from the prior.

    What :func:`nearest_code_distance` gives for an encoder whose codes of ``n_codes`` images are
    distributed exactly as N(0, I_dim): the floor of the holes measure. Its (1 - f) quantile is the
    distance delta at which such an encoder leaves a fraction f of the prior's mass as holes, which
    fixes delta so that it means the same in every latent dimension.
    """
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(n_codes, dim, generator=generator)
    return nearest_code_distance(torch.randn(n_prior, dim, generator=generator), codes)


# --------------------------------------------------------------------------------------------
# Collision probability and the bounds
# --------------------------------------------------------------------------------------------

def _probabilities(p) -> np.ndarray:
    """p as a 1-D float array, checked to be a probability vector."""
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) \
            or abs(p.sum() - 1) > 1e-6:
        raise ValueError("probabilities must be a non-empty 1-D vector of non-negative numbers "
                         f"summing to one (got sum {p.sum() if p.size else 0:.6g})")
    return p


def _label_array(labels, num_classes: int) -> np.ndarray:
    """labels as a 1-D int array in [0, num_classes), with at least two of them."""
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"the number of classes K must be an integer >= 1; got {num_classes}")
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size < 2 or not np.issubdtype(labels.dtype, np.integer) \
            or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be a 1-D array of at least two integers in [0, {num_classes})")
    return labels


def class_frequencies(labels, num_classes: int) -> np.ndarray:
    """The fraction of the sampled labels in each of the K classes (the plug-in p)."""
    labels = _label_array(labels, num_classes)
    return np.bincount(labels, minlength=int(num_classes)) / labels.size


def collision_probability(labels, num_classes: int) -> float:
    """Unbiased estimate of ||p||^2 = P[two independent samples share a class].

    The fraction of ordered pairs of distinct samples with equal labels,
    sum_i n_i (n_i - 1) / (n (n - 1)), is a U-statistic, hence unbiased (the plug-in
    sum_i (n_i / n)^2 is biased upward by about (1 - ||p||^2) / n).
    """
    labels = _label_array(labels, num_classes)
    counts = np.bincount(labels, minlength=int(num_classes)).astype(float)
    n = labels.size
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def collision_from_probabilities(p) -> float:
    """||p||^2 = sum_i p_i^2 for a given probability vector."""
    p = _probabilities(p)
    return float(np.sum(p ** 2))


def collision_std_error(p, n: int) -> float:
    """Exact standard error of :func:`collision_probability` from n samples of distribution p.

    For the U-statistic with kernel 1[x = y]: Var = 4 (n - 2) / (n (n - 1)) * zeta1 +
    2 / (n (n - 1)) * zeta2, with zeta1 = sum p^3 - (sum p^2)^2 and zeta2 = s (1 - s), s = sum p^2.
    Pass the estimated frequencies for a plug-in standard error.
    """
    p = _probabilities(p)
    if n < 2:
        raise ValueError(f"the number of samples n must be >= 2; got {n}")
    s = float(np.sum(p ** 2))
    zeta1 = float(np.sum(p ** 3)) - s ** 2
    zeta2 = s * (1 - s)
    return math.sqrt(max(0.0, 4 * (n - 2) / (n * (n - 1)) * zeta1 + 2 / (n * (n - 1)) * zeta2))


def diversity_bound(collision):
    """Theorem 3.1's bound h(||p||^2) = log(4 pi log(1/x)) / sqrt(2 log(1/x)), x = ||p||^2.

    The formula is defined for x in (0, 1); it bounds E[r(z)] only when every class probability
    is at most 1/5 (see :func:`bound_applies`). Accepts a number (returns a float) or an array.
    """
    x = np.asarray(collision, dtype=float)
    if np.any(~np.isfinite(x)) or np.any(x <= 0) or np.any(x >= 1):
        raise ValueError("the collision probability ||p||^2 must lie strictly between 0 and 1")
    y = np.log(1 / x)
    value = np.log(4 * np.pi * y) / np.sqrt(2 * y)
    return float(value) if value.ndim == 0 else value


def bound_applies(p) -> bool:
    """Whether theorems 3.1-3.2 cover p: every class probability is at most 1/5.

    Classes of probability zero are ignored (dropping them changes neither r nor ||p||^2).
    """
    return bool(_probabilities(p).max() <= MAX_CLASS_PROBABILITY + 1e-12)


def uniform_bound(num_classes: int) -> float:
    """Theorem 3.2: the smallest value of the bound, at p uniform on K classes: h(1/K).

    log(4 pi log K) / sqrt(2 log K); defined for K >= 2 and a bound on E[r(z)] for K >= 5.
    """
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"the number of classes K must be an integer >= 2; got {num_classes}")
    return diversity_bound(1.0 / num_classes)


def per_class_bound(p) -> float:
    """The step before Jensen in the proof of theorem 3.1: sum_i p_i h(p_i).

    Lies between :func:`isoperimetric_bound` and :func:`diversity_bound` when every p_i <= 1/5;
    zero-probability classes contribute nothing.
    """
    p = _probabilities(p)
    p = p[p > 0]
    if np.any(p >= 1):
        raise ValueError("per_class_bound needs at least two classes of positive probability")
    return float(np.sum(p * diversity_bound(p)))


def isoperimetric_bound(p) -> float:
    """The Gaussian-isoperimetry bound of lemmas B.1 / B.4 (Fawzi et al. 2018), valid for any p.

    E[r(z)] <= sum_i [p_i Phi^-1(p_i) + phi(Phi^-1(p_i))]; zero-probability classes add 0. With all
    the mass on one class there is no boundary to reach, r(z) = inf, and so is the bound.
    """
    p = _probabilities(p)
    p = p[p > 0]
    if np.any(p >= 1):
        return math.inf
    a = scipy_stats.norm.ppf(p)
    terms = np.where(p < 1, p * a + scipy_stats.norm.pdf(a), 0.0)
    return float(np.sum(terms))


@dataclass(frozen=True)
class LabelStatistics:
    """What the labels of n independent samples say about p and about theorem 3.1's bound.

    ``collision`` is the unbiased estimate of ||p||^2 (:func:`collision_probability`) with
    ``collision_se`` its plug-in standard error, ``collision_entropy`` = -log ``collision``;
    ``applies`` says whether every estimated p_i <= 1/5 (theorem 3.1's assumption);
    ``theorem_bound`` = h(||p||^2) (inf when the estimate is 0 or 1); ``per_class`` =
    sum_i p_i h(p_i), the step before Jensen (NaN when the theorem does not apply);
    ``isoperimetric`` = lemma B.1's bound at the plug-in p, valid for every p (inf for one class).
    """
    n: int
    frequencies: np.ndarray
    classes_seen: int
    collision: float
    collision_se: float
    collision_entropy: float
    applies: bool
    theorem_bound: float
    per_class: float
    isoperimetric: float


def label_statistics(labels, num_classes: int) -> LabelStatistics:
    """:class:`LabelStatistics` of ``labels`` (n >= 2 integers in [0, num_classes))."""
    p = class_frequencies(labels, num_classes)
    n = _label_array(labels, num_classes).size
    collision = collision_probability(labels, num_classes)
    applies = bound_applies(p)
    return LabelStatistics(
        n=n, frequencies=p, classes_seen=int((p > 0).sum()), collision=collision,
        collision_se=collision_std_error(p, n),
        collision_entropy=-math.log(collision) if collision > 0 else math.inf,
        applies=applies, theorem_bound=diversity_bound(collision) if 0 < collision < 1 else math.inf,
        per_class=per_class_bound(p) if applies else math.nan, isoperimetric=isoperimetric_bound(p))


def collision_entropies(labels, num_classes: int, axis: int = -1) -> np.ndarray:
    """-log of the unbiased collision estimate of every label sequence along ``axis``, vectorised.

    ``labels`` (..., n) integers (or floats holding integers, as ``scipy.stats.bootstrap`` passes
    resamples); one ``bincount`` over all sequences at once, each offset by K times its index.
    A sequence without a single collision gets -log(1e-300) ~ 690.8 rather than inf.
    """
    labels = np.moveaxis(np.asarray(labels), axis, -1).astype(np.int64)
    lead, n = labels.shape[:-1], labels.shape[-1]
    flat = labels.reshape(-1, n)
    offsets = (np.arange(len(flat)) * num_classes)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=len(flat) * num_classes)
    counts = counts.reshape(len(flat), num_classes).astype(np.float64)
    collision = (counts * (counts - 1)).sum(axis=1) / (n * (n - 1))
    return -np.log(np.maximum(collision, 1e-300)).reshape(lead)


def collision_entropy_difference(first, second, num_classes: int, confidence: float = CONFIDENCE,
                                 resamples: int = 9999, seed: int = 0) -> Evidence:
    """Collision entropy of ``first``'s labels minus that of ``second``'s: a paired BCa bootstrap.

    ``first`` and ``second`` are the labels of two models' samples decoded from the *same* latent
    draws (pair i: one z, decoded by each model), so the draws are resampled in pairs
    (``scipy.stats.bootstrap`` with a vectorised statistic, in batches that keep memory small).
    """
    a = np.asarray(first.cpu() if isinstance(first, Tensor) else first).astype(np.int64)
    b = np.asarray(second.cpu() if isinstance(second, Tensor) else second).astype(np.int64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 3:
        raise ValueError(f"two equal 1-d label arrays of at least 3 labels are needed; got {a.shape}, {b.shape}")
    for labels in (a, b):
        _label_array(labels, num_classes)                          # range check, one clear error

    def difference(x, y, axis=-1):
        return collision_entropies(x, num_classes, axis) - collision_entropies(y, num_classes, axis)

    result = scipy_stats.bootstrap((a, b), difference, paired=True, vectorized=True, confidence_level=confidence,
                                   n_resamples=resamples, method="BCa", batch=max(1, 2_000_000 // len(a)),
                                   random_state=np.random.default_rng(seed))
    return Evidence("paired BCa bootstrap", len(a), float(difference(a, b)), float(result.confidence_interval.low),
                    float(result.confidence_interval.high))


def max_collision_entropy(mean_radius: float) -> float:
    """Theorem 3.1 read backwards: the largest collision entropy -log ||p||^2 allowed by E[r].

    h(y) = log(4 pi y) / sqrt(2 y) decreases for y >= e^2 / (4 pi), and the theorem's
    assumption gives y >= log 5, so E[r] <= h(y) means y <= h^-1(E[r]). Returns NaN when
    E[r] > h(log 5) ~ 1.676: then no p with every p_i <= 1/5 is consistent with it.
    """
    if not mean_radius > 0:
        raise ValueError(f"the mean class radius must be positive; got {mean_radius}")

    def h(y: float) -> float:
        return math.log(4 * math.pi * y) / math.sqrt(2 * y) - mean_radius

    low, high = math.log(1 / MAX_CLASS_PROBABILITY), 1e15
    if h(low) < 0:
        return math.nan
    if h(high) > 0:
        raise ValueError(f"the mean class radius {mean_radius} is too small to invert")
    return float(optimize.brentq(h, low, high, xtol=1e-12, rtol=1e-12))


# --------------------------------------------------------------------------------------------
# A linear decoder with a linear classifier (exact radius, for checks)
# --------------------------------------------------------------------------------------------

def linear_label_fn(weight: torch.Tensor, bias: torch.Tensor, decoder: torch.Tensor | None = None,
                    offset: torch.Tensor | None = None) -> LabelFn:
    """c(g(z)) = argmax(W (A z + a) + b): classifier W (K, D), b (K,); decoder A (D, d), a (D,)."""
    def label_fn(z: torch.Tensor) -> torch.Tensor:
        x = z if decoder is None else z @ decoder.T
        x = x if offset is None else x + offset
        return (x @ weight.T + bias).argmax(dim=1)
    return label_fn


def linear_class_radius(z: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                        decoder: torch.Tensor | None = None,
                        offset: torch.Tensor | None = None) -> torch.Tensor:
    """Exact r(z) for :func:`linear_label_fn`.

    In latent space the classifier is argmax(V z + e) with V = W A, e = W a + b. The class of z
    (label c) is the intersection of half-spaces (v_c - v_j) . z + e_c - e_j >= 0, so the
    distance to its complement is the smallest distance to their hyperplanes,
    min_j ((v_c - v_j) . z + e_c - e_j) / ||v_c - v_j|| (inf for a j with v_j = v_c).
    """
    v = weight if decoder is None else weight @ decoder
    e = bias if offset is None else weight @ offset + bias
    scores = z @ v.T + e
    c = scores.argmax(dim=1)
    diff_v = v[c][:, None, :] - v[None, :, :]                      # (N, K, d)
    margin = scores.gather(1, c[:, None]) - scores                 # (N, K)
    norm = torch.linalg.vector_norm(diff_v, dim=-1)
    dist = torch.where(norm > 0, margin / norm.clamp(min=1e-300), torch.full_like(margin, math.inf))
    dist[torch.arange(len(c)), c] = math.inf
    return dist.min(dim=1).values


# --------------------------------------------------------------------------------------------
# Example 2.1: g(z) = z^2, c(x) = 1 + 1[x > 1]
# --------------------------------------------------------------------------------------------

def example21_labels(z: torch.Tensor) -> torch.Tensor:
    """Example 2.1's c(g(z)) for z (N, 1): label 1 on (-1, 1), label 2 elsewhere (not connected)."""
    return 1 + (z[:, 0] ** 2 > 1).long()


def example21_radius(z: torch.Tensor) -> torch.Tensor:
    """Exact r(z) = | |z| - 1 |: the boundary points are z = -1 and z = 1."""
    return (z[:, 0].abs() - 1).abs()


def example21_expected_radius() -> float:
    """E| |z| - 1 | for z ~ N(0, 1), in closed form: 4 Phi(1) - 3 - 2 phi(0) + 4 phi(1) ~ 0.5354.

    With |z| half-normal (density 2 phi on [0, inf)): int_0^1 (1 - t) 2 phi(t) dt
    = 2 Phi(1) - 1 - 2 (phi(0) - phi(1)) and int_1^inf (t - 1) 2 phi(t) dt = 2 phi(1) - 2 (1 - Phi(1)).
    """
    norm = scipy_stats.norm
    return float(4 * norm.cdf(1) - 3 - 2 * norm.pdf(0) + 4 * norm.pdf(1))


def example21_probabilities() -> np.ndarray:
    """(p_1, p_2) = (P[|z| < 1], P[|z| > 1]) = (2 Phi(1) - 1, 2 (1 - Phi(1)))."""
    inside = 2 * scipy_stats.norm.cdf(1) - 1
    return np.array([inside, 1 - inside])


# --------------------------------------------------------------------------------------------
# Example 2.2: the even-lattice classifier on [-5, 5]^2, and the 2D-grid helpers
# --------------------------------------------------------------------------------------------

#: Example 2.2's Voronoi boundaries in each image coordinate (midway between even lattice points).
LATTICE_IMAGE_CUTS = (-3.0, -1.0, 1.0, 3.0)


def grid_means(n: int, spacing: float = 2.0, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The 2D-grid means (spacing i, spacing j) for -n <= i, j <= n: ((2n+1)^2, 2), i-major."""
    if n < 0:
        raise ValueError(f"the grid half-width n must be >= 0; got {n}")
    axis = spacing * torch.arange(-n, n + 1, dtype=dtype or torch.get_default_dtype())
    return torch.cartesian_prod(axis, axis)


def nearest_mode(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Index of the nearest mean (Euclidean) for each row of x (N, 2)."""
    return torch.cdist(x.to(means.dtype), means).argmin(dim=1)


def mode_counts(samples: torch.Tensor, means: torch.Tensor, std: float = 0.05,
                n_std: float = 3.0) -> torch.Tensor:
    """Per mode, the number of samples within n_std * std of it (its nearest mean), (K,)."""
    dist = torch.cdist(samples.to(means.dtype), means)
    nearest = dist.min(dim=1)
    close = nearest.values <= n_std * std
    return torch.bincount(nearest.indices[close], minlength=means.shape[0])


def modes_captured(samples: torch.Tensor, means: torch.Tensor, std: float = 0.05,
                   n_std: float = 3.0, min_count: int = 1) -> int:
    """How many modes have at least ``min_count`` samples within n_std * std of them.

    The 2D-grid task's components have variance 0.0025 (std 0.05); "within 3 std" is the usual
    reading of a high-quality sample.
    """
    return int((mode_counts(samples, means, std, n_std) >= min_count).sum())


def high_quality_fraction(samples: torch.Tensor, means: torch.Tensor, std: float = 0.05,
                          n_std: float = 3.0) -> float:
    """The fraction of samples within n_std * std of some mode."""
    return float(mode_counts(samples, means, std, n_std).sum()) / samples.shape[0]


def lattice_classify(x: torch.Tensor) -> torch.Tensor:
    """Example 2.2's c: index 5 i + j of the nearest point (-4 + 2i, -4 + 2j), 0 <= i, j <= 4."""
    return nearest_mode(x, grid_means(2, dtype=x.dtype))


def _check_kind(kind: str, scale: float) -> None:
    if kind not in ("cdf", "clamp"):
        raise ValueError(f"kind must be 'cdf' or 'clamp'; got {kind!r}")
    if not scale > 0:
        raise ValueError(f"scale must be positive; got {scale}")


def lattice_generator(z: torch.Tensor, kind: str = "cdf", scale: float = 1.0) -> torch.Tensor:
    """A generator g: R^2 -> [-5, 5]^2 for example 2.2 (the paper leaves g unspecified).

    ``"cdf"``: 10 Phi(z) - 5 per coordinate, which pushes N(0, I) onto the uniform distribution on
    (-5, 5)^2, so the 25 classes are equally likely. ``"clamp"``: clamp(scale z, -5, 5). Both are
    increasing in each coordinate, which makes every class a box in latent space.
    """
    _check_kind(kind, scale)
    if kind == "cdf":
        return 10 * torch.special.ndtr(z) - 5
    return (scale * z).clamp(-5, 5)


def lattice_label_fn(kind: str = "cdf", scale: float = 1.0) -> LabelFn:
    """c(g(z)) for example 2.2 with :func:`lattice_generator` of the given kind."""
    _check_kind(kind, scale)

    def label_fn(z: torch.Tensor, kind: str = kind, scale: float = scale) -> torch.Tensor:
        return lattice_classify(lattice_generator(z, kind, scale))
    return label_fn


def lattice_cuts(kind: str = "cdf", scale: float = 1.0) -> np.ndarray:
    """The latent coordinates where the class changes: g's inverse at -3, -1, 1, 3."""
    _check_kind(kind, scale)
    cuts = np.asarray(LATTICE_IMAGE_CUTS)
    return scipy_stats.norm.ppf((cuts + 5) / 10) if kind == "cdf" else cuts / scale


def lattice_radius(z: torch.Tensor, kind: str = "cdf", scale: float = 1.0) -> torch.Tensor:
    """Exact r(z) for example 2.2: the distance from z to the sides of its latent box.

    Each class is a product of intervals between consecutive cuts (the outer ones unbounded), and
    the nearest point outside a box is reached by moving one coordinate to its nearest cut.
    """
    cuts = torch.as_tensor(lattice_cuts(kind, scale), dtype=z.dtype, device=z.device)
    inf = torch.tensor([math.inf], dtype=z.dtype, device=z.device)
    edges = torch.cat([-inf, cuts, inf])
    cell = torch.bucketize(z.contiguous(), cuts)          # interval index per coordinate
    dist = torch.minimum(z - edges[cell], edges[cell + 1] - z)
    return dist.min(dim=1).values


def lattice_probabilities(kind: str = "cdf", scale: float = 1.0) -> np.ndarray:
    """The 25 class probabilities under N(0, I_2), in :func:`lattice_classify`'s order."""
    edges = np.concatenate([[-np.inf], lattice_cuts(kind, scale), [np.inf]])
    axis = np.diff(scipy_stats.norm.cdf(edges))
    return np.outer(axis, axis).reshape(-1)


def lattice_expected_radius(kind: str = "cdf", scale: float = 1.0) -> float:
    """Exact E[r(z)] for example 2.2 by one-dimensional integration.

    r = min(D_1, D_2) with D_k the distance of z_k to its nearest cut, independent and equally
    distributed, so E[r] = int_0^inf S(t)^2 dt with S(t) = P[D > t] = sum over intervals (l, u)
    of P[l + t < z_k < u - t] (``scipy.integrate.quad``).
    """
    edges = np.concatenate([[-np.inf], lattice_cuts(kind, scale), [np.inf]])
    lo, hi = edges[:-1], edges[1:]

    def survival(t: float) -> float:
        return float(np.sum(np.clip(scipy_stats.norm.cdf(hi - t) - scipy_stats.norm.cdf(lo + t),
                                    0, None)))

    half = np.diff(lattice_cuts(kind, scale)).max() / 2
    inner = integrate.quad(lambda t: survival(t) ** 2, 0, half,
                           points=sorted(set(np.diff(lattice_cuts(kind, scale)) / 2)))[0]
    outer = integrate.quad(lambda t: survival(t) ** 2, half, np.inf)[0]
    return float(inner + outer)


__all__ = [
    "LabelFn", "ClassRadius", "RadiusEstimate", "class_radius", "expected_class_radius",
    "class_frequencies", "collision_probability", "collision_from_probabilities",
    "collision_std_error", "diversity_bound", "bound_applies", "uniform_bound", "per_class_bound",
    "isoperimetric_bound", "max_collision_entropy", "linear_label_fn", "linear_class_radius",
    "example21_labels", "example21_radius", "example21_expected_radius", "example21_probabilities",
    "LATTICE_IMAGE_CUTS", "grid_means", "nearest_mode", "mode_counts", "modes_captured",
    "high_quality_fraction", "lattice_classify", "lattice_generator", "lattice_label_fn",
    "lattice_cuts", "lattice_radius", "lattice_probabilities", "lattice_expected_radius",
    "MAX_CLASS_PROBABILITY",
]
