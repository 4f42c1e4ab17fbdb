"""Progress of long work: one API, shown where the person is looking.

The library reports every long loop (fine-tuning, unlearning, evaluation, sweeps) through this
module and nothing else::

    from lib import progress

    with progress.bar(total=135, desc="fine-tune target", unit="step") as bar:
        for batch in batches:
            ...
            bar.update()                 # one step done
            bar.set_postfix(loss=loss)   # numbers shown after the counts
    for batch in progress.iterate(loader, desc="evaluate forget", unit="batch"):
        ...
    progress.summary("ga seed 0: forget quality 0.012 · model utility 0.41 · 1m12s")

How it is shown depends on the mode (environment variable `STUDY_PROGRESS`):

- `bar`: a tqdm bar (`tqdm.auto`: a widget in JupyterLab, text in a terminal); summary lines
  are written above the bars.
- `log`: no bar; a line on the `lib.progress` logger at most every `STUDY_PROGRESS_INTERVAL`
  seconds (default 10) and when the bar closes, e.g.
  `fine-tune target: 40/135 steps (30%) · 1m12s elapsed · ETA 2m50s · loss 1.234`.
  `lib.reporting.execute()` sets this mode for the kernel, so executed notebooks carry no bars;
  `python -m lib.reporting run --progress` streams these lines to the terminal.
- `off`: nothing is shown or logged.
- unset (`auto`): `bar` in a Jupyter kernel or when stderr is a terminal, else `log`.

In a multi-process run (`accelerate launch`, `torchrun`) only the process with `RANK` 0 shows
progress; the others are silent. This module knows nothing about unlearning.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

MODE_ENV = "STUDY_PROGRESS"
INTERVAL_ENV = "STUDY_PROGRESS_INTERVAL"
MODES = ("bar", "log", "off", "auto")
DEFAULT_INTERVAL = 10.0  # seconds between two log lines of one bar
SEPARATOR = " · "

T = TypeVar("T")


def format_duration(seconds: float) -> str:
    """Short human duration: `4.2s`, `42s`, `1m12s`, `1h02m` ('?' if not a finite number >= 0)."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3e}"
    return f"{value:.4g}"


def _plural(unit: str) -> str:
    """English plural of a unit name: step -> steps, batch -> batches, canary -> canaries."""
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return unit[:-1] + "ies"
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def mode() -> str:
    """The effective mode: `bar`, `log` or `off` (see the module docstring).

    Raises:
        ValueError: `STUDY_PROGRESS` holds something other than bar, log, off or auto.
    """
    if _rank() != 0:
        return "off"
    chosen = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if chosen not in MODES:
        raise ValueError(f"{MODE_ENV}={chosen!r}: expected one of {list(MODES)}")
    if chosen != "auto":
        return chosen
    if _in_jupyter_kernel() or _stderr_is_terminal():
        return "bar"
    return "log"


