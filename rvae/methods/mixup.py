"""Latent mixup (local geometry, section 4.2.2, eqs. 9-10): the beta-VAE bound minus a weighted
penalty that asks the encoder and decoder to be linear along chords between examples."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rvae import gaussians
from rvae.methods import Method, register
from rvae.methods.vae import reconstruction_term
from rvae.params import CheckedConfig, option


@dataclass(frozen=True)
class MixupConfig(CheckedConfig):
    beta: float = option(1.0, "weight of the KL term (1: the paper's VAE)", "[0, inf)")
    weight: float = option(1.0, "weight of the penalty C of eq. 10 (not stated in the paper)", "[0, inf)")
    shape: tuple[float, float] = option((0.5, 0.5), "shape parameters (a, b) of alpha ~ Beta(a, b)", "(0, inf)")


def mixup_pairs(batch_size: int, shape: tuple[float, float], generator=None) -> tuple[Tensor, Tensor]:
    """(partner, alpha), each (B,): example i is mixed with example partner[i] of the same batch
    (a random permutation) with weight alpha[i] ~ Beta(a, b), (a, b) = ``shape``.

    The Beta draws come from numpy, seeded from ``generator`` (torch has no seeded Beta sampler),
    so a seeded run is reproducible.
    """
    a, b = (float(v) for v in shape)
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"the mixup shape must be two positive numbers (a, b), not {shape!r}")
    partner = torch.randperm(batch_size, generator=generator)
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    alpha = torch.from_numpy(np.random.default_rng(seed).beta(a, b, size=batch_size)).float()
    return partner, alpha


def mixup_penalty(x: Tensor, mu: Tensor, model, shape: tuple[float, float], generator=None) -> Tensor:
    """Eq. 10 per example, (B,):  C = ||z_m - f(x_m)||_2 + ||g(z_m) - x_m||_2  with

        x_m = alpha x_i + (1 - alpha) x_j,    z_m = alpha z_i + (1 - alpha) z_j    (eq. 9),

    j the partner of i in the batch (:func:`mixup_pairs`). The encodings are the encoder *means*:
    z_i = mu(x_i) and f(x_m) = mu(x_m) (the paper writes f for the stochastic encoder and is silent
    on sampling; a sample on both sides would add a noise floor that the penalty could only lower
    by shrinking sigma, against the KL term). g is the decoder mean. Norms are not squared, as
    printed. Gradients reach both networks through every term, z_m included.
    """
    partner, alpha = mixup_pairs(len(x), shape, generator)
    partner = partner.to(x.device)
    weight = alpha.to(x).view(-1, *[1] * (x.dim() - 1))
    mixed_images = weight * x + (1 - weight) * x[partner]
    mixed_codes = alpha.to(mu).unsqueeze(1) * mu + (1 - alpha.to(mu).unsqueeze(1)) * mu[partner]
    encoder_term = (mixed_codes - model.encode(mixed_images)[0]).norm(dim=1)
    decoder_term = (model.decode(mixed_codes) - mixed_images).flatten(1).norm(dim=1)
    return encoder_term + decoder_term


def mixup_losses(x: Tensor, nets, config: MixupConfig, generator=None):
    """Minus [the beta-VAE bound - weight * C] (C from :func:`mixup_penalty`)."""
    model = nets["vae"]
    mu, logvar = model.encode(x)
    reconstruction = reconstruction_term(x, model, mu, logvar, generator)
    kl = gaussians.kl_to_standard_normal(mu, logvar)
    penalty = mixup_penalty(x, mu, model, config.shape, generator)
    objective = reconstruction - config.beta * kl - config.weight * penalty
    return {"vae": -objective.mean()}, {"bound": (reconstruction - config.beta * kl).mean().item(),
                                        "reconstruction": reconstruction.mean().item(), "kl": kl.mean().item(),
                                        "mixup_penalty": penalty.mean().item()}


register(Method("mixup", "Local geometry, sec. 4.2.2, eqs. 9-10",
                "the beta-VAE bound minus a penalty for non-linearity along chords between examples",
                MixupConfig, mixup_losses))
