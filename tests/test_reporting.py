"""Tests of lib.reporting: Report files, claims and headline, strict parameter handling,
execution (log file, clean outputs, relative paths), manifest, command line."""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lib import paths, reporting
from lib.reporting import console, formatting, logs

execute_module = importlib.import_module(
    "lib.reporting.execute"
)  # `reporting.execute` is the function


@pytest.fixture(autouse=True)
def _reports_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test's reports (and the kernel's, which inherits the env) in tmp_path."""
    path = tmp_path / "reports"
    monkeypatch.setenv("STUDY_REPORTS_DIR", str(path))
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(logs.LOG_ENV, raising=False)
    return path


@pytest.fixture(autouse=True)
def _restore_logging():
    """Report() reconfigures the `lib` and `py.warnings` loggers; undo it after each test."""
    saved = {}
    for name in ("lib", "py.warnings"):
        logger = logging.getLogger(name)
        saved[name] = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logging.captureWarnings(False)
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        logger.setLevel(level)
        logger.propagate = propagate


def _notebook(path: Path, body: str, *, parameters: str | None = None) -> Path:
    """Write a notebook with an H1, an optional `parameters` cell and one code cell."""
    cells = [nbformat.v4.new_markdown_cell("# Tiny study\n\nA claim.")]
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells.append(nbformat.v4.new_markdown_cell("## Part 1 · Doubling"))
    cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)  # no kernelspec, like committed notebooks
    nbformat.write(nb, str(path))
    return path


TINY_PARAMETERS = 'X = 1  # help\nOUTPUT_DIR = "x"  # where the report goes'
TINY_BODY = (
    "import logging, warnings\n"
    "from lib import progress\n"
    "from lib.reporting import Report\n"
    "report = Report(OUTPUT_DIR)\n"
    "logging.getLogger('lib.demo').info('an INFO line for the log only')\n"
    "logging.getLogger('lib.demo').warning('a WARNING for the log and the terminal')\n"
    "warnings.warn('a Python warning')\n"
    "with progress.bar(3, 'demo loop', every=0) as bar:\n"
    "    for _ in range(3):\n"
    "        bar.update()\n"
    "        bar.set_postfix(loss=0.5)\n"
    "progress.summary('demo run: double ' + str(2 * X))\n"
    "report.record('double', X * 2)\n"
    "print('X is', X)"
)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return _notebook(tmp_path / "tiny.ipynb", TINY_BODY, parameters=TINY_PARAMETERS)


# ----------------------------------------------------------------------------- Report


def test_report_writes_figures_tables_and_records(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run", setup_logging=False)
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    assert report.figure(fig, "fig1_line") is fig
    assert (tmp_path / "run/figures/fig1_line.png").stat().st_size > 0
    assert (tmp_path / "run/figures/fig1_line.pdf").read_bytes().startswith(b"%PDF")
    report.figure(fig, "fig2_main", thumbnail=True)
    assert report.read_records()["thumbnail"] == "figures/fig2_main.png"

    df = pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="method"))
    assert report.table(df, "tab1") is df
    assert (tmp_path / "run/tables/tab1.csv").read_text().splitlines()[0] == "method,a"
    report.table(pd.DataFrame({"a": [1]}), "tab2")  # a plain range index is not written
    assert (tmp_path / "run/tables/tab2.csv").read_text().splitlines() == ["a", "1"]


def test_records_merge_and_are_strict_json(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run", setup_logging=False)
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
            "path": paths.ROOT / "reports" / "x",
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
        "path": "reports/x",  # paths are stored relative to the project root
    }
    assert report.read_records() == data
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    assert oct((tmp_path / "run/records.json").stat().st_mode & 0o777) == "0o644"


def test_report_rejects_bad_names_and_values(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run", setup_logging=False)
    with pytest.raises(ValueError, match="invalid output name"):
        report.record("../escape", 1)
    with pytest.raises(TypeError, match="obj"):
        report.record("obj", object())
    with pytest.raises(ValueError, match="reserved"):
        report.record("claims", [])


def test_relative_report_dir_is_under_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    report = reporting.Report("reports/x", setup_logging=False)
    assert report.path == tmp_path / "reports/x"
    assert (tmp_path / "reports/x/figures").is_dir() and (tmp_path / "reports/x/tables").is_dir()


def test_claims_keep_order_and_validate_verdicts(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run", setup_logging=False)
    report.claim("a", "A holds.", "held", evidence={"auc": np.float64(0.51)})
    report.claim("b", "B holds.", "did not hold", evidence="B's forget quality stayed 1e-6.")
    report.claim("a", "A holds, revised.", "not testable at this scale")  # replaces in place
    claims = report.read_records()["claims"]
    assert [c["name"] for c in claims] == ["a", "b"]
    assert claims[0] == {
        "name": "a",
        "text": "A holds, revised.",
        "verdict": "not testable at this scale",
        "evidence": None,
    }
    assert claims[1]["evidence"] == "B's forget quality stayed 1e-6."
    with pytest.raises(ValueError, match=r"'held', 'did not hold', 'not testable at this scale'"):
        report.claim("c", "C.", "partly")
    with pytest.raises(ValueError, match="non-empty"):
        report.claim("c", " ", "held")
    assert len(report.read_records()["claims"]) == 2  # nothing stored by a rejected claim


def test_headline_stores_a_small_table_and_validates(tmp_path: Path) -> None:
    report = reporting.Report(tmp_path / "run", setup_logging=False)
    df = pd.DataFrame(
        {"forget_quality": [1e-6, 0.2, 1.0], "mia_auc": [0.9, 0.6, np.nan]},
        index=pd.Index(["target", "npo", "retrain"], name="method"),
    )
    table = report.headline(
        df,
        directions={"forget_quality": "higher", "mia_auc": 0.5},
        units={"forget_quality": "p-value"},
        reference_rows=["target", "retrain"],
        caption="one seed",
    )
    assert report.read_records()["headline"] == table
    assert table["data"] == [[1e-6, 0.9], [0.2, 0.6], [1.0, None]]
    assert table["index"] == ["target", "npo", "retrain"] and table["index_name"] == "method"
    with pytest.raises(ValueError, match="'higher', 'lower', None, or a number"):
        report.headline(df, directions={"mia_auc": "up"})
    with pytest.raises(KeyError, match="not columns"):
        report.headline(df, units={"nope": "s"})
    with pytest.raises(KeyError, match="not rows"):
        report.headline(df, reference_rows=["oracle"])
    with pytest.raises(ValueError, match="at most"):
        report.headline(pd.DataFrame(np.zeros((2, 9))))


def test_report_logging_interactive(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Without STUDY_REPORT_LOG: INFO to <report>/<name>.log, WARNING+ also on stderr."""
    report = reporting.Report(tmp_path / "run")
    assert report.log_path == tmp_path / "run/run.log"
    logging.getLogger("lib.demo").info("quiet line")
    logging.getLogger("lib.demo").warning("loud line")
    logging.getLogger("fontTools.subset").info("maxp pruned")  # quieted at its source
    reporting.Report(tmp_path / "run")  # a second Report does not duplicate handlers
    logging.getLogger("lib.demo").warning("second")
    text = report.log_path.read_text()
    assert "INFO lib.demo: quiet line" in text and "WARNING lib.demo: loud line" in text
    assert "maxp" not in text
    err = capsys.readouterr().err
    assert "loud line" in err and "quiet line" not in err and err.count("second") == 1
    assert logs.count_levels(report.log_path) == {"INFO": 1, "WARNING": 2}


