"""How numbers, paths and metric directions are written, in reports, the index and figures.

One place for it, so that a number reads the same in a table, on an axis and on the index page.
Nothing here imports more than the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lib.paths import ROOT
from lib.progress import format_duration

# How a metric should move to be better. A number instead means "closer to this value is
# better" (e.g. a membership-inference AUC, ideal 0.5).
DIRECTIONS: dict[str, str] = {"higher": "↑", "lower": "↓"}


def format_number(value: Any, digits: int = 3) -> str:
    """`digits` significant digits, trailing zeros kept (0.500); scientific notation for
    magnitudes below 1e-3 or from 1e5 on; `n/a` for None, NaN and ±inf; ints with separators.

    >>> format_number(0.123456), format_number(1234.5), format_number(2e-7)
    ('0.123', '1230', '2.00e-07')
    """
    if value is None or isinstance(value, bool):
        return "n/a" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude < 1e-3 or magnitude >= 1e5:
        return f"{value:.{digits - 1}e}"
    decimals = digits - 1 - int(math.floor(math.log10(magnitude)))
    rounded = round(value, decimals)
    if rounded != 0 and abs(rounded) >= 10 ** (digits - decimals):  # 9.996 -> 10.0, one digit more
        decimals -= 1
        rounded = round(value, decimals)
    return f"{rounded:.{max(decimals, 0)}f}"


def check_direction(direction: Any, where: str = "direction") -> Any:
    """Return `direction` if valid: 'higher', 'lower', None/'none' or a finite number (target).

    Raises:
        ValueError: anything else, naming the allowed values.
    """
    if direction is None or (isinstance(direction, str) and direction in ("", "none")):
        return None
    if isinstance(direction, str) and direction in DIRECTIONS:
        return direction
    if (
        isinstance(direction, (int, float))
        and not isinstance(direction, bool)
        and math.isfinite(direction)
    ):
        return direction
    raise ValueError(
        f"{where}: {direction!r} is not a direction; use 'higher', 'lower', None, or a number "
        "(closer to it is better, e.g. 0.5 for an AUC)"
    )


def direction_symbol(direction: Any) -> str:
    """'↑', '↓', '→ 0.5' (closer to 0.5 is better) or '' (no direction)."""
    direction = check_direction(direction)
    if direction is None:
        return ""
    if isinstance(direction, str):
        return DIRECTIONS[direction]
    return f"→ {format_number(direction)}"


def axis_label(
    name: str, *, unit: str | None = None, direction: Any = None, meaning: str | None = None
) -> str:
    """An axis or column label stating unit and direction.

    >>> axis_label("forget ROUGE-L", direction="lower", meaning="more forgotten")
    'forget ROUGE-L (↓ = more forgotten)'
    >>> axis_label("cost", unit="FLOPs", direction="lower")
    'cost [FLOPs] (↓ better)'
    """
    label = str(name) + (f" [{unit}]" if unit else "")
    symbol = direction_symbol(direction)
    if symbol:
        label += f" ({symbol} = {meaning})" if meaning else f" ({symbol} better)"
    elif meaning:
        label += f" ({meaning})"
    return label


def column_labels(
    columns: list[str],
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Column -> 'name ↑ [unit]' for a table header (underscores read as spaces)."""
    directions = directions or {}
    units = units or {}
    labels = {}
    for column in columns:
        text = str(column).replace("_", " ")
        symbol = direction_symbol(directions.get(column))
        labels[column] = (
            text
            + (f" {symbol}" if symbol else "")
            + (f" [{units[column]}]" if units.get(column) else "")
        )
    return labels


def display_path(path: str | Path, root: Path | None = None) -> str:
    """`path` relative to the project root when inside it, else relative to it via '..'.

    Reports never show the machine's absolute paths; a path outside the project (e.g. a test's
    temporary folder) is still written relative to the project root.
    """
    import os

    root = (root or ROOT).resolve()
    resolved = Path(path).expanduser().resolve()
    try:
        return resolved.relative_to(root).as_posix() or "."
    except ValueError:
        return Path(os.path.relpath(resolved, root)).as_posix()


__all__ = [
    "DIRECTIONS",
    "axis_label",
    "check_direction",
    "column_labels",
    "direction_symbol",
    "display_path",
    "format_duration",
    "format_number",
]
