"""Tests of lib.reporting: Report files, strict parameter handling, execution, manifest, index."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lib import reporting


@pytest.fixture(autouse=True)
def _reports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test's reports (and the kernel's, which inherits the env) in tmp_path."""
    path = tmp_path / "reports"
    monkeypatch.setenv("STUDY_REPORTS_DIR", str(path))
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    return path


def _notebook(path: Path, body: str, *, parameters: str | None = None) -> Path:
    """Write a notebook with an H1, an optional `parameters` cell and one code cell."""
    cells = [nbformat.v4.new_markdown_cell("# Tiny study\n\nA claim.")]
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)  # no kernelspec, like committed notebooks
    nbformat.write(nb, str(path))
    return path


TINY_PARAMETERS = 'X = 1  # help\nOUTPUT_DIR = "x"  # where the report goes'
TINY_BODY = (
    "from lib.reporting import Report\n"
    "report = Report(OUTPUT_DIR)\n"
    "report.record('double', X * 2)\n"
    "print('X is', X)"
)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return _notebook(tmp_path / "tiny.ipynb", TINY_BODY, parameters=TINY_PARAMETERS)


# ----------------------------------------------------------------------------- Report


def test_report_writes_figures_tables_and_records(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run")
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert report.figure(fig, "fig1_line") is fig
    assert (tmp_path / "run/figures/fig1_line.png").stat().st_size > 0
    assert (tmp_path / "run/figures/fig1_line.pdf").read_bytes().startswith(b"%PDF")

    df = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="method"))
    assert report.table(df, "tab1") is df
    assert (tmp_path / "run/tables/tab1.csv").read_text().splitlines()[0] == "method,a"
    report.table(pd.DataFrame({"a": [1]}), "tab2")  # a plain range index is not written
    assert (tmp_path / "run/tables/tab2.csv").read_text().splitlines() == ["a", "1"]


