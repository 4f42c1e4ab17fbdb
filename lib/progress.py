"""Progress of long work (placeholder API; the reporting work replaces the implementation).

`progress(total, desc, unit)` is a context manager with `update(n)` and `set_postfix(**floats)`;
`summary(line)` logs one line per finished run.
"""

from __future__ import annotations

import logging

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def progress(total: int, desc: str, unit: str = "step") -> tqdm:
    """A progress bar over `total` units of work."""
    return tqdm(total=total, desc=desc, unit=unit, leave=False, mininterval=2.0)


def summary(line: str) -> None:
    """One line per finished run."""
    logger.info(line)