def test_format_number() -> None:
    fmt = formatting.format_number
    assert fmt(0.123456) == "0.123"
    assert fmt(123.456) == "123"
    assert fmt(1234.5) == "1230"
    assert fmt(9.9996) == "10.0"
    assert fmt(2e-7) == "2.00e-07"
    assert fmt(0.0) == "0"
    assert fmt(-0.5) == "-0.500"
    assert fmt(3e6) == "3.00e+06"
    assert fmt(12345) == "12,345"
    assert fmt(float("nan")) == fmt(None) == fmt(float("inf")) == "n/a"


def test_labels_state_directions_and_units() -> None:
    assert (
        formatting.axis_label("forget ROUGE-L", direction="lower", meaning="more forgotten")
        == "forget ROUGE-L (↓ = more forgotten)"
    )
    assert (
        formatting.axis_label("cost", unit="FLOPs", direction="lower") == "cost [FLOPs] (↓ better)"
    )
    assert formatting.axis_label("MIA AUC", direction=0.5) == "MIA AUC (→ 0.500 better)"
    labels = formatting.column_labels(
        ["forget_quality", "flops", "n"],
        {"forget_quality": "higher", "flops": "lower"},
        {"flops": "FLOPs"},
    )
    assert labels == {"forget_quality": "forget quality ↑", "flops": "flops ↓ [FLOPs]", "n": "n"}
    with pytest.raises(ValueError, match="higher"):
        formatting.check_direction("up")


