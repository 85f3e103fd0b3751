"""What a training step costs, measured alike for several methods: the same fresh network, the same
fixed batch, the same process, repeats interleaved across the methods (so that a slow spell of the
machine falls on all of them), the median kept.

    costs = step_costs({"VAE": ("elbo", None), "SE L=20": ("se", SEConfig(selection_budget=20))},
                       "mlp", (1, 28, 28), 32, x)
    costs["SE L=20"] / costs["VAE"]                 # the cost factor against the VAE

Used by the chapter on selection cost (with :func:`selection_options`, its list of options) and by
``benchmarks/step_time.py`` and ``benchmarks/selection_cost.py``.
"""
from __future__ import annotations

import statistics
from typing import Any

import torch
from torch import Tensor

from rvae.nets import build_vae
from rvae.train import TrainConfig, train

WARM_UP = 3


def selection_options(gamma: float, selection_eps: float, reference_budget: int, plain_budgets: list[int],
                      warm_budget: int, warm_step: float, free_step: float) -> dict[str, tuple[str, dict[str, Any]]]:
    """The Smooth Encoder selection options the selection-cost chapter compares, label -> (registry method,
    config fields): the VAE, plain PGD selection at ``reference_budget`` steps ("SE L=20") and at each of
    ``plain_budgets``, warm selection ("warm", ``se-warm``) and free selection ("free", ``se-free``), all
    with the same coupling (gamma) and selection radius."""
    coupling = {"gamma": gamma, "selection_eps": selection_eps}
    options = {"VAE": ("elbo", {}), f"SE L={reference_budget}": ("se", dict(coupling, selection_budget=reference_budget))}
    options.update({f"SE L={b}": ("se", dict(coupling, selection_budget=b)) for b in plain_budgets})
    options["warm"] = ("se-warm", dict(coupling, selection_budget=warm_budget, selection_step=warm_step))
    options["free"] = ("se-free", dict(coupling, selection_step=free_step))
    return options


def seconds_per_step(method: str, config: Any, architecture: str, image_shape: tuple[int, int, int], latent_dim: int,
                     x: Tensor, steps: int, device: str = "cpu") -> float:
    """Wall time per training step of ``method`` on the fixed batch x (rvae.train.train's own timing), after
    WARM_UP steps, on a network seeded 0 (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_vae(architecture, image_shape, latent_dim=latent_dim)
    x = x.to(device)
    train(model, lambda generator: x, TrainConfig(method, config, steps=WARM_UP), device, progress=False)
    return train(model, lambda generator: x, TrainConfig(method, config, steps=steps), device,
                 progress=False).seconds_per_step


def step_costs(variants: dict[str, tuple[str, Any]], architecture: str, image_shape: tuple[int, int, int],
               latent_dim: int, x: Tensor, steps: int = 10, repeats: int = 3, device: str = "cpu") -> dict[str, float]:
    """Median seconds per step of each variant (label -> (method, config or None)), timed as the module says."""
    if steps < 1 or repeats < 1:
        raise ValueError(f"steps and repeats must be >= 1; got {steps} and {repeats}")
    times: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(repeats):
        for label, (method, config) in variants.items():
            times[label].append(seconds_per_step(method, config, architecture, image_shape, latent_dim, x, steps,
                                                 device))
    return {label: statistics.median(values) for label, values in times.items()}
