"""What the terminal shows while notebooks run (`python -m lib.reporting run --progress`).

A notebook under papermill writes its progress into its log file (`lib.progress` in `log`
mode), not to the terminal. `LogTail` follows that file in a thread and passes on the lines a
person waiting at the terminal needs: progress and summary lines (`lib.progress`) and warnings
and errors of any logger. `section_printer` adds one line per section of the notebook as the
kernel reaches it. Everything goes to the `lib.reporting.console` logger, which the command line
prints as plain lines::

    ▶ [1/1] 04_rethinking_evaluation · profile smoke · log reports/04_…/04_….log
      § Part 2 · Is the setup sound?  (cell 7/30)
      12:30:01  fine-tune target: 40/135 steps (30%) · 1m12s elapsed · ETA 2m50s · loss 1.234
      12:30:09  WARNING lib.data.probes: only 0 of 74 real-world probes answered correctly
    ✓ 04_rethinking_evaluation ok in 2m36s: reports/04_…/04_….html
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

from lib.reporting.logs import LINE_PATTERN

logger = logging.getLogger(__name__)

PROGRESS_LOGGER = "lib.progress"
SHOWN_LEVELS = ("WARNING", "ERROR", "CRITICAL")
POLL_SECONDS = 0.5
_HEADING = re.compile(r"^(#{2,3})\s+(.+?)\s*#*\s*$")


def say(line: str) -> None:
    """One line for the person at the terminal."""
    logger.info("%s", line)


def select(line: str, previous_shown: bool) -> tuple[str | None, bool]:
    """Decide whether a log line is shown; return (text to show or None, shown).

    Continuation lines of a multi-line record (a traceback) follow their record's decision.
    """
    match = LINE_PATTERN.match(line)
    if match is None:
        return (f"      {line}" if previous_shown and line.strip() else None), previous_shown
    clock = match["time"][-8:]
    if match["name"] == PROGRESS_LOGGER or match["name"].startswith(PROGRESS_LOGGER + "."):
        return f"  {clock}  {match['message']}", True
    if match["level"] in SHOWN_LEVELS:
        return f"  {clock}  {match['level']} {match['name']}: {match['message']}", True
    return None, False


class LogTail:
    """Follow a log file in a background thread and `say` the selected lines (see `select`).

    Use as a context manager around the work that writes the file; on exit the rest of the file
    is read before the thread stops, so no final line is lost.
    """

    def __init__(self, path: Path, poll: float = POLL_SECONDS) -> None:
        self.path = Path(path)
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"tail {self.path.name}", daemon=True
        )
        self._offset = 0
        self._partial = ""
        self._shown = False

    def _read(self) -> None:
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size < self._offset:  # the file was replaced: start again from its beginning
            self._offset, self._partial = 0, ""
        if size == self._offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", errors="replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            shown, self._shown = select(line.rstrip("\r"), self._shown)
            if shown is not None:
                say(shown)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._read()

    def __enter__(self) -> LogTail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        if self._partial:
            shown, _ = select(self._partial, self._shown)
            if shown is not None:
                say(shown)
            self._partial = ""


def section_printer() -> Any:
    """A papermill cell-start callback that says each `##`/`###` heading as it is reached."""

    def on_cell(index: int, total: int, cell: Any) -> None:
        if cell.get("cell_type") != "markdown":
            return
        for line in str(cell.get("source", "")).splitlines():
            match = _HEADING.match(line)
            if match:
                indent = "  " if len(match[1]) == 2 else "    "
                say(f"{indent}§ {match[2]}  (cell {index + 1}/{total})")
                return

    return on_cell
