"""Structure of the chapter notebooks: clean sources, one parameters cell, checked claims."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from rvae.book.checked_outputs import CHECK_TAG, is_checked

from conftest import REPO

SOURCES = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

#: Loop variables that count optimisation steps: ``for _ in range(n)``, ``for step in range(n)``...
STEP_COUNTERS = ("_", "step", "steps", "iteration", "epoch")
_COUNTING_LOOP = re.compile(rf"^[ \t]*for[ \t]+(?:{'|'.join(STEP_COUNTERS)})[ \t]+in[ \t]+range[ \t]*\(", re.M)
_MAGIC = re.compile(r"^[ \t]*[%!].*$", re.M)


def _counts_steps(node: ast.AST) -> bool:
    return (isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name)
            and node.target.id in STEP_COUNTERS and isinstance(node.iter, ast.Call)
            and isinstance(node.iter.func, ast.Name) and node.iter.func.id == "range")


def _calls_backward(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "backward"
               for n in ast.walk(node))


def training_loops(source: str) -> list[str]:
    """The first line of each loop in ``source`` that looks like a training loop: a ``for`` statement
    counting steps over ``range(...)`` (``for _ in range(n)``, ``for step in range(n)``, see
    :data:`STEP_COUNTERS`), or any ``for``/``while`` loop whose body calls ``.backward()``.

    Comprehensions (``[draw() for _ in range(3)]``) are not loops that train. A cell that does not
    parse even without its IPython magics is searched line by line for the counting loops.
    """
    try:
        tree = ast.parse(_MAGIC.sub("", source))
    except SyntaxError:
        return [match.group(0).strip() for match in _COUNTING_LOOP.finditer(source)]
    lines = source.splitlines()
    return [lines[node.lineno - 1].strip() for node in ast.walk(tree)
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and (_counts_steps(node) or _calls_backward(node))]


@pytest.mark.parametrize("source", [
    "for _ in range(100):\n    optimiser.step()",
    "for step in range(steps):\n    pass",
    "for  _  in  range (n_steps):\n    pass",
    "def fit(model):\n    for epoch in range(3):\n        model.fit_one()",
    "for i in range(10):\n    loss = model(x)\n    loss.backward()",
    "while not done:\n    loss().backward()",
    "for batch in loader:\n    if batch is None:\n        continue\n    criterion(batch).backward()",
    "%matplotlib inline\nfor _ in range(5):\n    pass",
    "!echo\ndef unfinished(:\nfor _ in range(5):\n    pass",          # does not parse: found line by line
])
def test_the_training_loop_detector_finds_training_loops(source):
    assert len(training_loops(source)) == 1, training_loops(source)


@pytest.mark.parametrize("source", [
    "for column in range(5):\n    ax.plot(column)",
    "for name, model in models.items():\n    print(name)",
    "samples = [torch.randn(3) for _ in range(4)]",
    "# for _ in range(10): a comment\nx = 1",
    "print('for _ in range(3):')",
    "result = experiment.train('se', steps=1000)",
    "for row in range(3):\n    for step_size in sizes:\n        table.append(step_size)",
    "for _ in items:\n    pass",
])
def test_the_training_loop_detector_leaves_other_code_alone(source):
    assert training_loops(source) == []


def test_the_training_loop_detector_reports_each_loop_once_with_its_first_line():
    source = "for _ in range(3):\n    for step in range(2):\n        loss.backward()\nx = 2"
    assert training_loops(source) == ["for _ in range(3):", "for step in range(2):"]


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
        assert training_loops(cell.source) == [], "training loops belong in the rvae package"


#: Calls that set or draw from a global random state; notebooks pass seeded generators instead.
_GLOBAL_RANDOM = re.compile(r"\b(?:torch\.manual_seed|torch\.random\.manual_seed|np\.random\.seed|random\.seed|"
                            r"np\.random\.(?:rand|randn|normal|uniform|choice|permutation))\s*\(")


def _code(path) -> str:
    notebook = nbformat.read(path, as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebooks_leave_no_global_random_state(path):
    found = _GLOBAL_RANDOM.findall(_code(path))
    assert not found, f"{path.stem} uses global random state ({found}); pass a seeded torch.Generator instead"


def test_the_global_random_state_detector():
    assert _GLOBAL_RANDOM.search("torch.manual_seed(seed)")
    assert _GLOBAL_RANDOM.search("x = np.random.randn(3)")
    assert not _GLOBAL_RANDOM.search("generator = torch.Generator().manual_seed(seed)")
    assert not _GLOBAL_RANDOM.search("rng = np.random.default_rng(seed)")


def _defined_functions(source: str) -> set[str]:
    source = _MAGIC.sub("", source)
    return {node.name for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_no_helper_is_defined_in_two_chapters():
    """A function two chapters need lives in the package, not in both notebooks."""
    owners: dict[str, list[str]] = {}
    for path in SOURCES:
        for name in _defined_functions(_code(path)):
            owners.setdefault(name, []).append(path.stem)
    repeated = {name: chapters for name, chapters in owners.items() if len(chapters) > 1}
    assert not repeated, f"helpers defined in more than one chapter: {repeated}"


# ------------------------------------------------------------------------------------------ nbval's sanitizer
def _sanitized(text: str) -> str:
    """``text`` as nbval compares it under notebooks/nbval_sanitize.cfg (the Makefile's option)."""
    from nbval.plugin import get_sanitize_patterns
    patterns = get_sanitize_patterns((REPO / "notebooks" / "nbval_sanitize.cfg").read_text())
    assert len(patterns) == 7                         # a pattern lost to an edit would pass silently
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


STORED = """Claims (2): 1 hold, 0 fail, 1 inconclusive
 1. HOLDS        SE has higher adversarial accuracy than the VAE at ε=0.1
                 test:   +0.325 [+0.281, +0.335] (claimed > 0; exact McNemar, n = 200, p =
                         9.22e-19)
 2. UNDERTRAINED the bound holds (Clopper-Pearson)
                 gate:   VAE nominal accuracy 0.36 (gate >= 0.6: FAILED)
"""


def test_the_sanitizer_ignores_digits_line_breaks_and_what_a_quick_runs_data_decide():
    """Another CPU's digits, the line breaks a longer number moves, and the verdicts, gate outcomes
    and test cases they tip compare equal."""
    fresh = """Claims (2): 2 hold, 0 fail, 0 inconclusive
 1. HOLDS        SE has higher adversarial accuracy than the VAE at ε=0.1
                 test:   +0.3251 [+0.2809, +0.3352] (claimed > 0; exact McNemar (no discordant
                         images), n = 200, p = 1.07e-18)
 2. HOLDS        the bound holds (Clopper-
                 Pearson)
                 gate:   VAE nominal accuracy 0.365 (gate >=
                         0.6: passed)
"""
    assert _sanitized(fresh) == _sanitized(STORED)


CHECKS = """Checks: 2 of 2 pass
 1. PASSES       the closed form is the minimiser
                 ours:   max |difference| 3e-07
 2. PASSES       the gradient of unobserved rows is zero
"""


@pytest.mark.parametrize(("old", "new"), [("PASSES       the closed", "FAILS        the closed"),
                                          ("the gradient", "the Hessian")])
def test_the_sanitizer_keeps_each_checks_outcome_and_every_word(old, new):
    """A check that starts failing, or a changed word of a check, still fails nbval."""
    assert _sanitized(CHECKS.replace(old, new, 1)) != _sanitized(CHECKS)


@pytest.mark.parametrize(("old", "new"), [("than the VAE", "than the AAE"), ("exact McNemar", "paired bootstrap"),
                                          ("VAE nominal", "SE nominal")])
def test_the_sanitizer_keeps_every_word_of_a_claim(old, new):
    """A claim's statement, test or gate that changes still fails nbval."""
    assert _sanitized(STORED.replace(old, new, 1)) != _sanitized(STORED)


def test_nbval_collects_the_longest_recorded_chapter_first_and_keeps_each_chapters_cell_order(tmp_path, monkeypatch):
    import importlib.util
    import json
    from types import SimpleNamespace
    spec = importlib.util.spec_from_file_location("notebooks_conftest", REPO / "notebooks" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for chapter, seconds in (("01_a", 40.0), ("02_b", 300.0)):
        (tmp_path / chapter).mkdir()
        (tmp_path / chapter / "quick.json").write_text(json.dumps({"provenance": {"wall_seconds": seconds}}))
    monkeypatch.setattr(module, "RESULTS", tmp_path)
    items = [SimpleNamespace(fspath=f"/x/notebooks/{chapter}.ipynb", cell=cell)
             for chapter in ("01_a", "02_b", "03_new") for cell in range(3)]
    module.pytest_collection_modifyitems(items)
    assert [(Path(i.fspath).stem, i.cell) for i in items] == [
        ("03_new", 0), ("03_new", 1), ("03_new", 2), ("02_b", 0), ("02_b", 1), ("02_b", 2),
        ("01_a", 0), ("01_a", 1), ("01_a", 2)]
