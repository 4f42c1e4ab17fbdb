"""The published smoke reports as a reader gets them: no stderr noise in the executed notebooks,
no absolute paths of this machine, no warnings from our own code in the logs, and (where
Chromium is installed) every page opens in a real browser with no console error, every image
loaded, every local link resolving and nothing cut off at 1280 px.

All tests share ONE smoke execution of every notebook (`smoke_reports` in tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from lib import paths, reporting
from lib.reporting import browser
from lib.reporting.logs import LINE_PATTERN

pytestmark = pytest.mark.notebook

# Warnings raised by our own code (lib/) that are known and being fixed elsewhere: file ->
# why it is tolerated for now. Each entry is a bug; remove it with the fix.
KNOWN_OWN_WARNINGS: dict[str, str] = {}  # source file -> warning text tolerated there (none)
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+")


def _absolute_path_pattern() -> re.Pattern[str]:
    """This machine's folders written absolutely (a relative '../../tmp/x' does not match)."""
    roots = {str(paths.ROOT), str(Path(paths.ROOT).resolve()), os.path.expanduser("~"), "/tmp"}
    alternatives = "|".join(re.escape(r.rstrip("/")) for r in sorted(roots, key=len, reverse=True))
    return re.compile(rf"(?<![\w.~/-])(?:{alternatives})(?=/|\b)")


def _published_files(root: Path) -> list[Path]:
    found = [root / "index.html"]
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found += sorted(folder.glob("*.html")) + sorted(folder.glob("*.log"))
        found += [f for f in (folder / "manifest.json", folder / "records.json") if f.exists()]
    return found


def test_every_smoke_notebook_published(smoke_reports: Path) -> None:
    for nb in reporting.available_notebooks():
        manifest = json.loads((smoke_reports / nb.stem / "manifest.json").read_text())
        assert manifest["status"] == "ok", f"{nb.stem}: {manifest['error']}"
        assert manifest["outputs"]["html"] and manifest["log"]["file"]


def test_executed_notebooks_have_no_stderr_or_errors(smoke_reports: Path) -> None:
    for nb in reporting.available_notebooks():
        executed = nbformat.read(smoke_reports / nb.stem / f"{nb.stem}.ipynb", as_version=4)
        noisy = [
            (index, (output.get("text") or output.get("evalue") or "")[:200])
            for index, cell in enumerate(executed.cells)
            for output in cell.get("outputs", [])
            if output.get("name") == "stderr" or output.get("output_type") == "error"
        ]
        assert not noisy, f"{nb.stem}: stderr/error outputs in cells (index, text): {noisy}"


def test_no_absolute_paths_in_what_is_published(smoke_reports: Path) -> None:
    pattern = _absolute_path_pattern()
    for file in _published_files(smoke_reports):
        text = _DATA_URI.sub("data:", file.read_text(encoding="utf-8", errors="replace"))
        leaks = sorted(
            {text[max(m.start() - 40, 0) : m.end() + 40] for m in pattern.finditer(text)}
        )
        assert not leaks, f"{file.relative_to(smoke_reports)} shows absolute paths: {leaks[:5]}"


def test_absolute_path_pattern() -> None:
    pattern = _absolute_path_pattern()
    assert pattern.search(f'OUTPUT_DIR = "{paths.ROOT}/reports/x"')
    assert pattern.search("saved under /tmp/pytest-of-root/x")
    assert not pattern.search('OUTPUT_DIR = "../../tmp/pytest-of-root/x"')
    assert not pattern.search("reports/04_rethinking_evaluation/figures/fig1.png")


def test_no_warnings_from_our_code(smoke_reports: Path) -> None:
    """Python warnings raised in lib/ are bugs to fix, not noise to hide (they are captured into
    the log, where this test reads them)."""
    found = []
    for log in sorted(smoke_reports.glob("*/*.log")):
        for line in log.read_text(encoding="utf-8").splitlines():
            match = LINE_PATTERN.match(line)
            if not match or match["name"] != "py.warnings":
                continue
            source = match["message"].split(":", 1)[0]
            if source.startswith("lib/") and source not in KNOWN_OWN_WARNINGS:
                found.append(f"{log.name}: {match['message']}")
    assert not found, "warnings raised by lib/ (fix them):\n" + "\n".join(found)


# ----------------------------------------------------------------------------- browser

FAILING_NOTEBOOK_BODY = "raise RuntimeError('the fake notebook failed on purpose')"


@pytest.fixture(scope="module")
def published(smoke_reports: Path, tmp_path_factory) -> Path:
    """The smoke reports plus a notebook that really failed, and the index over all of them."""
    root = tmp_path_factory.mktemp("published")
    shutil.copytree(smoke_reports, root, dirs_exist_ok=True)
    cells = [
        nbformat.v4.new_markdown_cell("# 99 · A notebook that fails"),
        nbformat.v4.new_code_cell('OUTPUT_DIR = "x"  # where the report goes'),
        nbformat.v4.new_code_cell(FAILING_NOTEBOOK_BODY),
    ]
    cells[1].metadata["tags"] = ["parameters"]
    notebook = root.parent / "99_fails.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(notebook))
    with pytest.raises(Exception, match="failed on purpose"):
        reporting.execute(notebook, root / "99_fails", profile="smoke")
    reporting.build_index(root)
    return root


@pytest.fixture(scope="module")
def driver():
    reason = browser.unavailable_reason()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    with browser.chromium() as chrome:
        yield chrome


def test_index_and_every_report_open_cleanly_in_chromium(published: Path, driver) -> None:
    pages = [published / "index.html", *sorted(published.glob("*/*.html"))]
    assert len(pages) == len(reporting.available_notebooks()) + 2  # + index + failed notebook
    problems = {p.relative_to(published).as_posix(): browser.check_page(driver, p) for p in pages}
    assert not {page: found for page, found in problems.items() if found}


def test_index_shows_the_failed_notebook_and_the_others(published: Path, driver) -> None:
    browser.check_page(driver, published / "index.html")
    cards = driver.execute_script(
        "return Array.from(document.querySelectorAll('section.card'))"
        ".map(c => [c.id, c.querySelector('.badge').textContent, c.innerText])"
    )
    status = {card_id: badge for card_id, badge, _ in cards}
    assert status.pop("99_fails") == "failed"
    assert set(status) == {nb.stem for nb in reporting.available_notebooks()}
    assert set(status.values()) == {"ok"}
    failed_text = next(text for card_id, _, text in cards if card_id == "99_fails")
    assert "RuntimeError: the fake notebook failed on purpose" in failed_text
    thumbnails = driver.execute_script(
        "return Array.from(document.querySelectorAll('aside img'))"
        ".map(i => [i.naturalWidth, i.getBoundingClientRect().right])"
    )
    assert thumbnails and all(w > 0 and right <= 1280 for w, right in thumbnails)
