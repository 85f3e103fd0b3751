"""Keep source notebooks clean: outputs only in the cells that nbval checks.

nbval (``--nbval-lax``) compares a cell's fresh output with its stored output only for cells
tagged ``nbval-check-output``. ``rvae pin-outputs CHAPTER`` executes the source notebook at its
defaults exactly as nbval will, stores the outputs of those cells, and clears every other output.
``--from-executed`` takes them from the chapter's executed quick copy instead, when that copy is a
current quick run without overrides (the same code at the same values: the same outputs).
"""
from __future__ import annotations

import nbformat

from rvae.atomic import atomic_write_text
from rvae.book import provenance
from rvae.book.chapters import book_root, get_chapter
from rvae.book.runner import KERNEL_NAME, environment, profile_copy_path, profile_environment
from rvae.errors import ChapterExecutionError

CHECK_TAG = "nbval-check-output"


def is_checked(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def strip_unchecked_outputs(notebook: nbformat.NotebookNode) -> int:
    """Clear outputs and execution counts of every code cell that nbval does not check; return how many.

    Checked cells keep their execution count: nbval treats a cell with outputs but no count as
    never run and fails it.
    """
    cleared = 0
    for cell in notebook.cells:
        if cell.cell_type == "code" and not is_checked(cell):
            cleared += bool(cell.outputs)
            cell.outputs = []
            cell.execution_count = None
    return cleared


def _current_quick_copy(root, chapter) -> nbformat.NotebookNode:
    """The executed copy of ``chapter`` if it is a current quick run without overrides, else a one-line error."""
    path = profile_copy_path(root, chapter.name, "quick")
    if not path.exists():
        raise ChapterExecutionError(f"{chapter.name} has no executed quick copy: run 'rvae run {chapter.name}' first")
    executed = nbformat.read(path, as_version=4)
    record = executed.metadata.get("rvae", {}).get("provenance", {})
    current = (record.get("profile") == "quick" and not record.get("overrides")
               and record.get("notebook_source_hash") == provenance.notebook_source_hash(chapter.path)
               and record.get("package_source_hash") == provenance.package_source_hash(record.get("package_modules")))
    if not current:
        raise ChapterExecutionError(f"the executed copy of {chapter.name} is not a current quick run without "
                                    f"overrides: run 'rvae run {chapter.name}' first, or pin without --from-executed")
    return executed


def pin_outputs(name: str, from_executed: bool = False) -> int:
    """Store a chapter's checked outputs in its source notebook: from executing the source notebook at
    its quick defaults, or (``from_executed``) from its current quick executed copy, matched by cell id.

    Returns the number of checked cells whose outputs were stored.
    """
    root = book_root()
    chapter = get_chapter(name)
    source = nbformat.read(chapter.path, as_version=4)
    if from_executed:
        by_id = {cell.get("id"): cell for cell in _current_quick_copy(root, chapter).cells}
        ran_cells = [by_id.get(cell.get("id")) for cell in source.cells]
        if any(ran is None for original, ran in zip(source.cells, ran_cells) if is_checked(original)):
            raise ChapterExecutionError(f"the executed copy of {chapter.name} lacks a checked cell of the source")
    else:
        from nbclient import NotebookClient

        executed = nbformat.read(chapter.path, as_version=4)
        with environment(RVAE_PROGRESS="0", **profile_environment("quick")):
            NotebookClient(executed, kernel_name=KERNEL_NAME, timeout=1800,
                           resources={"metadata": {"path": str(root)}}).execute()
        ran_cells = executed.cells
    pinned, ordinal = 0, 0
    for original, ran in zip(source.cells, ran_cells):
        ordinal += original.cell_type == "code"
        if is_checked(original):
            original.outputs = ran.outputs
            # the count a fresh run of the source gives (an executed copy's counts include papermill's cell)
            original.execution_count = ordinal if from_executed else ran.execution_count
            for output in original.outputs:
                if "execution_count" in output:
                    output["execution_count"] = original.execution_count
            pinned += 1
    strip_unchecked_outputs(source)
    atomic_write_text(chapter.path, nbformat.writes(source))
    return pinned