def test_display_path_is_relative_to_the_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    assert formatting.display_path(root / "reports/x", root) == "reports/x"
    assert formatting.display_path(tmp_path / "elsewhere", root) == "../elsewhere"


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


def test_execute_writes_notebook_html_log_manifest(
    tiny: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger=console.__name__):
        executed = reporting.execute(tiny, out, {"X": 21}, profile="smoke", progress=True)
    assert executed == out / "tiny.ipynb"
    page = (out / "tiny.html").read_text()
    assert page.count("Tiny study") >= 1
    assert "<script src=" not in page  # no require.js, MathJax or mermaid from the network
    assert 'href="tiny.log"' in page and "profile <code>smoke</code>" in page  # run banner
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    assert manifest["title"] == "Tiny study"
    relative = formatting.display_path(out)
    assert manifest["parameters"] == {"X": 21, "OUTPUT_DIR": relative}
    assert manifest["output_dir"] == relative and not relative.startswith("/")
    assert manifest["records"] == {"double": 42}
    assert manifest["profile"] == "smoke"
    assert manifest["duration_s"] > 0
    assert manifest["kernel"] == reporting.KERNEL_NAME
    assert manifest["log"] == {"file": "tiny.log", "warnings": 2, "errors": 0}
    assert manifest["outputs"] == {"notebook": "tiny.ipynb", "html": "tiny.html", "log": "tiny.log"}
    assert set(manifest["versions"]) >= {"python", "torch", "transformers", "numpy"}
    assert {"cuda_available", "cpu_count", "platform"} <= set(manifest["device"])
    assert set(manifest["git"]) == {"sha", "dirty"}

    nb = nbformat.read(str(executed), as_version=4)
    assert nb.metadata.papermill.input_path == formatting.display_path(tiny)  # not the temp copy
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags
    injected = nb.cells[tags.index(["injected-parameters"])].source
    assert f'OUTPUT_DIR = "{relative}"' in injected
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert [o.get("name") for o in outputs] == ["stdout"]  # print() only: no log, no warning
    assert outputs[0]["text"] == "X is 21\n"

    log = (out / "tiny.log").read_text()
    assert "INFO lib.demo: an INFO line for the log only" in log
    assert "WARNING py.warnings:" in log and "a Python warning" in log
    assert "demo loop: 3/3 steps (100%) · done in" in log and "loss 0.5" in log
    assert "INFO lib.progress: demo run: double 42" in log

    said = [r.getMessage() for r in caplog.records if r.name == console.__name__]
    assert any("§ Part 1 · Doubling" in line for line in said)
    assert any("demo loop: 3/3 steps" in line for line in said)
    assert any("demo run: double 42" in line for line in said)
    assert any("WARNING lib.demo: a WARNING" in line for line in said)
    assert not any("an INFO line" in line for line in said)


