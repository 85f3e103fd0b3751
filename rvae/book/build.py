"""Build the HTML book: make sure every chapter has a current executed copy, then render.

The book never executes notebooks itself (``execute_notebooks: "off"``): the runner does.
A chapter is executed here at the quick profile when it has no executed copy, or when the copy
the book shows (its strongest: paper > full > quick) is a quick run made from an older notebook
or package. A stale *full* or *paper* run is kept (it costs an hour of CPU or a GPU to redo) and
reported, never silently replaced by a quick one. A notebook whose code is unchanged and whose prose
was edited does not make its runs stale: every executed copy takes the new prose and keeps its outputs.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from rvae.book import provenance
from rvae.book.chapters import Chapter, all_chapters, book_root
from rvae.errors import RvaeError
from rvae.book.runner import executed_path, executed_provenance, outcome_summary, refresh_prose, run_chapter
from rvae.book.side_by_side import write_side_by_side_page
from rvae.book.status import freshness, write_status_page


def chapter_state(root: Path, chapter: Chapter) -> tuple[str, dict | None]:
    """('missing' | 'current' | 'stale', provenance of the executed copy)."""
    record = executed_provenance(executed_path(root, chapter.name))
    if record is None:
        return "missing", None
    current = freshness(record, provenance.notebook_source_hash(chapter.path))
    return current, record


def jupyter_book_command() -> str:
    """The jupyter-book executable of this environment."""
    beside = Path(sys.executable).parent / "jupyter-book"
    found = str(beside) if beside.exists() else shutil.which("jupyter-book")
    if not found:
        raise RvaeError("jupyter-book is not installed in this environment: pip install -e '.[dev]'")
    return found


def ensure_executed(root: Path, execute: bool, data_dir: str | None, progress: bool,
                    echo: Callable[[str], None]) -> None:
    """Execute (quick profile) every chapter whose executed copy is missing or a stale quick run."""
    for chapter in all_chapters():
        for profile in refresh_prose(root, chapter):
            echo(f"{chapter.name}: the {profile} run keeps its outputs and takes the notebook's new prose (same code)")
        state, record = chapter_state(root, chapter)
        if state == "current":
            continue
        if state == "stale" and record["profile"] != "quick":
            rerun = "--profile paper --device cuda" if record["profile"] == "paper" else "--profile full"
            echo(f"warning: {chapter.name} shows a {record['profile']}-profile run made from an older notebook or "
                 f"package; kept as it is (re-run it with: rvae run {chapter.name} {rerun})")
            continue
        if not execute:
            if state == "missing":
                raise RvaeError(f"{chapter.name} has no executed copy; run: rvae run {chapter.name}")
            echo(f"warning: the executed copy of {chapter.name} is stale (left as it is: --no-execute)")
            continue
        overrides = {k: str(v) for k, v in (record or {}).get("overrides", {}).items()}
        reason = "no executed copy yet" if state == "missing" else "notebook or package changed since its run"
        echo(f"executing {chapter.name} at the quick profile ({reason})")
        outcome = run_chapter(chapter.name, "quick", overrides, data_dir=data_dir, progress=progress)
        echo(f"  {outcome_summary(outcome)}; {outcome.wall_seconds:.0f} s")


def build_book(execute: bool = True, strict: bool = True, data_dir: str | None = None,
               progress: bool = True, echo: Callable[[str], None] = print) -> Path:
    """Execute what is missing, regenerate the status and side-by-side pages and run ``jupyter-book build``."""
    root = book_root()
    ensure_executed(root, execute, data_dir, progress, echo)
    write_status_page(root)
    write_side_by_side_page(root)
    command = [jupyter_book_command(), "build", str(root)]
    if strict:
        command += ["-W", "--keep-going"]
    echo("building the book: " + " ".join(command[1:]))
    if subprocess.run(command, cwd=root).returncode != 0:
        raise RvaeError("jupyter-book build failed (its messages are above)")
    index = root / "_build" / "html" / "index.html"
    echo(f"book built: {index}")
    return index
