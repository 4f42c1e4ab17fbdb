"""Execute parameterized notebooks, publish them as HTML and keep their numbers in plain files.

Per notebook, `execute()` writes into one folder:

- `<stem>.ipynb`: the executed notebook (papermill, with an `injected-parameters` cell);
- `<stem>.html`: the same, exported with nbconvert's `lab` template;
- `records.json`: headline numbers written by the notebook itself through `Report.record`;
- `figures/`, `tables/`: written by the notebook through `Report.figure` / `Report.table`;
- `manifest.json`: what ran, with which parameters, on which code and machine, for how long.

`build_index()` turns every `<reports>/*/manifest.json` into `<reports>/index.html`. Tests, the
index and reviewers read these files, never notebook outputs.

Papermill is lenient where a study must be strict (it only warns about an unknown parameter, and
without a `parameters` cell it injects values that the notebook then silently overwrites), so
`execute()` checks parameter names itself first.

Command line::

    python -m lib.reporting run [NB ...] [--params params/smoke.yaml] [--out reports/]
    python -m lib.reporting index [--out reports/]

This module knows nothing about unlearning; it works for any notebook with a `parameters` cell.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import html
import io
import json
import logging
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import tokenize
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from lib.paths import NOTEBOOKS_DIR, ROOT, reports_dir

logger = logging.getLogger(__name__)

KERNEL_NAME = "python3"
# Notebooks are committed without a kernelspec (or with whatever the author's Jupyter wrote);
# papermill needs one to pick a kernel and a parameter translator.
KERNELSPEC = {"name": KERNEL_NAME, "display_name": "Python 3 (ipykernel)", "language": "python"}
PARAMETERS_TAG = "parameters"
HIDE_INPUT_TAG = "hide-input"
OUTPUT_DIR_PARAMETER = "OUTPUT_DIR"
FIGURE_DPI = 150
FIGURE_FORMATS = ("png", "pdf")
RECORDS_FILE = "records.json"
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.html"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------- JSON helpers


def _jsonable(value: Any, *, where: str = "value", strict: bool = True) -> Any:
    """Convert numpy/pandas values to plain JSON types; non-finite floats become None.

    With `strict=False` anything else becomes its `repr` (for the manifest, which must never
    fail); with `strict=True` it raises TypeError naming `where` (for records, where a silent
    repr would hide a bug in the notebook).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where=f"{where}.{k}", strict=strict) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v, where=f"{where}[{i}]", strict=strict) for i, v in enumerate(items)]
    # numpy and pandas are optional here: recognise their types without importing them.
    module = type(value).__module__
    if module.startswith("numpy") and hasattr(value, "tolist"):
        # ndarray and numpy scalars alike (.tolist() of a scalar is the Python item)
        return _jsonable(value.tolist(), where=where, strict=strict)
    if module.startswith("pandas"):
        if hasattr(value, "to_frame") and hasattr(value, "to_dict"):  # Series: index -> value
            return _jsonable(value.to_dict(), where=where, strict=strict)
        if hasattr(value, "to_dict") and hasattr(value, "columns"):  # DataFrame: row -> columns
            return _jsonable(value.to_dict(orient="index"), where=where, strict=strict)
        if type(value).__name__ in ("NAType", "NaTType"):
            return None
        if hasattr(value, "isoformat"):  # Timestamp
            return value.isoformat()
    if strict:
        raise TypeError(
            f"{where}: cannot store {type(value).__name__} as JSON; use numbers, strings, "
            "booleans, None, lists, dicts, numpy values or pandas Series/DataFrames"
        )
    return repr(value)


def _write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see either the old or the new file, never half.

    The temporary file lives in the same folder because `os.replace` is atomic only within one
    filesystem.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are meant to be shared and served
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_json_atomic(path: Path, data: Any) -> None:
    # allow_nan=False guarantees strictly valid JSON (NaN was already turned into null).
    _write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- Report


