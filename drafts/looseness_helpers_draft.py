"""DRAFT helpers for chapter 07_looseness ("Looser is worse"), for review. Not part of the package.

Each block names the package module it would join; none changes an existing module. They are
what the chapter draft (``drafts/07_looseness.ipynb``) needs beyond :mod:`rvae.looseness`,
:mod:`rvae.methods.lcvae`, :mod:`rvae.methods.gan` and :mod:`rvae.worlds.grid2d`:

- rvae.looseness: :func:`decoded_label_fn` (c(g(z)) for a VAE decoder and an image classifier),
  :func:`label_statistics` (frequencies, collision probability and entropy, every bound, in one
  record), :func:`capped_mean_radius` (a rankable E[r] when some searches found no boundary),
  :func:`collision_entropy_difference` (paired bootstrap of a difference of collision entropies),
  and the holes measure :func:`nearest_code_distance`, :func:`prior_reference_distances`;
- rvae.nets: :func:`decode_batched`, :func:`reconstruct_batched` (``reconstruct`` has no batching or device);
- a new rvae.fidelity (or rvae.evaluate): :class:`DigitClassifier`, :func:`train_classifier`,
  :func:`classifier_outputs`, :func:`frechet_distance`, :func:`frechet_log_ratio`;
- rvae.nets: the paper's ConvNets of tables 1 and 2 as architectures ``lcvae_conv`` (the paper's
  widths) and ``lcvae_conv_narrow`` (every width divided by 8), registered on import;
- rvae.plots: :func:`latent_scatter`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats as scipy_stats
from torch import Tensor, nn

from rvae.looseness import (LabelFn, RadiusEstimate, bound_applies, class_frequencies, collision_probability,
                            collision_std_error, diversity_bound, isoperimetric_bound, per_class_bound)
from rvae.nets import GaussianEncoder, _check_shape, architecture, evaluation_mode
from rvae.stats import CONFIDENCE, Evidence


# ============================================================================ -> rvae.looseness

def decoded_label_fn(model: nn.Module, classifier: nn.Module, device: str | torch.device = "cpu") -> LabelFn:
    """c(g(z)): the classifier's label (argmax) of the decoder mean g(z), for latent batches z (N, d).

    Both networks in evaluation mode (BatchNorm on running statistics), no gradients; labels on the CPU.
    """
    def label_fn(z: Tensor) -> Tensor:
        with torch.no_grad(), evaluation_mode(model), evaluation_mode(classifier):
            return classifier(model.decode(z.to(device, torch.get_default_dtype()))).argmax(dim=1).cpu()
    return label_fn


@dataclass(frozen=True)
class LabelStatistics:
    """What the labels of n independent samples say about p and about theorem 3.1's bound.

    ``collision`` is the unbiased estimate of ||p||^2 (with ``collision_se``, its plug-in standard
    error), ``collision_entropy`` = -log ``collision``; ``applies`` says whether every estimated
    p_i <= 1/5 (theorem 3.1's assumption); ``theorem_bound`` = h(||p||^2) (inf when ||p||^2 is 1,
    a single class); ``per_class`` = sum_i p_i h(p_i) (the step before Jensen, NaN when the theorem
    does not apply); ``isoperimetric`` = lemma B.1's bound at the plug-in p, valid for every p.
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
    """:class:`LabelStatistics` of ``labels`` (n integers in [0, num_classes))."""
    p = class_frequencies(labels, num_classes)
    n = int(np.asarray(labels.cpu() if isinstance(labels, Tensor) else labels).size)
    collision = collision_probability(labels, num_classes)
    entropy = -math.log(collision) if collision > 0 else math.inf
    applies = bound_applies(p)
    theorem = diversity_bound(collision) if 0 < collision < 1 else math.inf
    return LabelStatistics(n=n, frequencies=p, classes_seen=int((p > 0).sum()), collision=collision,
                           collision_se=collision_std_error(p, n), collision_entropy=entropy, applies=applies,
                           theorem_bound=theorem,
                           per_class=per_class_bound(p) if applies else math.nan,
                           # one class seen: lemma B.1's bound is infinite (P[r > t] <= 1 for every t), but
                           # rvae.looseness.isoperimetric_bound returns 0 for p = (1,) (it drops terms with p_i = 1)
                           isoperimetric=isoperimetric_bound(p) if (p > 0).sum() > 1 else math.inf)


