"""Errors that the chapter runner reports as one clear line (no traceback).

Any exception deriving from :class:`RvaeError` is a *user-facing* error: its message alone
says what went wrong and how to fix it. The CLI prints ``rvae: error: <message>`` and exits
non-zero; inside a notebook the same message ends the run.
"""
from __future__ import annotations


class RvaeError(Exception):
    """Base class: an error whose message is meant for the person running the book."""


class DatasetNotFoundError(RvaeError):
    """A dataset's files are not under the data root (and could not be downloaded)."""


class UnknownChapterError(RvaeError):
    """A chapter name that is not in ``notebooks/``."""


class ParameterError(RvaeError):
    """An unknown parameter, or a value that does not parse as the parameter's type."""


class NonFiniteLossError(RvaeError):
    """Training produced a NaN or infinite loss."""


class ChapterExecutionError(RvaeError):
    """A chapter's notebook raised while it was executed."""


#: Exception class names that the runner recognises in a failed kernel and reports by message.
USER_FACING_ERROR_NAMES = frozenset(
    cls.__name__
    for cls in (RvaeError, DatasetNotFoundError, UnknownChapterError, ParameterError,
                NonFiniteLossError, ChapterExecutionError)
)
