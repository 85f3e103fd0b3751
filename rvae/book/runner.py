"""Execute a chapter with papermill, stamp its provenance and file its results.

``notebooks/NAME.ipynb --(papermill, profile + overrides)--> book/executed/NAME/PROFILE.ipynb``
plus ``results/NAME/PROFILE.json``; the book shows, as ``book/chapters/NAME.ipynb``, the
strongest executed copy there is (paper > full > quick), so a quick run never hides a full or
paper one. Everything is produced in a temporary folder first and moved into place only when the
whole chapter ran: a failed or interrupted run leaves the previous copies and result untouched.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import nbformat

from rvae.book import provenance
from rvae.atomic import atomic_write_json, atomic_write_text
from rvae.book.chapters import PROFILES, Chapter, book_root, get_chapter
from rvae.errors import USER_FACING_ERROR_NAMES, ChapterExecutionError, ParameterError
from rvae.book.results import RESULTS_FILE_VARIABLE, result_path

KERNEL_NAME = "python3"
EXECUTED_DIR = Path("book") / "chapters"         # what the book shows: one copy per chapter
PROFILE_COPIES_DIR = Path("book") / "executed"  # every profile's latest executed copy
PROVENANCE_TAG = "rvae-provenance"
#: The quick profile runs its kernel on one thread: torch's reductions split work by thread count, so
#: two threads and one end with different weights. Pinning the thread count makes quick's outputs
#: (what nbval compares) the same on any machine, and lets CI run two chapters side by side on two
#: cores. nbval's kernels get the same variables from notebooks/conftest.py. Full and paper runs
#: keep torch's default (every core).
QUICK_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class RunOutcome:
    """What one chapter run produced."""
    chapter: str
    profile: str
    executed_notebook: Path
    result_file: Path
    wall_seconds: float
    claims: list[dict]
    checks: list[dict]
    shown_profile: str


def outcome_summary(outcome: RunOutcome) -> str:
    """'checks 3 of 3 pass; claims (5): 2 hold, 0 fail, 3 inconclusive' for a finished run."""
    from rvae.book.results import verdict_counts
    parts = []
    if outcome.checks:
        parts.append(f"checks {sum(bool(c['passes']) for c in outcome.checks)} of {len(outcome.checks)} pass")
    if outcome.claims:
        parts.append(f"claims ({len(outcome.claims)}): {verdict_counts([c['verdict'] for c in outcome.claims])}")
    return "; ".join(parts) or "no checks or claims"


def executed_path(root: Path, chapter: str) -> Path:
    """The executed copy of a chapter that the book renders."""
    return root / EXECUTED_DIR / f"{chapter}.ipynb"


def profile_copy_path(root: Path, chapter: str, profile: str) -> Path:
    """The latest executed copy of a chapter at one profile."""
    return root / PROFILE_COPIES_DIR / chapter / f"{profile}.ipynb"


def show_strongest(root: Path, chapter: str) -> str | None:
    """Copy the strongest executed copy of ``chapter`` (paper > full > quick) to the shown place;
    return its profile (None when the chapter has no executed copy)."""
    for profile in reversed(PROFILES):
        copy = profile_copy_path(root, chapter, profile)
        if copy.exists():
            atomic_write_text(executed_path(root, chapter), copy.read_text(encoding="utf-8"))
            return profile
    return None


def _run_code(notebook: nbformat.NotebookNode) -> list[str]:
    """The sources of a notebook's code cells, without the parameters papermill injected."""
    return [cell.source for cell in notebook.cells
            if cell.cell_type == "code" and "injected-parameters" not in cell.metadata.get("tags", [])]