class Report:
    """Collect a notebook's figures, tables and headline numbers under one output folder.

    In a notebook: `report = Report(OUTPUT_DIR)`, then `report.figure(fig, "fig3_tradeoff")`,
    `report.table(df, "tab2_summary")`, `report.record("auc", 0.61)`. A relative folder is
    resolved against the repository root, so the notebook writes to the same place whether
    JupyterLab runs it from `notebooks/` or papermill from the root.
    """

    def __init__(self, output_dir: str | Path) -> None:
        path = Path(output_dir).expanduser()
        self.path = path if path.is_absolute() else ROOT / path
        self.figures_dir = self.path / "figures"
        self.tables_dir = self.path / "tables"
        self.records_path = self.path / RECORDS_FILE
        for folder in (self.path, self.figures_dir, self.tables_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Report({str(self.path)!r})"

    @staticmethod
    def _check_name(name: str) -> str:
        if not isinstance(name, str) or not _NAME_PATTERN.match(name):
            raise ValueError(
                f"invalid output name {name!r}: use letters, digits, '_', '-', '.', no folders "
                "(e.g. 'fig3_tradeoff')"
            )
        return name

    def figure(self, fig: Any, name: str) -> Any:
        """Save a matplotlib Figure as `figures/<name>.png` (150 dpi) and `.pdf`; return it.

        Returning the figure lets it display as the cell's result.
        """
        import matplotlib as mpl  # lazy: the CLI and the index never need matplotlib

        self._check_name(name)
        # pdf.fonttype 42 embeds TrueType fonts, so text in the PDF stays text.
        with mpl.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
            for fmt in FIGURE_FORMATS:
                fig.savefig(
                    self.figures_dir / f"{name}.{fmt}",
                    dpi=FIGURE_DPI,
                    bbox_inches="tight",
                    facecolor="white",
                )
        logger.info("figure %s saved under %s", name, self.figures_dir)
        return fig

    def table(self, df: Any, name: str) -> Any:
        """Save a DataFrame (or Series) as `tables/<name>.csv`; return it unchanged.

        The index is written only when it carries information (not a plain 0..n-1 range).
        """
        import pandas as pd

        self._check_name(name)
        frame = df.to_frame() if isinstance(df, pd.Series) else df
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"table {name!r}: expected a pandas DataFrame or Series, got {type(df)}"
            )
        keep_index = not (
            isinstance(frame.index, pd.RangeIndex)
            and frame.index.name is None
            and frame.index.start == 0
        )
        frame.to_csv(self.tables_dir / f"{name}.csv", index=keep_index)
        logger.info("table %s saved under %s", name, self.tables_dir)
        return df

    def read_records(self) -> dict[str, Any]:
        """Return the records written so far ({} when none)."""
        return _read_json(self.records_path) if self.records_path.exists() else {}

    def records(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """Merge `mapping` into `records.json` (existing names are replaced); return all records.

        Values must be JSON-like; numpy scalars/arrays and pandas Series/DataFrames are
        converted and NaN/inf become null. The file is replaced atomically, so an interrupted
        notebook never leaves half a file.
        """
        converted = {
            self._check_name(str(k)): _jsonable(v, where=str(k)) for k, v in mapping.items()
        }
        merged = {**self.read_records(), **converted}
        _write_json_atomic(self.records_path, merged)
        return merged

    def record(self, name: str, value: Any) -> Any:
        """Store one headline number (or small nested dict/list) under `name`; return `value`."""
        self.records({name: value})
        return value


# --------------------------------------------------------------------------- parameters


def _read_notebook(path: Path) -> Any:
    import nbformat

    return nbformat.read(str(path), as_version=4)


def _parameters_cell(nb: Any, where: str) -> Any:
    for cell in nb.cells:
        if cell.cell_type == "code" and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return cell
    raise ValueError(
        f"{where} has no cell tagged {PARAMETERS_TAG!r}: tag the cell of literal assignments "
        "so that papermill injects parameters after it"
    )


def _parse_parameters(source: str, where: str) -> dict[str, tuple[Any, str]]:
    """Return name -> (default value, help comment) for a cell of `NAME = literal  # help` lines.

    Parsed with `ast`, not with papermill's line regex (`papermill.inspect_notebook`): the
    regex silently drops a line whose comment contains '=' (`N = None  # None = all`) and cuts
    a string default at '#'. Values come from `ast.literal_eval`, which enforces the study's
    rule that the parameters cell holds literals only.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where}: parameters cell is not plain Python: {exc}") from exc
    comments: dict[int, str] = {}
    with contextlib.suppress(tokenize.TokenError):
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0]] = tok.string.lstrip("#").strip()
    params: dict[str, tuple[Any, str]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            raise ValueError(
                f"{where}, line {node.lineno}: the parameters cell may only contain "
                f"assignments `NAME = literal`, got: {ast.get_source_segment(source, node)!r}"
            )
        if not isinstance(target, ast.Name):
            raise ValueError(f"{where}, line {node.lineno}: assign one plain NAME per line")
        try:
            default = ast.literal_eval(value)
        except ValueError as exc:
            raise ValueError(
                f"{where}: parameter {target.id} must be a literal (derive values in the next "
                f"cell, papermill does not recompute them), got "
                f"{ast.get_source_segment(source, value)!r}"
            ) from exc
        params[target.id] = (default, comments.get(node.end_lineno or node.lineno, ""))
    return params


def _declared(nb: Any, where: str) -> dict[str, tuple[Any, str]]:
    return _parse_parameters(_parameters_cell(nb, where).source, where)


def declared_parameters(notebook: Path) -> dict[str, object]:
    """Return the defaults of the notebook's `parameters` cell, name -> value.

    Raises:
        ValueError: the notebook has no cell tagged `parameters`, or the cell holds something
            other than `NAME = literal` assignments.
    """
    notebook = Path(notebook)
    return {k: v for k, (v, _) in _declared(_read_notebook(notebook), notebook.name).items()}


def parameter_help(notebook: Path) -> dict[str, str]:
    """Return each parameter's trailing comment (its help text; '' where there is none)."""
    notebook = Path(notebook)
    return {k: h for k, (_, h) in _declared(_read_notebook(notebook), notebook.name).items()}


# --------------------------------------------------------------------------- provenance


def _title(nb: Any, default: str) -> str:
    """Return the first Markdown H1 of the notebook, or `default`."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            match = re.match(r"^#\s+(.+?)\s*#*\s*$", line)
            if match:
                return match.group(1)
    return default


def _git_state() -> dict[str, Any]:
    """Return the commit SHA and whether the working tree differs from it ("unknown" if no git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=20
        ).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return {"sha": "unknown", "dirty": None}
    try:
        dirty: bool | None = bool(git("status", "--porcelain"))
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return {"sha": sha, "dirty": dirty}


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "numpy", "pandas", "papermill", "unlearning-study"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _device_info() -> dict[str, Any]:
    """Describe the machine; torch is imported only here and may be absent."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cuda_available": None,
        "gpus": [],
    }
    try:
        import torch
    except ImportError:
        return info
    try:
        info["cuda_available"] = bool(torch.cuda.is_available())
        if info["cuda_available"]:
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # a broken driver must not lose the whole manifest
        logger.warning("could not query CUDA devices: %s", exc)
    return info


def _artifacts(output_dir: Path, folder: str, since: float) -> list[str]:
    """Files under `output_dir/folder` written during this run, as sorted relative paths.

    Older files (from an earlier run with other parameters) are not listed, so the manifest
    never claims a stale figure.
    """
    base = output_dir / folder
    if not base.is_dir():
        return []
    return sorted(
        p.relative_to(output_dir).as_posix()
        for p in base.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.stat().st_mtime >= since
    )


def _relative_to_root(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- execution


def _argv_uses_this_python(argv0: str) -> bool:
    """True if a kernelspec's interpreter is the one running this code.

    jupyter_client replaces a bare `python`/`python3`/`python3.X` with `sys.executable`;
    anything else must be this exact interpreter path (not resolved through symlinks: a
    virtualenv's python is a symlink to the base interpreter, which lacks the venv's packages).
    """
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    return argv0 in bare or os.path.abspath(argv0) == os.path.abspath(sys.executable)


@contextlib.contextmanager
def _this_python_kernel() -> Iterator[None]:
    """Make kernel name `python3` start this interpreter while papermill runs.

    A user-level `python3` kernelspec (e.g. in ~/.local/share/jupyter) can point at another
    Python without this environment's packages; if so, a temporary spec for `sys.executable`
    is put first on JUPYTER_PATH.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv
        if argv and _argv_uses_this_python(argv[0]):
            yield
            return
        logger.info("kernelspec %r runs %s, not %s: overriding", KERNEL_NAME, argv, sys.executable)
    except NoSuchKernel:
        logger.info("no %r kernelspec found: providing one for %s", KERNEL_NAME, sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": KERNELSPEC["display_name"],
            "language": "python",
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [tmp, previous]))
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


