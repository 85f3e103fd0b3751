"""The downstream protocol: probes, label subsets and robustness curves."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rvae import evaluate


class Identity2D(nn.Module):
    """An 'encoder' whose mean is the first two pixels: attacks on it are easy to reason about."""

    def encode(self, x):
        flat = x.flatten(1)[:, :2]
        return flat, torch.zeros_like(flat)


def _two_blobs(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    centres = torch.tensor([[0.2, 0.2], [0.8, 0.8]])[labels]
    images = torch.zeros(n, 1, 2, 2)
    images.view(n, -1)[:, :2] = (centres + 0.03 * torch.randn(n, 2, generator=g)).clamp(0, 1)
    return images, labels


def test_linear_probe_separates_separable_features():
    images, labels = _two_blobs()
    features = evaluate.encoder_means(Identity2D(), images)
    probe = evaluate.train_linear_probe(features, labels, 2, epochs=50, learning_rate=0.05)
    assert evaluate.probe_accuracy(probe, features, labels) == 1.0


def test_robustness_curve_starts_at_nominal_accuracy_and_collapses_beyond_the_margin():
    images, labels = _two_blobs()
    model = Identity2D()
    features = evaluate.encoder_means(model, images)
    probe = evaluate.train_linear_probe(features, labels, 2, epochs=50, learning_rate=0.05)
    curve = evaluate.robustness_curve(model, probe, images, labels, [0.0, 0.05, 0.5], iterations=20, restarts=2)
    assert curve.at(0.0) == pytest.approx(evaluate.probe_accuracy(probe, features, labels))
    assert curve.at(0.05) > 0.9          # the blobs are 0.3 per pixel from the boundary
    assert curve.at(0.5) == 0.0          # half a unit per pixel crosses it for every example


def test_label_subset_is_stratified_and_seeded():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    chosen = evaluate.label_subset(labels, 0.1, seed=3)
    assert torch.bincount(labels[chosen]).tolist() == [5, 3, 2]
    assert torch.equal(chosen, evaluate.label_subset(labels, 0.1, seed=3))
    assert evaluate.label_subset(labels, 0.001).numel() == 3
    with pytest.raises(ValueError):
        evaluate.label_subset(labels, 0.0)


def test_reconstruction_error_is_the_mean_summed_squared_error_of_the_mean_code():
    from rvae.nets import build_vae
    torch.manual_seed(0)
    model = build_vae("mlp", (1, 3, 3), latent_dim=2, hidden=4)
    images = torch.rand(7, 1, 3, 3, generator=torch.Generator().manual_seed(1))
    by_hand = sum(((model.decode(model.encode(x[None])[0])[0] - x) ** 2).sum().item() for x in images) / 7
    model.train()
    assert evaluate.reconstruction_error(model, images, batch_size=3) == pytest.approx(by_hand, rel=1e-5)
    assert model.training                                  # the mode is restored
    assert evaluate.reconstruction_error(model, images, batch_size=3) > 0
