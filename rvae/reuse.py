"""Reuse the models another chapter trained, without training anything.

A chapter that evaluates other chapters' models (chapter 11 re-attacks and certifies them) rebuilds
their :class:`~rvae.experiment.Experiment` (same data, architecture, seed, steps) and asks for a model
by method and config, exactly as the training chapter did. :func:`load_finished` then loads the
checkpoint that chapter wrote, only if it is finished and its fingerprint (config, architecture,
initial weights, data) matches: a reader never gets a model trained under other settings, and a
missing model is reported, not silently retrained.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from rvae.experiment import Experiment, Trained
from rvae.methods import get_method
from rvae.nets import build_vae
from rvae.train import TrainConfig, TrainResult, fingerprint


def _rebuilt(experiment: Experiment, method: str, steps: int | None, architecture: str | None,
             start_from: Any, fields: dict[str, Any]) -> tuple[str, Any, TrainConfig, dict[str, torch.nn.Module] | None]:
    """The name, config, run settings and freshly built networks of a model, exactly as
    :meth:`Experiment.train` builds them; no networks when ``start_from`` has no weights to copy."""
    registered = get_method(method)
    config = registered.make_config(**fields)
    architecture = architecture or experiment.architecture
    steps = experiment.steps if steps is None else steps
    name = experiment.name(method, config, architecture, steps, start_from)
    run = TrainConfig(method, config, steps=steps, learning_rate=experiment.learning_rate, seed=experiment.seed)
    if start_from is None:
        with torch.random.fork_rng(devices=[]):                 # as Experiment.train builds it
            torch.manual_seed(experiment.seed)
            model = build_vae(architecture, experiment.image_shape, experiment.latent_dim,
                              experiment.observation_variance)
    elif getattr(start_from, "model", None) is not None:
        model = copy.deepcopy(start_from.model)
    else:
        return name, config, run, None
    with torch.random.fork_rng(devices=[]):                     # as rvae.train.train builds them
        torch.manual_seed(run.seed + 1)
        extra = registered.networks(model, config) if registered.networks else {}
    return name, config, run, {"vae": model, **extra}


def expected_identity(experiment: Experiment, method: str, *, steps: int | None = None,
                      architecture: str | None = None, start_from: Any = None, **fields: Any) -> tuple[str, str | None]:
    """(checkpoint name, fingerprint) of the model that ``Experiment.train`` would train with these
    arguments, without training or loading it. The fingerprint is None when the model starts from
    another one whose weights are not at hand (``start_from`` without a ``model``)."""
    name, _, run, nets = _rebuilt(experiment, method, steps, architecture, start_from, fields)
    return name, None if nets is None else fingerprint(run, nets, experiment.batches)


def load_finished(experiment: Experiment, method: str, *, steps: int | None = None, architecture: str | None = None,
                  start_from: Trained | None = None, **fields: Any) -> tuple[Trained | None, str]:
    """(the trained model, "") from the experiment's finished checkpoint, or (None, why not)."""
    name, config, run, nets = _rebuilt(experiment, method, steps, architecture, start_from, fields)
    path = Path(experiment.checkpoint_dir).expanduser() / f"{name}.pt"
    if not experiment.checkpoint_dir or not path.exists():
        return None, f"{name}: no checkpoint"
    if nets is None:
        return None, f"{name}: its starting model has no weights here"
    state = torch.load(path, map_location=experiment.device, weights_only=False)
    if state.get("fingerprint") != fingerprint(run, nets, experiment.batches):
        return None, f"{name}: the checkpoint was written under another configuration or other data"
    steps = run.steps
    if state.get("step", 0) < steps:
        return None, f"{name}: unfinished ({state.get('step', 0)} of {steps} steps)"
    for key, net in nets.items():
        net.load_state_dict(state["networks"][key])
        net.to(experiment.device).eval()
    training = TrainResult(state["history"], state.get("seconds", float("nan")) / steps, steps, steps,
                           {k: v for k, v in nets.items() if k != "vae"})
    return Trained(name, method, config, nets["vae"], training), ""