def export_html(executed: Path, html_path: Path | None = None) -> Path:
    """Export an executed notebook to HTML (nbconvert `lab` template) next to it; return the path.

    Code stays visible, so readers see what ran, including the injected parameters; only cells
    tagged `hide-input` lose their input. Prompts (`In [3]:`) are left out.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    executed = Path(executed)
    html_path = html_path or executed.with_suffix(".html")
    config = Config()
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_input_tags = {HIDE_INPUT_TAG}
    config.HTMLExporter.exclude_input_prompt = True
    config.HTMLExporter.exclude_output_prompt = True
    exporter = HTMLExporter(config=config, template_name="lab")
    nb = nbformat.read(str(executed), as_version=4)
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": _title(nb, executed.stem)}}
    )
    _write_text_atomic(html_path, body)
    return html_path


def _finish_executed_notebook(executed: Path, source: Path) -> None:
    """Point the executed notebook's papermill metadata at the real source, not the temp copy."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    pm_meta = nb.metadata.get("papermill", {})
    pm_meta["input_path"] = _relative_to_root(source)
    pm_meta["output_path"] = _relative_to_root(executed)
    nbformat.write(nb, str(executed))


def execute(
    notebook: Path,
    output_dir: Path,
    parameters: dict | None = None,
    strict: bool = True,
    timeout: int | None = None,
    *,
    profile: str | None = None,
    progress_bar: bool = False,
) -> Path:
    """Run `notebook` with papermill into `output_dir`; return the executed `.ipynb` path.

    Writes `<output_dir>/<stem>.ipynb`, `<stem>.html` and `manifest.json` (also when the
    notebook fails, then with status "failed"; the papermill exception is re-raised after).
    `OUTPUT_DIR` is always set to `output_dir` when the notebook declares it. The kernel runs
    with the repository root as working directory and inherits this process's environment
    (e.g. `STUDY_CACHE_DIR`).

    Args:
        parameters: values for names declared in the `parameters` cell.
        strict: if True (default), an undeclared name raises KeyError and a notebook without a
            `parameters` cell raises ValueError, both before anything runs. If False, unknown
            names are dropped with a warning and such a notebook runs on its own values.
        timeout: per-cell time limit in seconds (None = unlimited).
        profile: name of the parameter set (e.g. "smoke"), shown in the manifest and index.
        progress_bar: show papermill's per-cell progress bar.
    """
    import nbformat
    import papermill

    notebook = Path(notebook).resolve()
    output_dir = Path(output_dir).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    source_nb = _read_notebook(notebook)
    overrides = dict(parameters or {})
    try:
        declared: dict[str, Any] | None = {
            k: v for k, (v, _) in _declared(source_nb, notebook.name).items()
        }
    except ValueError:
        if strict or _has_parameters_cell(source_nb):
            raise
        declared = None
    if declared is None:
        if overrides:
            logger.warning(
                "%s has no parameters cell; ignoring %s", notebook.name, sorted(overrides)
            )
        overrides = {}
    else:
        unknown = sorted(set(overrides) - set(declared))
        if unknown and strict:
            raise KeyError(
                f"{notebook.name}: unknown parameter(s) {unknown}; declared: {sorted(declared)}"
            )
        if unknown:
            logger.warning("%s: ignoring unknown parameter(s) %s", notebook.name, unknown)
            overrides = {k: v for k, v in overrides.items() if k in declared}
        if OUTPUT_DIR_PARAMETER in declared:
            overrides[OUTPUT_DIR_PARAMETER] = str(output_dir)
    effective = {**(declared or {}), **overrides}

    output_dir.mkdir(parents=True, exist_ok=True)
    executed = output_dir / f"{notebook.stem}.ipynb"
    html_path = output_dir / f"{notebook.stem}.html"
    # Outputs of an earlier run in this folder would be mistaken for this run's.
    for stale in (output_dir / RECORDS_FILE, output_dir / MANIFEST_FILE, html_path, executed):
        stale.unlink(missing_ok=True)

    started_at = datetime.now(timezone.utc)
    since = time.time() - 1.0  # file mtimes can be coarser than the clock
    start = time.perf_counter()
    error: BaseException | None = None
    logger.info("executing %s -> %s", notebook.name, output_dir)
    try:
        with tempfile.TemporaryDirectory() as tmp, _this_python_kernel():
            # Papermill takes a path (given a NotebookNode it stores the whole notebook in
            # metadata); the copy carries the kernelspec that committed notebooks lack.
            prepared = copy.deepcopy(source_nb)
            prepared.metadata["kernelspec"] = dict(KERNELSPEC)
            prepared.metadata.setdefault("language_info", {"name": "python"})
            temp_input = Path(tmp) / notebook.name
            nbformat.write(prepared, str(temp_input))
            papermill.execute_notebook(
                str(temp_input),
                str(executed),
                parameters=overrides,
                kernel_name=KERNEL_NAME,
                language="python",
                cwd=str(ROOT),
                progress_bar=progress_bar,
                log_output=False,
                execution_timeout=timeout,
            )
    except Exception as exc:
        error = exc
    duration = time.perf_counter() - start

    if executed.exists():
        try:
            _finish_executed_notebook(executed, notebook)
            export_html(executed, html_path)
        except Exception as exc:  # a failed export must not hide the notebook's own status
            logger.warning("could not export %s to HTML: %s", executed.name, exc)
    records_path = output_dir / RECORDS_FILE
    manifest = {
        "notebook": notebook.stem,
        "path": _relative_to_root(notebook),
        "title": _title(source_nb, notebook.stem),
        "status": "failed" if error else "ok",
        "error": _error_message(error) if error else None,
        "profile": profile,
        "parameters": _jsonable(effective, strict=False),
        "overrides": _jsonable(overrides, strict=False),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 2),
        "git": _git_state(),
        "versions": _versions(),
        "device": _device_info(),
        "outputs": {
            "notebook": executed.name if executed.exists() else None,
            "html": html_path.name if html_path.exists() else None,
        },
        "figures": _artifacts(output_dir, "figures", since),
        "tables": _artifacts(output_dir, "tables", since),
        "records": _read_json(records_path) if records_path.exists() else {},
    }
    _write_json_atomic(output_dir / MANIFEST_FILE, manifest)
    if error is not None:
        logger.error("%s failed after %.1f s: %s", notebook.name, duration, manifest["error"])
        raise error
    logger.info("%s ok in %.1f s", notebook.name, duration)
    return executed


