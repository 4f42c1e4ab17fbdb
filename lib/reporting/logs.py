"""Where a notebook's log lines go: a log file next to the report, not the cell outputs.

`Report(OUTPUT_DIR)` calls `setup_notebook_logging`, so a notebook needs no logging code.

- Under `lib.reporting.execute()` (papermill), the kernel finds the log file's path in the
  environment variable `STUDY_REPORT_LOG`. The `lib` loggers write INFO and above to it and
  nothing to the cell outputs; Python warnings are captured into it too. The terminal sees the
  progress lines and the warnings while the notebook runs (`run --progress`), the index counts
  the warnings and links the log.
- In JupyterLab (no `STUDY_REPORT_LOG`), INFO and above go to `<report>/<name>.log` and
  WARNING and above are also shown under the cell.

Third-party loggers that are chatty at INFO (matplotlib's font subsetting writes ~100 lines per
PDF figure) are set to WARNING at their source.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

LOG_ENV = "STUDY_REPORT_LOG"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
LIBRARY_LOGGER = "lib"
# Loggers that log routine work at INFO; WARNING and above still come through.
QUIET_LOGGERS = ("fontTools", "matplotlib", "PIL", "urllib3", "filelock", "httpx")
# A log line as LOG_FORMAT writes it: date, time, level, logger name, message.
LINE_PATTERN = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (?P<level>[A-Z]+) (?P<name>[\w.]+): "
    r"(?P<message>.*)$"
)
_MARK = "_study_report_handler"  # set on handlers we own, so a second Report replaces them


class RelativePathFormatter(logging.Formatter):
    """LOG_FORMAT, with the machine's folders in a line written relative or as placeholders.

    Python warnings name the file that warned by its absolute path; a published log shows
    `lib/papers/x.py`, `<site-packages>/tqdm/auto.py`, `~/...` instead; a warning raised by a
    notebook cell (ipykernel compiles cells into temporary files) reads `<cell>`.
    """

    # ipykernel's file name for a compiled cell: <tmp>/ipykernel_<pid>/<hash>.py
    _CELL_FILE = re.compile(re.escape(tempfile.gettempdir()) + r"/ipykernel_\d+/\d+\.py")

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)
        import site
        import sysconfig

        from lib.paths import ROOT

        replacements = [(str(ROOT) + os.sep, "")]
        packages = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        with contextlib.suppress(AttributeError):  # site.getsitepackages is absent in some venvs
            packages.update(site.getsitepackages())
        replacements += [(p + os.sep, "<site-packages>/") for p in packages if p]
        replacements += [
            (sys.prefix + os.sep, "<python>/"),
            (os.path.expanduser("~") + os.sep, "~/"),
        ]
        # Longest first, so that a site-packages inside the project root or home wins.
        self._replacements = sorted(
            {(a, b) for a, b in replacements if len(a) > 1}, key=lambda r: -len(r[0])
        )

    def format(self, record: logging.LogRecord) -> str:
        text = self._CELL_FILE.sub("<cell>", super().format(record))
        for absolute, shown in self._replacements:
            text = text.replace(absolute, shown)
        return text


def _remove_own_handlers(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        if getattr(handler, _MARK, False):
            logger.removeHandler(handler)
            handler.close()


def setup_notebook_logging(default_log: Path) -> Path:
    """Send the library's logging to a log file (see the module docstring); return its path.

    Idempotent: calling it again (a second Report) moves the handlers to the new file.

    Args:
        default_log: the log file when not running under `execute()`.
    """
    from_env = os.environ.get(LOG_ENV)
    path = Path(from_env) if from_env else Path(default_log)
    path.parent.mkdir(parents=True, exist_ok=True)
    formatter = RelativePathFormatter()

    file_handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    file_handler.setLevel(logging.INFO)
    file_handler.setFormatter(formatter)
    setattr(file_handler, _MARK, True)

    library = logging.getLogger(LIBRARY_LOGGER)
    _remove_own_handlers(library)
    library.addHandler(file_handler)
    library.setLevel(logging.INFO)
    # Not propagated: a root handler (e.g. a notebook's logging.basicConfig) would print the
    # INFO lines into the cell outputs again.
    library.propagate = False

    warnings_logger = logging.getLogger("py.warnings")
    _remove_own_handlers(warnings_logger)
    if from_env:
        # Under execute(): warnings go to the log (and to the terminal through it), not into
        # the published notebook. Interactively they stay where Jupyter shows them.
        logging.captureWarnings(True)
        warnings_logger.addHandler(file_handler)
        warnings_logger.propagate = False
    else:
        shown = logging.StreamHandler(sys.stderr)
        shown.setLevel(logging.WARNING)
        shown.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        setattr(shown, _MARK, True)
        library.addHandler(shown)

    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return path


def count_levels(log: Path) -> dict[str, int]:
    """Count the records of a log file by level ({} when the file does not exist)."""
    counts: dict[str, int] = {}
    try:
        with open(log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = LINE_PATTERN.match(line)
                if match:
                    counts[match["level"]] = counts.get(match["level"], 0) + 1
    except OSError:
        return {}
    return counts
