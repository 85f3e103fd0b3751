"""The chapters' experiment helper: named models, derived checkpoints, reuse, probes and geometry."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from rvae.experiment import Experiment, ProbeSetup, geometry_report, mean_scores
from rvae.methods.smooth import SEConfig

IMAGES = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(0))
LABELS = (IMAGES.flatten(1).mean(1) > IMAGES.flatten(1).mean(1).median()).long()


def _experiment(**settings):
    defaults = dict(architecture="mlp", latent_dim=2, observation_variance=0.1, steps=6, learning_rate=1e-2, seed=3)
    return Experiment.on_images("toy", IMAGES, 8, **{**defaults, **settings})


def test_same_model_is_trained_once_and_configs_are_told_apart():
    experiment = _experiment()
    first = experiment.train("beta_vae", beta=2.0)
    assert experiment.train("beta_vae", beta=2.0) is first
    other = experiment.train("beta_vae", beta=3.0)
    assert other.name != first.name and other.name.startswith("toy-mlp-beta_vae-")
    assert experiment.train("se", SEConfig(selection_budget=2)).config.selection_budget == 2
    assert first.training.steps_done == 6 and len(experiment._trained) == 3


def test_checkpoint_is_named_after_the_model_and_resumed(tmp_path):
    first = _experiment(checkpoint_dir=str(tmp_path)).train("elbo")
    assert (tmp_path / f"{first.name}.pt").exists()
    again = _experiment(checkpoint_dir=str(tmp_path)).train("elbo")    # a fresh session: resumes, trains nothing
    assert again.training.resumed_from == 6
    for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    longer = _experiment(checkpoint_dir=str(tmp_path)).train("elbo", steps=9)
    assert longer.name != first.name and longer.training.resumed_from == 0


def test_start_from_trains_a_copy_and_leaves_the_original_alone():
    experiment = _experiment()
    vae = experiment.train("elbo")
    before = {k: v.clone() for k, v in vae.model.state_dict().items()}
    post = experiment.train("avae_ss", steps=3, start_from=vae)
    assert all(torch.equal(before[k], v) for k, v in vae.model.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in post.model.state_dict().items())
    assert post.name != experiment.train("avae_ss", steps=3).name          # the starting model is part of the name


def test_unknown_method_or_field_fails_in_one_line():
    from rvae.errors import ParameterError
    with pytest.raises(ParameterError, match="unknown method 'gan'"):
        _experiment().train("gan")
    with pytest.raises(ParameterError, match="method se has no field 'gama'"):
        _experiment().train("se", gama=1.0)


def test_probe_setup_evaluates_the_asked_tasks():
    model = _experiment().train("elbo").model
    setup = ProbeSetup(IMAGES[:48], {"bright": LABELS[:48], "same": LABELS[:48]}, IMAGES[48:],
                       {"bright": LABELS[48:], "same": LABELS[48:]}, radii=[0.0, 0.3], iterations=3, probe_epochs=5)
    both = setup.evaluate(model)
    assert set(both) == {"bright", "same"}
    one = setup.evaluate(model, tasks=["bright"])
    assert list(one) == ["bright"]
    assert one["bright"].curve.accuracy == both["bright"].curve.accuracy       # seeded: the same numbers
    assert one["bright"].curve.accuracy[1] <= one["bright"].curve.accuracy[0]


def test_geometry_report_shapes_and_decoder_part():
    model = _experiment().train("elbo").model
    steps = np.logspace(-2, 0, 4)
    flat = geometry_report(model, IMAGES, steps, n_score=5, n_curve=4, curve_directions=2)
    assert flat["scores"]["spectral_radius"].shape == (5,)
    assert flat["mse"].shape == (2, 4) and flat["displacement"].shape == (4,)
    assert "scores_decoder" not in flat
    curved = geometry_report(model, IMAGES, steps, n_score=5, n_curve=4, n_curved=3, curve_directions=2)
    assert curved["scores_decoder"]["spectral_radius"].shape == (3,) and curved["mse_decoder"].shape == (4,)
    np.testing.assert_allclose(curved["scores"]["spectral_radius"], flat["scores"]["spectral_radius"])
    means = mean_scores(flat)
    assert means["spectral_radius"] == pytest.approx(float(flat["scores"]["spectral_radius"].mean()))


def test_only_the_method_modules_a_run_used_count_for_staleness():
    code = ("from rvae.methods import get_method, all_methods\n"
            "from rvae.book.provenance import loaded_package_modules\n"
            "all_methods(); get_method('elbo')\n"
            "print(','.join(loaded_package_modules()))")
    used = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip().split(",")
    assert "methods/vae.py" in used and "methods/__init__.py" in used
    assert not {"methods/mixup.py", "methods/avae.py", "methods/smooth.py"} & set(used)
    assert "__init__.py" not in used and "book/__init__.py" not in used       # only the package map: no numbers


def test_a_finished_checkpoint_is_reused_and_nothing_else(tmp_path):
    from rvae.reuse import load_finished
    trained = _experiment(checkpoint_dir=str(tmp_path)).train("beta_vae", beta=2.0)
    loaded, why = load_finished(_experiment(checkpoint_dir=str(tmp_path)), "beta_vae", beta=2.0)
    assert why == "" and loaded.name == trained.name
    for a, b in zip(trained.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    missing, why = load_finished(_experiment(checkpoint_dir=str(tmp_path)), "beta_vae", beta=3.0)
    assert missing is None and why.endswith("no checkpoint")
    other_data = Experiment.on_images("toy", 1 - IMAGES, 8, architecture="mlp", latent_dim=2, observation_variance=0.1,
                                      steps=6, learning_rate=1e-2, seed=3, checkpoint_dir=str(tmp_path))
    foreign, why = load_finished(other_data, "beta_vae", beta=2.0)
    assert foreign is None and "another configuration or other data" in why
    assert (tmp_path / f"{trained.name}.pt").exists()                 # left alone, not renamed aside
    short = _experiment(checkpoint_dir=str(tmp_path), steps=6).train("elbo")
    (tmp_path / f"{short.name}.pt").rename(tmp_path / f"{_experiment().name('elbo', short.config, 'mlp', 9, None)}.pt")
    unfinished, why = load_finished(_experiment(checkpoint_dir=str(tmp_path)), "elbo", steps=9)
    assert unfinished is None and "unfinished (6 of 9 steps)" in why
