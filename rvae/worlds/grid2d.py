"""The 2D-grid task ("Looser is worse", section 3.1 and its footnote 5; Lin et al. 2017): a mixture
of (2n+1)^2 equally weighted spherical Gaussians with means (2i, 2j), -n <= i, j <= n, and
variance 0.0025 (std 0.05), n = 2 for 25 modes; a classifier sends each point to its nearest mean.

Here: the data sampler, a seeded generator, :func:`fit_gan` (the registry's training loop with the
``ns_gan`` method of :mod:`rvae.methods.gan`), and the label function c(G(z)) whose class radius
:mod:`rvae.looseness` estimates. Means, nearest modes and mode counts come from
:mod:`rvae.looseness`.
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

from rvae.looseness import LabelFn, grid_means, nearest_mode
from rvae.methods.gan import MLPGenerator
from rvae.nets import evaluation_mode
from rvae.train import BatchSampler, TrainConfig, TrainResult, train

#: The standard deviation of every component (variance 0.0025).
GRID_STD = 0.05


def sample_grid(count: int, n: int = 2, std: float = GRID_STD, generator: torch.Generator | None = None) -> Tensor:
    """``count`` points (count, 2) of the 2D grid: a uniformly drawn mean plus N(0, std^2 I) noise."""
    means = grid_means(n)
    mode = torch.randint(len(means), (count,), generator=generator)
    return means[mode] + std * torch.randn((count, 2), generator=generator)


def grid_batches(batch_size: int, n: int = 2, std: float = GRID_STD) -> BatchSampler:
    """A batch sampler for :func:`rvae.train.train`: fresh grid points (batch_size, 2) every call."""
    if batch_size < 1 or n < 0 or not std > 0:
        raise ValueError(f"need batch_size >= 1, n >= 0 and std > 0; got {batch_size}, {n}, {std}")

    def sample(generator: torch.Generator) -> Tensor:
        return sample_grid(batch_size, n, std, generator)
    sample.key = f"2D grid n={n} std={std:g}: fresh batches of {batch_size}"
    return sample


def build_generator(latent_dim: int = 2, hidden: int = 128, depth: int = 3, seed: int = 0) -> MLPGenerator:
    """An :class:`MLPGenerator` for 2-D points with weights seeded by ``seed`` (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPGenerator(latent_dim, 2, hidden, depth)


def fit_gan(config: TrainConfig, batch_size: int = 100, n: int = 2, latent_dim: int = 2, hidden: int = 128,
            depth: int = 3, device: str | torch.device = "cpu", checkpoint: str | os.PathLike | None = None,
            progress: bool | None = None) -> tuple[MLPGenerator, TrainResult]:
    """Build a generator (seeded by ``config.seed``) and train it on the grid with ``config`` (method ``ns_gan``).

    Returns (generator, TrainResult); the discriminator is ``result.networks["discriminator"]``.
    """
    if config.method != "ns_gan":
        raise ValueError(f"fit_gan trains the ns_gan method, not {config.method!r}")
    generator = build_generator(latent_dim, hidden, depth, config.seed)
    return generator, train(generator, grid_batches(batch_size, n), config, device, checkpoint, progress)


def mode_distance(points: Tensor, n: int = 2) -> Tensor:
    """Distance (N,) from each point (N, 2) to its nearest grid mean."""
    means = grid_means(n, dtype=points.dtype).to(points.device)
    return (points - means[nearest_mode(points, means)]).norm(dim=1)


def grid_label_fn(generator: MLPGenerator, n: int = 2) -> LabelFn:
    """c(G(z)): the index of the grid mean nearest to G(z), for latent batches z (N, latent_dim)."""
    means = grid_means(n)

    def label_fn(z: Tensor) -> Tensor:
        with torch.no_grad(), evaluation_mode(generator):
            points = generator(z.to(next(generator.parameters()).device, torch.get_default_dtype()))
        return nearest_mode(points.cpu(), means)
    return label_fn
