"""Keep source notebooks clean: outputs only in the cells that nbval checks.

nbval (``--nbval-lax``) compares a cell's fresh output with its stored output only for cells
tagged ``nbval-check-output``. ``rvae pin-outputs CHAPTER`` executes the source notebook at its
defaults exactly as nbval will, stores the outputs of those cells, and clears every other output.
"""
from __future__ import annotations

import nbformat

from rvae.atomic import atomic_write_text
from rvae.chapters import book_root, get_chapter
from rvae.runner import KERNEL_NAME, environment

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


def pin_outputs(name: str) -> int:
    """Execute a chapter's source notebook at its quick defaults and store its checked outputs.

    Returns the number of checked cells whose outputs were stored.
    """
    from nbclient import NotebookClient

    root = book_root()
    chapter = get_chapter(name)
    executed = nbformat.read(chapter.path, as_version=4)
    with environment(RVAE_PROGRESS="0"):
        NotebookClient(executed, kernel_name=KERNEL_NAME, timeout=1800,
                       resources={"metadata": {"path": str(root)}}).execute()
    source = nbformat.read(chapter.path, as_version=4)
    pinned = 0
    for original, ran in zip(source.cells, executed.cells):
        if is_checked(original):
            original.outputs = ran.outputs
            original.execution_count = ran.execution_count
            pinned += 1
    strip_unchecked_outputs(source)
    atomic_write_text(chapter.path, nbformat.writes(source))
    return pinned
