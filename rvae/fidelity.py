"""How good and how varied are a generator's images, judged by a classifier of our own.

No Inception network can be downloaded here, so the book's Fréchet distance is the FID's formula
in the feature space of a small image classifier trained on the real training images
(:class:`ImageClassifier`, :func:`train_classifier`). Its numbers compare models *within* the book;
they are not comparable with published FIDs. The same classifier labels generated images, which
gives the label distribution p behind the collision probability of :mod:`rvae.looseness`.

- :func:`decode_batched`, :func:`reconstruct_batched`: decoder means for many latents or images,
  in evaluation mode, in batches on a device, returned on the CPU.
- :func:`classifier_outputs`: labels, confidences and features of many images.
- :func:`frechet_distance`: ||m_a - m_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2) between
  Gaussians fitted to two feature sets (Dowson and Landau 1982).
- :func:`frechet_log_ratio`: log FD(a, real) - log FD(b, real) for two models' samples from the same
  latent draws, with a bootstrap interval.

Library and hand-written code. Matrix square roots come from ``numpy.linalg.eigh`` (for symmetric
positive semi-definite matrices this equals ``scipy.linalg.sqrtm`` and avoids its complex round-off);
the bootstrap of :func:`frechet_log_ratio` is written out because it resamples two sources apart
(paired samples, real features on their own), which ``scipy.stats.bootstrap`` cannot (it resamples
every sample together or each independently, and its BCa jackknife would cost n Fréchet distances).
The classifier's training loop is the book's usual Adam loop on the cross-entropy.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from rvae.nets import _check_shape, evaluation_mode
from rvae.stats import CONFIDENCE, Evidence


class ImageClassifier(nn.Module):
    """An MLP image classifier: image (B, C, H, W) -> ``hidden`` ReLU layers -> logits (B, classes).

    :meth:`features` gives the last hidden layer (B, hidden[-1]), the feature space of the book's
    Fréchet distance.
    """

    def __init__(self, image_shape: tuple[int, int, int] = (1, 28, 28), hidden: tuple[int, ...] = (256, 128),
                 classes: int = 10):
        super().__init__()
        if not hidden or min(hidden) < 1 or classes < 2:
            raise ValueError(f"at least one hidden layer of positive width and two classes are needed; "
                             f"got hidden={hidden}, classes={classes}")
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
                     ) -> ImageClassifier:
    """An :class:`ImageClassifier` trained with Adam on the cross-entropy for ``steps`` batches drawn
    with replacement; weights and batches seeded by ``seed`` (the global RNG is left as it was).
    In evaluation mode on return."""
    if steps < 1 or batch_size < 1 or len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"steps and batch_size must be >= 1 and images and labels equally many (not none); got "
                         f"steps={steps}, batch_size={batch_size}, {len(images)} images, {len(labels)} labels")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = ImageClassifier(tuple(images.shape[1:]), hidden, int(labels.max()) + 1).to(device)
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
    """For each image (N, C, H, W): ``label`` (argmax, (N,)), ``confidence`` (largest softmax
    probability, (N,)) and ``features`` (the classifier's ``features``, (N, k)); on the CPU.
    ``classifier`` needs ``features(x)`` and ``head(features)`` (as :class:`ImageClassifier`)."""
    out: dict[str, list[Tensor]] = {"label": [], "confidence": [], "features": []}
    with evaluation_mode(classifier):
        for block in images.split(batch_size):
            features = classifier.features(block.to(device))
            probabilities = classifier.head(features).softmax(dim=1)
            out["label"].append(probabilities.argmax(dim=1).cpu())
            out["confidence"].append(probabilities.max(dim=1).values.cpu())
            out["features"].append(features.cpu())
    return {key: torch.cat(value) for key, value in out.items()}


@torch.no_grad()
def decode_batched(model: nn.Module, z: Tensor, device: str | torch.device = "cpu", batch_size: int = 1000) -> Tensor:
    """Decoder means g(z) (N, C, H, W) for latents z (N, d), in evaluation mode, in batches on ``device``;
    on the CPU."""
    with evaluation_mode(model):
        return torch.cat([model.decode(block.to(device)).cpu() for block in z.split(batch_size)])


@torch.no_grad()
def reconstruct_batched(model: nn.Module, images: Tensor, device: str | torch.device = "cpu",
                        batch_size: int = 1000) -> Tensor:
    """Reconstructions g(mu(x)) (N, C, H, W) from the encoder mean, in evaluation mode, in batches on
    ``device``; on the CPU."""
    with evaluation_mode(model):
        return torch.cat([model.decode(model.encode(block.to(device))[0]).cpu() for block in images.split(batch_size)])


def _moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def _frechet(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray, cov_b: np.ndarray) -> float:
    root = _psd_sqrt(cov_a)
    # tr (S_a^1/2 S_b S_a^1/2)^1/2: the square roots of the eigenvalues of a symmetric PSD matrix
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cov_b @ root), 0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def _feature_array(features, name: str) -> np.ndarray:
    array = np.asarray(features.cpu() if isinstance(features, Tensor) else features, dtype=np.float64)
    if array.ndim != 2 or len(array) < 2:
        raise ValueError(f"{name} must be a (n, k) feature array with n >= 2; got shape {array.shape}")
    return array


def frechet_distance(first, second) -> float:
    """The Fréchet distance between Gaussians fitted to feature sets (n_a, k) and (n_b, k):

    ||m_a - m_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)   (the FID's formula),

    with unbiased covariances. Biased upward at finite n (two samples of one distribution give a
    positive value), so compare distances computed from equally many features.
    """
    a, b = _feature_array(first, "first"), _feature_array(second, "second")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the feature sets differ in width: {a.shape[1]} and {b.shape[1]}")
    return _frechet(*_moments(a), *_moments(b))


def frechet_log_ratio(real, first, second, resamples: int = 1000, seed: int = 0,
                      confidence: float = CONFIDENCE) -> Evidence:
    """log FD(first, real) - log FD(second, real), with a basic bootstrap interval.

    ``first`` and ``second`` are features of two models' samples from the same latent draws (equal
    row counts, row i from one z): they are resampled in pairs; ``real`` is resampled on its own.
    The Fréchet distance is biased upward at finite n, and a resample (with its repeated rows) more
    so, which shifts the replicates away from the estimate; the *basic* (reverse-percentile)
    interval [2t - q_hi, 2t - q_lo] corrects that shift to first order.
    """
    r, a, b = _feature_array(real, "real"), _feature_array(first, "first"), _feature_array(second, "second")
    if a.shape != b.shape or a.shape[1] != r.shape[1]:
        raise ValueError(f"first and second must be paired (equal shapes) and as wide as real; got {a.shape}, "
                         f"{b.shape} and {r.shape}")
    if resamples < 2 or not 0 < confidence < 1:
        raise ValueError(f"resamples must be >= 2 and confidence in (0, 1); got {resamples}, {confidence}")
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