def test_execute_is_strict_before_running(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(KeyError, match=r"unknown parameter\(s\) \['TYPO'\].*declared"):
        reporting.execute(tiny, out, {"TYPO": 1})
    assert not (out / "manifest.json").exists()
    bare = _notebook(tmp_path / "bare.ipynb", "X = 1")
    with pytest.raises(ValueError, match="parameters"):
        reporting.execute(bare, out, {})


def test_missing_kernel_is_a_clear_error(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(execute_module, "KERNEL_NAME", "no-such-kernel-for-this-test")
    with pytest.raises(reporting.KernelNotInstalledError, match="make install"):
        reporting.execute(tiny, tmp_path / "out")
    assert not (tmp_path / "out").exists()


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
    assert "Run failed" in (out / "boom.html").read_text()


def test_export_html_hides_only_tagged_inputs(tmp_path: Path) -> None:
    hidden = nbformat.v4.new_code_cell("HIDDEN_SOURCE = 1")
    hidden.metadata["tags"] = ["hide-input"]
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Exported"),
            hidden,
            nbformat.v4.new_code_cell("SHOWN = 2"),
            nbformat.v4.new_markdown_cell("Math: $x^2$"),
        ]
    )
    path = tmp_path / "done.ipynb"
    nbformat.write(nb, str(path))
    page = reporting.export_html(path).read_text()
    assert "SHOWN" in page and "HIDDEN_SOURCE" not in page
    assert "<title>Exported</title>" in page
    assert "mathjax" in page.lower()  # kept where a cell has math


def test_kernel_python_check() -> None:
    import sys

    assert execute_module._argv_uses_this_python("python")
    assert execute_module._argv_uses_this_python(sys.executable)
    assert not execute_module._argv_uses_this_python("/opt/other/bin/python")


# ----------------------------------------------------------------------------- console, CLI


def test_console_selects_progress_and_warnings(tmp_path: Path) -> None:
    progress_line = "2026-01-01 12:00:01,123 INFO lib.progress: fine-tune: 1/2 steps (50%)"
    assert console.select(progress_line, False) == ("  12:00:01  fine-tune: 1/2 steps (50%)", True)
    info = "2026-01-01 12:00:02,000 INFO lib.train: saved"
    assert console.select(info, True) == (None, False)
    warning = "2026-01-01 12:00:03,000 WARNING py.warnings: x.py:1: UserWarning: careful"
    shown, flag = console.select(warning, False)
    assert shown == "  12:00:03  WARNING py.warnings: x.py:1: UserWarning: careful" and flag
    assert (
        console.select("  warnings.warn('careful')", True)[0] == "        warnings.warn('careful')"
    )
    assert console.select("continuation of an INFO record", False)[0] is None


def test_log_tail_reads_lines_written_while_it_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "x.log"
    log.write_text("")
    tail = console.LogTail(log, poll=0.01)
    with caplog.at_level(logging.INFO, logger=console.__name__), tail, log.open("a") as handle:
        handle.write("2026-01-01 12:00:01,000 INFO lib.progress: step one\n")
        handle.write("2026-01-01 12:00:02,000 INFO lib.other: hidden\n")
        handle.write("2026-01-01 12:00:03,000 INFO lib.progress: last, without newline")
    said = [r.getMessage() for r in caplog.records if r.name == console.__name__]
    assert said == ["  12:00:01  step one", "  12:00:03  last, without newline"]


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


def test_published_log_lines_name_no_machine_folders() -> None:
    import logging
    import tempfile

    from lib.paths import ROOT
    from lib.reporting.logs import RelativePathFormatter

    def shown(message: str) -> str:
        record = logging.LogRecord("py.warnings", logging.WARNING, "x", 1, message, None, None)
        return RelativePathFormatter().format(record)

    cell = f"{tempfile.gettempdir()}/ipykernel_16152/986180070.py:5: FutureWarning: x"
    assert shown(cell).endswith("py.warnings: <cell>:5: FutureWarning: x")
    assert shown(f"{ROOT}/lib/train.py:3: UserWarning: y").endswith(
        ": lib/train.py:3: UserWarning: y"
    )
