"""Command line: run notebooks into reports and build the index.

    python -m lib.reporting run [NB ...] [--params params/smoke.yaml] [--out reports/] [--progress]
    python -m lib.reporting index [--out reports/]
    python -m lib.reporting check [--out reports/]
    python -m lib.reporting screenshot PAGE PNG [--width 1280]

`run` executes each notebook (all by default) into `<out>/<stem>/`, then rebuilds
`<out>/index.html`; a failed notebook does not stop the others, and the exit status is 1 if any
failed. `--progress` streams what the kernel is doing to the terminal (sections, progress lines,
warnings; see `lib.reporting.console`). `check` opens the index and every report in headless
Chromium and lists what a reader would find broken (`lib.reporting.browser`); `screenshot`
saves a full-page PNG of a page (e.g. `reports/index.html` -> `docs/index.png`). Parameter
files are YAML mappings NAME: value; a key that no notebook declares is an error before anything
runs.

Lives here rather than in `__main__.py` so that `from lib.reporting import main` does not import
the `__main__` module (runpy warns when `python -m` then runs it a second time).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lib.paths import NOTEBOOKS_DIR, reports_dir
from lib.progress import format_duration
from lib.reporting import console
from lib.reporting.execute import MANIFEST_FILE, KernelNotInstalledError, check_kernel, execute
from lib.reporting.execute import error_message as _error_message
from lib.reporting.formatting import display_path
from lib.reporting.index import build_index
from lib.reporting.parameters import declared_parameters

logger = logging.getLogger(__name__)


def _shown(path: Path) -> str:
    """A path for the terminal: relative inside the project, absolute outside it."""
    shown = display_path(path)
    return str(Path(path).resolve()) if shown.startswith("..") else shown


def available_notebooks() -> list[Path]:
    """The study's notebooks: `notebooks/NN_name.ipynb`, in order."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def resolve_notebook(name: str | Path) -> Path:
    """Find a notebook by path, by stem (`04_rethinking_evaluation`) or by unique prefix (`04`)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (NOTEBOOKS_DIR / f"{name}.ipynb", NOTEBOOKS_DIR / str(name)):
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
    progress: bool = False,
) -> list[tuple[str, str, float]]:
    """Execute each notebook into `out/<stem>/` with the keys of `params` it declares.

    A shared parameter file may hold keys for other notebooks, but a key that no notebook of
    the study declares is a typo and raises KeyError before anything runs; so does a missing
    kernel (KernelNotInstalledError). Failures do not stop the other notebooks. Returns
    (stem, status, seconds) per notebook.
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
    check_kernel()
    summary: list[tuple[str, str, float]] = []
    for number, nb in enumerate(notebooks, start=1):
        stem = Path(nb).stem
        names = declared[Path(nb).resolve()]
        chosen = {k: v for k, v in params.items() if k in names}
        folder = out / stem
        if progress:
            console.say(
                f"▶ [{number}/{len(notebooks)}] {stem} · profile {profile or 'defaults'} · "
                f"log {_shown(folder / f'{stem}.log')}"
            )
        start = time.perf_counter()
        try:
            execute(nb, folder, chosen, timeout=timeout, profile=profile, progress=progress)
            status = "ok"
        except Exception as exc:
            # execute() has logged failures of the run itself (it wrote a manifest); log the
            # ones that stopped it before running (bad parameters, missing parameters cell).
            if not (folder / MANIFEST_FILE).exists():
                logger.error("%s not run: %s", stem, _error_message(exc))
            status = "failed"
        seconds = time.perf_counter() - start
        if progress:
            mark = "✓" if status == "ok" else "✗"
            console.say(
                f"{mark} {stem} {status} in {format_duration(seconds)}: "
                f"{_shown(folder / f'{stem}.html')}"
            )
        summary.append((stem, status, seconds))
    return summary


def _summary_table(summary: Sequence[tuple[str, str, float]]) -> list[str]:
    width = max([len("notebook"), *(len(name) for name, _, _ in summary)])
    lines = [f"{'notebook':<{width}}  {'status':<7}  {'runtime':>8}"]
    lines += [
        f"{name:<{width}}  {status:<7}  {format_duration(seconds):>8}"
        for name, status, seconds in summary
    ]
    return lines


def report_pages(out: Path) -> list[Path]:
    """The index and every report's HTML under `out`."""
    return [out / "index.html", *sorted(out.glob("*/*.html"))]


def _check(out: Path) -> int:
    from lib.reporting import browser

    pages = report_pages(out)
    missing = [p for p in pages if not p.is_file()]
    if missing:
        console.say(f"missing: {', '.join(_shown(p) for p in missing)}")
        return 1
    failures = 0
    with browser.chromium() as driver:
        for page in pages:
            problems = browser.check_page(driver, page)
            failures += bool(problems)
            console.say(f"{'✗' if problems else '✓'} {_shown(page)}")
            for problem in problems:
                console.say(f"    {problem}")
    return 1 if failures else 0


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("papermill").setLevel(logging.WARNING)  # one line per cell otherwise
    # nbconvert warns (through traitlets) about every figure without alt text; noise here.
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    # Our own lines for the person at the terminal: plain text, no timestamp or logger name.
    # INFO lines of lib.reporting itself are in the manifest; only its problems are shown.
    logging.getLogger("lib.reporting").setLevel(logging.WARNING)
    terminal = logging.getLogger(console.__name__)
    terminal.setLevel(logging.INFO)
    terminal.propagate = False
    if not terminal.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        terminal.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m lib.reporting",
        description="Execute the study's notebooks into HTML reports and build the index.",
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
    run.add_argument(
        "--progress",
        action="store_true",
        help="show each section, progress line and warning of the running notebook",
    )
    index = sub.add_parser("index", help="rebuild reports/index.html from the manifests")
    index.add_argument("--out", type=Path, help="reports folder (default: reports/)")
    check = sub.add_parser("check", help="open the index and every report in headless Chromium")
    check.add_argument("--out", type=Path, help="reports folder (default: reports/)")
    shot = sub.add_parser("screenshot", help="full-page PNG of a page in headless Chromium")
    shot.add_argument("page", type=Path, help="HTML file, e.g. reports/index.html")
    shot.add_argument("png", type=Path, help="PNG to write, e.g. docs/index.png")
    shot.add_argument("--width", type=int, default=1280, help="window width in px")
    args = parser.parse_args(argv)

    _configure_logging()
    if args.command == "screenshot":
        from lib.reporting import browser

        with browser.chromium(width=args.width) as driver:
            console.say(_shown(browser.screenshot(driver, args.page, args.png, width=args.width)))
        return 0
    out = args.out.resolve() if args.out else reports_dir()
    if args.command == "index":
        console.say(_shown(build_index(out)))
        return 0
    if args.command == "check":
        return _check(out)

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
            progress=args.progress,
        )
    except (FileNotFoundError, KeyError, ValueError, KernelNotInstalledError) as exc:
        parser.error(str(exc.args[0]) if isinstance(exc, KeyError) else str(exc))
    index_path = build_index(out)
    for line in _summary_table(summary):
        console.say(line)
    console.say(f"index: {_shown(index_path)}")
    return 0 if all(status == "ok" for _, status, _ in summary) else 1
