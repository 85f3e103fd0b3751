"""The cheaper SE selections (rvae.methods.smooth_memory): kept perturbations stay in their example's ball
and in [0, 1] when the example comes back (recoloured too), the free selection's step is the explicit
gradient step on the same batch, the memory survives a checkpoint, and bad configs fail in one line."""
from __future__ import annotations

import pytest
import torch

from rvae.attacks import project, random_in_ball
from rvae.data import COLOURS, colorize
from rvae.errors import ParameterError
from rvae.methods import get_method
from rvae.methods.smooth_memory import (UNITS, FreeSEConfig, PerturbationMemory, WarmSEConfig, advance_free_partners,
                                        continue_search, example_keys, free_losses, se_bound, warm_losses)
from rvae.nets import build_vae
from rvae.train import TrainConfig, sample_coloured_digits, sample_images, train

EPS = 0.1


def _model(channels: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    return build_vae("mlp", (channels, 28, 28), latent_dim=4)


def _digits(n: int = 12, seed: int = 0) -> torch.Tensor:
    """Grey images with exact 0 and 1 pixels (where the box clips) and values between."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    images[:, :, :5] = 0.0
    images[:, :, -5:] = 1.0
    return images


def _in_ball_and_box(partners: torch.Tensor, x: torch.Tensor, eps: float) -> bool:
    return bool((partners - x).abs().max() <= eps + 1e-6 and partners.min() >= 0 and partners.max() <= 1)


def test_example_keys_tell_images_apart_and_ignore_the_colour():
    grey = _digits(6)
    keys = example_keys(grey)
    assert len(set(keys)) == 6
    assert example_keys(grey.clone()) == keys
    recoloured = [example_keys(colorize(grey, torch.full((6,), c))) for c in range(len(COLOURS))]
    assert all(k == keys for k in recoloured)


@pytest.mark.parametrize("method", ["se-warm", "se-free", "se_rho-warm", "se_avae-warm"])
def test_kept_perturbations_stay_in_their_examples_ball_and_the_box_when_seen_again(method):
    images = _digits(12)
    model = _model()
    result = train(model, sample_images(images, 8), TrainConfig(method, steps=12), progress=False)
    memory = result.networks["memory"]
    assert len(memory) == 12                        # 96 draws of 12 images: every one seen, most several times
    codes = memory.codes[:len(memory)]
    assert codes.abs().max() <= UNITS and codes.abs().amax((1, 2, 3)).min() > 0
    partners, rows = memory.recall(images)
    assert _in_ball_and_box(partners, images, EPS)
    again, rows_again = memory.recall(images, torch.Generator().manual_seed(99))
    assert torch.equal(rows, rows_again) and torch.equal(partners, again)   # seen examples: no random draw
    kept = project(images + codes[rows].float() * (EPS / UNITS), images, EPS)
    assert torch.equal(partners, kept)


def test_a_recoloured_digit_keeps_its_perturbation_inside_its_new_images_ball():
    grey = _digits(10)
    model = _model(channels=3)
    result = train(model, sample_coloured_digits(grey, 8), TrainConfig("se-warm", steps=10), progress=False)
    memory = result.networks["memory"]
    assert len(memory) == 10
    for colour in range(len(COLOURS)):
        x = colorize(grey, torch.full((10,), colour))
        partners, _ = memory.recall(x)
        assert _in_ball_and_box(partners, x, EPS)


def test_a_new_example_starts_uniformly_in_its_ball():
    memory = PerturbationMemory(EPS)
    x = _digits(200)
    partners, rows = memory.recall(x, torch.Generator().manual_seed(1))   # not _digits' seed
    assert rows.tolist() == list(range(200)) and _in_ball_and_box(partners, x, EPS)
    inner = (x > EPS) & (x < 1 - EPS)                # where the box does not clip, d is U[-eps, eps]
    delta = (partners - x)[inner] / EPS
    assert abs(delta.mean().item()) < 0.01 and abs(delta.var().item() - 1 / 3) < 0.01


def test_the_free_step_is_the_explicit_gradient_step_on_the_same_batch():
    images = _digits(8)
    model = _model()
    nets = {"vae": model, "memory": PerturbationMemory(EPS)}
    config = FreeSEConfig(gamma=10.0)
    nets["memory"].store(images, project(images + 0.07 * torch.randn_like(images), images, EPS),
                         nets["memory"].recall(images)[1])    # every example seen, with some kept d
    start, _ = nets["memory"].recall(images)
    losses, _ = free_losses(images, nets, config, torch.Generator().manual_seed(5))
    losses["vae"].backward()
    advance_free_partners(nets, config)
    reused, _ = nets["memory"].recall(images)

    explicit_start = start.clone().requires_grad_(True)
    generator = torch.Generator().manual_seed(5)
    random_in_ball(images, EPS, "linf", generator)                     # the draw recall made for unseen examples
    bound, _ = se_bound(images, explicit_start, model, config.gamma, generator)
    (grad,) = torch.autograd.grad(-bound.mean(), explicit_start)
    assert grad.abs().max() > 0
    expected = project(start + config.selection_step * EPS * grad.sign(), images, EPS)
    assert (reused - expected).abs().max() <= EPS / UNITS / 2 + 1e-6   # the memory's resolution
    moved = (expected - start).abs() > 1e-6
    assert moved.float().mean() > 0.5                                   # the step did move most pixels


def test_the_warm_search_continues_from_the_kept_point():
    images = _digits(6)
    model = _model()
    nets = {"vae": model, "memory": PerturbationMemory(EPS)}
    config = WarmSEConfig(selection_budget=3)
    generator = torch.Generator().manual_seed(1)
    start, _ = PerturbationMemory(EPS).recall(images, torch.Generator().manual_seed(1))   # what an empty memory draws
    warm_losses(images, nets, config, generator)
    stored, _ = nets["memory"].recall(images)
    expected = continue_search(model, images, start, EPS, 3, config.selection_step * EPS)
    assert (stored - expected).abs().max() <= EPS / UNITS / 2 + 1e-6
    assert continue_search(model, images, start, EPS, 0, 0.01).equal(start)


@pytest.fixture
def one_thread():
    """Bit-exact comparisons of two trainings need one thread: with two, torch's CPU kernels may round a
    near-zero selection gradient differently from run to run, and its sign (what a PGD step takes) flips."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_an_interrupted_run_resumes_with_its_memory(tmp_path, one_thread):
    images = _digits(12)
    checkpoint = tmp_path / "warm.pt"
    whole = train(_model(), sample_images(images, 8), TrainConfig("se-warm", steps=8, checkpoint_every=4),
                  progress=False)
    first = _model()
    train(first, sample_images(images, 8), TrainConfig("se-warm", steps=4, checkpoint_every=4), checkpoint=checkpoint,
          progress=False)
    resumed_model = _model()
    resumed = train(resumed_model, sample_images(images, 8), TrainConfig("se-warm", steps=8, checkpoint_every=4),
                    checkpoint=checkpoint, progress=False)
    assert resumed.resumed_from == 4
    kept, whole_kept = resumed.networks["memory"], whole.networks["memory"]
    assert torch.equal(kept.keys[:12], whole_kept.keys[:12]) and kept.rows == whole_kept.rows
    assert (kept.codes[:12].int() - whole_kept.codes[:12].int()).abs().max() == 0
    assert resumed.history[-1]["loss"] == pytest.approx(whole.history[-1]["loss"], rel=1e-6)


@pytest.mark.parametrize("method, field, value", [("se-warm", "selection_budget", 0), ("se-free", "selection_step", 0.0),
                                                  ("se-free", "selection_eps", 1.5), ("se-warm", "selection", "random"),
                                                  ("se_rho-warm", "rho_se", 1.0), ("se_avae-warm", "selection_step", 3.0),
                                                  ("se_avae-warm", "decoded_coupling", "loose")])
def test_bad_configs_fail_in_one_line(method, field, value):
    with pytest.raises(ParameterError) as error:
        get_method(method).make_config(**{field: value})
    assert "\n" not in str(error.value) and field in str(error.value)


@pytest.mark.parametrize("method", ["se_rho", "se_avae"])
def test_the_warm_avae_options_change_only_the_partners_search(method):
    """se_rho-warm / se_avae-warm: the bound is se_rho's / se_avae's with the partner warm_partners finds."""
    from rvae.methods import avae
    from rvae.methods.smooth_memory import warm_partners
    images, model = _digits(6), _model()
    memory = PerturbationMemory(EPS)
    config = get_method(method + "-warm").make_config(selection_budget=3)
    warm_partners(images, model, memory, config, torch.Generator().manual_seed(1))   # a first visit keeps d
    plain_config = get_method(method).make_config(**{f: getattr(config, f) for f in ("rho_se", "adversarial_coupling")},
                                                  **({"rho": config.rho, "decoded_coupling": config.decoded_coupling}
                                                     if method == "se_avae" else {}))
    twin = PerturbationMemory(EPS)
    twin.load_state_dict(memory.state_dict())
    terms_of = {"se_rho": avae.se_rho_terms, "se_avae": avae.se_avae_terms}[method]
    warm = terms_of(images, model, config, torch.Generator().manual_seed(2), memory=twin)
    generator = torch.Generator().manual_seed(2)                   # recall's draw first, then the bound's sample
    partners = warm_partners(images, model, memory, config, generator)
    expected = avae._data_bound(images, model, generator,
                                (plain_config.rho, plain_config.decoded_coupling) if method == "se_avae" else None,
                                (partners, plain_config.rho_se, plain_config.adversarial_coupling))
    assert torch.allclose(warm["bound"], expected["bound"], rtol=1e-6, atol=1e-6)
    assert torch.equal(twin.codes[:6], memory.codes[:6])             # both searches stored the same d
    assert _in_ball_and_box(partners, images, EPS) and bool((partners != images).any())
