"""rvae.book.build: which chapters get executed before the book is rendered, and the jupyter-book call.

jupyter-book itself is never run here (subprocess.run is replaced); one chapter of the miniature
book is executed for real, the others through a recording stand-in for run_chapter.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from rvae.book import build, provenance
from rvae.book.chapters import get_chapter
from rvae.atomic import atomic_write_json
from rvae.book.results import result_path
from rvae.book.runner import RunOutcome, executed_path, profile_copy_path, refresh_prose, stamp
from rvae.book.status import STATUS_PAGE
from rvae.errors import RvaeError

from conftest import REPORTING_BODY, make_chapter

MODULES = ["params.py"]           # the package modules the stand-in runs "used"


def _record(chapter, profile="quick", notebook_hash=None, package_hash=None, overrides=None):
    """A provenance record as the runner writes it; current unless a hash is given."""
    return {"chapter": chapter.name, "title": chapter.title, "profile": profile, "parameters": {},
            "overrides": overrides or {}, "device": "cpu", "hardware": "test", "data": {},
            "git_revision": "abc1234", "software": {"torch": "x", "python": "3"},
            "notebook_source_hash": notebook_hash or provenance.notebook_source_hash(chapter.path),
            "package_modules": MODULES,
            "package_source_hash": package_hash or provenance.package_source_hash(MODULES),
            "started_utc": "2024-01-01T00:00:00+00:00", "finished_utc": "2024-01-01T00:00:01+00:00",
            "wall_seconds": 1.0}


def _write_executed_copy(root: Path, name: str, record: dict) -> Path:
    chapter = get_chapter(name)
    notebook = nbformat.read(chapter.path, as_version=4)
    stamp(notebook, record, [], [])
    path = executed_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def four_chapters(mini_book):
    """The mini book with 01_demo (no executed copy), 02_current, 03_stale_quick and 04_stale_paper."""
    for name in ("02_current", "03_stale_quick", "04_stale_paper"):
        make_chapter(mini_book, name, REPORTING_BODY)
    _write_executed_copy(mini_book, "02_current", _record(get_chapter("02_current")))
    _write_executed_copy(mini_book, "03_stale_quick", _record(get_chapter("03_stale_quick"), notebook_hash="0" * 16,
                                                              overrides={"steps": 5, "sizes": [3, 4]}))
    _write_executed_copy(mini_book, "04_stale_paper", _record(get_chapter("04_stale_paper"), profile="paper",
                                                              package_hash="0" * 16))
    return mini_book


@pytest.fixture
def recorded_runs(monkeypatch):
    """run_chapter replaced by a stand-in that records its calls and reports 1 of 2 claims holding."""
    calls = []

    def run_chapter(name, profile="quick", overrides=None, device="cpu", data_dir=None, progress=True):
        calls.append({"name": name, "profile": profile, "overrides": overrides, "data_dir": data_dir,
                      "progress": progress})
        claims = [{"verdict": "holds"}, {"verdict": "fails"}]
        return RunOutcome(name, profile, Path("x.ipynb"), Path("x.json"), 12.4, claims, [], profile)
    monkeypatch.setattr(build, "run_chapter", run_chapter)
    return calls


# ------------------------------------------------------------------------------------------ chapter_state
def test_chapter_state_tells_missing_current_and_stale_copies(mini_book):
    chapter = get_chapter("01_demo")
    assert build.chapter_state(mini_book, chapter) == ("missing", None)
    record = _record(chapter)
    _write_executed_copy(mini_book, "01_demo", record)
    assert build.chapter_state(mini_book, chapter) == ("current", record)
    _write_executed_copy(mini_book, "01_demo", _record(chapter, package_hash="f" * 16))        # a module changed
    assert build.chapter_state(mini_book, chapter)[0] == "stale"
    _write_executed_copy(mini_book, "01_demo", record)
    notebook = nbformat.read(chapter.path, as_version=4)                                       # the notebook changed
    notebook.cells[-1].source += "\nprint('edited')"
    nbformat.write(notebook, chapter.path)
    state, found = build.chapter_state(mini_book, get_chapter("01_demo"))
    assert state == "stale" and found == record


# ------------------------------------------------------------------------------------------ ensure_executed
def test_missing_and_stale_quick_copies_are_executed_and_a_paper_copy_is_kept(four_chapters, recorded_runs):
    echoed = []
    build.ensure_executed(four_chapters, execute=True, data_dir="/data", progress=False, echo=echoed.append)
    assert recorded_runs == [
        {"name": "01_demo", "profile": "quick", "overrides": {}, "data_dir": "/data", "progress": False},
        # a stale quick copy is re-run with the overrides it was run with (as --set strings)
        {"name": "03_stale_quick", "profile": "quick", "overrides": {"steps": "5", "sizes": "[3, 4]"},
         "data_dir": "/data", "progress": False}]
    assert echoed == [
        "executing 01_demo at the quick profile (no executed copy yet)",
        "  claims (2): 1 hold, 1 fail, 0 inconclusive; 12 s",
        "executing 03_stale_quick at the quick profile (notebook or package changed since its run)",
        "  claims (2): 1 hold, 1 fail, 0 inconclusive; 12 s",
        "warning: 04_stale_paper shows a paper-profile run made from an older notebook or package; kept as it is "
        "(re-run it with: rvae run 04_stale_paper --profile paper --device cuda)"]
    assert all("\n" not in line for line in echoed)


def test_without_execution_a_missing_copy_is_an_error_and_a_stale_one_a_warning(four_chapters, recorded_runs):
    with pytest.raises(RvaeError, match=r"^01_demo has no executed copy; run: rvae run 01_demo$"):
        build.ensure_executed(four_chapters, execute=False, data_dir=None, progress=False, echo=print)
    _write_executed_copy(four_chapters, "01_demo", _record(get_chapter("01_demo")))
    echoed = []
    build.ensure_executed(four_chapters, execute=False, data_dir=None, progress=False, echo=echoed.append)
    assert recorded_runs == []
    assert echoed == [
        "warning: the executed copy of 03_stale_quick is stale (left as it is: --no-execute)",
        "warning: 04_stale_paper shows a paper-profile run made from an older notebook or package; kept as it is "
        "(re-run it with: rvae run 04_stale_paper --profile paper --device cuda)"]


def test_a_missing_chapter_is_really_executed_and_then_current(mini_book):
    echoed = []
    build.ensure_executed(mini_book, execute=True, data_dir=None, progress=False, echo=echoed.append)
    assert echoed[0] == "executing 01_demo at the quick profile (no executed copy yet)"
    assert echoed[1].startswith("  checks 1 of 1 pass; claims (1): 1 hold, 0 fail, 0 inconclusive; ")
    state, record = build.chapter_state(mini_book, get_chapter("01_demo"))
    assert state == "current" and record["profile"] == "quick"
    echoed.clear()
    build.ensure_executed(mini_book, execute=True, data_dir=None, progress=False, echo=echoed.append)
    assert echoed == []                                          # nothing left to do


# ------------------------------------------------------------------------------------------ jupyter-book
def test_the_jupyter_book_beside_the_interpreter_is_preferred(tmp_path, monkeypatch):
    beside = tmp_path / "bin" / "jupyter-book"
    beside.parent.mkdir()
    beside.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setattr(build.shutil, "which", lambda name: "/elsewhere/jupyter-book")
    assert build.jupyter_book_command() == str(beside)
    beside.unlink()
    assert build.jupyter_book_command() == "/elsewhere/jupyter-book"


def test_a_missing_jupyter_book_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(RvaeError) as error:
        build.jupyter_book_command()
    assert str(error.value) == "jupyter-book is not installed in this environment: pip install -e '.[dev]'"


@pytest.fixture
def fake_jupyter_book(monkeypatch):
    """subprocess.run of build replaced: records (command, cwd) and returns the set return code."""
    calls = []
    state = {"returncode": 0}

    def run(command, cwd=None, **kwargs):
        calls.append((command, cwd))
        return subprocess.CompletedProcess(command, state["returncode"])
    monkeypatch.setattr(build.subprocess, "run", run)
    monkeypatch.setattr(build, "jupyter_book_command", lambda: "/venv/bin/jupyter-book")
    return calls, state


@pytest.mark.parametrize("strict", [True, False])
def test_build_book_executes_writes_the_status_page_and_calls_jupyter_book(four_chapters, recorded_runs,
                                                                          fake_jupyter_book, strict):
    calls, _ = fake_jupyter_book
    echoed = []
    index = build.build_book(strict=strict, data_dir="/data", progress=False, echo=echoed.append)
    root = four_chapters.resolve()
    expected = ["/venv/bin/jupyter-book", "build", str(root)] + (["-W", "--keep-going"] if strict else [])
    assert calls == [(expected, root)]
    assert [run["name"] for run in recorded_runs] == ["01_demo", "03_stale_quick"]
    assert (root / STATUS_PAGE).read_text().startswith("# Reproduction status")
    assert index == root / "_build" / "html" / "index.html"
    assert echoed[-2:] == ["building the book: " + " ".join(expected[1:]), f"book built: {index}"]


def test_a_failed_jupyter_book_build_is_one_line(four_chapters, recorded_runs, fake_jupyter_book):
    calls, state = fake_jupyter_book
    state["returncode"] = 1
    with pytest.raises(RvaeError) as error:
        build.build_book(progress=False, echo=lambda line: None)
    assert str(error.value) == "jupyter-book build failed (its messages are above)"
    assert len(calls) == 1


def test_build_book_without_execution_stops_before_jupyter_book_when_a_copy_is_missing(four_chapters, recorded_runs,
                                                                                      fake_jupyter_book):
    calls, _ = fake_jupyter_book
    with pytest.raises(RvaeError, match="01_demo has no executed copy"):
        build.build_book(execute=False, progress=False, echo=lambda line: None)
    assert calls == [] and recorded_runs == []
    assert not (four_chapters / STATUS_PAGE).exists()


# ------------------------------------------------------------------------------------------ refresh_prose
def _write_profile_run(root: Path, name: str, record: dict, printed: str) -> Path:
    """A profile's executed copy as papermill leaves it (injected parameters, outputs), stamped, with its result."""
    notebook = nbformat.read(get_chapter(name).path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    at = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    notebook.cells.insert(at + 1, nbformat.v4.new_code_cell("# Parameters\nsteps = 10",
                                                           metadata={"tags": ["injected-parameters"]}))
    stamp(notebook, record, [{"verdict": "holds"}], [])
    path = profile_copy_path(root, name, record["profile"])
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    atomic_write_json(result_path(root, name, record["profile"]),
                      {"chapter": name, "profile": record["profile"], "provenance": record, "metrics": {"m": 1},
                       "checks": [], "claims": [{"verdict": "holds"}]})
    return path


def _edit(chapter, kind: str, text: str) -> None:
    notebook = nbformat.read(chapter.path, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text))
    nbformat.write(notebook, chapter.path)


