"""Tests of reports/index.html: claims with verdicts, the headline table (directions, best
values, references), thumbnails, links, failed notebooks; and, in Chromium when installed, that
such a page has no console error, no broken image or link and no cut-off column at 1280 px."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from lib import reporting
from lib.reporting import browser

# A 1x1 PNG, so that the thumbnail really loads in the browser test.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


def _fake_run(root: Path, name: str, *, claims: bool = True, **fields: object) -> Path:
    """A report folder as execute() leaves it, with records written through Report."""
    folder = root / name
    report = reporting.Report(folder, setup_logging=False)
    (folder / "figures/fig1.png").write_bytes(PNG)
    (folder / f"{name}.html").write_text("<!DOCTYPE html><title>r</title>report")
    (folder / f"{name}.log").write_text("")
    report.record("split_hashes", {"full": "d9443b7c2c8d0054"})  # not shown on the index
    if claims:
        report.claim(
            "one_number",
            "A single number crowns a different method than the five criteria.",
            "held",
            evidence={"mean Kendall tau": 0.0812, "methods": 9},
        )
        report.claim("oracle", "No method reaches the oracle.", "did not hold", "ga: 0.0068")
        report.claim("scale", "Relearning needs a 7B model.", "not testable at this scale")
        summary = pd.DataFrame(
            {
                "forget_quality": [6.6e-6, 0.0068, 0.0068, 1.0],
                "model_utility": [0.408, 0.394, 0.42, 0.384],
                "mia_auc": [0.961, 0.481, 0.579, 0.5],
                "flops": [None, 1.6e15, 3.2e15, 2.3e16],
            },
            index=pd.Index(["target", "ga", "grad_diff", "retrain"], name="method"),
        )
        report.headline(
            summary,
            directions={
                "forget_quality": "higher",
                "model_utility": "higher",
                "mia_auc": 0.5,
                "flops": "lower",
            },
            units={"flops": "FLOPs"},
            reference_rows=["target", "retrain"],
            caption="mean over 1 seed",
        )
        figure = Figure(figsize=(3, 2))
        figure.add_subplot().plot([0, 1], [1, 0])
        report.figure(figure, "fig2_main", thumbnail=True)
    manifest = {
        "notebook": name,
        "title": f"Title <{name}>",
        "status": "ok",
        "parameters": {"MODEL": "tiny", "SEEDS": [0, 1], "OUTPUT_DIR": "x"},
        "overrides": {"MODEL": "tiny", "OUTPUT_DIR": "x"},
        "profile": "smoke",
        "duration_s": 75.0,
        "git": {"sha": "0123456789abcdef", "dirty": True},
        "log": {"file": f"{name}.log", "warnings": 2, "errors": 0},
        "outputs": {"html": f"{name}.html", "notebook": None, "log": f"{name}.log"},
        "figures": ["figures/fig1.png", "figures/fig1.pdf", "figures/fig2_main.png"],
        "records": report.read_records(),
        **fields,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    root = tmp_path / "reports"
    _fake_run(root, "01_demo")
    _fake_run(
        root,
        "02_broken",
        claims=False,
        status="failed",
        error="RuntimeError: x went wrong (code cell [3])",
        outputs={"html": None, "notebook": None, "log": "02_broken.log"},
    )
    return root


def test_index_shows_claims_headline_and_provenance(reports: Path) -> None:
    page = reporting.build_index(reports).read_text()
    assert "Title &lt;01_demo&gt;" in page  # escaped
    assert 'href="01_demo/01_demo.html"' in page and 'href="01_demo/01_demo.log"' in page
    assert "log (2 warnings)" in page
    assert 'src="01_demo/figures/fig2_main.png"' in page  # the chosen thumbnail, not fig1
    assert "01234567*" in page and "(uncommitted changes)" in page  # dirty tree marked
    assert "runtime 1m15s" in page and "profile <b>smoke</b>" in page
    # claims, each with its verdict and evidence
    assert '<span class="verdict held">held</span><div>A single number' in page
    assert '<span class="verdict not-held">did not hold</span>' in page
    assert '<span class="verdict untestable">not testable at this scale</span>' in page
    assert "mean Kendall tau <b>0.0812</b>" in page and "methods <b>9</b>" in page
    assert "ga: 0.0068" in page
    # headline: directions and units in the header, best values in bold, references in italics
    assert "forget quality ↑" in page and "mia auc → 0.500" in page and "flops ↓ [FLOPs]" in page
    assert '<td class="best">0.420</td>' in page  # model utility of grad_diff beats ga
    assert page.count('<td class="best">0.00680</td>') == 2  # a tie: both are best
    assert '<td class="best">0.481</td>' in page  # closest to 0.5 among non-references
    assert '<td class="best">1.60e+15</td>' in page
    assert '<tr class="reference"><th class="row">retrain</th><td>1.00</td>' in page
    assert "mean over 1 seed" in page
    # not a dump of every record
    assert "split_hashes" not in page and "d9443b7c" not in page
    # the failed notebook, with its error, and no link to a report that does not exist
    assert "badge failed" in page and "RuntimeError: x went wrong (code cell [3])" in page
    assert "02_broken/02_broken.html" not in page
    assert "1 ok, 1 failed" in page


def test_index_without_reports(tmp_path: Path) -> None:
    page = reporting.build_index(tmp_path / "empty").read_text()
    assert "No reports yet" in page


def test_index_in_chromium_at_1280px(reports: Path) -> None:
    reason = browser.unavailable_reason()
    if reason:
        pytest.skip(f"browser test skipped: {reason}")
    index = reporting.build_index(reports)
    # a long claim and a wide table must wrap or scroll inside the card, not widen the page
    with browser.chromium() as driver:
        assert browser.check_page(driver, index) == []
        (reports / "02_broken/manifest.json").write_text(
            json.dumps({"status": "failed", "error": "x" * 5000, "title": "w" * 300})
        )
        reporting.build_index(reports)
        assert browser.check_page(driver, index) == []
        broken = reports / "index.html"
        broken.write_text(
            broken.read_text().replace("01_demo/01_demo.log", "01_demo/missing.log", 1)
        )
        problems = browser.check_page(driver, broken)
        assert problems == ["broken link: 01_demo/missing.log"]
