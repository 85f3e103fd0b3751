"""Where a result came from: git revision, library versions, hashes of the code that made it."""
from __future__ import annotations

import ast
import hashlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import nbformat

PACKAGE_DIR = Path(__file__).resolve().parent.parent          # the rvae package


#: What the runner itself writes: changes there do not make a run's source 'dirty'.
GENERATED_PATHS = ("book/chapters", "results", "book/reproduction_status.md")


def git_revision(root: Path) -> str:
    """Short commit hash of ``root``'s checkout, '+dirty' when tracked files other than the
    generated outputs (:data:`GENERATED_PATHS`) have uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        revision = git("rev-parse", "--short=12", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    try:
        excluded = [f":(exclude){path}" for path in GENERATED_PATHS]
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded))
    except (OSError, subprocess.SubprocessError):
        dirty = False
    return revision + ("+dirty" if dirty else "")


def notebook_source_hash(path: Path) -> str:
    """SHA-256 of a notebook's cell types and sources only (outputs and metadata excluded)."""
    notebook = nbformat.read(path, as_version=4)
    cells = [[cell.cell_type, cell.source] for cell in notebook.cells]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()[:16]


def package_source_hash(modules: list[str] | None = None) -> str:
    """SHA-256 over the sources of ``rvae`` modules, named by their path in the package
    ('gaussians.py', 'methods/vae.py'); default: every module.

    A chapter records the modules it actually used, so that a change to a module it never used
    (a new method, another chapter's helper) does not mark it stale.
    """
    digest = hashlib.sha256()
    names = sorted(modules) if modules is not None else sorted(
        str(p.relative_to(PACKAGE_DIR)) for p in PACKAGE_DIR.rglob("*.py"))
    for name in names:
        path = PACKAGE_DIR / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.exists() else b"<removed>")
    return digest.hexdigest()[:16]


def _only_documentation(path: Path) -> bool:
    """Whether a module holds nothing but string constants (a docstring, ``__version__``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return False
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Expr, ast.Assign)) else None
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            return False
    return True


def loaded_package_modules() -> list[str]:
    """Package paths of the ``rvae`` modules this process used, e.g. ['book/results.py', 'methods/vae.py'].

    Every imported module counts, except method modules: finding a method imports them all, so
    only those whose methods were looked up (and the method modules they draw on) count. A package
    ``__init__.py`` that holds only its docstring (the map of what is where) does not count either:
    describing a new module there changes no number.
    """
    names = set()
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if (name == "rvae" or name.startswith("rvae.")) and source and not name.startswith("rvae.methods."):
            path = Path(source).resolve()
            if PACKAGE_DIR in path.parents and not _only_documentation(path):
                names.add(str(path.relative_to(PACKAGE_DIR)))
    if "rvae.methods" in sys.modules:
        names.update(sys.modules["rvae.methods"].used_modules())
    return sorted(names)


def utc_now() -> str:
    """The current time in UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def software_versions() -> dict[str, str]:
    """Python, platform and the versions of the libraries that shape the numbers."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for module in ("torch", "torchvision", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "not installed"
    return versions