def test_a_prose_edit_keeps_a_full_run_with_its_outputs_and_takes_the_new_prose(mini_book, recorded_runs):
    chapter = get_chapter("01_demo")
    _write_profile_run(mini_book, "01_demo", _record(chapter, profile="full"), "full-run output")
    refresh_prose(mini_book, chapter)                                          # nothing to do yet
    _edit(chapter, "markdown", "## Discussion of the full run")
    assert build.chapter_state(mini_book, chapter)[0] == "missing"             # shown copy not made yet
    echoed = []
    build.ensure_executed(mini_book, execute=True, data_dir=None, progress=False, echo=echoed.append)
    assert echoed == ["01_demo: the full run keeps its outputs and takes the notebook's new prose (same code)"]
    assert recorded_runs == []                                                 # nothing was re-run
    state, record = build.chapter_state(mini_book, chapter)
    assert state == "current" and record["profile"] == "full" and record["prose_updated_utc"]
    shown = nbformat.read(executed_path(mini_book, "01_demo"), as_version=4)
    assert shown.cells[-1].source == "## Discussion of the full run"
    code = [c for c in shown.cells if c.cell_type == "code"]
    assert all(c.outputs[0]["text"] == "full-run output" for c in code if "injected-parameters" not in c.metadata.get("tags", []))
    tags = [c.metadata.get("tags", []) for c in shown.cells]
    at = tags.index(["parameters"])
    assert tags[at + 1] == ["injected-parameters"] and sum("rvae-provenance" in t for t in tags) == 1
    assert "prose updated" in next(c.source for c in shown.cells if "rvae-provenance" in c.metadata.get("tags", []))
    assert shown.metadata["rvae"]["claims"] == [{"verdict": "holds"}]
    import json
    result = json.loads(result_path(mini_book, "01_demo", "full").read_text())
    assert result["provenance"]["notebook_source_hash"] == provenance.notebook_source_hash(chapter.path)
    assert result["metrics"] == {"m": 1}


def test_a_code_edit_leaves_the_run_stale_and_untouched(mini_book):
    chapter = get_chapter("01_demo")
    copy = _write_profile_run(mini_book, "01_demo", _record(chapter, profile="full"), "full-run output")
    before = copy.read_text()
    _edit(chapter, "code", "print('a new computation')")
    assert refresh_prose(mini_book, chapter) == []
    assert copy.read_text() == before
    _edit(chapter, "markdown", "more prose")                                   # prose as well: still other code
    assert refresh_prose(mini_book, chapter) == []
