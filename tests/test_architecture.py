"""The core of `lib` knows no paper, no benchmark and no method (DESIGN.md): checked on the
source, so a shortcut taken by a later notebook fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lib.methods as methods

LIB = Path(__file__).resolve().parents[1] / "lib"
#: Paper-, benchmark- and method-specific packages; everything else under lib/ is core.
SPECIFIC = ("lib.papers", "lib.benchmarks", "lib.methods", "lib.data")
CORE_FILES = sorted(
    p
    for p in LIB.rglob("*.py")
    if p.relative_to(LIB).parts[0] not in {"papers", "benchmarks", "methods", "data"}
)


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def _code_strings(tree: ast.AST) -> set[str]:
    """String literals used as values: not docstrings (a docstring may cite a method as an
    example) and not `__all__` (an algorithm may share its method's name, e.g. the Fisher
    updates in `lib.algorithms.fisher`)."""
    skipped = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skipped.update(id(n) for n in ast.walk(node.value))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in skipped
    }


def test_core_files_found():
    names = {p.name for p in CORE_FILES}
    assert {"train.py", "evaluate.py", "plotting.py", "cache.py", "runner.py"} <= names


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(LIB)))
def test_core_module_imports_no_paper_benchmark_or_method(path):
    imports = _imports(ast.parse(path.read_text()))
    bad = sorted(i for i in imports if i.startswith(SPECIFIC) or i in {"lib.papers"})
    assert not bad, f"{path.relative_to(LIB)} imports {bad}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(LIB)))
def test_core_module_names_no_registered_method(path):
    registered = set(methods.METHODS)
    assert registered, "the method registry is empty"
    named = sorted(_code_strings(ast.parse(path.read_text())) & registered)
    assert not named, f"{path.relative_to(LIB)} names methods {named} in code"
