"""One training loop for every method: parameter groups, NaN guard, logging, checkpoint and resume.

    result = train(model, batches, TrainConfig("se", SEConfig(gamma=10), steps=2000), device="cpu")

``batches(generator) -> (B, C, H, W)`` draws one training batch (:func:`sample_images`,
:func:`sample_coloured_digits`; their ``key`` names the data for the checkpoint's fingerprint).
The method (:mod:`rvae.methods`) gives the losses of its parameter groups; each group has its own
optimiser, stepped from one forward pass or, for an alternating method, one group after another.
Post-step hooks run after every step.

A checkpoint (networks, optimisers, random state, history, time spent) is written atomically every
``checkpoint_every`` steps and at the end. A run started with the same checkpoint path resumes
from it when its fingerprint matches: the fingerprint covers what changes the trajectory (method
and its config, architecture and initial weights, data, seed, optimiser settings), not the
number of steps or the logging cadence. A checkpoint that does not match is never silently
discarded: the run says so in one line and renames it aside.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from rvae.atomic import atomic_replace
from rvae.data import COLOURS, colorize
from rvae.errors import NonFiniteLossError, ParameterError
from rvae.methods import Method, ParameterGroup, get_method
from rvae.progress import progress_bar

BatchSampler = Callable[[torch.Generator], Tensor]
_OPTIMISERS = {"adam": lambda params, group, rate: torch.optim.Adam(params, lr=rate, betas=group.betas),
               "sgd": lambda params, group, rate: torch.optim.SGD(params, lr=rate),
               "rmsprop": lambda params, group, rate: torch.optim.RMSprop(params, lr=rate)}


@dataclass(frozen=True)
class TrainConfig:
    """What to optimise and for how long: a registered method, its config (None: the method's
    defaults), and the run's settings. Defaults are a small CPU run."""
    method: str = "elbo"
    config: Any = None
    steps: int = 1000
    learning_rate: float = 1e-3
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        method = get_method(self.method)
        if self.config is None:
            object.__setattr__(self, "config", method.config())
        elif not isinstance(self.config, method.config):
            raise ParameterError(f"method {self.method} takes a {method.config.__name__}, "
                                 f"not a {type(self.config).__name__}")
        for name, low in (("steps", 0), ("log_every", 1), ("checkpoint_every", 1)):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < low:
                raise ParameterError(f"{name} must be an integer >= {low}; got {getattr(self, name)!r}")
        if not self.learning_rate > 0:
            raise ParameterError(f"learning_rate must be positive; got {self.learning_rate!r}")

    @property
    def registered(self) -> Method:
        return get_method(self.method)

    def settings(self) -> dict[str, Any]:
        """What of this config changes the trajectory: method, its config, seed, optimiser settings."""
        method = self.registered
        return {"method": self.method, "config": dataclasses.asdict(self.config), "seed": self.seed,
                "alternating": method.alternating,
                "optimisers": {g.name: g.settings(self.learning_rate) for g in method.groups}}


@dataclass
class TrainResult:
    """Logged terms every ``log_every`` steps and the cost per step (wall time over all sessions of
    the run, a resumed one included, divided by its steps); ``networks`` are the method's networks
    beyond the VAE (e.g. a discriminator), trained alongside it."""
    history: list[dict[str, float]]
    seconds_per_step: float
    steps_done: int
    resumed_from: int = 0
    networks: dict[str, nn.Module] = field(default_factory=dict)


def _tensor_digest(images: Tensor) -> str:
    return hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def sample_images(images: Tensor, batch_size: int) -> BatchSampler:
    """Uniformly sampled batches (with replacement across batches) from a tensor of images."""
    def sample(generator: torch.Generator) -> Tensor:
        index = torch.randint(len(images), (batch_size,), generator=generator)
        return images[index.to(images.device)]
    sample.key = f"uniform batches of {batch_size} from images {tuple(images.shape)} sha256 {_tensor_digest(images)}"
    return sample


def sample_coloured_digits(grey: Tensor, batch_size: int) -> BatchSampler:
    """ColorMNIST training batches: grey digits (N,1,H,W) coloured with a corner of the RGB cube
    drawn afresh for every example of every batch."""
    def sample(generator: torch.Generator) -> Tensor:
        index = torch.randint(len(grey), (batch_size,), generator=generator)
        colours = torch.randint(len(COLOURS), (batch_size,), generator=generator)
        return colorize(grey[index.to(grey.device)], colours.to(grey.device))
    sample.key = f"coloured batches of {batch_size} from grey {tuple(grey.shape)} sha256 {_tensor_digest(grey)}"
    return sample


def fingerprint(config: TrainConfig, nets: dict[str, nn.Module], batches: BatchSampler) -> str:
    """A hash of what changes the trajectory of a run (see the module docstring)."""
    weights = hashlib.sha256()
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            weights.update(f"{name}.{key}".encode())
            weights.update(value.detach().cpu().contiguous().numpy().tobytes())
    described = {**config.settings(),
                 "architecture": {name: repr(net) for name, net in nets.items()},
                 "observation_variance": getattr(nets["vae"], "observation_variance", None),
                 "initial_weights": weights.hexdigest(),
                 "data": getattr(batches, "key", "an unnamed batch sampler")}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _group_parameters(group: ParameterGroup, nets: dict[str, nn.Module]) -> list[nn.Parameter]:
    missing = [name for name in group.networks if name not in nets]
    if missing:
        raise ValueError(f"parameter group {group.name!r} names networks {missing} that the method does not build")
    return [p for name in group.networks for p in nets[name].parameters()]


