"""Execute a parameterized notebook with papermill and publish it: `.ipynb`, `.html`, manifest.

Per notebook, `execute()` writes into one folder:

- `<stem>.ipynb`: the executed notebook (papermill, with an `injected-parameters` cell);
- `<stem>.html`: the same, exported with nbconvert's `lab` template (no external scripts);
- `<stem>.log`: the library's log lines (see `lib.reporting.logs`), linked from the HTML;
- `records.json`, `figures/`, `tables/`: written by the notebook itself through `Report`;
- `manifest.json`: what ran, with which parameters, on which code and machine, for how long.

The kernel is the Jupyter kernelspec `unlearning-study`, installed once by `make install`
(`python -m ipykernel install --sys-prefix --name unlearning-study`). Its project-specific name
means a user-level `python3` kernelspec pointing at another interpreter cannot shadow it.

Paths shown in the report (the injected `OUTPUT_DIR`, the manifest) are relative to the project
root. This module knows nothing about unlearning.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from lib.cache import atomic_write_json, atomic_write_text
from lib.paths import ROOT
from lib.progress import INTERVAL_ENV, MODE_ENV, format_duration
from lib.reporting import console
from lib.reporting.formatting import display_path
from lib.reporting.logs import LOG_ENV, count_levels
from lib.reporting.parameters import declared, has_parameters_cell, notebook_title, read_notebook
from lib.reporting.report import RECORDS_FILE, jsonable, read_json

logger = logging.getLogger(__name__)

KERNEL_NAME = "unlearning-study"
KERNEL_DISPLAY_NAME = "Python (unlearning-study)"
KERNEL_INSTALL = (
    f"python -m ipykernel install --sys-prefix --name {KERNEL_NAME} "
    f'--display-name "{KERNEL_DISPLAY_NAME}"'
)
HIDE_INPUT_TAG = "hide-input"
OUTPUT_DIR_PARAMETER = "OUTPUT_DIR"
MANIFEST_FILE = "manifest.json"
ENGINE_NAME = "unlearning-study"
TEMPLATES_DIR = Path(__file__).parent / "templates"
# The kernel's environment under execute(): progress as log lines (the log file is set per run),
# and no third-party progress bars in the cell outputs: Hugging Face libraries (transformers,
# hub, datasets) honour their switches, plain tqdm honours TQDM_DISABLE. (tqdm's notebook bar
# ignores TQDM_DISABLE, so library code must report through lib.progress, never tqdm.)
KERNEL_ENV = {
    MODE_ENV: "log",
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
}

CellCallback = Callable[[int, int, Any], None]


class KernelNotInstalledError(RuntimeError):
    """The `unlearning-study` Jupyter kernelspec is missing; `make install` installs it."""


# --------------------------------------------------------------------------- kernel


def _argv_uses_this_python(argv0: str) -> bool:
    """True if a kernelspec's interpreter is the one running this code.

    jupyter_client replaces a bare `python`/`python3`/`python3.X` with `sys.executable`;
    anything else must be this exact interpreter path (not resolved through symlinks: a
    virtualenv's python is a symlink to the base interpreter, which lacks the venv's packages).
    """
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    return argv0 in bare or os.path.abspath(argv0) == os.path.abspath(sys.executable)


def check_kernel() -> Any:
    """Return the `unlearning-study` kernelspec; raise KernelNotInstalledError if it is missing.

    A spec whose interpreter is not this one is used, with a warning (e.g. a kernel installed
    from another environment): the notebook then runs on that environment's packages.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise KernelNotInstalledError(
            f"Jupyter kernel {KERNEL_NAME!r} is not installed for {sys.executable}. Run "
            f"`make install` (GPU box: `make install VENV=$CONDA_PREFIX`), or in this "
            f"environment: {KERNEL_INSTALL}"
        ) from None
    if spec.argv and not _argv_uses_this_python(spec.argv[0]):
        logger.warning(
            "kernel %r runs %s, not this interpreter (%s); reinstall it with `make install`",
            KERNEL_NAME,
            spec.argv[0],
            sys.executable,
        )
    return spec


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel (it inherits them at start) and restore them."""
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _register_engine() -> None:
    """A papermill engine that reports each cell's start and runs the kernel over IPC.

    IPC (Unix sockets in a private temporary folder) instead of TCP on localhost: the kernel
    then has no open port, and ipykernel does not print its warning about unencrypted TCP.
    """
    from papermill.engines import NBClientEngine, papermill_engines
    from traitlets.config import Config

    class StudyEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):  # noqa: ANN001
            on_cell: CellCallback | None = kwargs.pop("on_cell", None)
            if on_cell is not None:
                total = len(nb_man.nb.cells)
                original = nb_man.cell_start

                def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                    if cell_index is not None:
                        with contextlib.suppress(Exception):  # a display bug must not stop runs
                            on_cell(cell_index, total, cell)
                    return original(cell, cell_index, **kw)

                nb_man.cell_start = cell_start
            with tempfile.TemporaryDirectory(prefix="kernel-") as sockets:
                config = Config()
                config.KernelManager.transport = "ipc"
                config.KernelManager.ip = str(Path(sockets) / "ipc")
                return super().execute_managed_notebook(
                    nb_man, kernel_name, config=config, **kwargs
                )

    papermill_engines.register(ENGINE_NAME, StudyEngine)


# --------------------------------------------------------------------------- provenance


def git_state() -> dict[str, Any]:
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


def error_message(error: BaseException) -> str:
    """One readable line for the manifest: papermill's errors carry the cell's exception."""
    ename = getattr(error, "ename", None)
    evalue = getattr(error, "evalue", None)
    if ename:
        count = getattr(error, "exec_count", None)
        where = f" (code cell [{count}])" if count else ""
        return f"{ename}: {evalue}{where}"
    return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------- HTML


def _banner(manifest: dict[str, Any], folder: Path) -> str:
    """The run's provenance as one Markdown block, shown under the notebook's title."""
    git = manifest.get("git") or {}
    sha = str(git.get("sha") or "unknown")[:8] + (
        " (uncommitted changes)" if git.get("dirty") else ""
    )
    log = manifest.get("log") or {}
    parts = [
        f"profile `{manifest.get('profile') or 'defaults'}`",
        f"{format_duration(manifest.get('duration_s') or 0)}",
        f"started {manifest.get('started_at', '')}",
        f"git `{sha}`",
    ]
    links = []
    if log.get("file") and (folder / log["file"]).exists():
        warnings = log.get("warnings", 0) + log.get("errors", 0)
        noted = f" ({warnings} warning{'' if warnings == 1 else 's'})" if warnings else ""
        links.append(f"[log]({log['file']}){noted}")
    if (folder / RECORDS_FILE).exists():
        links.append(f"[{RECORDS_FILE}]({RECORDS_FILE})")
    links.append(f"[{MANIFEST_FILE}]({MANIFEST_FILE})")  # written right after the HTML
    status = manifest.get("status")
    head = "**Run failed**" if status == "failed" else "**Run**"
    text = f"> {head} · " + " · ".join(parts) + " · " + " · ".join(links)
    if status == "failed" and manifest.get("error"):
        error = str(manifest["error"]).replace("\n", " ")
        text += f"\n>\n> **Error:** `{error[:500]}`"
    return text


def export_html(executed: Path, html_path: Path | None = None, banner: str | None = None) -> Path:
    """Export an executed notebook to HTML next to it; return the path.

    The `study` template extends nbconvert's `lab` template without its external scripts
    (require.js, MathJax, mermaid from CDNs), so the page works offline and loads nothing from
    the network; MathJax is kept only when a Markdown cell contains `$` or `\\(`. Code stays
    visible, so readers see what ran, including the injected parameters; only cells tagged
    `hide-input` lose their input. Prompts (`In [3]:`) are left out. `banner` (Markdown) is
    shown under the first cell.
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
    exporter = HTMLExporter(
        config=config,
        template_name="study",
        extra_template_basedirs=[str(TEMPLATES_DIR / "nbconvert")],
    )
    nb = nbformat.read(str(executed), as_version=4)
    if banner:
        nb = copy.deepcopy(nb)
        cell = nbformat.v4.new_markdown_cell(banner)
        cell.metadata["tags"] = ["run-banner"]
        nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, cell)
    uses_math = any(
        c.cell_type == "markdown" and ("$" in c.source or "\\(" in c.source) for c in nb.cells
    )
    body, _ = exporter.from_notebook_node(
        nb,
        resources={
            "metadata": {"name": notebook_title(nb, executed.stem)},
            "study_uses_math": uses_math,
        },
    )
    atomic_write_text(html_path, body)
    return html_path