def refresh_prose(root: Path, chapter: Chapter) -> list[str]:
    """Bring the chapter's current prose into every executed copy that was run from the same code;
    return the profiles whose copies were refreshed.

    Prose (markdown) changes no number, and a full or paper run costs an hour of CPU or a GPU: a
    copy whose code cells are exactly the notebook's keeps its outputs, takes the notebook's
    markdown cells, and its record (and result file) gets the notebook's new source hash and a
    ``prose_updated_utc`` stamp. A copy run from other code is left alone (it stays stale).
    """
    notebook = nbformat.read(chapter.path, as_version=4)
    current_hash = provenance.notebook_source_hash(chapter.path)
    refreshed = []
    for profile in PROFILES:
        copy = profile_copy_path(root, chapter.name, profile)
        if not copy.exists():
            continue
        executed = nbformat.read(copy, as_version=4)
        stored = executed.metadata.get("rvae", {})
        record = stored.get("provenance")
        if not record or record.get("notebook_source_hash") == current_hash or _run_code(executed) != _run_code(notebook):
            continue
        ran = iter(c for c in executed.cells if c.cell_type == "code"
                   and "injected-parameters" not in c.metadata.get("tags", []))
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        cells = []
        for cell in notebook.cells:
            if cell.cell_type != "code":
                cells.append(cell)
                continue
            cells.append(next(ran))
            if "parameters" in cell.metadata.get("tags", []):
                cells.extend(injected)
        executed.cells = cells
        old_hash = record["notebook_source_hash"]
        record = {**record, "notebook_source_hash": current_hash, "prose_updated_utc": provenance.utc_now()}
        stamp(executed, record, stored.get("claims", []), stored.get("checks", []))
        result_file = result_path(root, chapter.name, profile)
        if result_file.exists():
            result = json.loads(result_file.read_text(encoding="utf-8"))
            if result.get("provenance", {}).get("notebook_source_hash") == old_hash:
                atomic_write_json(result_file, {**result, "provenance": record})
        atomic_write_text(copy, nbformat.writes(executed))
        refreshed.append(profile)
    if refreshed:
        show_strongest(root, chapter.name)
    return refreshed


def executed_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance stored in an executed copy's metadata, or None when there is no copy."""
    if not path.exists():
        return None
    return nbformat.read(path, as_version=4).metadata.get("rvae", {}).get("provenance")


def hardware_description(device: str) -> str:
    """A human-readable name of the processor the chapter runs on."""
    if device == "cuda":
        import torch
        return torch.cuda.get_device_name(0)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def check_device(device: str) -> None:
    """Fail early, with one line, when CUDA is asked for but torch sees no GPU."""
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ParameterError("--device cuda was asked for, but torch sees no CUDA device here")


def profile_environment(profile: str) -> dict[str, str | None]:
    """The kernel's thread variables for ``profile``: QUICK_ENVIRONMENT at quick, else unchanged (None)."""
    return dict(QUICK_ENVIRONMENT) if profile == "quick" else {name: None for name in QUICK_ENVIRONMENT}


def kernel_threads(profile: str) -> int:
    """How many threads torch uses in a kernel started for ``profile`` (recorded in the provenance)."""
    variables = QUICK_ENVIRONMENT if profile == "quick" else os.environ
    counts = [int(variables[name]) for name in QUICK_ENVIRONMENT
              if variables.get(name, "").isdigit() and int(variables[name]) > 0]
    return min(counts) if counts else (os.cpu_count() or 1)       # torch takes the smallest one set


@contextlib.contextmanager
def environment(**variables: str | None) -> Iterator[None]:
    """Set (or, with None, leave unchanged) environment variables for the kernel, then restore."""
    saved = {name: os.environ.get(name) for name in variables}
    try:
        for name, value in variables.items():
            if value is not None:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _describe_failure(chapter: str, error: Exception) -> str:
    ename = getattr(error, "ename", None)
    evalue = _ANSI.sub("", str(getattr(error, "evalue", "") or "")).strip()
    if ename in USER_FACING_ERROR_NAMES:
        return f"chapter {chapter}: {evalue}"
    if ename:
        count = getattr(error, "exec_count", None)
        where = f" in cell [{count}]" if count is not None else ""
        return f"chapter {chapter} failed{where}: {ename}: {evalue}"
    message = _ANSI.sub("", str(error)).strip().splitlines()
    return f"chapter {chapter} could not be executed: {type(error).__name__}: {message[-1] if message else ''}"


def provenance_banner(record: dict[str, Any]) -> str:
    """A MyST admonition summarising how an executed chapter was produced."""
    overrides = record["overrides"]
    overridden = ", ".join(f"`{k}={v!r}`" for k, v in overrides.items()) if overrides else "none"
    software = record["software"]
    return "\n".join([
        "```{admonition} How this page was computed",
        ":class: note",
        f"Profile **{record['profile']}** · overridden parameters: {overridden}  ",
        f"Device: {record['device']} ({record['hardware']}) · wall time {record['wall_seconds']:.0f} s "
        f"· finished {record['finished_utc']}"
        + (f" · prose updated {record['prose_updated_utc']}" if record.get("prose_updated_utc") else "") + "  ",
        f"Git revision `{record['git_revision']}` · torch {software['torch']} · "
        f"Python {software['python']}  ",
        *[f"Data: {entry['description']}  " for entry in record.get("data", {}).values() if entry.get("description")],
        f"Re-run: `rvae run {record['chapter']} --profile {record['profile']}"
        + "".join(f" --set {k}={v}" for k, v in overrides.items()) + "`",
        "```",
    ])


