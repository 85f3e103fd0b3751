"""One training loop for every method: batches, Adam, NaN guard, logging, checkpoint and resume.

    result = train(model, batches, TrainConfig(method="se", steps=2000), device="cpu")

``batches(generator) -> (B, C, H, W)`` draws one training batch (see :func:`sample_images` and
:func:`sample_coloured_digits`). A checkpoint (model, optimiser, random state, history) is
written atomically every ``checkpoint_every`` steps and at the end; a run started with the same
checkpoint path and configuration resumes from it, so an interrupted run loses at most
``checkpoint_every`` steps.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from rvae.atomic import atomic_replace
from rvae.data import COLOURS, colorize
from rvae.errors import NonFiniteLossError
from rvae.objectives import ObjectiveConfig, get_objective
from rvae.progress import progress_bar

BatchSampler = Callable[[torch.Generator], Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """What to optimise and for how long; defaults are a small CPU run."""
    method: str = "elbo"
    steps: int = 1000
    learning_rate: float = 1e-3
    seed: int = 0
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    log_every: int = 50
    checkpoint_every: int = 500

    def fingerprint(self) -> str:
        """A hash of everything that changes the trajectory (not the logging cadence or length)."""
        settings = dataclasses.asdict(self)
        for key in ("steps", "log_every", "checkpoint_every"):
            settings.pop(key)
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainResult:
    """Logged terms every ``log_every`` steps and the cost per step (wall time over all sessions of
    the run, a resumed one included, divided by its steps)."""
    history: list[dict[str, float]]
    seconds_per_step: float
    steps_done: int
    resumed_from: int = 0


def sample_images(images: Tensor, batch_size: int) -> BatchSampler:
    """Uniformly sampled batches (with replacement across batches) from a tensor of images."""
    def sample(generator: torch.Generator) -> Tensor:
        index = torch.randint(len(images), (batch_size,), generator=generator)
        return images[index.to(images.device)]
    return sample


def sample_coloured_digits(grey: Tensor, batch_size: int) -> BatchSampler:
    """ColorMNIST training batches: grey digits (N,1,H,W) coloured with a corner of the RGB cube
    drawn afresh for every example of every batch."""
    def sample(generator: torch.Generator) -> Tensor:
        index = torch.randint(len(grey), (batch_size,), generator=generator)
        colours = torch.randint(len(COLOURS), (batch_size,), generator=generator)
        return colorize(grey[index.to(grey.device)], colours.to(grey.device))
    return sample


def train(model: torch.nn.Module, batches: BatchSampler, config: TrainConfig, device: str | torch.device = "cpu",
          checkpoint: str | os.PathLike | None = None, progress: bool | None = None) -> TrainResult:
    """Optimise ``model`` with the method's objective; raise NonFiniteLossError on a NaN/inf loss."""
    objective = get_objective(config.method)
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    start_step, earlier_seconds = 0, 0.0
    checkpoint_path = Path(checkpoint) if checkpoint else None
    if checkpoint_path and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if state["fingerprint"] == config.fingerprint():
            model.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            generator.set_state(state["generator"])
            history, start_step = state["history"], state["step"]
            earlier_seconds = state.get("seconds", 0.0)

    def save(step: int) -> None:
        if checkpoint_path:
            state = {"fingerprint": config.fingerprint(), "model": model.state_dict(),
                     "optimiser": optimiser.state_dict(), "generator": generator.get_state(),
                     "history": history, "step": step,
                     "seconds": earlier_seconds + time.perf_counter() - started}
            atomic_replace(checkpoint_path, lambda temporary: torch.save(state, temporary))

    started = time.perf_counter()
    for step in progress_bar(range(start_step, config.steps), desc=config.method, total=config.steps - start_step,
                             enabled=progress):
        x = batches(generator).to(device)
        loss, logs = objective(x, model, config.objective, generator)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"the {config.method} loss became {loss.item()} at step {step}; "
                                     "lower learning_rate or check the data")
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            history.append({"step": step, "loss": loss.item(), **logs})
        if checkpoint_path and (step + 1) % config.checkpoint_every == 0:
            save(step + 1)
    total_seconds = earlier_seconds + time.perf_counter() - started     # across interrupted sessions
    save(config.steps)
    return TrainResult(history, total_seconds / config.steps if config.steps else float("nan"),
                       config.steps, start_step)


def fit_representation(architecture: str, image_shape: tuple[int, int, int], latent_dim: int,
                       observation_variance: float, batches: BatchSampler, config: TrainConfig,
                       device: str | torch.device = "cpu", checkpoint: str | os.PathLike | None = None):
    """Build a VAE (weights seeded by ``config.seed``, global RNG untouched) and train it.

    Returns (model, TrainResult). ``checkpoint`` makes an interrupted run resume where it stopped.
    """
    from rvae.nets import build_vae

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_vae(architecture, image_shape, latent_dim, observation_variance)
    return model, train(model, batches, config, device=device, checkpoint=checkpoint)