def _finish_executed_notebook(executed: Path, source: Path) -> None:
    """Point the executed notebook's papermill metadata at the real source, not the temp copy."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    pm_meta = nb.metadata.get("papermill", {})
    pm_meta["input_path"] = display_path(source)
    pm_meta["output_path"] = display_path(executed)
    nbformat.write(nb, str(executed))


# --------------------------------------------------------------------------- execute


def _resolve_parameters(
    source_nb: Any, name: str, parameters: dict | None, strict: bool
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Check `parameters` against the notebook's declarations; return (declared, overrides)."""
    overrides = dict(parameters or {})
    try:
        declared_values: dict[str, Any] | None = {
            k: v for k, (v, _) in declared(source_nb, name).items()
        }
    except ValueError:
        if strict or has_parameters_cell(source_nb):
            raise
        declared_values = None
    if declared_values is None:
        if overrides:
            logger.warning("%s has no parameters cell; ignoring %s", name, sorted(overrides))
        return None, {}
    unknown = sorted(set(overrides) - set(declared_values))
    if unknown and strict:
        raise KeyError(
            f"{name}: unknown parameter(s) {unknown}; declared: {sorted(declared_values)}"
        )
    if unknown:
        logger.warning("%s: ignoring unknown parameter(s) %s", name, unknown)
        overrides = {k: v for k, v in overrides.items() if k in declared_values}
    return declared_values, overrides