def stamp(notebook: nbformat.NotebookNode, record: dict[str, Any], claims: list[dict], checks: list[dict]) -> None:
    """Insert (or replace) the provenance banner after the title cell and store the record."""
    notebook.cells = [c for c in notebook.cells if PROVENANCE_TAG not in c.metadata.get("tags", [])]
    banner = nbformat.v4.new_markdown_cell(provenance_banner(record))
    banner.metadata["tags"] = [PROVENANCE_TAG]
    notebook.cells.insert(1 if notebook.cells and notebook.cells[0].cell_type == "markdown" else 0, banner)
    notebook.metadata["rvae"] = {"provenance": record, "claims": claims, "checks": checks}


def run_chapter(name: str, profile: str = "quick", overrides: dict[str, str] | None = None,
                device: str = "cpu", data_dir: str | None = None, progress: bool = True) -> RunOutcome:
    """Execute one chapter and file its executed copy and result. Raises RvaeError subclasses."""
    import papermill

    root = book_root()
    chapter: Chapter = get_chapter(name)
    overrides = overrides or {}
    values = chapter.resolve(profile, overrides, device)
    typed_overrides = {k: values[k] for k in overrides}
    destination = profile_copy_path(root, chapter.name, profile)
    check_device(device)
    data_root = str(Path(data_dir).expanduser().resolve()) if data_dir else None

    started, started_utc = time.monotonic(), provenance.utc_now()
    source_hash = provenance.notebook_source_hash(chapter.path)      # the notebook as run, not as edited since
    revision = provenance.git_revision(root)                           # the commit it ran from
    with tempfile.TemporaryDirectory(prefix=f"rvae-{chapter.name}-") as scratch:
        scratch_path = Path(scratch)
        metrics_file = scratch_path / "metrics.json"
        output = scratch_path / f"{chapter.name}.ipynb"
        with environment(**{RESULTS_FILE_VARIABLE: str(metrics_file), "RVAE_DATA": data_root,
                            "RVAE_PROGRESS": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                            **profile_environment(profile)}):
            try:
                papermill.execute_notebook(
                    str(chapter.path), str(output), parameters=values, kernel_name=KERNEL_NAME,
                    progress_bar=progress, log_output=False, cwd=str(root))
            except Exception as error:  # papermill raises its own and nbclient's errors
                raise ChapterExecutionError(_describe_failure(chapter.name, error)) from error
        wall_seconds = time.monotonic() - started
        if not metrics_file.exists():
            raise ChapterExecutionError(
                f"chapter {chapter.name} ran but reported no results: it must end with rvae.book.results.report(...)")
        reported = json.loads(metrics_file.read_text())
        record = {
            "chapter": chapter.name, "title": chapter.title, "profile": profile,
            "parameters": values, "overrides": typed_overrides, "device": device,
            "hardware": hardware_description(device), "threads": kernel_threads(profile),
            "data": reported.get("data", {}),
            "git_revision": revision,
            "notebook_source_hash": source_hash,
            "package_modules": reported.get("package_modules"),
            "package_source_hash": provenance.package_source_hash(reported.get("package_modules")),
            "software": provenance.software_versions(),
            "started_utc": started_utc, "finished_utc": provenance.utc_now(),
            "wall_seconds": round(wall_seconds, 1),
        }
        notebook = nbformat.read(output, as_version=4)
        papermill_record = notebook.metadata.get("papermill", {})      # no paths of this machine in the copy
        papermill_record["input_path"] = str(chapter.path.relative_to(root)) if chapter.path.is_relative_to(root) \
            else chapter.path.name
        papermill_record["output_path"] = str(destination.relative_to(root))
        stamp(notebook, record, reported["claims"], reported["checks"])
        result_file = result_path(root, chapter.name, profile)
        atomic_write_json(result_file, {"chapter": chapter.name, "title": chapter.title, "profile": profile,
                                        "provenance": record, "metrics": reported["metrics"],
                                        "checks": reported["checks"], "claims": reported["claims"]})
        atomic_write_text(destination, nbformat.writes(notebook))
    shown = show_strongest(root, chapter.name)
    return RunOutcome(chapter.name, profile, destination, result_file, wall_seconds,
                      reported["claims"], reported["checks"], shown)
