"""The reproduction-status page and the freshness of a run."""
from __future__ import annotations

from rvae.book import provenance
from rvae.book.status import freshness, render_status

CURRENT_PACKAGE = provenance.package_source_hash(["worlds/discrete_vae.py", "book/results.py"])


def _claim(i, verdict):
    return {"claim": f"claim {i}", "paper": "p", "ours": "o", "verdict": verdict, "test": "exact McNemar", "n": 1000,
            "effect": 0.05, "interval": [0.02, 0.08], "p_value": 0.01, "claimed": "> 0", "gates": []}


def _result(chapter, profile, holds, source_hash="s1", package_hash=CURRENT_PACKAGE, checks=()):
    return {"chapter": chapter, "profile": profile,
            "provenance": {"hardware": "a CPU", "wall_seconds": 12.3, "git_revision": "abc123",
                           "finished_utc": "2026-11-21T10:00:00+00:00", "overrides": {"steps": 5},
                           "notebook_source_hash": source_hash, "package_source_hash": package_hash,
                           "package_modules": ["worlds/discrete_vae.py", "book/results.py"]},
            "checks": [{"check": f"check {i}", "reference": "r", "ours": "o", "passes": p} for i, p in enumerate(checks)],
            "claims": [_claim(i, "holds" if h else "fails") for i, h in enumerate(holds)]}


def test_status_lists_runs_with_check_and_claim_counts_apart_and_freshness():
    page = render_status([_result("01_a", "quick", [True, False], checks=[True, True, False]),
                          _result("02_b", "paper", [True], source_hash="old")],
                         {"01_a": "s1", "02_b": "s1"}, {"01_a": "Chapter A", "02_b": "Chapter B"})
    assert ("| Chapter A | quick | 2 / 3 | 2: 1 hold, 1 fail, 0 inconclusive | a CPU | 12 s | `abc123` "
            "| 2026-11-21T10:00:00+00:00 | current |") in page
    assert "| Chapter B | paper | – | 1: 1 hold, 0 fail, 0 inconclusive |" in page and page.count("| stale |") == 1
    assert "| claim 1 | p | o | +0.05 [+0.02, +0.08] | exact McNemar (n = 1000) |  | **fails** |" in page
    assert "| check 2 | r | o | **no** |" in page and "`steps=5`" in page


def test_status_lists_every_profile_of_a_chapter_weakest_first():
    page = render_status([_result("01_a", "paper", [True]), _result("01_a", "quick", [True]),
                          _result("01_a", "full", [True])], {"01_a": "s1"}, {"01_a": "A"})
    assert page.index("## A (quick)") < page.index("## A (full)") < page.index("## A (paper)")


def test_a_run_is_stale_only_when_a_module_it_imported_changed():
    record = _result("01_a", "quick", [True])["provenance"]
    assert freshness(record, "s1") == "current"
    assert freshness({**record, "package_source_hash": "0" * 16}, "s1") == "stale"
    assert freshness(record, "s2") == "stale"
    assert freshness(record, None) == "chapter removed"
    assert provenance.package_source_hash(["worlds/discrete_vae.py"]) != provenance.package_source_hash(["worlds/discrete_vae.py", "data.py"])


def test_status_without_results_says_how_to_make_some():
    assert "rvae run CHAPTER" in render_status([], {}, {})


def test_parts_a_run_could_not_do_are_listed_with_their_reason():
    run = {**_result("05_c", "quick", [True]), "metrics": {"not_run": {"fashion_mnist": "images missing | see README"}}}
    page = render_status([run, _result("01_a", "quick", [True])], {"05_c": "s1", "01_a": "s1"}, {})
    assert "Not run: **fashion_mnist**: images missing \\| see README" in page
    assert page.count("Not run:") == 1


def test_a_claim_whose_test_computed_nothing_is_listed_without_numbers():
    run = _result("06_d", "full", [True, True])
    run["claims"][0].update(effect=None, interval=[None, None], verdict="inconclusive", test="outside the β ladder")
    run["claims"][1].update(interval=[None, 0.3])
    page = render_status([run], {"06_d": "s1"}, {"06_d": "D"})
    assert "| claim 0 | p | o | not computed | outside the β ladder (n = 1000) |" in page
    assert "| claim 1 | p | o | +0.05 [–, +0.3] |" in page
