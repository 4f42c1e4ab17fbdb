"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Placeholder for the lead's fuller `lib.cache` (issue 5): only the three write helpers that
`lib.reporting` needs. Each writes a temporary file in the target's folder (`os.replace` is
atomic only within one filesystem), then renames it over the target. Files get mode 0o644
(`mkstemp` creates 0o600), because reports and caches are meant to be shared and served.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FILE_MODE = 0o644


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically (parent folders are created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, value: Any) -> Path:
    """Write `value` as strict JSON (indent 1, UTF-8, trailing newline) atomically.

    `allow_nan=False`: turning NaN/inf into None is the caller's job, so the file is always
    valid JSON. Other numeric types (numpy scalars) are written through `float`.
    """
    text = json.dumps(value, indent=1, allow_nan=False, ensure_ascii=False, default=float)
    return atomic_write_text(path, text + "\n")