def execute(
    notebook: Path,
    output_dir: Path,
    parameters: dict | None = None,
    strict: bool = True,
    timeout: int | None = None,
    *,
    profile: str | None = None,
    progress: bool = False,
) -> Path:
    """Run `notebook` with papermill into `output_dir`; return the executed `.ipynb` path.

    Writes `<output_dir>/<stem>.ipynb`, `<stem>.html`, `<stem>.log` and `manifest.json` (also
    when the notebook fails, then with status "failed"; the papermill exception is re-raised
    after). `OUTPUT_DIR` is always set to `output_dir` (relative to the project root) when the
    notebook declares it. The kernel runs with the repository root as working directory and
    inherits this process's environment (e.g. `STUDY_CACHE_DIR`), plus `STUDY_REPORT_LOG`
    (the log file), `STUDY_PROGRESS=log` and `TQDM_DISABLE=1`.

    Args:
        parameters: values for names declared in the `parameters` cell.
        strict: if True (default), an undeclared name raises KeyError and a notebook without a
            `parameters` cell raises ValueError, both before anything runs. If False, unknown
            names are dropped with a warning and such a notebook runs on its own values.
        timeout: per-cell time limit in seconds (None = unlimited).
        profile: name of the parameter set (e.g. "smoke"), shown in the manifest and index.
        progress: show what runs on the terminal (the `lib.reporting.console` logger): one line
            per section of the notebook, the progress lines and warnings of the library.

    Raises:
        KeyError, ValueError: bad parameters (see `strict`), before anything runs.
        KernelNotInstalledError: the `unlearning-study` kernelspec is missing (`make install`).
    """
    import nbformat
    import papermill

    notebook = Path(notebook).resolve()
    output_dir = Path(output_dir).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    source_nb = read_notebook(notebook)
    declared_values, overrides = _resolve_parameters(source_nb, notebook.name, parameters, strict)
    if declared_values is not None and OUTPUT_DIR_PARAMETER in declared_values:
        overrides[OUTPUT_DIR_PARAMETER] = display_path(output_dir)
    effective = {**(declared_values or {}), **overrides}
    check_kernel()
    _register_engine()

    output_dir.mkdir(parents=True, exist_ok=True)
    executed = output_dir / f"{notebook.stem}.ipynb"
    html_path = output_dir / f"{notebook.stem}.html"
    log_path = output_dir / f"{notebook.stem}.log"
    # Outputs of an earlier run in this folder would be mistaken for this run's.
    for stale in (output_dir / RECORDS_FILE, output_dir / MANIFEST_FILE, html_path, executed):
        stale.unlink(missing_ok=True)
    log_path.write_text("", encoding="utf-8")  # a fresh log, and the tail has a file to follow

    started_at = datetime.now(timezone.utc)
    since = time.time() - 1.0  # file mtimes can be coarser than the clock
    start = time.perf_counter()
    error: BaseException | None = None
    logger.info("executing %s -> %s", display_path(notebook), display_path(output_dir))
    env = {**KERNEL_ENV, LOG_ENV: str(log_path)}
    if os.environ.get(INTERVAL_ENV):
        env[INTERVAL_ENV] = os.environ[INTERVAL_ENV]
    tail = console.LogTail(log_path) if progress else contextlib.nullcontext()
    try:
        with tempfile.TemporaryDirectory() as tmp, _environment(env), tail:
            # Papermill takes a path (given a NotebookNode it stores the whole notebook in
            # metadata); the copy carries the kernelspec that committed notebooks lack.
            prepared = copy.deepcopy(source_nb)
            prepared.metadata["kernelspec"] = {
                "name": KERNEL_NAME,
                "display_name": KERNEL_DISPLAY_NAME,
                "language": "python",
            }
            prepared.metadata.setdefault("language_info", {"name": "python"})
            temp_input = Path(tmp) / notebook.name
            nbformat.write(prepared, str(temp_input))
            papermill.execute_notebook(
                str(temp_input),
                str(executed),
                parameters=overrides,
                engine_name=ENGINE_NAME,
                kernel_name=KERNEL_NAME,
                language="python",
                cwd=str(ROOT),
                progress_bar=False,
                log_output=False,
                execution_timeout=timeout,
                on_cell=console.section_printer() if progress else None,
            )
    except Exception as exc:
        error = exc
    duration = time.perf_counter() - start

    levels = count_levels(log_path)
    records_path = output_dir / RECORDS_FILE
    manifest: dict[str, Any] = {
        "notebook": notebook.stem,
        "path": display_path(notebook),
        "output_dir": display_path(output_dir),
        "title": notebook_title(source_nb, notebook.stem),
        "status": "failed" if error else "ok",
        "error": error_message(error) if error else None,
        "profile": profile,
        "parameters": jsonable(effective, strict=False),
        "overrides": jsonable(overrides, strict=False),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(duration, 2),
        "git": git_state(),
        "versions": _versions(),
        "device": _device_info(),
        "kernel": KERNEL_NAME,
        "log": {
            "file": log_path.name,
            "warnings": levels.get("WARNING", 0),
            "errors": levels.get("ERROR", 0) + levels.get("CRITICAL", 0),
        },
        "outputs": {
            "notebook": executed.name if executed.exists() else None,
            "html": None,
            "log": log_path.name,
        },
        "figures": _artifacts(output_dir, "figures", since),
        "tables": _artifacts(output_dir, "tables", since),
        "records": read_json(records_path) if records_path.exists() else {},
    }
    if executed.exists():
        try:
            _finish_executed_notebook(executed, notebook)
            export_html(executed, html_path, banner=_banner(manifest, output_dir))
            manifest["outputs"]["html"] = html_path.name
        except Exception as exc:  # a failed export must not hide the notebook's own status
            logger.warning("could not export %s to HTML: %s", executed.name, exc)
    atomic_write_json(output_dir / MANIFEST_FILE, manifest)
    if error is not None:
        logger.error("%s failed after %.1f s: %s", notebook.name, duration, manifest["error"])
        raise error
    logger.info("%s ok in %.1f s", notebook.name, duration)
    return executed
