"""Claims, result files and their atomic writing."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch

from rvae import atomic
from rvae.book.results import RESULTS_FILE_VARIABLE, Claim, format_claims, report


def test_claims_table_states_each_verdict_with_paper_and_ours():
    text = format_claims([Claim("SE beats VAE at eps 0.1", paper=0.61, ours=0.58, holds=False),
                          Claim("nominal accuracy about equal", paper="≈", ours="0.97 vs 0.98", holds=True)])
    lines = text.splitlines()
    assert lines[0] == "Claims: 1 of 2 hold"
    assert lines[1] == " 1. FAILS SE beats VAE at eps 0.1"
    assert lines[2].strip() == "paper: 0.61" and lines[3].strip() == "ours:  0.58"
    assert lines[4].startswith(" 2. HOLDS ")


def test_claim_coerces_numpy_and_torch_booleans():
    assert Claim("x", 1, 1, torch.tensor(True)).holds is True


def test_report_prints_and_writes_metrics_for_the_runner(tmp_path, monkeypatch, capsys):
    destination = tmp_path / "metrics.json"
    monkeypatch.setenv(RESULTS_FILE_VARIABLE, str(destination))
    report({"accuracy": torch.tensor(0.5), "curve": [1.0, float("nan")]}, [Claim("c", "p", "o", True)])
    assert "Claims: 1 of 1 hold" in capsys.readouterr().out
    written = json.loads(destination.read_text())
    assert written["metrics"] == {"accuracy": 0.5, "curve": [1.0, None]}
    assert written["claims"] == [{"claim": "c", "paper": "p", "ours": "o", "holds": True}]
    assert {"book/results.py", "atomic.py", "book/provenance.py"} <= set(written["package_modules"])


def test_report_without_the_runner_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(RESULTS_FILE_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    report({}, [])
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "result.json"
    atomic.atomic_write_json(target, {"a": 1})
    with pytest.raises(TypeError):
        atomic.atomic_write_json(target, {"a": object()})
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_write_cleans_up_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "notebook.ipynb"
    target.write_text("old")

    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["notebook.ipynb"]


def test_json_safe_turns_non_finite_numbers_into_null():
    assert atomic.json_safe({"x": math.inf, "y": (1, torch.tensor(2.5))}) == {"x": None, "y": [1, 2.5]}


def test_json_safe_turns_arrays_into_nested_lists():
    import numpy as np
    value = {"a": np.array([[1.0, np.nan], [np.inf, 2.0]]), "t": torch.tensor([0.5, 1.5]), "s": np.float32(3.0)}
    assert atomic.json_safe(value) == {"a": [[1.0, None], [None, 2.0]], "t": [0.5, 1.5], "s": 3.0}
