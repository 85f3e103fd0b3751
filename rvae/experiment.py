"""What the chapters call: train-or-resume a named model, then probe, attack, reconstruct and score it.

    colour = Experiment("colour_mnist", sample_coloured_digits(grey, 64), (3, 28, 28), architecture="mlp",
                        steps=800, checkpoint_dir="~/.cache/rvae/checkpoints/03")
    vae = colour.train("elbo")
    se = colour.train("se", gamma=10.0, selection_eps=0.1)
    probe = ProbeSetup(probe_images, {"digit": digits}, test_images, {"digit": test_digits}, radii=[0, 0.1])
    curves = probe.evaluate(se.model)                       # {"digit": TaskEvaluation}
    scores = geometry_report(se.model, test_images, steps, n_score=300, n_curve=300)

An :class:`Experiment` holds what the models of one chapter on one dataset share; each model is
named by (dataset, architecture, method, config, and the model it starts from), which gives its
checkpoint file, so a re-run resumes it and a changed configuration never reuses another's.
Within one experiment the same model is trained once and then reused.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from rvae import geometry
from rvae.evaluate import TaskEvaluation, evaluate_representation, reconstruction_error
from rvae.methods import get_method
from rvae.nets import build_vae
from rvae.train import BatchSampler, TrainConfig, TrainResult, train


@dataclass
class Trained:
    """A trained model with its training record and its name (which also names its checkpoint)."""
    name: str
    method: str
    config: Any
    model: nn.Module
    training: TrainResult


@dataclass
class Experiment:
    """The models of one chapter on one dataset: their data, architecture, training length and checkpoints."""
    dataset: str                                   # names the data in checkpoint names, e.g. "colour_mnist"
    batches: BatchSampler                          # draws one training batch from a torch.Generator
    image_shape: tuple[int, int, int]
    architecture: str = "mlp"
    latent_dim: int = 32
    observation_variance: float = 0.5
    steps: int = 1000
    learning_rate: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    checkpoint_dir: str = ""                       # empty: no checkpoints
    _trained: dict[str, Trained] = field(default_factory=dict, repr=False)

    @classmethod
    def on_images(cls, dataset: str, images: Tensor, batch_size: int, **settings: Any) -> "Experiment":
        """An experiment trained on uniformly sampled batches of ``images`` (N, C, H, W)."""
        from rvae.train import sample_images
        return cls(dataset, sample_images(images, batch_size), tuple(images.shape[1:]), **settings)

    def name(self, method: str, config: Any, architecture: str, steps: int, start_from: Trained | None) -> str:
        """A file-safe name: dataset, architecture, method, a digest of the config and the starting model."""
        described = json.dumps({"config": dataclasses.asdict(config), "steps": steps,
                                "start": start_from.name if start_from else None}, sort_keys=True, default=str)
        digest = hashlib.sha256(described.encode()).hexdigest()[:10]
        return f"{self.dataset}-{architecture}-{method}-{digest}"

    def train(self, method: str, config: Any = None, *, steps: int | None = None, architecture: str | None = None,
              start_from: Trained | None = None, **fields: Any) -> Trained:
        """Train (or resume, or reuse) one model: ``method`` with ``config`` (or its defaults changed by
        ``fields``), for ``steps`` (default: the experiment's), from fresh seeded weights or from a copy
        of ``start_from``'s model."""
        registered = get_method(method)
        config = config if config is not None else registered.make_config(**fields)
        architecture = architecture or self.architecture
        steps = self.steps if steps is None else steps
        name = self.name(method, config, architecture, steps, start_from)
        if name not in self._trained:
            if start_from is None:
                with torch.random.fork_rng(devices=[]):       # weights seeded, global RNG untouched
                    torch.manual_seed(self.seed)
                    model = build_vae(architecture, self.image_shape, self.latent_dim, self.observation_variance)
            else:
                model = copy.deepcopy(start_from.model)
            run = TrainConfig(method, config, steps=steps, learning_rate=self.learning_rate, seed=self.seed)
            checkpoint = Path(self.checkpoint_dir).expanduser() / f"{name}.pt" if self.checkpoint_dir else None
            training = train(model, self.batches, run, self.device, checkpoint)
            self._trained[name] = Trained(name, method, config, model, training)
        return self._trained[name]


@dataclass
class ProbeSetup:
    """The downstream protocol of a chapter: linear probes trained on encoder means of ``probe_images``
    for each task of ``probe_labels``, then attacked (PGD, L-inf) on ``test_images`` at each radius."""
    probe_images: Tensor
    probe_labels: dict[str, Tensor]
    test_images: Tensor
    test_labels: dict[str, Tensor]
    radii: Sequence[float]
    iterations: int = 10
    restarts: int = 1
    probe_epochs: int = 30
    seed: int = 0
    device: str = "cpu"

    def evaluate(self, model: nn.Module, tasks: Sequence[str] | None = None) -> dict[str, TaskEvaluation]:
        """Probe and robustness curve per task (all tasks, or those named)."""
        tasks = list(self.probe_labels) if tasks is None else list(tasks)
        return evaluate_representation(model, self.probe_images, {t: self.probe_labels[t] for t in tasks},
                                       self.test_images, {t: self.test_labels[t] for t in tasks}, list(self.radii),
                                       self.iterations, self.restarts, probe_epochs=self.probe_epochs,
                                       seed=self.seed, device=self.device)


def geometry_report(model: nn.Module, images: Tensor, steps: Sequence[float], n_score: int, n_curve: int,
                    n_curved: int = 0, curve_directions: int = 5, device: str = "cpu") -> dict[str, Any]:
    """The local-geometry analysis of one encoder on test ``images`` (N, C, H, W):

    ``scores`` (spectral radius, entropies; first ``n_score`` images), ``clean_mse`` (per pixel,
    first ``n_curve``), ``mse`` (per pixel along each of the top ``curve_directions``
    eigendirections at each step, (directions, steps)), ``displacement`` (mean code displacement
    along v1 per step); with ``n_curved`` > 0 also the decoder-curved ``scores_decoder``,
    ``clean_mse_curved`` and ``mse_decoder`` (along the curved v1).
    """
    x, pixels = images[:max(n_score, n_curve, n_curved)], images[0].numel()
    spectrum = geometry.pullback_spectrum(model, x[:n_curve], top=curve_directions)
    report: dict[str, Any] = {
        "scores": {k: v.numpy() for k, v in geometry.robustness_scores(model, x[:n_score]).items()},
        "clean_mse": reconstruction_error(model, x[:n_curve], device=device) / pixels,
        "mse": geometry.mse_along_directions(model, x[:n_curve], spectrum, steps, curve_directions).numpy(),
        "displacement": geometry.latent_displacement(model, x[:n_curve], spectrum.directions[:, 0], steps).numpy(),
    }
    if n_curved > 0:
        curved_spectrum = geometry.pullback_spectrum(model, x[:n_curved], "decoder", top=1)
        report.update({
            "scores_decoder": {k: v.numpy() for k, v in
                               geometry.robustness_scores(model, x[:n_curved], "decoder").items()},
            "clean_mse_curved": reconstruction_error(model, x[:n_curved], device=device) / pixels,
            "mse_decoder": geometry.mse_along_directions(model, x[:n_curved], curved_spectrum, steps, 1).numpy()[0],
        })
    return report


def mean_scores(report: dict[str, Any], key: str = "scores") -> dict[str, float]:
    """Mean of each score of a :func:`geometry_report` over its images (NaN entropies skipped)."""
    return {name: float(np.nanmean(values)) for name, values in report[key].items()}
