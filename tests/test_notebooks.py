"""Every notebook runs end to end with params/smoke.yaml, strictly (unknown parameters and a
missing `parameters` cell are errors), and leaves its records and reports behind."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from lib import paths, reporting

NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
SMOKE = yaml.safe_load((paths.PARAMS_DIR / "smoke.yaml").read_text())
GPU = yaml.safe_load((paths.PARAMS_DIR / "gpu.yaml").read_text())


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("profile", [SMOKE, GPU], ids=["smoke", "gpu"])
def test_every_profile_key_is_declared_somewhere(profile: dict) -> None:
    declared = set().union(*(reporting.declared_parameters(nb) for nb in NOTEBOOKS))
    assert set(profile) <= declared, f"undeclared keys: {sorted(set(profile) - declared)}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(nb: Path) -> None:
    """No outputs, a parameters cell of literals each with a help comment, no def/class/loops."""
    notebook = nbformat.read(nb, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs"
    declared = reporting.declared_parameters(nb)
    helps = reporting.parameter_help(nb)
    assert all(helps.get(name) for name in declared), "every parameter needs a comment"
    assert declared["OUTPUT_DIR"].endswith(nb.stem)
    for cell in code:
        if "parameters" in cell.metadata.get("tags", []):
            continue
        tree = ast.parse(cell.source)
        banned = (
            ast.FunctionDef,
            ast.AsyncFunctionDef,
            ast.ClassDef,
            ast.For,
            ast.While,
            ast.Lambda,
        )
        found = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, banned)]
        assert not found, f"notebook code must call lib, found {found} in:\n{cell.source}"


def test_unknown_parameter_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="declared"):
        reporting.execute(NOTEBOOKS[0], tmp_path, {"NOT_A_PARAMETER": 1})


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_with_smoke_params(nb: Path, smoke_reports: Path) -> None:
    # The notebooks ran once for the session (tests/conftest.py: smoke_reports), shared with
    # the report-quality and browser tests.
    declared = reporting.declared_parameters(nb)
    params = {k: v for k, v in SMOKE.items() if k in declared}
    out = smoke_reports / nb.stem
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok", manifest["error"]
    assert (out / f"{nb.stem}.ipynb").exists() and (out / f"{nb.stem}.html").exists()
    records = json.loads((out / "records.json").read_text())
    assert records, "the notebook recorded no headline numbers"
    declared_checks = nbformat.read(nb, as_version=4).metadata.get("study", {})
    required = declared_checks.get("required_records")
    assert required, "declare metadata.study.required_records in the notebook"
    effective = {**declared, **params}
    for path in required:
        for concrete in _expand(path, effective):
            _lookup(records, concrete)  # raises naming the missing key
    for path, expected in declared_checks.get("expected_records", {}).items():
        assert _lookup(records, path) == pytest.approx(expected), path
    n_figures = len(list((out / "figures").glob("*.png")))
    assert n_figures >= declared_checks.get("min_figures", 1), f"{n_figures} figures"


def _expand(path: str, params: dict) -> list[str]:
    """'methods.{METHODS}.x' -> one path per element of the parameter METHODS."""
    parts = path.split(".")
    expanded = [[]]
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            values = params[part[1:-1]]
            expanded = [prefix + [str(v)] for prefix in expanded for v in values]
        else:
            expanded = [prefix + [part] for prefix in expanded]
    return [".".join(p) for p in expanded]


def _lookup(records: dict, path: str):
    node = records
    for part in path.split("."):
        assert isinstance(node, dict) and part in node, f"records.json lacks {path}"
        node = node[part]
    return node
