"""Per-model evaluation records: exact round trips, atomic filing, and refusal of other settings or models."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rvae.experiment import Experiment
from rvae.model_records import RecordError, decode, encode, read_record, record_path, write_record

IMAGES = torch.rand(64, 1, 6, 6, generator=torch.Generator().manual_seed(0))
SETTINGS = {"n_eval": 5, "iterations": 10, "radius": 0.1, "radii": [0.05, 0.1], "seed": 0}


def _evaluation():
    rng = np.random.default_rng(1)
    return {"pgd": rng.random(7) < 0.5, "radius": rng.random(7) * 1e-7 + np.pi,
            "pgd_at": {0.05: rng.random(7) < 0.3, 0.1: np.zeros(7, dtype=bool)},
            "autoattack_largest": {0.05: 0.05000001, 0.1: 0.1}, "notes": ["a note"], "seconds_per_step": float("nan"),
            "spectral_radius": np.float32(2.851231098175049), "steps": np.int64(3), "entropy": None, "empty": np.zeros(0)}


def _same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_an_evaluation_survives_json_exactly():
    evaluation = _evaluation()
    back = decode(json.loads(json.dumps(encode(evaluation), allow_nan=False)))
    expected = {**evaluation, "spectral_radius": float(evaluation["spectral_radius"]), "steps": 3}   # numpy scalars: Python's
    _same(back, expected)
    assert back["radius"][0] == evaluation["radius"][0]            # float64 bit for bit, not rounded
    assert isinstance(next(iter(back["pgd_at"])), float)          # the radii stay numbers, not strings
    with pytest.raises(TypeError, match="cannot record"):
        encode({"model": torch.nn.Linear(1, 1)})


def test_a_record_is_read_back_only_under_its_own_settings_and_model(tmp_path):
    path = record_path(tmp_path, "06_mixup", "mnist-mlp-elbo-abc", SETTINGS)
    assert read_record(path, SETTINGS, "f1") == (None, "no record")
    write_record(path, name="mnist-mlp-elbo-abc", fingerprint="f1", settings=SETTINGS, evaluation=_evaluation(),
                 revision="0123456789ab")
    stored = json.loads(path.read_text())
    assert stored["checkpoint"] == "mnist-mlp-elbo-abc" and stored["git_revision"] == "0123456789ab"
    record, why = read_record(path, dict(reversed(list(SETTINGS.items()))), "f1")     # key order is no matter
    assert why == "" and np.array_equal(record["evaluation"]["pgd"], _evaluation()["pgd"])
    assert record["git_revision"] == "0123456789ab" and record["fingerprint"] == "f1"
    assert read_record(path, SETTINGS, None)[1] == ""            # no fingerprint to compare: the name decides
    assert read_record(path, {**SETTINGS, "iterations": 100}, "f1") == (
        None, "its record was made under other evaluation settings")
    assert read_record(path, SETTINGS, "f2") == (None, "its record belongs to another configuration or other data")


def test_file_names_tell_tasks_and_settings_apart(tmp_path):
    base = record_path(tmp_path, "09_celeba", "m", SETTINGS, "Blond Hair")
    assert base.parent == tmp_path / "09_celeba" and base.name.startswith("m-Blond_Hair-")
    assert record_path(tmp_path, "09_celeba", "m", dict(reversed(list(SETTINGS.items()))), "Blond Hair") == base
    others = {record_path(tmp_path, "09_celeba", "m", SETTINGS, "Bald"), record_path(tmp_path, "09_celeba", "m", SETTINGS),
              record_path(tmp_path, "09_celeba", "m", {**SETTINGS, "n_eval": 6}, "Blond Hair")}
    assert base not in others and len(others) == 3


def test_a_failed_write_keeps_the_old_record_and_a_broken_file_is_named(tmp_path):
    path = record_path(tmp_path, "s", "m", SETTINGS)
    write_record(path, name="m", fingerprint="f", settings=SETTINGS, evaluation={"pgd": np.ones(3, dtype=bool)},
                 revision="r")
    before = path.read_text()
    with pytest.raises(TypeError):
        write_record(path, name="m", fingerprint="f", settings=SETTINGS, evaluation={"bad": object()}, revision="r")
    assert path.read_text() == before and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    path.write_text("{not json")
    with pytest.raises(RecordError, match=path.name):
        read_record(path, SETTINGS, "f")
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(RecordError, match="not a model record"):
        read_record(path, SETTINGS, "f")


def _experiment(**settings):
    defaults = dict(architecture="mlp", latent_dim=2, observation_variance=0.1, steps=6, learning_rate=1e-2, seed=3)
    return Experiment.on_images("toy", IMAGES, 8, **{**defaults, **settings})


def test_the_expected_identity_is_the_checkpoints_without_loading_it(tmp_path):
    from rvae.reuse import expected_identity, load_finished
    trained = _experiment(checkpoint_dir=str(tmp_path)).train("aae", weight=2.0)     # a method with a discriminator
    written = torch.load(tmp_path / f"{trained.name}.pt", weights_only=False)["fingerprint"]
    assert expected_identity(_experiment(), "aae", weight=2.0) == (trained.name, written)
    other_name, other = expected_identity(_experiment(seed=4), "aae", weight=2.0)
    assert other_name == trained.name and other != written          # same name, other initial weights
    follow = _experiment(checkpoint_dir=str(tmp_path)).train("elbo", steps=3, start_from=trained)
    follow_written = torch.load(tmp_path / f"{follow.name}.pt", weights_only=False)["fingerprint"]
    assert expected_identity(_experiment(), "elbo", steps=3, start_from=trained) == (follow.name, follow_written)

    class NameOnly:                                                  # a starting model known by its record alone
        name = trained.name
    assert expected_identity(_experiment(), "elbo", steps=3, start_from=NameOnly()) == (follow.name, None)
    loaded, why = load_finished(_experiment(checkpoint_dir=str(tmp_path)), "elbo", steps=3, start_from=NameOnly())
    assert loaded is None and why == f"{follow.name}: its starting model has no weights here"