def _keep_aside(path: Path, found: str, wanted: str) -> None:
    aside = path.with_name(f"{path.stem}.foreign-{found}{path.suffix}")
    path.replace(aside)
    print(f"checkpoint {path.name} was written by another configuration (fingerprint {found}, this run {wanted}); "
          f"kept aside as {aside.name}, training from the start")


def _checked(losses: dict[str, Tensor], names: list[str], method: str, step: int) -> None:
    for name in names:
        if not torch.isfinite(losses[name]):
            raise NonFiniteLossError(f"the {method} loss{'' if name == 'vae' else ' of ' + name} became "
                                     f"{losses[name].item()} at step {step}; lower learning_rate or check the data")


def train(model: nn.Module, batches: BatchSampler, config: TrainConfig, device: str | torch.device = "cpu",
          checkpoint: str | os.PathLike | None = None, progress: bool | None = None) -> TrainResult:
    """Optimise ``model`` (and the method's own networks) with the method's losses; raise
    NonFiniteLossError on a NaN/inf loss."""
    method = config.registered
    with torch.random.fork_rng(devices=[]):                 # the method's own networks: seeded, global RNG untouched
        torch.manual_seed(config.seed + 1)
        extra = method.networks(model, config.config) if method.networks else {}
    nets = {"vae": model, **extra}
    for net in nets.values():
        net.to(device).train()
    group_names = [group.name for group in method.groups]
    parameters = {group.name: _group_parameters(group, nets) for group in method.groups}
    optimisers = {group.name: _OPTIMISERS[group.optimiser](parameters[group.name], group,
                                                           group.settings(config.learning_rate)["learning_rate"])
                  for group in method.groups}
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    start_step, earlier_seconds = 0, 0.0
    checkpoint_path = Path(checkpoint) if checkpoint else None
    wanted = fingerprint(config, nets, batches)
    if checkpoint_path and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        found = state.get("fingerprint", "unknown") if isinstance(state, dict) else "unknown"
        if found == wanted and "networks" in state:
            for name, net in nets.items():
                net.load_state_dict(state["networks"][name])
            for name, optimiser in optimisers.items():
                optimiser.load_state_dict(state["optimisers"][name])
            generator.set_state(state["generator"])
            history, start_step = state["history"], state["step"]
            earlier_seconds = state.get("seconds", 0.0)
        else:
            _keep_aside(checkpoint_path, found, wanted)

    def save(step: int) -> None:
        if checkpoint_path:
            state = {"fingerprint": wanted, "networks": {name: net.state_dict() for name, net in nets.items()},
                     "optimisers": {name: o.state_dict() for name, o in optimisers.items()},
                     "generator": generator.get_state(), "history": history, "step": step,
                     "seconds": earlier_seconds + time.perf_counter() - started}
            atomic_replace(checkpoint_path, lambda temporary: torch.save(state, temporary))

    def zero_all() -> None:
        for optimiser in optimisers.values():
            optimiser.zero_grad(set_to_none=True)

    started = time.perf_counter()
    for step in progress_bar(range(start_step, config.steps), desc=config.method, total=config.steps - start_step,
                             enabled=progress):
        x = batches(generator).to(device)
        if method.alternating:                             # each group on a fresh forward pass, in order
            logged: dict[str, float] = {}
            for name in group_names:
                losses, logs = method.losses(x, nets, config.config, generator)
                _checked(losses, [name], config.method, step)
                zero_all()
                losses[name].backward()
                optimisers[name].step()
                logged.update({f"loss_{name}": losses[name].item(), **logs})
        else:                                              # every group from one forward pass
            losses, logs = method.losses(x, nets, config.config, generator)
            _checked(losses, group_names, config.method, step)
            zero_all()
            if len(group_names) == 1:
                losses[group_names[0]].backward()
            else:
                for name in group_names:
                    grads = torch.autograd.grad(losses[name], parameters[name], retain_graph=True, allow_unused=True)
                    for parameter, grad in zip(parameters[name], grads):
                        parameter.grad = grad
            for optimiser in optimisers.values():
                optimiser.step()
            totals = ({"loss": losses[group_names[0]].item()} if len(group_names) == 1
                      else {f"loss_{name}": losses[name].item() for name in group_names})
            logged = {**totals, **logs}
        for hook in method.post_step:
            hook(nets, config.config)
        if step % config.log_every == 0 or step == config.steps - 1:
            history.append({"step": step, **logged})
        if checkpoint_path and (step + 1) % config.checkpoint_every == 0:
            save(step + 1)
    total_seconds = earlier_seconds + time.perf_counter() - started     # across interrupted sessions
    save(config.steps)
    return TrainResult(history, total_seconds / config.steps if config.steps else float("nan"),
                       config.steps, start_step, extra)


def fit_representation(architecture: str, image_shape: tuple[int, int, int], latent_dim: int,
                       observation_variance: float, batches: BatchSampler, config: TrainConfig,
                       device: str | torch.device = "cpu", checkpoint: str | os.PathLike | None = None,
                       progress: bool | None = None):
    """Build a VAE (weights seeded by ``config.seed``, global RNG untouched) and train it.

    Returns (model, TrainResult). ``checkpoint`` makes an interrupted run resume where it stopped.
    """
    from rvae.nets import build_vae

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_vae(architecture, image_shape, latent_dim, observation_variance)
    return model, train(model, batches, config, device=device, checkpoint=checkpoint, progress=progress)