def _has_parameters_cell(nb: Any) -> bool:
    try:
        _parameters_cell(nb, "")
    except ValueError:
        return False
    return True


def _error_message(error: BaseException) -> str:
    """One readable line for the manifest: papermill's errors carry the cell's exception."""
    ename = getattr(error, "ename", None)
    evalue = getattr(error, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- index page


def _fmt_number(value: float) -> str:
    """3 significant digits; scientific notation for tiny and huge magnitudes."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e5:
        return f"{value:.2e}"
    digits = 2 - int(math.floor(math.log10(magnitude)))
    rounded = round(value, digits)
    return f"{rounded:.{max(digits, 0)}f}"


def _fmt_scalar(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return _fmt_number(float(value)) if isinstance(value, float) else f"{value:,}"
    text = str(value)
    return html.escape(text if len(text) <= 60 else text[:59] + "…")


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _fmt_value(value: Any) -> str:
    if _is_scalar(value):
        return _fmt_scalar(value)
    if isinstance(value, list):
        if len(value) <= 6 and all(_is_scalar(v) for v in value):
            return "[" + ", ".join(_fmt_scalar(v) for v in value) + "]"
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        return f"{{{len(value)} keys}}"
    return _fmt_scalar(str(value))


def _render_mapping(name: str, value: dict[str, Any], max_rows: int = 12) -> str:
    """Render a dict as a small table: a dict of dicts becomes rows x columns."""
    rows = list(value.items())[:max_rows]
    more = len(value) - len(rows)
    caption = f"<caption>{html.escape(name)}</caption>" if name else ""
    if rows and all(isinstance(v, dict) for _, v in rows):
        columns = list(dict.fromkeys(k for _, v in rows for k in v))[:8]
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            f"<tr><th>{html.escape(str(k))}</th>"
            + "".join(f"<td>{_fmt_value(v.get(c))}</td>" for c in columns)
            + "</tr>"
            for k, v in rows
        )
        table = f"<table class='rec'>{caption}<tr><th></th>{head}</tr>{body}</table>"
    else:
        body = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{_fmt_value(v)}</td></tr>" for k, v in rows
        )
        table = f"<table class='rec'>{caption}{body}</table>"
    return table + (f"<div class='muted'>… {more} more</div>" if more > 0 else "")


def _render_records(records: dict[str, Any]) -> str:
    scalars = {k: v for k, v in records.items() if not isinstance(v, dict)}
    parts = [_render_mapping("", scalars, max_rows=16)] if scalars else []
    parts += [_render_mapping(k, v) for k, v in records.items() if isinstance(v, dict) and v]
    return "".join(parts) or "<span class='muted'>no records</span>"


def _fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _render_parameters(manifest: dict[str, Any]) -> str:
    params = {
        k: v for k, v in (manifest.get("parameters") or {}).items() if k != OUTPUT_DIR_PARAMETER
    }
    overrides = set(manifest.get("overrides") or {}) - {OUTPUT_DIR_PARAMETER}
    profile = manifest.get("profile") or "defaults"
    rows = "".join(
        f"<tr{' class=override' if k in overrides else ''}><th>{html.escape(k)}</th>"
        f"<td>{_fmt_value(v)}</td></tr>"
        for k, v in params.items()
    )
    summary = f"{len(params)} parameters, {len(overrides)} overridden"
    return (
        f"<b>{html.escape(profile)}</b><details><summary>{summary}</summary>"
        f"<table class='rec'>{rows}</table></details>"
    )


_INDEX_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem;margin:0 0 .2rem} .muted{color:#777;font-size:12px}
table.runs{border-collapse:collapse;width:100%;margin-top:1rem}
table.runs>tbody>tr>td,table.runs>thead>tr>th{border-bottom:1px solid #ddd;padding:.6rem .5rem;
vertical-align:top;text-align:left}
table.runs>thead>tr>th{font-size:12px;text-transform:uppercase;color:#555}
table.rec{border-collapse:collapse;font-size:12px;margin:0 0 .4rem}
table.rec caption{text-align:left;font-weight:600;color:#444}
table.rec th,table.rec td{padding:1px 6px;border-bottom:1px solid #eee;text-align:left;
font-weight:normal;white-space:nowrap}
table.rec th{color:#555} tr.override th,tr.override td{font-weight:600}
.status{display:inline-block;padding:1px 8px;border-radius:9px;color:#fff;font-size:12px}
.ok{background:#009E73} .failed{background:#D55E00} .unknown{background:#999}
img.thumb{width:220px;border:1px solid #ddd;border-radius:4px}
code{font-size:12px} summary{cursor:pointer;color:#555;font-size:12px}
"""


def _url(*parts: str) -> str:
    """A relative link, percent-encoded and then escaped for an HTML attribute."""
    return html.escape("/".join(urllib.parse.quote(p) for p in parts))


def _render_row(run_dir: Path, manifest: dict[str, Any]) -> str:
    name = run_dir.name
    title = html.escape(str(manifest.get("title") or name))
    html_file = (manifest.get("outputs") or {}).get("html")
    link = f"<a href='{_url(name, html_file)}'>{title}</a>" if html_file else title
    status = str(manifest.get("status", "unknown"))
    css = status if status in ("ok", "failed") else "unknown"
    error = manifest.get("error")
    error_html = f"<div class='muted'>{html.escape(str(error)[:300])}</div>" if error else ""
    git = manifest.get("git") or {}
    sha = str(git.get("sha", "unknown"))
    sha_html = html.escape(sha[:8] if sha != "unknown" else sha) + ("*" if git.get("dirty") else "")
    records = manifest.get("records")
    if not records and (run_dir / RECORDS_FILE).exists():
        records = _read_json(run_dir / RECORDS_FILE)
    pngs = [f for f in manifest.get("figures") or [] if f.endswith(".png")]
    thumb = (
        f"<a href='{_url(name, pngs[0])}'>"
        f"<img class='thumb' loading='lazy' src='{_url(name, pngs[0])}' "
        f"alt='{html.escape(pngs[0])}'></a>"
        if pngs
        else "<span class='muted'>no figure</span>"
    )
    started = manifest.get("started_at")
    started_html = f" · {html.escape(str(started))}" if started else ""
    return (
        f"<tr><td>{link}<div class='muted'><code>{html.escape(name)}</code>{started_html}</div>"
        f"{error_html}</td>"
        f"<td><span class='status {css}'>{html.escape(status)}</span></td>"
        f"<td>{_fmt_duration(manifest.get('duration_s'))}</td>"
        f"<td><code>{sha_html}</code></td>"
        f"<td>{_render_parameters(manifest)}</td>"
        f"<td>{_render_records(records or {})}</td>"
        f"<td>{thumb}</td></tr>"
    )


def build_index(reports_root: Path | None = None) -> Path:
    """Write `<reports_root>/index.html` with one row per `*/manifest.json`; return its path.

    The page is self-contained (inline CSS, relative links to each report and figure), so the
    whole folder can be published or zipped as is.
    """
    root = Path(reports_root) if reports_root is not None else reports_dir()
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST_FILE}")):
        try:
            manifest = _read_json(manifest_path)
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("skipping unreadable %s: %s", manifest_path, exc)
            continue
        rows.append(_render_row(manifest_path.parent, manifest))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    head = "".join(
        f"<th>{h}</th>"
        for h in ("report", "status", "runtime", "git", "parameters", "records", "figure")
    )
    body = "".join(rows) or "<tr><td colspan=7 class='muted'>no reports yet</td></tr>"
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Reports</title><style>{_INDEX_CSS}</style></head><body>"
        f"<h1>Reports</h1><div class='muted'>{len(rows)} notebook(s) · index built {generated}"
        " · git SHA with * = uncommitted changes</div>"
        f"<table class='runs'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        "</body></html>\n"
    )
    index = root / INDEX_FILE
    _write_text_atomic(index, page)
    logger.info("index of %d report(s) written to %s", len(rows), index)
    return index


