"""Structure of the chapter notebooks: clean sources, one parameters cell, checked claims."""
from __future__ import annotations

import nbformat
import pytest

from rvae.checked_outputs import CHECK_TAG, is_checked

from conftest import REPO

SOURCES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_source_notebook_is_clean_and_ends_with_checked_claims(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert [c for c in code if c.outputs and not is_checked(c)] == [], "outputs only in nbval-checked cells"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "report(" in code[-1].source and CHECK_TAG in code[-1].metadata.get("tags", [])
    assert code[-1].outputs, f"run 'rvae pin-outputs {path.stem}' to store the checked claims output"
    for cell in code:
        assert "for step in range" not in cell.source, "training loops belong in the rvae package"