def capped_mean_radius(estimate: RadiusEstimate, cap: float) -> float:
    """The mean of min(r_upper(z), cap): finite where some searches found no boundary within ``cap``.

    Use it to *rank* models (a point whose search found nothing counts as the largest radius);
    it is not an upper bound on E[r] when any search failed (then E[r] may be infinite).
    """
    return float(estimate.radius.upper.clamp(max=cap).double().mean())


def collision_entropies(labels, num_classes: int, axis: int = -1) -> np.ndarray:
    """-log ||p||^2 (unbiased collision estimate) of every label sequence along ``axis``, vectorised.

    ``labels`` (..., n) integers (or floats holding integers, as scipy's bootstrap passes them);
    one ``bincount`` over all sequences at once (each offset by K times its index).
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
    """Collision entropy -log ||p||^2 of ``first``'s labels minus ``second``'s, paired BCa bootstrap.

    ``first`` and ``second`` are the labels of two models' samples from the *same* latent draws
    (pair i: one z, decoded by each model), so the draws are resampled in pairs (scipy's
    ``bootstrap`` with a vectorised statistic, in batches that keep memory small).
    """
    a = np.asarray(first.cpu() if isinstance(first, Tensor) else first).astype(np.int64)
    b = np.asarray(second.cpu() if isinstance(second, Tensor) else second).astype(np.int64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 3:
        raise ValueError(f"two equal 1-d label arrays of at least 3 labels are needed; got {a.shape}, {b.shape}")

    def difference(x, y, axis=-1):
        return collision_entropies(x, num_classes, axis) - collision_entropies(y, num_classes, axis)

    effect = float(difference(a, b))
    result = scipy_stats.bootstrap((a, b), difference, paired=True, vectorized=True, confidence_level=confidence,
                                   n_resamples=resamples, method="BCa", batch=max(1, 2_000_000 // len(a)),
                                   random_state=np.random.default_rng(seed))
    return Evidence("paired BCa bootstrap", len(a), effect, float(result.confidence_interval.low),
                    float(result.confidence_interval.high))


def nearest_code_distance(z: Tensor, codes: Tensor, chunk: int = 4096) -> Tensor:
    """(N,) distance from each row of z (N, d) to its nearest row of ``codes`` (M, d) (``torch.cdist``)."""
    codes = codes.to(z.dtype)
    return torch.cat([torch.cdist(block, codes).min(dim=1).values for block in z.split(chunk)])


def prior_reference_distances(dim: int, n_codes: int, n_prior: int, seed: int = 0) -> Tensor:
    """(n_prior,) distances from prior draws to the nearest of ``n_codes`` codes drawn from the prior itself.

    What :func:`nearest_code_distance` would give for an encoder whose codes of ``n_codes`` images
    were distributed exactly as N(0, I_dim): the floor of the holes measure. Its (1 - f) quantile is
    the distance delta at which such an encoder leaves a fraction f of the prior's mass as holes,
    which fixes delta in a way that means the same in every latent dimension.
    """
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(n_codes, dim, generator=generator)
    return nearest_code_distance(torch.randn(n_prior, dim, generator=generator), codes)


# ============================================================================ -> rvae.nets (batched, device-aware)

@torch.no_grad()
def decode_batched(model: nn.Module, z: Tensor, device: str | torch.device = "cpu", batch_size: int = 1000) -> Tensor:
    """Decoder means g(z) (N, C, H, W) for latents z (N, d), in eval mode, in batches on ``device``; on the CPU."""
    with evaluation_mode(model):
        return torch.cat([model.decode(block.to(device)).cpu() for block in z.split(batch_size)])


@torch.no_grad()
def reconstruct_batched(model: nn.Module, images: Tensor, device: str | torch.device = "cpu",
                        batch_size: int = 1000) -> Tensor:
    """Reconstructions g(mu(x)) (N, C, H, W), in eval mode, in batches on ``device``; on the CPU."""
    with evaluation_mode(model):
        return torch.cat([model.decode(model.encode(block.to(device))[0]).cpu() for block in images.split(batch_size)])


# ============================================================================ -> rvae.fidelity (new)

class DigitClassifier(nn.Module):
    """An MLP image classifier: image (B, C, H, W) -> ``hidden`` ReLU layers -> logits (B, classes).

    :meth:`features` gives the last hidden layer (B, hidden[-1]), the feature space of the
    chapter's Fréchet distance.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), hidden: tuple[int, ...] = (256, 128),
                 classes: int = 10):
        super().__init__()
        sizes = [math.prod(_check_shape(image_shape)), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], classes)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer's activations (B, hidden[-1])."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (B, classes)."""
        return self.head(self.body(x))