# --------------------------------------------------------------------------- command line


def available_notebooks() -> list[Path]:
    """The study's notebooks: `notebooks/NN_name.ipynb`, in order."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def resolve_notebook(name: str | Path) -> Path:
    """Find a notebook by path, by stem (`04_rethinking_evaluation`) or by unique prefix (`04`)."""
    path = Path(name)
    if path.is_file():
        return path
    candidates = [NOTEBOOKS_DIR / f"{name}.ipynb", NOTEBOOKS_DIR / str(name)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    matches = [p for p in available_notebooks() if p.stem.startswith(str(name))]
    if len(matches) == 1:
        return matches[0]
    known = [p.stem for p in available_notebooks()]
    raise FileNotFoundError(f"no unique notebook {str(name)!r}; available: {known}")


def load_params_file(path: Path | None) -> dict[str, Any]:
    """Read a YAML mapping of parameter overrides ({} when `path` is None)."""
    if path is None:
        return {}
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping NAME: value, got {type(data).__name__}")
    return data


def run_notebooks(
    notebooks: Sequence[Path],
    params: Mapping[str, Any],
    out: Path,
    *,
    profile: str | None = None,
    timeout: int | None = None,
    progress_bar: bool = False,
) -> list[tuple[str, str, float]]:
    """Execute each notebook into `out/<stem>/` with the keys of `params` it declares.

    A shared parameter file may hold keys for other notebooks, but a key that no notebook of
    the study declares is a typo and raises KeyError before anything runs. Failures do not stop
    the other notebooks. Returns (stem, status, seconds) per notebook.
    """
    declared: dict[Path, set[str]] = {}
    for nb in sorted({*map(Path, notebooks), *available_notebooks()}):
        try:
            declared[nb.resolve()] = set(declared_parameters(nb))
        except ValueError as exc:
            logger.warning("%s", exc)
            declared[nb.resolve()] = set()
    known = set().union(*declared.values())
    unknown = sorted(set(params) - known)
    if unknown:
        raise KeyError(
            f"parameter(s) {unknown} are declared by no notebook; known: {sorted(known)}"
        )
    summary: list[tuple[str, str, float]] = []
    for nb in notebooks:
        names = declared[Path(nb).resolve()]
        chosen = {k: v for k, v in params.items() if k in names}
        start = time.perf_counter()
        try:
            execute(
                nb,
                out / Path(nb).stem,
                chosen,
                timeout=timeout,
                profile=profile,
                progress_bar=progress_bar,
            )
            status = "ok"
        except Exception as exc:
            # execute() has logged failures of the run itself (it wrote a manifest); log the
            # ones that stopped it before running (bad parameters, missing parameters cell).
            if not (out / Path(nb).stem / MANIFEST_FILE).exists():
                logger.error("%s not run: %s", Path(nb).stem, _error_message(exc))
            status = "failed"
        summary.append((Path(nb).stem, status, time.perf_counter() - start))
    return summary


def _print_summary(summary: Sequence[tuple[str, str, float]]) -> None:
    width = max([len("notebook"), *(len(name) for name, _, _ in summary)])
    print(f"{'notebook':<{width}}  {'status':<7}  {'seconds':>8}")
    for name, status, seconds in summary:
        print(f"{name:<{width}}  {status:<7}  {seconds:>8.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m lib.reporting", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run", aliases=["build"], help="execute notebooks, export HTML, rebuild the index"
    )
    run.add_argument(
        "notebooks", nargs="*", help="paths, stems or unique prefixes (default: all notebooks)"
    )
    run.add_argument("--params", type=Path, help="YAML file of parameter overrides")
    run.add_argument("--out", type=Path, help="reports folder (default: reports/)")
    run.add_argument("--timeout", type=int, help="per-cell time limit in seconds")
    run.add_argument("--progress", action="store_true", help="show papermill's progress bar")
    index = sub.add_parser("index", help="rebuild reports/index.html from the manifests")
    index.add_argument("--out", type=Path, help="reports folder (default: reports/)")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("papermill").setLevel(logging.WARNING)  # one line per cell otherwise
    # nbconvert warns (through traitlets) about every figure without alt text; noise here.
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    out = args.out.resolve() if args.out else reports_dir()
    if args.command == "index":
        print(build_index(out))
        return 0

    try:
        notebooks = [resolve_notebook(n) for n in args.notebooks] or available_notebooks()
        params = load_params_file(args.params)
        if not notebooks:
            raise FileNotFoundError(f"no notebooks in {NOTEBOOKS_DIR}")
        profile = args.params.stem if args.params else None
        summary = run_notebooks(
            notebooks,
            params,
            out,
            profile=profile,
            timeout=args.timeout,
            progress_bar=args.progress,
        )
    except (FileNotFoundError, KeyError, ValueError) as exc:
        parser.error(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    index_path = build_index(out)
    _print_summary(summary)
    print(f"index: {index_path}")
    return 0 if all(status == "ok" for _, status, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
