"""Progress bars that show in a terminal and stay out of notebooks' stored outputs.

Inside a Jupyter kernel (papermill, nbval, a person's notebook) bars are off by default, so
executed chapters carry no tqdm noise on stderr. ``RVAE_PROGRESS=1`` or ``0`` overrides the
automatic choice everywhere.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress_enabled() -> bool:
    """True when progress bars should be drawn: not in a kernel, unless RVAE_PROGRESS says so."""
    setting = os.environ.get("RVAE_PROGRESS", "").strip().lower()
    if setting in {"1", "true", "yes", "on"}:
        return True
    if setting in {"0", "false", "no", "off"}:
        return False
    return "ipykernel" not in sys.modules


def progress_bar(iterable: Iterable[T], desc: str = "", total: int | None = None,
                 enabled: bool | None = None, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm bar, or return a silent tqdm when bars are off."""
    disable = not (progress_enabled() if enabled is None else enabled)
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False, **kwargs)