def test_records_merge_and_are_strict_json(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run")
    assert report.record("auc", np.float32(0.5)) == np.float32(0.5)
    report.records(
        {
            "nan": float("nan"),
            "inf": np.inf,
            "count": np.int64(3),
            "flag": np.bool_(True),
            "array": np.array([1.0, np.nan]),
            "nested": {"npo": {"fq": np.float64(1e-12)}},
            "series": pd.Series({"a": 1.0}),
        }
    )
    report.record("auc", 0.75)  # replaces, keeps the others
    text = (tmp_path / "run/records.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    assert data == {
        "auc": 0.75,
        "nan": None,
        "inf": None,
        "count": 3,
        "flag": True,
        "array": [1.0, None],
        "nested": {"npo": {"fq": 1e-12}},
        "series": {"a": 1.0},
    }
    assert report.read_records() == data
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_report_rejects_bad_names_and_values(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run")
    with pytest.raises(ValueError, match="invalid output name"):
        report.record("../escape", 1)
    with pytest.raises(TypeError, match="obj"):
        report.record("obj", object())


def test_relative_report_dir_is_under_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting, "ROOT", tmp_path)
    report = reporting.Report("reports/x")
    assert report.path == tmp_path / "reports/x"
    assert (tmp_path / "reports/x/figures").is_dir() and (tmp_path / "reports/x/tables").is_dir()


# ----------------------------------------------------------------------------- parameters


def test_declared_parameters(tiny: Path) -> None:
    assert reporting.declared_parameters(tiny) == {"X": 1, "OUTPUT_DIR": "x"}
    assert reporting.parameter_help(tiny) == {"X": "help", "OUTPUT_DIR": "where the report goes"}


def test_declared_parameters_handles_what_papermill_regex_drops(tmp_path: Path) -> None:
    params = 'N = None  # None = all rows\nS = "a#b"  # str\nL = [\n    1,\n    2,\n]  # list'
    nb = _notebook(tmp_path / "p.ipynb", "pass", parameters=params)
    assert reporting.declared_parameters(nb) == {"N": None, "S": "a#b", "L": [1, 2]}
    assert reporting.parameter_help(nb)["L"] == "list"


def test_declared_parameters_requires_cell_and_literals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        reporting.declared_parameters(_notebook(tmp_path / "a.ipynb", "X = 1"))
    with pytest.raises(ValueError, match="Y must be a literal"):
        reporting.declared_parameters(_notebook(tmp_path / "b.ipynb", "", parameters="Y = 2 * 3"))
    with pytest.raises(ValueError, match="only contain"):
        reporting.declared_parameters(_notebook(tmp_path / "c.ipynb", "", parameters="import os"))


# ----------------------------------------------------------------------------- execute


def test_execute_writes_notebook_html_manifest(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    executed = reporting.execute(tiny, out, {"X": 21}, profile="smoke")
    assert executed == out / "tiny.ipynb"
    assert (out / "tiny.html").read_text().count("Tiny study") >= 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["title"] == "Tiny study"
    assert manifest["parameters"] == {"X": 21, "OUTPUT_DIR": str(out)}
    assert manifest["records"] == {"double": 42}
    assert manifest["profile"] == "smoke"
    assert manifest["duration_s"] > 0
    assert set(manifest["versions"]) >= {"python", "torch", "transformers", "numpy"}
    assert {"cuda_available", "cpu_count", "platform"} <= set(manifest["device"])
    assert set(manifest["git"]) == {"sha", "dirty"}
    nb = nbformat.read(str(executed), as_version=4)
    assert nb.metadata.papermill.input_path == str(tiny)  # not the temporary copy
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags


def test_execute_is_strict_before_running(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyError, match=r"unknown parameter\(s\) \['TYPO'\].*declared"):
        reporting.execute(tiny, out, {"TYPO": 1})
    assert not (out / "manifest.json").exists()
    bare = _notebook(tmp_path / "bare.ipynb", "X = 1")
    with pytest.raises(ValueError, match="parameters"):
        reporting.execute(bare, out, {})


def test_execute_failure_writes_failed_manifest_and_raises(tmp_path: Path) -> None:
    from papermill.exceptions import PapermillExecutionError

    nb = _notebook(
        tmp_path / "boom.ipynb", "raise RuntimeError('boom happened')", parameters=TINY_PARAMETERS
    )
    out = tmp_path / "out"
    with pytest.raises(PapermillExecutionError):
        reporting.execute(nb, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "boom happened" in manifest["error"]
    assert (out / "boom.ipynb").exists()
    assert (out / "boom.html").exists()


# ----------------------------------------------------------------------------- index, CLI


def _fake_manifest(root: Path, name: str, **fields: object) -> None:
    folder = root / name
    (folder / "figures").mkdir(parents=True)
    (folder / "figures/fig1.png").write_bytes(b"")
    manifest = {
        "notebook": name,
        "title": f"Title <{name}>",
        "status": "ok",
        "parameters": {"MODEL": "tiny", "SEEDS": [0, 1], "OUTPUT_DIR": "x"},
        "overrides": {"MODEL": "tiny"},
        "profile": "smoke",
        "duration_s": 75.0,
        "git": {"sha": "0123456789abcdef", "dirty": True},
        "outputs": {"html": f"{name}.html"},
        "figures": ["figures/fig1.png", "figures/fig1.pdf"],
        "records": {
            "auc": 0.123456,
            "tiny": 1.5e-12,
            "summary": {"npo": {"fq": 0.5, "mu": 0.61234}, "ga": {"fq": 1e-9, "mu": 0.1}},
        },
        **fields,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_build_index_lists_manifests(_reports_dir: Path) -> None:
    _fake_manifest(_reports_dir, "01_demo")
    _fake_manifest(_reports_dir, "02_broken", status="failed", error="RuntimeError: x")
    index = reporting.build_index()
    assert index == _reports_dir / "index.html"
    page = index.read_text()
    assert "Title &lt;01_demo&gt;" in page  # escaped
    assert "01_demo/01_demo.html" in page
    assert "01_demo/figures/fig1.png" in page
    assert "01234567*" in page  # dirty tree marked
    assert "1 min 15 s" in page
    assert "0.123" in page and "1.50e-12" in page and "0.612" in page
    assert "status failed" in page and "RuntimeError: x" in page


def test_format_number() -> None:
    assert reporting._fmt_number(0.123456) == "0.123"
    assert reporting._fmt_number(123.456) == "123"
    assert reporting._fmt_number(1234.5) == "1230"
    assert reporting._fmt_number(2e-7) == "2.00e-07"
    assert reporting._fmt_number(0.0) == "0"
    assert reporting._fmt_number(-0.5) == "-0.500"
    assert reporting._fmt_number(3e6) == "3.00e+06"
    assert math.isnan(float(reporting._fmt_number(float("nan"))))


def test_cli_rejects_key_declared_by_no_notebook(tiny: Path, tmp_path: Path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text("NOT_A_PARAMETER: 1\n")
    with pytest.raises(SystemExit) as excinfo:
        reporting.main(["run", str(tiny), "--params", str(params), "--out", str(tmp_path / "r")])
    assert excinfo.value.code == 2


def test_cli_resolves_notebook_names(tiny: Path) -> None:
    assert reporting.resolve_notebook(str(tiny)) == tiny
    with pytest.raises(FileNotFoundError, match="available"):
        reporting.resolve_notebook("99_no_such_notebook")


def test_kernel_python_check() -> None:
    import sys

    assert reporting._argv_uses_this_python("python")
    assert reporting._argv_uses_this_python(sys.executable)
    assert not reporting._argv_uses_this_python("/opt/other/bin/python")


def test_export_html_hides_only_tagged_inputs(tmp_path: Path) -> None:
    hidden = nbformat.v4.new_code_cell("HIDDEN_SOURCE = 1")
    hidden.metadata["tags"] = ["hide-input"]
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Exported"),
            hidden,
            nbformat.v4.new_code_cell("SHOWN = 2"),
        ]
    )
    path = tmp_path / "done.ipynb"
    nbformat.write(nb, str(path))
    page = reporting.export_html(path).read_text()
    assert "SHOWN" in page and "HIDDEN_SOURCE" not in page
    assert "<title>Exported</title>" in page
