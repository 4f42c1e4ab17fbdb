"""`reports/index.html`: one card per notebook, what a reader needs first.

Per notebook (one `<reports>/<stem>/manifest.json` each): its title and status, each claim with
its verdict and the numbers behind it, the compact headline table, a thumbnail, the runtime, git
SHA and profile, and links to the report, its log and its raw files. A failed notebook shows as
failed with its error; the others still publish. The page is rendered from the Jinja2 template
`templates/index.html.j2`, is self-contained (inline CSS, relative links) and loads nothing from
the network, so the whole folder can be published or zipped as is.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lib.cache import atomic_write_text
from lib.paths import reports_dir
from lib.progress import format_duration
from lib.reporting.execute import MANIFEST_FILE
from lib.reporting.formatting import column_labels, format_number
from lib.reporting.report import (
    CLAIMS_KEY,
    HEADLINE_KEY,
    RECORDS_FILE,
    THUMBNAIL_KEY,
    VERDICTS,
    read_json,
)

logger = logging.getLogger(__name__)

INDEX_FILE = "index.html"
TEMPLATE = "index.html.j2"
TEMPLATES_DIR = Path(__file__).parent / "templates"
VERDICT_CLASS = dict(zip(VERDICTS, ("held", "not-held", "untestable"), strict=True))
ERROR_CHARS = 600


def _url(*parts: str) -> str:
    """A relative link, percent-encoded (Jinja2 escapes it for the attribute)."""
    return "/".join(urllib.parse.quote(p) for p in parts if p)


def _best(values: list[Any], direction: Any) -> set[int]:
    """Positions of the best finite value(s) for a direction (empty when there is none)."""
    numbers = [
        (i, float(v))
        for i, v in enumerate(values)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
    ]
    if direction is None or len(numbers) < 2:
        return set()
    if direction == "higher":
        key = [v for _, v in numbers]
    elif direction == "lower":
        key = [-v for _, v in numbers]
    else:
        key = [-abs(v - float(direction)) for _, v in numbers]
    top = max(key)
    return {i for (i, _), k in zip(numbers, key, strict=True) if k == top}


def _headline(table: dict[str, Any] | None) -> dict[str, Any] | None:
    """The headline table as the template draws it: header labels, formatted cells, best marks."""
    if not table or not table.get("columns"):
        return None
    columns = table["columns"]
    directions = table.get("directions") or {}
    units = table.get("units") or {}
    references = set(table.get("reference_rows") or [])
    labels = column_labels(columns, directions, units)
    rows = table.get("data") or []
    index = table.get("index") or [""] * len(rows)
    candidates = [i for i, name in enumerate(index) if name not in references]
    best: dict[int, set[int]] = {}
    for j, column in enumerate(columns):
        values = [rows[i][j] for i in candidates]
        best[j] = {candidates[k] for k in _best(values, directions.get(column))}
    body = [
        {
            "name": name,
            "reference": name in references,
            "cells": [
                {"text": format_number(value), "best": i in best[j]} for j, value in enumerate(row)
            ],
        }
        for i, (name, row) in enumerate(zip(index, rows, strict=True))
    ]
    return {
        "index_name": table.get("index_name") or "",
        "header": [labels[c] for c in columns],
        "rows": body,
        "caption": table.get("caption"),
        "has_direction": any(directions.get(c) is not None for c in columns),
    }


def _claims(claims: Any) -> list[dict[str, Any]]:
    shown = []
    for claim in claims or []:
        verdict = claim.get("verdict")
        evidence = claim.get("evidence")
        if isinstance(evidence, dict):
            items = [(str(k), format_number(v)) for k, v in evidence.items()]
            sentence = None
        else:
            items, sentence = [], evidence
        shown.append(
            {
                "name": claim.get("name", ""),
                "text": claim.get("text", ""),
                "verdict": verdict,
                "css": VERDICT_CLASS.get(verdict, "untestable"),
                "evidence": items,
                "sentence": sentence,
            }
        )
    return shown


def _entry(run_dir: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Everything the template shows for one notebook."""
    name = run_dir.name
    outputs = manifest.get("outputs") or {}
    records = manifest.get("records")
    if not records and (run_dir / RECORDS_FILE).exists():
        try:
            records = read_json(run_dir / RECORDS_FILE)
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("unreadable %s: %s", run_dir / RECORDS_FILE, exc)
    records = records or {}
    pngs = [f for f in manifest.get("figures") or [] if f.endswith(".png")]
    thumbnail = records.get(THUMBNAIL_KEY) or (pngs[0] if pngs else None)
    if thumbnail and not (run_dir / thumbnail).is_file():
        thumbnail = None
    git = manifest.get("git") or {}
    sha = str(git.get("sha") or "unknown")
    log = manifest.get("log") or {}
    log_file = log.get("file") or outputs.get("log")

    def link(file: str | None) -> str | None:
        return _url(name, file) if file and (run_dir / file).is_file() else None

    status = str(manifest.get("status") or "unknown")
    error = manifest.get("error")
    return {
        "name": name,
        "title": manifest.get("title") or name,
        "status": status,
        "status_css": status if status in ("ok", "failed") else "unknown",
        "error": (str(error)[:ERROR_CHARS] + ("…" if len(str(error)) > ERROR_CHARS else ""))
        if error
        else None,
        "profile": manifest.get("profile") or "defaults",
        "overrides": {
            k: v for k, v in (manifest.get("overrides") or {}).items() if k != "OUTPUT_DIR"
        },
        "runtime": format_duration(manifest.get("duration_s"))
        if isinstance(manifest.get("duration_s"), (int, float))
        else "–",
        "started": manifest.get("started_at"),
        "sha": sha[:8] if sha != "unknown" else sha,
        "dirty": bool(git.get("dirty")),
        "report": link(outputs.get("html")),
        "notebook": link(outputs.get("notebook")),
        "log": link(log_file),
        "warnings": int(log.get("warnings") or 0) + int(log.get("errors") or 0),
        "records": link(RECORDS_FILE),
        "manifest": link(MANIFEST_FILE),
        "claims": _claims(records.get(CLAIMS_KEY)),
        "headline": _headline(records.get(HEADLINE_KEY)),
        "thumbnail": _url(name, thumbnail) if thumbnail else None,
        "thumbnail_alt": f"{thumbnail} of {name}" if thumbnail else "",
    }


def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_index(entries: list[dict[str, Any]], generated: str) -> str:
    """The index page for `entries` (as built by `_entry`)."""
    counts = {s: sum(e["status"] == s for e in entries) for s in ("ok", "failed")}
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(entries=entries, generated=generated, counts=counts, verdicts=VERDICTS)
    )


def build_index(reports_root: Path | None = None) -> Path:
    """Write `<reports_root>/index.html` with one card per `*/manifest.json`; return its path."""
    root = Path(reports_root) if reports_root is not None else reports_dir()
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for manifest_path in sorted(root.glob(f"*/{MANIFEST_FILE}")):
        try:
            manifest = read_json(manifest_path)
        except (OSError, json.JSONDecodeError) as exc:
            logger.warning("skipping unreadable %s: %s", manifest_path, exc)
            continue
        entries.append(_entry(manifest_path.parent, manifest))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    index = root / INDEX_FILE
    atomic_write_text(index, render_index(entries, generated))
    logger.info("index of %d report(s) written to %s", len(entries), index)
    return index
