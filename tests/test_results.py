"""Claims, result files and their atomic writing."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch

from rvae import atomic
from rvae.book.results import RESULTS_FILE_VARIABLE, Check, Claim, format_checks, format_claims, report
from rvae.stats import Claimed, Evidence, Gate

HIGHER = Evidence("exact McNemar", 200, 0.05, 0.02, 0.08, 0.001)
SPANNING = Evidence("exact McNemar", 200, 0.01, -0.02, 0.04, 0.5)


def test_claims_table_states_each_verdict_with_its_evidence_and_gates():
    text = format_claims([Claim.judge("SE beats VAE at eps 0.1", paper="fig. 4", ours="0.31 vs 0.26",
                                      evidence=HIGHER, claimed=Claimed.above(0)),
                          Claim.judge("L = 20 beats L = 1", paper="fig. 7b", ours="0.27 vs 0.26",
                                      evidence=SPANNING, claimed=Claimed.above(0)),
                          Claim.judge("SE beats VAE (MNIST)", paper="fig. 5", ours="0.9 vs 0.1", evidence=HIGHER,
                                      claimed=Claimed.above(0), gates=[Gate("VAE nominal accuracy", 0.6, 0.8)])])
    lines = text.splitlines()
    assert lines[0] == "Claims (3): 1 hold, 0 fail, 2 inconclusive (1 under-trained)"
    assert lines[1] == " 1. HOLDS        SE beats VAE at eps 0.1"
    assert lines[2].split() == ["paper:", "fig.", "4"] and lines[3].split() == ["ours:", "0.31", "vs", "0.26"]
    assert "+0.05 [+0.02, +0.08] (claimed > 0; exact McNemar, n = 200, p = 0.001)" in " ".join(text.split())
    assert " 2. INCONCLUSIVE L = 20 beats L = 1" in text
    assert " 3. UNDERTRAINED SE beats VAE (MNIST)" in text
    assert "gate:   VAE nominal accuracy 0.6 (gate >= 0.8: FAILED)" in text


def test_a_judged_claim_records_n_effect_interval_test_and_verdict():
    claim = Claim.judge("c", "p", "o", HIGHER, Claimed.above(0))
    assert (claim.verdict, claim.n, claim.effect, claim.interval, claim.test, claim.claimed) == \
        ("holds", 200, 0.05, (0.02, 0.08), "exact McNemar", "> 0")
    assert Claim.judge("c", "p", "o", HIGHER, Claimed.below(0)).verdict == "fails"


def test_a_claim_refuses_an_unknown_verdict():
    with pytest.raises(ValueError, match="verdict must be one of"):
        Claim("c", "p", "o", verdict="probably")


def test_checks_pass_or_fail_and_coerce_torch_booleans():
    check = Check("gradient is zero", "eq. (2)", "0", torch.tensor(True))
    assert check.passes is True
    text = format_checks([check, Check("bound is ordered", "eq. (8)", "violated", False)])
    assert text.splitlines()[0] == "Checks: 1 of 2 pass"
    assert " 1. PASSES       gradient is zero" in text and " 2. FAILS        bound is ordered" in text


def test_report_prints_and_writes_metrics_checks_and_claims_for_the_runner(tmp_path, monkeypatch, capsys):
    destination = tmp_path / "metrics.json"
    monkeypatch.setenv(RESULTS_FILE_VARIABLE, str(destination))
    report({"accuracy": torch.tensor(0.5), "curve": [1.0, float("nan")]},
           [Claim.judge("c", "p", "o", HIGHER, Claimed.above(0))], [Check("k", "r", "o", True)])
    printed = capsys.readouterr().out
    assert "Checks: 1 of 1 pass" in printed and "Claims (1): 1 hold, 0 fail, 0 inconclusive" in printed
    written = json.loads(destination.read_text())
    assert written["metrics"] == {"accuracy": 0.5, "curve": [1.0, None]}
    assert written["checks"] == [{"check": "k", "reference": "r", "ours": "o", "passes": True}]
    assert written["claims"][0]["verdict"] == "holds" and written["claims"][0]["interval"] == [0.02, 0.08]
    assert {"book/results.py", "atomic.py", "book/provenance.py"} <= set(written["package_modules"])


def test_report_refuses_a_check_passed_as_a_claim():
    with pytest.raises(TypeError, match="takes Claim objects"):
        report({}, [Check("k", "r", "o", True)])


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
