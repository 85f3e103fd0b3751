"""The training loop: it learns, it stops on NaN, and an interrupted run resumes exactly."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from rvae.data import COLOURS
from rvae.errors import NonFiniteLossError
from rvae.nets import build_vae
from rvae.objectives import ObjectiveConfig
from rvae.train import TrainConfig, sample_coloured_digits, sample_images, train

IMAGES = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(0)).round()


def _model(seed=0):
    torch.manual_seed(seed)
    return build_vae("mlp", (1, 6, 6), latent_dim=2, hidden=16, observation_variance=0.05)


def test_training_raises_the_bound():
    result = train(_model(), sample_images(IMAGES, 16), TrainConfig(steps=300, log_every=10, learning_rate=3e-3))
    first, last = result.history[0]["bound"], sum(h["bound"] for h in result.history[-5:]) / 5
    assert last > first + 1.0
    assert result.steps_done == 300 and result.seconds_per_step > 0


def test_a_nan_loss_stops_training_with_a_clear_error():
    poisoned = IMAGES.clone()
    poisoned[:] = float("nan")
    with pytest.raises(NonFiniteLossError, match=r"the elbo loss became nan at step 0"):
        train(_model(), sample_images(poisoned, 8), TrainConfig(steps=5))


def test_an_interrupted_run_resumes_to_the_same_parameters(tmp_path):
    config = TrainConfig(method="se", steps=12, checkpoint_every=4, log_every=1,
                         objective=ObjectiveConfig(selection_budget=2, selection_eps=0.1))
    reference = _model()
    train(reference, sample_images(IMAGES, 8), config)

    checkpoint = tmp_path / "run.pt"
    interrupted = _model()
    train(interrupted, sample_images(IMAGES, 8), dataclasses.replace(config, steps=8), checkpoint=checkpoint)
    resumed_model = _model(seed=123)            # different initial weights: everything must come from the checkpoint
    result = train(resumed_model, sample_images(IMAGES, 8), config, checkpoint=checkpoint)
    assert result.resumed_from == 8
    assert result.seconds_per_step > 0
    finished = train(_model(), sample_images(IMAGES, 8), config, checkpoint=checkpoint)   # nothing left to run
    assert finished.resumed_from == 12 and finished.seconds_per_step == pytest.approx(result.seconds_per_step, rel=0.2)
    for a, b in zip(reference.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["step"] for h in result.history] == list(range(12))


def test_a_checkpoint_of_another_configuration_is_not_resumed(tmp_path):
    checkpoint = tmp_path / "run.pt"
    train(_model(), sample_images(IMAGES, 8), TrainConfig(steps=4, learning_rate=1e-3), checkpoint=checkpoint)
    result = train(_model(), sample_images(IMAGES, 8), TrainConfig(steps=4, learning_rate=2e-3), checkpoint=checkpoint)
    assert result.resumed_from == 0


def test_coloured_batches_use_the_seven_corners_and_redraw_colours():
    grey = torch.ones(10, 1, 2, 2)
    sampler = sample_coloured_digits(grey, 50)
    generator = torch.Generator().manual_seed(0)
    first, second = sampler(generator), sampler(generator)
    colours = first[:, :, 0, 0]
    assert all(any(torch.equal(c, corner) for corner in COLOURS) for c in colours)
    assert len({tuple(c.tolist()) for c in colours}) > 3 and not torch.equal(first, second)
