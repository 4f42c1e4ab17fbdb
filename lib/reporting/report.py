"""`Report`: what a notebook publishes (figures, tables, records, claims, a headline table).

In a notebook::

    report = reporting.Report(OUTPUT_DIR)   # also routes library logging to the report's log
    report.figure(fig, "fig2_tradeoff", thumbnail=True)
    report.table(df, "summary")
    report.record("auc", 0.61)
    report.claim("single_number", "One number crowns a different method than five criteria",
                 "held", evidence={"mean Kendall tau": 0.08})
    report.headline(summary[["forget_quality", "model_utility"]],
                    directions={"forget_quality": "higher", "model_utility": "higher"})

Everything lands in `records.json` (one JSON object, replaced atomically) and in `figures/`,
`tables/`; the index page reads `claims`, `headline` and `thumbnail` from `records.json`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lib import paths
from lib.cache import atomic_write_json
from lib.reporting.formatting import check_direction, display_path
from lib.reporting.logs import setup_notebook_logging

logger = logging.getLogger(__name__)

FIGURE_DPI = 150
FIGURE_FORMATS = ("png", "pdf")
RECORDS_FILE = "records.json"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# The verdict of a claim, as the index shows it.
VERDICTS = ("held", "did not hold", "not testable at this scale")
# Records written by `claim`, `headline` and `figure(thumbnail=True)`; `record` refuses them.
CLAIMS_KEY, HEADLINE_KEY, THUMBNAIL_KEY = "claims", "headline", "thumbnail"
RESERVED = (CLAIMS_KEY, HEADLINE_KEY, THUMBNAIL_KEY)
HEADLINE_MAX_COLUMNS = 8
HEADLINE_MAX_ROWS = 25


def jsonable(value: Any, *, where: str = "value", strict: bool = True) -> Any:
    """Convert numpy/pandas values to plain JSON types; non-finite floats become None.

    With `strict=False` anything else becomes its `repr` (for the manifest, which must never
    fail); with `strict=True` it raises TypeError naming `where` (for records, where a silent
    repr would hide a bug in the notebook).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return display_path(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, where=f"{where}.{k}", strict=strict) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [jsonable(v, where=f"{where}[{i}]", strict=strict) for i, v in enumerate(items)]
    # numpy and pandas are optional here: recognise their types without importing them.
    module = type(value).__module__
    if module.startswith("numpy") and hasattr(value, "tolist"):
        # ndarray and numpy scalars alike (.tolist() of a scalar is the Python item)
        return jsonable(value.tolist(), where=where, strict=strict)
    if module.startswith("pandas"):
        if hasattr(value, "to_frame") and hasattr(value, "to_dict"):  # Series: index -> value
            return jsonable(value.to_dict(), where=where, strict=strict)
        if hasattr(value, "to_dict") and hasattr(value, "columns"):  # DataFrame: row -> columns
            return jsonable(value.to_dict(orient="index"), where=where, strict=strict)
        if type(value).__name__ in ("NAType", "NaTType"):
            return None
        if hasattr(value, "isoformat"):  # Timestamp
            return value.isoformat()
    if strict:
        raise TypeError(
            f"{where}: cannot store {type(value).__name__} as JSON; use numbers, strings, "
            "booleans, None, lists, dicts, numpy values or pandas Series/DataFrames"
        )
    return repr(value)


def read_json(path: Path) -> Any:
    import json

    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_name(name: str) -> str:
    """Return `name` if it is a valid output name (letters, digits, '_', '-', '.'), else raise."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid output name {name!r}: use letters, digits, '_', '-', '.', no folders "
            "(e.g. 'fig3_tradeoff')"
        )
    return name


def check_verdict(verdict: str) -> str:
    """Return `verdict` if it is one of `VERDICTS`, else raise ValueError naming them."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {list(VERDICTS)}")
    return verdict


