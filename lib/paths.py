"""Every filesystem location of the study, in one place.

`STUDY_CACHE_DIR` overrides the cache (tests point it at a temporary folder);
`STUDY_REPORTS_DIR` overrides where reports are written.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
PARAMS_DIR = ROOT / "params"
DATA_DIR = ROOT / "data"
SHARED_DIR = ROOT.parent / "shared"


def cache_dir() -> Path:
    """Root of the on-disk cache (runs, checkpoints, built data); created on demand."""
    path = Path(os.environ.get("STUDY_CACHE_DIR", DATA_DIR / "cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def reports_dir() -> Path:
    """Root of the built reports (`reports/<notebook>/...`, `reports/index.html`)."""
    path = Path(os.environ.get("STUDY_REPORTS_DIR", ROOT / "reports"))
    path.mkdir(parents=True, exist_ok=True)
    return path
