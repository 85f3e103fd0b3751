"""Per-model evaluation records, filed with the results so that a model's numbers outlive its checkpoint.

Chapter 11 evaluates the models other chapters trained. Checkpoints live in a cache that a fresh
machine does not have, and retraining every source chapter to re-attack all of them at once costs
hours. So each model's evaluation (per-image outcomes, certificates, scores) is written, atomically
and as soon as it is finished, to one JSON file under ``results/<chapter>/models/``, named by the
model's checkpoint name, the task and a digest of the evaluation settings. A later run uses the record
when the settings are the same and the model would be the same one (its training fingerprint:
config, architecture, initial weights, data), whether or not the checkpoint is still there.

The per-image arrays are stored exactly: boolean outcomes as strings of 0s and 1s, floats as JSON
numbers (Python's repr round-trips a float64), dictionaries with their key types kept.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from rvae.atomic import atomic_write_json

FORMAT = 1


class RecordError(ValueError):
    """A record file that cannot be read as one (not JSON, or not in this format)."""


def settings_digest(settings: dict[str, Any]) -> str:
    """A short digest of the evaluation settings, part of a record's file name."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def record_path(folder: str | Path, source: str, name: str, settings: dict[str, Any], task: str = "") -> Path:
    """Where the record of model ``name`` (trained in ``source``) on ``task`` under ``settings`` is filed."""
    suffix = f"-{task.replace(' ', '_')}" if task else ""
    return Path(folder) / source / f"{name}{suffix}-{settings_digest(settings)}.json"


def encode(value: Any) -> Any:
    """A JSON-able form of ``value`` that :func:`decode` turns back into an equal value of the same type."""
    if isinstance(value, np.ndarray):
        if value.dtype == bool:
            return {"bool": "".join("1" if v else "0" for v in value.ravel()), "shape": list(value.shape)}
        if value.dtype.kind in "iuf":
            return {"array": value.ravel().tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
        raise TypeError(f"cannot record an array of dtype {value.dtype}")
    if isinstance(value, dict):
        return {"items": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [encode(v) for v in value]}
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not np.isfinite(value):
            return {"float": repr(value)}
        return value
    raise TypeError(f"cannot record a value of type {type(value).__name__}")


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`."""
    if not isinstance(value, dict):
        return value
    if "bool" in value:
        return np.array([c == "1" for c in value["bool"]], dtype=bool).reshape(value["shape"])
    if "array" in value:
        return np.array(value["array"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "items" in value:
        return {decode(k): decode(v) for k, v in value["items"]}
    if "list" in value:
        return [decode(v) for v in value["list"]]
    if "float" in value:
        return float(value["float"])
    raise RecordError(f"unknown encoded value with keys {sorted(value)}")


def write_record(path: str | Path, *, name: str, fingerprint: str | None, settings: dict[str, Any],
                 evaluation: dict[str, Any], revision: str) -> Path:
    """File one model's evaluation atomically (a reader sees the old record or the new, never half)."""
    return atomic_write_json(path, {
        "format": FORMAT, "checkpoint": name, "fingerprint": fingerprint, "settings": settings,
        "git_revision": revision, "written_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "evaluation": encode(evaluation)})


def read_record(path: str | Path, settings: dict[str, Any],
                fingerprint: str | None) -> tuple[dict[str, Any] | None, str]:
    """(the record, "") from ``path``, or (None, why not): no record, other settings,
    or a record of another model (its fingerprint differs; not checked when ``fingerprint`` is None,
    i.e. when the model starts from another whose weights are not at hand). A file that is not a
    record raises :class:`RecordError` naming it. The record is a dict: ``evaluation`` (decoded),
    ``checkpoint``, ``fingerprint``, ``settings``, ``git_revision`` and ``written_utc``."""
    path = Path(path)
    if not path.exists():
        return None, "no record"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordError(f"{path.name}: not a readable record ({error})") from None
    if not isinstance(stored, dict) or stored.get("format") != FORMAT or "evaluation" not in stored:
        raise RecordError(f"{path.name}: not a model record of format {FORMAT}")
    if stored.get("settings") != json.loads(json.dumps(settings)):
        return None, "its record was made under other evaluation settings"
    if fingerprint is not None and stored.get("fingerprint") not in (None, fingerprint):
        return None, "its record belongs to another configuration or other data"
    return {**stored, "evaluation": decode(stored["evaluation"])}, ""
