"""nbval's side of the quick profile.

- Kernels run on one thread, as `rvae run` runs the quick profile (rvae.book.runner.QUICK_ENVIRONMENT),
  so that their outputs match the pinned ones on any machine.
- Chapters are collected longest first, by their last recorded quick wall time (results/CHAPTER/
  quick.json; unrecorded ones first of all): with `-n 2 --dist loadfile --no-loadscope-reorder` each
  free worker takes the next chapter, which keeps the two workers' loads close.
"""
import json
import os
from pathlib import Path

from rvae.book.runner import QUICK_ENVIRONMENT

os.environ.update(QUICK_ENVIRONMENT)
RESULTS = Path(__file__).resolve().parent.parent / "results"


def quick_seconds(chapter: str) -> float:
    """The chapter's last recorded quick wall time; infinity when none is recorded."""
    try:
        return float(json.loads((RESULTS / chapter / "quick.json").read_text())["provenance"]["wall_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("inf")


def pytest_collection_modifyitems(items):
    """Longest chapter first; a chapter's cells keep their order (the sort is stable)."""
    items.sort(key=lambda item: -quick_seconds(Path(str(item.fspath)).stem))
