"""The book's own image classifier, batched decoding and the Fréchet distance (rvae.fidelity)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import linalg, stats

from rvae import fidelity
from rvae.nets import build_vae, reconstruct


def _reference_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The FID formula with scipy.linalg.sqrtm of S_a S_b (the usual route), as an independent check."""
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    cross = linalg.sqrtm(cov_a @ cov_b).real
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * cross))


def _features(n: int, k: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(k, k)) / math.sqrt(k)
    return scale * rng.normal(size=(n, k)) @ mixing + shift


# ---------------------------------------------------------------------------- Fréchet distance

def test_frechet_distance_matches_the_sqrtm_route_and_the_closed_form_for_diagonal_covariances():
    a, b = _features(400, 6, seed=0), _features(300, 6, seed=1, shift=0.7, scale=1.5)
    assert fidelity.frechet_distance(a, b) == pytest.approx(_reference_frechet(a, b), rel=1e-8)
    # commuting (diagonal) covariances: ||m_a - m_b||^2 + sum_i (s_a,i - s_b,i)^2
    c = _exact_moments(500, mean=np.zeros(3), std=np.array([1.0, 2.0, 3.0]), seed=2)
    d = _exact_moments(400, mean=np.ones(3), std=np.array([3.0, 1.0, 0.5]), seed=3)
    assert fidelity.frechet_distance(c, d) == pytest.approx(3.0 + 4.0 + 1.0 + 6.25, rel=1e-9)


def _exact_moments(n: int, mean: np.ndarray, std: np.ndarray, seed: int) -> np.ndarray:
    """n samples whose sample mean is exactly ``mean`` and sample covariance exactly diag(std^2)."""
    x = np.random.default_rng(seed).normal(size=(n, len(mean)))
    q = np.linalg.qr(x - x.mean(0))[0]                  # orthonormal columns, each with mean zero
    return q * math.sqrt(n - 1) * std + mean


def test_frechet_distance_is_symmetric_zero_on_itself_and_invariant_to_rotations():
    a, b = _features(300, 5, seed=3), _features(300, 5, seed=4, shift=0.3)
    assert fidelity.frechet_distance(a, b) == pytest.approx(fidelity.frechet_distance(b, a), rel=1e-8)
    assert abs(fidelity.frechet_distance(a, a)) < 1e-8
    rotation = stats.special_ortho_group.rvs(5, random_state=5)
    assert fidelity.frechet_distance(a @ rotation, b @ rotation) == pytest.approx(fidelity.frechet_distance(a, b),
                                                                                  rel=1e-8)


def test_frechet_distance_rejects_mismatched_or_too_small_feature_sets():
    with pytest.raises(ValueError, match="differ in width"):
        fidelity.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="n >= 2"):
        fidelity.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))


def test_frechet_log_ratio_finds_the_closer_model_and_its_interval_covers_the_estimate():
    real = _features(600, 4, seed=6)
    close, far = _features(600, 4, seed=7, shift=0.1), _features(600, 4, seed=8, shift=1.0)
    evidence = fidelity.frechet_log_ratio(real, close, far, resamples=300, seed=0)
    expected = math.log(fidelity.frechet_distance(close, real)) - math.log(fidelity.frechet_distance(far, real))
    assert evidence.effect == pytest.approx(expected)
    assert evidence.low <= evidence.effect <= evidence.high
    assert evidence.high < 0 and evidence.n == 600
    swapped = fidelity.frechet_log_ratio(real, far, close, resamples=300, seed=0)
    assert swapped.effect == pytest.approx(-evidence.effect) and swapped.low > 0
    with pytest.raises(ValueError, match="paired"):
        fidelity.frechet_log_ratio(real, close, far[:500])


# ---------------------------------------------------------------------------- the classifier

def _two_blob_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: bright left half; class 1: bright right half; both noisy, (n, 1, 8, 8) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, (n,), generator=generator)
    images = 0.3 * torch.rand(n, 1, 8, 8, generator=generator)
    images[labels == 0, :, :, :4] += 0.6
    images[labels == 1, :, :, 4:] += 0.6
    return images, labels


def test_the_classifier_learns_a_separable_task_deterministically_and_leaves_the_global_rng_alone():
    images, labels = _two_blob_images(400, seed=0)
    state = torch.get_rng_state()
    first = fidelity.train_classifier(images, labels, steps=60, batch_size=32, seed=3, hidden=(16,))
    assert torch.equal(torch.get_rng_state(), state)
    second = fidelity.train_classifier(images, labels, steps=60, batch_size=32, seed=3, hidden=(16,))
    for p, q in zip(first.parameters(), second.parameters()):
        assert torch.equal(p, q)
    test_images, test_labels = _two_blob_images(200, seed=1)
    outputs = fidelity.classifier_outputs(first, test_images, batch_size=64)
    assert (outputs["label"] == test_labels).float().mean() > 0.95
    assert not first.training


def test_classifier_outputs_are_the_argmax_the_top_probability_and_the_last_hidden_layer():
    images, labels = _two_blob_images(50, seed=2)
    classifier = fidelity.ImageClassifier((1, 8, 8), hidden=(12, 7), classes=3)
    outputs = fidelity.classifier_outputs(classifier, images, batch_size=16)          # 4 batches
    with torch.no_grad():
        logits = classifier(images)
        features = classifier.features(images)
    assert torch.equal(outputs["label"], logits.argmax(1))
    assert torch.allclose(outputs["confidence"], logits.softmax(1).max(1).values)
    assert outputs["features"].shape == (50, 7) and torch.allclose(outputs["features"], features)


def test_the_classifier_training_rejects_bad_input_with_one_clear_error():
    images, labels = _two_blob_images(10, seed=0)
    with pytest.raises(ValueError, match="equally many"):
        fidelity.train_classifier(images, labels[:5], steps=1)
    with pytest.raises(ValueError, match="steps"):
        fidelity.train_classifier(images, labels, steps=0)
    with pytest.raises(ValueError, match="hidden layer"):
        fidelity.ImageClassifier((1, 8, 8), hidden=())


# ---------------------------------------------------------------------------- batched decoding

def test_batched_decoding_and_reconstruction_equal_the_unbatched_eval_mode_ones_and_restore_the_mode():
    torch.manual_seed(0)
    model = build_vae("tanh_mlp", (1, 28, 28), latent_dim=3)                # BatchNorm: the mode matters
    model.train()
    images = torch.rand(25, 1, 28, 28)
    z = torch.randn(25, 3)
    decoded = fidelity.decode_batched(model, z, batch_size=7)
    reconstructed = fidelity.reconstruct_batched(model, images, batch_size=7)
    assert model.training and all(module.training for module in model.modules())
    model.eval()
    with torch.no_grad():
        assert torch.allclose(decoded, model.decode(z), atol=1e-6)
    assert torch.allclose(reconstructed, reconstruct(model, images), atol=1e-6)