class Report:
    """Collect a notebook's figures, tables and headline numbers under one output folder.

    A relative folder is resolved against the repository root, so the notebook writes to the
    same place whether JupyterLab runs it from `notebooks/` or papermill from the root.

    Creating a Report also sets up logging for the notebook (see `lib.reporting.logs`): the
    library's INFO lines go to the report's log file, not into cell outputs. Pass
    `setup_logging=False` to leave logging alone (e.g. in tests or scripts).
    """

    def __init__(self, output_dir: str | Path, *, setup_logging: bool = True) -> None:
        path = Path(output_dir).expanduser()
        self.path = path if path.is_absolute() else paths.ROOT / path
        self.figures_dir = self.path / "figures"
        self.tables_dir = self.path / "tables"
        self.records_path = self.path / RECORDS_FILE
        for folder in (self.path, self.figures_dir, self.tables_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.log_path: Path | None = (
            setup_notebook_logging(self.path / f"{self.path.name}.log") if setup_logging else None
        )

    def __repr__(self) -> str:
        return f"Report({display_path(self.path)!r})"

    # ----------------------------------------------------------------- files

    def figure(self, fig: Any, name: str, *, thumbnail: bool = False) -> Any:
        """Save a matplotlib Figure as `figures/<name>.png` (150 dpi) and `.pdf`; return it.

        Returning the figure lets it display as the cell's result. `thumbnail=True` makes it
        the picture of this notebook on the index page (default: the first figure by name).
        """
        import matplotlib as mpl  # lazy: the CLI and the index never need matplotlib

        check_name(name)
        # pdf.fonttype 42 embeds TrueType fonts, so text in the PDF stays text.
        with mpl.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42}):
            for fmt in FIGURE_FORMATS:
                fig.savefig(
                    self.figures_dir / f"{name}.{fmt}",
                    dpi=FIGURE_DPI,
                    bbox_inches="tight",
                    facecolor="white",
                )
        logger.info("figure %s saved: %s", name, display_path(self.figures_dir / f"{name}.png"))
        if thumbnail:
            self._write({THUMBNAIL_KEY: f"figures/{name}.png"})
        return fig

    def table(self, df: Any, name: str) -> Any:
        """Save a DataFrame (or Series) as `tables/<name>.csv`; return it unchanged.

        The index is written only when it carries information (not a plain 0..n-1 range).
        """
        import pandas as pd

        check_name(name)
        frame = df.to_frame() if isinstance(df, pd.Series) else df
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"table {name!r}: expected a pandas DataFrame or Series, got {type(df)}"
            )
        keep_index = not (
            isinstance(frame.index, pd.RangeIndex)
            and frame.index.name is None
            and frame.index.start == 0
        )
        frame.to_csv(self.tables_dir / f"{name}.csv", index=keep_index)
        logger.info("table %s saved: %s", name, display_path(self.tables_dir / f"{name}.csv"))
        return df

    # ----------------------------------------------------------------- records

    def read_records(self) -> dict[str, Any]:
        """Return the records written so far ({} when none)."""
        return read_json(self.records_path) if self.records_path.exists() else {}

    def _write(self, converted: Mapping[str, Any]) -> dict[str, Any]:
        merged = {**self.read_records(), **converted}
        atomic_write_json(self.records_path, merged)
        return merged

    def records(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """Merge `mapping` into `records.json` (existing names are replaced); return all records.

        Values must be JSON-like; numpy scalars/arrays and pandas Series/DataFrames are
        converted and NaN/inf become null. The file is replaced atomically, so an interrupted
        notebook never leaves half a file. The names claims, headline and thumbnail belong to
        `claim`, `headline` and `figure(thumbnail=True)`.
        """
        converted = {}
        for key, value in mapping.items():
            name = check_name(str(key))
            if name in RESERVED:
                raise ValueError(
                    f"record name {name!r} is reserved: use report.claim(), report.headline() "
                    "or report.figure(..., thumbnail=True)"
                )
            converted[name] = jsonable(value, where=name)
        return self._write(converted)

    def record(self, name: str, value: Any) -> Any:
        """Store one headline number (or small nested dict/list) under `name`; return `value`."""
        self.records({name: value})
        return value

    # ----------------------------------------------------------------- claims, headline

    def claim(
        self,
        name: str,
        text: str,
        verdict: str,
        evidence: Mapping[str, Any] | str | None = None,
    ) -> dict[str, Any]:
        """Record the verdict on one claim of the paper, with the numbers behind it.

        Claims keep the order of their first declaration; declaring a name again replaces it.

        Args:
            name: short identifier, e.g. "single_number_misleads".
            text: the claim as a reader should read it (one sentence).
            verdict: one of `VERDICTS`: "held", "did not hold", "not testable at this scale".
            evidence: the numbers behind the verdict, label -> value (numbers are shown with 3
                significant digits; write the bar into the label, e.g. "forget quality
                (oracle 1.0)"), or one sentence.

        Returns:
            The stored claim.

        Raises:
            ValueError: an invalid name, an empty text or a verdict not in `VERDICTS`.
        """
        check_name(name)
        check_verdict(verdict)
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"claim {name!r}: text must be a non-empty sentence")
        if evidence is not None and not isinstance(evidence, (str, Mapping)):
            raise TypeError(
                f"claim {name!r}: evidence must be a mapping label -> value or a string, "
                f"got {type(evidence).__name__}"
            )
        entry = {
            "name": name,
            "text": text.strip(),
            "verdict": verdict,
            "evidence": jsonable(evidence, where=f"claims.{name}.evidence"),
        }
        claims = [c for c in self.read_records().get(CLAIMS_KEY, []) if c.get("name") != name]
        order = [c.get("name") for c in self.read_records().get(CLAIMS_KEY, [])]
        claims.append(entry)
        claims.sort(key=lambda c: order.index(c["name"]) if c["name"] in order else len(order))
        self._write({CLAIMS_KEY: claims})
        logger.info("claim %s: %s", name, verdict)
        return entry

    def headline(
        self,
        df: Any,
        *,
        directions: Mapping[str, Any] | None = None,
        units: Mapping[str, str] | None = None,
        reference_rows: Sequence[str] = (),
        caption: str | None = None,
    ) -> dict[str, Any]:
        """Store the compact table the index page shows for this notebook (rows x metrics).

        Args:
            df: a DataFrame whose index names the rows (e.g. methods) and whose columns are
                numbers; at most 8 columns and 25 rows (the full table goes to `table()`).
            directions: column -> 'higher', 'lower', None or a number (closer is better); the
                header shows ↑, ↓ or → x, and the best non-reference value is highlighted.
            units: column -> unit shown in the header (e.g. {"flops": "FLOPs"}).
            reference_rows: rows that are baselines (e.g. "target", "retrain"): shown in
                italics and never highlighted as best.
            caption: one line under the table (e.g. "mean over 3 seeds").

        Raises:
            KeyError: a direction, unit or reference row names no column / row.
            ValueError: a bad direction, or a table too large to be a headline.
        """
        import pandas as pd

        frame = df.to_frame() if isinstance(df, pd.Series) else df
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"headline: expected a pandas DataFrame, got {type(df).__name__}")
        rows, cols = frame.shape
        if cols > HEADLINE_MAX_COLUMNS or rows > HEADLINE_MAX_ROWS:
            raise ValueError(
                f"headline table is {rows} x {cols}; keep it at most {HEADLINE_MAX_ROWS} rows x "
                f"{HEADLINE_MAX_COLUMNS} columns (the full table belongs in report.table())"
            )
        columns = [str(c) for c in frame.columns]
        index = [str(i) for i in frame.index]
        directions = dict(directions or {})
        units = dict(units or {})
        for what, mapping in (("directions", directions), ("units", units)):
            unknown = sorted(set(map(str, mapping)) - set(columns))
            if unknown:
                raise KeyError(f"headline {what}: {unknown} are not columns; columns: {columns}")
        checked = {
            str(k): check_direction(v, f"headline direction of {k!r}")
            for k, v in directions.items()
        }
        missing_rows = sorted(set(reference_rows) - set(index))
        if missing_rows:
            raise KeyError(f"headline reference_rows {missing_rows} are not rows; rows: {index}")
        table = {
            "index_name": str(frame.index.name) if frame.index.name is not None else "",
            "columns": columns,
            "index": index,
            "data": jsonable(frame.to_numpy().tolist(), where="headline"),
            "directions": checked,
            "units": {str(k): str(v) for k, v in units.items()},
            "reference_rows": list(reference_rows),
            "caption": caption,
        }
        self._write({HEADLINE_KEY: table})
        return table