def interval() -> float:
    """Seconds between two log lines of one bar (`STUDY_PROGRESS_INTERVAL`, default 10).

    Raises:
        ValueError: the variable is not a number >= 0.
    """
    raw = os.environ.get(INTERVAL_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{INTERVAL_ENV}={raw!r}: expected a number of seconds >= 0")
    return value


def _rank() -> int:
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def _in_jupyter_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # IPython half-imported or broken: treat as no kernel
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """Progress of one loop of `total` units; use through `bar()` or `iterate()`.

    Attributes:
        n: units done so far.
        total: units expected (None or 0 when unknown: no percentage and no ETA).
        desc: what is being done, e.g. "fine-tune target".
        unit: name of one unit, singular ("step"); an "s" is added for counts other than 1.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "step",
        *,
        display: str | None = None,
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is not None and (not isinstance(total, (int, float)) or total < 0):
            raise ValueError(f"{desc}: total must be a number >= 0 or None, got {total!r}")
        self.total = int(total) if total else None
        self.desc = str(desc)
        self.unit = str(unit)
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.display = display if display is not None else mode()
        if self.display not in ("bar", "log", "off"):
            raise ValueError(f"display must be one of ['bar', 'log', 'off'], got {self.display!r}")
        self.every = interval() if every is None else float(every)
        self._clock = clock
        self.started = clock()
        self._last_log = self.started
        self._closed = False
        self._tqdm: Any = None
        if self.display == "bar":
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=self.total, desc=self.desc, unit=self.unit, dynamic_ncols=True)

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was created."""
        return self._clock() - self.started

    def update(self, n: int = 1) -> None:
        """Count `n` more units as done."""
        self.n += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        elif self.display == "log" and self._clock() - self._last_log >= self.every:
            self._log(final=False)

    def set_postfix(self, **values: Any) -> None:
        """Show these numbers after the counts (e.g. `loss=1.234`); replaces earlier ones."""
        self.postfix = dict(values)
        if self._tqdm is not None:
            self._tqdm.set_postfix({k: _format_value(v) for k, v in values.items()}, refresh=False)

    def line(self, *, final: bool = False) -> str:
        """The log line for the current state (see the module docstring for the format)."""
        count = self.total if self.total else self.n
        units = self.unit if count == 1 else _plural(self.unit)
        if self.total:
            counts = f"{self.n}/{self.total} {units} ({100 * self.n / self.total:.0f}%)"
        else:
            counts = f"{self.n} {units}"
        parts = [f"{self.desc}: {counts}"]
        elapsed = self.elapsed
        if final:
            done = self.total is None or self.n >= self.total
            parts.append(f"{'done in' if done else 'stopped after'} {format_duration(elapsed)}")
        else:
            parts.append(f"{format_duration(elapsed)} elapsed")
            if self.total and 0 < self.n < self.total:
                eta = elapsed / self.n * (self.total - self.n)
                parts.append(f"ETA {format_duration(eta)}")
        parts += [f"{k} {_format_value(v)}" for k, v in self.postfix.items()]
        return SEPARATOR.join(parts)

    def _log(self, *, final: bool) -> None:
        self._last_log = self._clock()
        logger.info("%s", self.line(final=final))

    def close(self) -> None:
        """Finish the bar: close the tqdm bar, or log the final line. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.display == "log":
            self._log(final=True)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProgressBar({self.line()!r}, display={self.display!r})"


def bar(
    total: int | None,
    desc: str,
    unit: str = "step",
    *,
    display: str | None = None,
    every: float | None = None,
) -> ProgressBar:
    """Start showing the progress of `total` units of work described by `desc`.

    Use as a context manager (the bar closes, and in `log` mode logs its final line, when the
    block ends, also on an exception: "stopped after ..."), or call `.close()` yourself.

    Args:
        total: units expected; None when unknown.
        desc: what is being done, shown first ("fine-tune target", "sweep 3/12 npo seed 0").
        unit: singular name of one unit ("step", "batch", "run").
        display: force `bar`, `log` or `off` instead of the mode from the environment.
        every: seconds between log lines in `log` mode (default: `STUDY_PROGRESS_INTERVAL`).
    """
    return ProgressBar(total, desc, unit, display=display, every=every)


def iterate(
    items: Iterable[T],
    desc: str,
    total: int | None = None,
    unit: str = "item",
    *,
    display: str | None = None,
    every: float | None = None,
) -> Iterator[T]:
    """Yield from `items`, counting one unit per item; `total` defaults to `len(items)`."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with bar(total, desc, unit, display=display, every=every) as progress_bar:
        for item in items:
            yield item
            progress_bar.update()


def summary(line: str) -> None:
    """Report one finished run in one line, e.g. its headline numbers and its duration.

    Always logged on `lib.progress` (so it reaches the report's log and the terminal during
    `make study`); in `bar` mode also written above the bars.
    """
    current = mode()
    if current == "off":
        return
    logger.info("%s", line)
    if current == "bar":
        from tqdm.auto import tqdm

        tqdm.write(line)


__all__ = [
    "INTERVAL_ENV",
    "MODE_ENV",
    "ProgressBar",
    "bar",
    "format_duration",
    "interval",
    "iterate",
    "mode",
    "summary",
]
