"""The reproduction-status page."""
from __future__ import annotations

from rvae.status import render_status


def _result(chapter, profile, holds, source_hash="s1", package_hash="p1"):
    return {"chapter": chapter, "profile": profile,
            "provenance": {"hardware": "a CPU", "wall_seconds": 12.3, "git_revision": "abc123",
                           "finished_utc": "2026-11-21T10:00:00+00:00", "overrides": {"steps": 5},
                           "notebook_source_hash": source_hash, "package_source_hash": package_hash},
            "claims": [{"claim": f"claim {i}", "paper": "p", "ours": "o", "holds": h} for i, h in enumerate(holds)]}


def test_status_lists_runs_with_claim_counts_and_freshness():
    page = render_status([_result("01_a", "quick", [True, False]), _result("02_b", "paper", [True], source_hash="old")],
                         {"01_a": "s1", "02_b": "s1"}, "p1", {"01_a": "Chapter A", "02_b": "Chapter B"})
    assert "| Chapter A | quick | 1 / 2 | a CPU | 12 s | `abc123` | 2026-11-21T10:00:00+00:00 | current |" in page
    assert "| Chapter B | paper | 1 / 1 |" in page and page.count("| stale |") == 1
    assert "| claim 1 | p | o | **no** |" in page and "`steps=5`" in page


def test_status_marks_runs_stale_when_the_package_changed():
    page = render_status([_result("01_a", "quick", [True])], {"01_a": "s1"}, "p2", {})
    assert "| stale |" in page


def test_status_without_results_says_how_to_make_some():
    assert "rvae run CHAPTER" in render_status([], {}, "p", {})