def train_classifier(images: Tensor, labels: Tensor, steps: int, batch_size: int = 128, learning_rate: float = 1e-3,
                     seed: int = 0, device: str | torch.device = "cpu", hidden: tuple[int, ...] = (256, 128)
                     ) -> DigitClassifier:
    """A :class:`DigitClassifier` trained with Adam on the cross-entropy for ``steps`` batches drawn
    with replacement; weights and batches seeded by ``seed`` (global RNG untouched). Eval mode on return."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DigitClassifier(tuple(images.shape[1:]), hidden, int(labels.max()) + 1).to(device)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=learning_rate)
    for _ in range(steps):
        index = torch.randint(len(images), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(classifier(images[index].to(device)), labels[index].to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return classifier.eval()


@torch.no_grad()
def classifier_outputs(classifier: nn.Module, images: Tensor, batch_size: int = 1000,
                       device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """For each image: ``label`` (argmax), ``confidence`` (largest softmax probability) and
    ``features`` (the classifier's :meth:`features`, (N, k)), on the CPU."""
    out = {"label": [], "confidence": [], "features": []}
    with evaluation_mode(classifier):
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            features = classifier.features(x)
            probabilities = classifier.head(features).softmax(dim=1)
            out["label"].append(probabilities.argmax(dim=1).cpu())
            out["confidence"].append(probabilities.max(dim=1).values.cpu())
            out["features"].append(features.cpu())
    return {key: torch.cat(value) for key, value in out.items()}


def _moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _frechet(mean_a, cov_a, mean_b, cov_b) -> float:
    root = _psd_sqrt(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def frechet_distance(first, second) -> float:
    """The Fréchet distance between Gaussians fitted to two feature sets (n_a, k) and (n_b, k):

    ||m_a - m_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)   (Dowson & Landau 1982; the FID's formula),

    the matrix square roots from symmetric eigendecompositions (``numpy.linalg.eigh``), which equal
    ``scipy.linalg.sqrtm`` for positive semi-definite matrices. Biased upward at finite n.
    """
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    return _frechet(*_moments(a), *_moments(b))


def frechet_log_ratio(real, first, second, resamples: int = 1000, seed: int = 0,
                      confidence: float = CONFIDENCE) -> Evidence:
    """log FD(first, real) - log FD(second, real), with a basic bootstrap interval.

    ``first`` and ``second`` are features of two models' samples from the same latent draws (equal
    row counts, row i from one z): resampled in pairs; ``real`` is resampled on its own. The
    Fréchet distance is biased upward at finite n, and a bootstrap resample (with its repeated rows)
    more so, which shifts the replicates away from the estimate: the percentile interval can then
    miss the estimate altogether. The *basic* (reverse-percentile) interval
    [2 t - q_hi, 2 t - q_lo] corrects that shift to first order (BCa would too, but its jackknife
    costs n Fréchet distances). Both distances share the real features, so much of their noise
    cancels in the difference.
    """
    r, a, b = (np.asarray(v, dtype=np.float64) for v in (real, first, second))
    if a.shape != b.shape:
        raise ValueError(f"first and second must be paired (equal shapes); got {a.shape} and {b.shape}")
    effect = math.log(frechet_distance(a, r)) - math.log(frechet_distance(b, r))
    generator = np.random.default_rng(seed)
    replicates = np.empty(resamples)
    for k in range(resamples):
        rows, pairs = generator.integers(len(r), size=len(r)), generator.integers(len(a), size=len(a))
        moments_r = _moments(r[rows])
        replicates[k] = (math.log(_frechet(*_moments(a[pairs]), *moments_r))
                         - math.log(_frechet(*_moments(b[pairs]), *moments_r)))
    tail = (1 - confidence) / 2
    upper_quantile, lower_quantile = np.quantile(replicates, [1 - tail, tail])
    return Evidence("basic bootstrap (samples in pairs, real images apart)", len(a), effect,
                    float(2 * effect - upper_quantile), float(2 * effect - lower_quantile))


# ============================================================================ -> rvae.nets

LCVAE_ENCODER_CHANNELS = (128, 256, 512, 1024)      # "Looser is worse", table 1
LCVAE_DECODER_CHANNELS = (256, 128)                 # table 2 (then the image's C channels)
NARROW_DIVISOR = 8                                  # lcvae_conv_narrow: every width divided by this


class LCVAEConvEncoder(GaussianEncoder):
    """The paper's table 1: four 4x4 convolutions of stride 2 (128, 256, 512, 1024 channels), BatchNorm
    and ReLU after each, then one linear layer to (mu, logvar), each (B, d).

    Stated: kernel 4, stride 2, padding "SAME", BatchNorm, ReLU, a linear layer with 1024 inputs.
    Ours: padding 1, which takes 28x28 to 14, 7, 3, 1 and so gives the 1 x 1 x 1024 = 1024 inputs
    the paper states (TensorFlow's SAME would give 2 x 2 x 1024); convolutions without bias
    (BatchNorm has one); one 1024 -> 2d layer for both means and log-variances.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, ...] = LCVAE_ENCODER_CHANNELS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        c, h, w = self.image_shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            c, h, w = out, (h - 2) // 2 + 1, (w - 2) // 2 + 1          # kernel 4, stride 2, padding 1
        if min(h, w) < 1:
            raise ValueError(f"images of {self.image_shape[1:]} are too small for {len(channels)} stride-2 layers")
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, 2 * latent_dim))


class LCVAEConvDecoder(nn.Module):
    """The paper's table 2: a linear layer z (B, d) -> 256 x H/4 x W/4, then two 4x4 transposed
    convolutions of stride 2 (256 -> 128 with BatchNorm and ReLU, 128 -> C with a sigmoid).

    Stated: the linear layer to 12544 = 256 x 7 x 7 for MNIST, the two layers with their channels,
    BatchNorm on the first only, ReLU then sigmoid. Ours: a ReLU after the linear layer (the table
    does not say), padding 1 (which doubles the size exactly), no bias before BatchNorm.
    """

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int,
                 channels: tuple[int, int] = LCVAE_DECODER_CHANNELS):
        super().__init__()
        self.image_shape, self.latent_dim = _check_shape(image_shape), latent_dim
        c, h, w = self.image_shape
        if h % 4 or w % 4:
            raise ValueError(f"the LC-VAE decoder needs a height and width divisible by 4, not {h}x{w}")
        start = (channels[0], h // 4, w // 4)
        self.project = nn.Sequential(nn.Linear(latent_dim, math.prod(start)), nn.ReLU(), nn.Unflatten(1, start))
        self.body = nn.Sequential(nn.ConvTranspose2d(channels[0], channels[1], 4, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(channels[1]), nn.ReLU(),
                                  nn.ConvTranspose2d(channels[1], c, 4, stride=2, padding=1))

    def forward(self, z: Tensor) -> Tensor:
        """Image mean (B, C, H, W) in [0, 1] from z (B, d)."""
        return torch.sigmoid(self.body(self.project(z)))           # (B,256,H/4,W/4) -> (B,C,H,W)


@architecture("lcvae_conv", "Looser is worse, tables 1 and 2: 4 stride-2 convolutions (128-1024 channels), "
                            "2 transposed ones (256-128)")
def _lcvae_conv_pair(image_shape, latent_dim):
    return LCVAEConvEncoder(image_shape, latent_dim), LCVAEConvDecoder(image_shape, latent_dim)


@architecture("lcvae_conv_narrow", f"lcvae_conv with every width divided by {NARROW_DIVISOR} (our CPU stand-in)")
def _lcvae_conv_narrow_pair(image_shape, latent_dim):
    return (LCVAEConvEncoder(image_shape, latent_dim, tuple(c // NARROW_DIVISOR for c in LCVAE_ENCODER_CHANNELS)),
            LCVAEConvDecoder(image_shape, latent_dim, tuple(c // NARROW_DIVISOR for c in LCVAE_DECODER_CHANNELS)))


# ============================================================================ -> rvae.plots

def latent_scatter(ax, codes, labels, title: str = "", limit: float = 4.0, size: float = 2.0) -> None:
    """2-D codes (N, 2) as points coloured by class (tab10), on [-limit, limit]^2 with the prior's
    1, 2 and 3 standard-deviation circles dashed; a legend of the classes."""
    import matplotlib.pyplot as plt
    codes, labels = np.asarray(codes), np.asarray(labels)
    colours = plt.get_cmap("tab10")
    for label in np.unique(labels):
        chosen = labels == label
        ax.scatter(codes[chosen, 0], codes[chosen, 1], s=size, color=colours(int(label) % 10), label=str(label),
                   rasterized=True)
    for radius in (1, 2, 3):
        ax.add_patch(plt.Circle((0, 0), radius, fill=False, ls="--", lw=0.6, color="0.5"))
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
