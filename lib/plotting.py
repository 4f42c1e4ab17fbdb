"""House style and one function per figure type; every function returns a matplotlib Figure.

Functions only draw: they never save files (that is `lib.reporting.Report.figure`) and never
compute metrics (they take tidy DataFrames or arrays of numbers already computed).

Statistical figures with repeated rows per category (seeds) are drawn with seaborn, whose
estimators give the mean and its error bar: `bar_chart`, `point_chart`, `line_chart` show the
mean with a 95% bootstrap confidence interval by default (`errorbar=("ci", 95)`, fixed
bootstrap seed, so figures are reproducible; `("sd", 1)` for mean ± sd). Where seaborn adds
nothing (scatter with labels, radar, ROC curves, histograms of given samples, table heatmaps)
the figure is pure matplotlib.

Axis labels state direction and unit when the caller passes `directions={column: "higher" |
"lower" | number}` and `units={column: "FLOPs"}` (see `axis_label`), e.g. "forget ROUGE-L (↓
better)". Numbers are written by `lib.reporting.formatting.format_number`, as in the reports.

Figures are built with `matplotlib.figure.Figure` directly rather than `pyplot`, so nothing is
registered in pyplot's global figure list: no memory leak over a long notebook, no duplicate
display by the inline backend, and it works on headless machines without choosing a backend.

Log axes cannot show zeros or negative values. They are clipped to a floor (by default one
decade below the smallest positive value) and the axis label says so; NaN values are left out and
the figure says how many.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from lib.reporting.formatting import axis_label, format_number

logger = logging.getLogger(__name__)

# Okabe & Ito (2008), "Color Universal Design": distinguishable with all common colour-vision
# deficiencies. Ordered so the first few are the most distinct; yellow last (poor on white).
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow
)
# Paul Tol's "muted" scheme, also colour-blind safe, for studies with more than six methods.
_EXTRA: tuple[str, ...] = (
    "#332288",
    "#117733",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#88CCEE",
    "#DDCC77",
)
# Yellow goes last: it is the hardest to see on white.
PALETTE: tuple[str, ...] = OKABE_ITO[:-1] + _EXTRA + OKABE_ITO[-1:]
# Reference rows (the model before unlearning, the retrained oracle) are drawn in neutral tones
# so that the eye reads them as baselines, not as competitors.
REFERENCE_COLORS: tuple[str, ...] = ("#000000", "#7F7F7F", "#B5B5B5")
# The rows drawn as references (greys, stars) when a figure is not told otherwise: none until a
# notebook names its own (`use_reference_rows`), so this module knows no method or model name.
_reference_rows: tuple[str, ...] = ()


def use_reference_rows(names: Sequence[str]) -> tuple[str, ...]:
    """Name the rows every later figure draws as references (the model before unlearning, the
    oracle...): neutral greys in every palette, stars in trade-off plots. A setting of the study's
    style, like `seaborn.set_palette`; returns the previous names."""
    global _reference_rows
    previous, _reference_rows = _reference_rows, tuple(str(n) for n in names)
    return previous


STYLE: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.prop_cycle": cycler(color=list(OKABE_ITO)),
    "grid.alpha": 0.35,
    "grid.linewidth": 0.6,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "image.cmap": "cividis",
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays selectable and editable
}


@contextlib.contextmanager
def use_style() -> Iterator[None]:
    """Apply the house style inside a `with` block and restore the previous rcParams after.

    Every plotting function already uses it; call it yourself only for ad-hoc figures.
    """
    with mpl.rc_context(STYLE):
        yield


def _enable_notebook_display() -> None:
    """Let IPython show a bare `Figure` (returned as a cell's value) as a PNG image.

    The inline backend registers this only once pyplot has been imported and has picked its
    backend; figures built without pyplot would otherwise display as `<Figure size ...>`.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
    except KeyError:
        png.for_type(Figure, functools.partial(print_figure, fmt="png", bbox_inches="tight"))


_enable_notebook_display()


def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Build the figure under the house style and resolve its layout before leaving the style."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with use_style():
            fig = func(*args, **kwargs)
            # Tick labels are created lazily at the first draw; drawing once here makes them
            # (and later copies of them) take the house fonts even when saved outside the style.
            fig.draw_without_rendering()
        return fig

    return wrapper


def method_colors(methods: Iterable[str], reference: Sequence[str] | None = None) -> dict[str, str]:
    """Map each name to a colour that stays the same across figures of the study.

    A name's colour depends on the name (a hash picks its preferred palette slot), not on its
    position in the list, so `npo` keeps its colour when another figure shows fewer methods.
    Two names that want the same slot are resolved in sorted order (so within one set of names
    the result never depends on their order). Names in `reference` (default: those of
    `use_reference_rows`) get neutral greys.
    """
    reference = _reference_rows if reference is None else tuple(reference)
    names = list(dict.fromkeys(str(m) for m in methods))
    colors: dict[str, str] = {}
    refs = [n for n in names if n in reference]
    for name in refs:
        colors[name] = REFERENCE_COLORS[list(reference).index(name) % len(REFERENCE_COLORS)]
    # Preferred slots are among the six strongest Okabe-Ito colours (not yellow); only when
    # those are taken do names spill over, in sorted order, into the rest of the palette.
    primary = len(OKABE_ITO) - 1
    used: set[int] = set()
    for name in sorted(n for n in names if n not in colors):
        slot = zlib.crc32(name.encode()) % primary
        if len(used) >= len(PALETTE):
            pass  # more names than colours: reuse the preferred slot
        elif len(used & set(range(primary))) < primary:
            while slot in used:
                slot = (slot + 1) % primary
        else:
            slot = min(set(range(len(PALETTE))) - used)
        used.add(slot)
        colors[name] = PALETTE[slot]
    return {n: colors[n] for n in names}


# --------------------------------------------------------------------------- helpers


def _check_columns(df: pd.DataFrame, columns: Iterable[str | None]) -> None:
    missing = [c for c in columns if c is not None and c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the DataFrame; available: {list(df.columns)}")


def _pretty(name: str) -> str:
    return str(name).replace("_", " ")


def _log_clip(values: np.ndarray, floor: float | None) -> tuple[np.ndarray, float, int]:
    """Raise values below `floor` (zeros, negatives) to it for a log axis; NaN stays NaN.

    Returns the clipped values, the floor used and how many values were below it. With
    `floor=None` the floor is one decade below the smallest positive value (1e-300 if none),
    so that clipped points sit just below the data instead of hundreds of decades away.
    """
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if floor is None:
        positive = finite[finite > 0]
        floor = float(positive.min()) / 10 if positive.size else 1e-300
    if floor <= 0:
        raise ValueError(f"floor for a log axis must be positive, got {floor}")
    mask = np.isfinite(values) & (values < floor)
    clipped = np.where(mask, floor, values)
    n_clipped = int(mask.sum())
    return clipped, floor, n_clipped


def _log_label(label: str, floor: float, n_clipped: int) -> str:
    if n_clipped:
        # A second line keeps the axis label short enough to fit beside the axis.
        return f"{label} (log)\n{n_clipped} value(s) < {floor:.0e} drawn at {floor:.0e}"
    return f"{label} (log)"


def _note(ax: Any, text: str) -> None:
    """Write a small grey note in the lower right corner of `ax` (e.g. NaN rows left out)."""
    ax.text(
        0.99,
        0.01,
        text,
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
        color="#555555",
    )


def _categories(series: pd.Series) -> list[Any]:
    """Unique values in order of first appearance (the order the notebook built them in)."""
    return list(dict.fromkeys(series.tolist()))


def _label(
    column: str,
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
) -> str:
    """Axis label of a column: its name, its unit and its direction when given."""
    return axis_label(
        _pretty(column),
        unit=(units or {}).get(column),
        direction=(directions or {}).get(column),
    )


def _renderer(fig: Figure) -> Any:
    """A renderer to measure text with (attaches an Agg canvas if the figure has none)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def _overlap(a: Any, b: Any, pad: float = 1.0) -> float:
    """Area (px²) shared by two display-space boxes, each grown by `pad` px."""
    width = min(a.x1, b.x1) - max(a.x0, b.x0) + 2 * pad
    height = min(a.y1, b.y1) - max(a.y0, b.y0) + 2 * pad
    return max(width, 0.0) * max(height, 0.0)


# Offsets (points) tried around a point for its label, nearest first: right, above, left,
# below and the diagonals, on growing rings. Far positions get a leader line.
_LABEL_RADII = (7.0, 16.0, 27.0, 40.0, 55.0, 72.0)
_LABEL_DIRECTIONS = ((1, 0.6), (1, -0.6), (-1, 0.6), (-1, -0.6), (0, 1), (0, -1), (1, 0), (-1, 0))


def place_labels(
    ax: Any,
    anchors: Sequence[tuple[float, float]],
    texts: Sequence[str],
    styles: Sequence[Mapping[str, Any]] | None = None,
    *,
    marker_px: float = 6.0,
) -> list[Any]:
    """Annotate `anchors` (data coordinates) with `texts` so that no two labels overlap.

    Greedy repel: each label takes the first position, on rings of growing radius around its
    point, whose text box stays inside the axes and overlaps neither a label already placed,
    nor a marker (a square of `marker_px` px around every anchor), nor other texts of the axes
    (e.g. a threshold's label). If no position is free, the one with the least overlap is used.
    Labels away from their point get a thin leader line. Call it after the axes limits are
    final; the figure's layout is computed first so that positions are measured where they end.

    Returns the annotations, in the order of `texts`.
    """
    styles = list(styles) if styles is not None else [{} for _ in texts]
    fig = ax.figure
    renderer = _renderer(fig)
    fig.draw_without_rendering()  # final layout (constrained) before measuring
    scale = fig.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    points = ax.transData.transform(np.asarray(anchors, dtype=float).reshape(-1, 2))
    half = marker_px / 2
    obstacles = [Bbox([[x - half, y - half], [x + half, y + half]]) for x, y in points]
    obstacles += [t.get_window_extent(renderer) for t in ax.texts if t.get_visible()]
    placed: list[Any] = []
    annotations = []
    for (x, y), text, style in zip(anchors, texts, styles, strict=True):
        best: tuple[float, tuple[float, float]] | None = None
        probe = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points", **style)
        for radius in _LABEL_RADII:
            for dx, dy in _LABEL_DIRECTIONS:
                offset = (dx * radius, dy * radius)
                probe.set_position(offset)
                probe.set_horizontalalignment("left" if dx > 0 else "right" if dx < 0 else "center")
                probe.set_verticalalignment("bottom" if dy > 0 else "top" if dy < 0 else "center")
                box = probe.get_window_extent(renderer)
                outside = (
                    max(frame.x0 - box.x0, 0)
                    + max(box.x1 - frame.x1, 0)
                    + max(frame.y0 - box.y0, 0)
                    + max(box.y1 - frame.y1, 0)
                )
                cost = sum(_overlap(box, other) for other in placed + obstacles) + 1e4 * outside
                if best is None or cost < best[0]:
                    best = (cost, offset)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        probe.remove()
        dx, dy = best[1]
        far = float(np.hypot(dx, dy)) > _LABEL_RADII[1] + 1
        annotation = ax.annotate(
            text,
            (x, y),
            xytext=best[1],
            textcoords="offset points",
            ha="left" if dx > 0 else "right" if dx < 0 else "center",
            va="bottom" if dy > 0 else "top" if dy < 0 else "center",
            arrowprops={
                "arrowstyle": "-",
                "color": style.get("color", "#555555"),
                "linewidth": 0.6,
                "shrinkA": 0,
                "shrinkB": 3 * scale,
            }
            if far
            else None,
            **style,
        )
        annotation.set_in_layout(False)  # placed inside the axes; must not move the layout
        placed.append(text_box(annotation, renderer))
        annotations.append(annotation)
    return annotations


def text_box(annotation: Any, renderer: Any | None = None) -> Any:
    """The display-space box of an annotation's text, without its leader line."""
    from matplotlib.text import Text

    renderer = renderer or _renderer(annotation.figure)
    annotation.update_positions(renderer)  # the text's place follows its anchor and offset
    return Text.get_window_extent(annotation, renderer)


# --------------------------------------------------------------------------- figures


@_styled
def tradeoff_scatter(
    df: pd.DataFrame,
    x: str = "model_utility",
    y: str = "forget_quality",
    label: str = "method",
    *,
    logy: bool = True,
    reference_rows: Sequence[str] | None = None,
    threshold: float | None = 0.05,
    floor: float | None = None,
    title: str | None = None,
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
    x_ci: tuple[str, str] | None = None,
    y_ci: tuple[str, str] | None = None,
    band: Mapping[str, Any] | None = None,
) -> Figure:
    """Scatter one point per row, coloured and annotated by `label`.

    `x_ci`/`y_ci` name the (low, high) columns of confidence intervals drawn as error bars.
    `band` shades a region, e.g. the noise floor around the oracle:
    `{"x": (lo, hi), "y": (lo, hi), "label": "two oracles"}` (either axis may be omitted).

    Rows whose label is in `reference_rows` (default: `use_reference_rows`; e.g. the model
    before unlearning and the retrained oracle) are drawn as large neutral stars. Several rows
    per label (seeds) are all drawn and the label is written once at their median. Labels never
    overlap each other (see `place_labels`): when points coincide, their labels fan out with
    leader lines.
    `threshold` draws a dashed horizontal line (the usual 0.05 significance level of forget
    quality); None draws none. `directions`/`units` (column -> value) go into the axis labels.
    """
    reference_rows = _reference_rows if reference_rows is None else tuple(reference_rows)
    ci_columns = [c for pair in (x_ci, y_ci) if pair for c in pair]
    _check_columns(df, [x, y, label, *ci_columns])
    data = df[[label, x, y, *ci_columns]].copy()
    for column in (x, y, *ci_columns):
        data[column] = pd.to_numeric(data[column], errors="coerce")
    # ±inf cannot be placed on an axis either; treat it like NaN.
    missing = data[~np.isfinite(data[[x, y]].to_numpy(dtype=float)).all(axis=1)]
    data = data.drop(index=missing.index)
    if len(missing):
        logger.warning("tradeoff_scatter: %d row(s) with NaN not shown", len(missing))
    ylabel = _label(y, directions, units)
    if logy:
        clipped, used_floor, n_clipped = _log_clip(data[y].to_numpy(), floor)
        data[y] = clipped
        ylabel = _log_label(ylabel, used_floor, n_clipped)

    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.add_subplot()
    colors = method_colors(data[label], reference=reference_rows)
    names = _categories(data[label])
    if band:
        xs = band.get("x", ax.get_xlim() if "x" not in band else band["x"])
        ys = band.get("y")
        if "x" in band and ys is None:
            ax.axvspan(*band["x"], color="#BBBBBB", alpha=0.35, zorder=0, lw=0)
        elif ys is not None and "x" not in band:
            ax.axhspan(*ys, color="#BBBBBB", alpha=0.35, zorder=0, lw=0)
        elif ys is not None:
            ax.fill_between(list(xs), ys[0], ys[1], color="#BBBBBB", alpha=0.35, zorder=0, lw=0)
        if band.get("label"):
            _note(ax, f"grey band: {band['label']}")
    for name in names:
        group = data[data[label] == name]
        is_ref = name in reference_rows
        for pair, axis in ((x_ci, "x"), (y_ci, "y")):
            if pair is None:
                continue
            low, high = group[pair[0]].to_numpy(float), group[pair[1]].to_numpy(float)
            center = group[x if axis == "x" else y].to_numpy(float)
            err = np.vstack([np.clip(center - low, 0, None), np.clip(high - center, 0, None)])
            if np.isfinite(err).all():
                ax.errorbar(
                    group[x],
                    group[y],
                    **{f"{axis}err": err},
                    fmt="none",
                    ecolor=colors[str(name)],
                    elinewidth=1.0,
                    alpha=0.6,
                    zorder=2,
                )
        ax.scatter(
            group[x],
            group[y],
            s=170 if is_ref else 55,
            marker="*" if is_ref else "o",
            color=colors[str(name)],
            edgecolors="white",
            linewidths=0.6,
            zorder=3,
            label=str(name),
        )
    if threshold is not None:
        ax.axhline(threshold, color="#555555", linestyle="--", linewidth=1, zorder=1)
        ax.annotate(
            f"{_pretty(y)} = {threshold:g}",
            (1.0, threshold),
            xycoords=("axes fraction", "data"),
            xytext=(-2, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color="#555555",
        )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(_label(x, directions, units))
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(missing):
        _note(
            ax, f"{len(missing)} row(s) with NaN not shown: {', '.join(map(str, missing[label]))}"
        )
    # Labels last, once limits and texts are final: references first (they matter most).
    order = sorted(names, key=lambda n: n not in reference_rows)
    medians = [
        (
            float(data.loc[data[label] == n, x].median()),
            float(data.loc[data[label] == n, y].median()),
        )
        for n in order
    ]
    # Margins so that labels of points at the edge have room inside the axes.
    ax.margins(x=0.12, y=0.12)
    place_labels(
        ax,
        medians,
        [str(n) for n in order],
        [
            {
                "fontsize": 9,
                "fontweight": "bold" if n in reference_rows else "normal",
                "color": colors[str(n)],
                "zorder": 4,
            }
            for n in order
        ],
        marker_px=9.0,
    )
    return fig


@_styled
def radar(
    df: pd.DataFrame,
    criteria: list[str],
    label: str = "method",
    *,
    ncols: int = 4,
    title: str | None = None,
) -> Figure:
    """Draw one radar (polar) panel per label over `criteria`, values in [0, 1], higher = better.

    Several rows per label are averaged. Values outside [0, 1] are clipped (with a warning);
    a NaN criterion is drawn at 0 and marked "n/a" in that panel.
    """
    if len(criteria) < 3:
        raise ValueError(f"a radar chart needs at least 3 criteria, got {criteria}")
    _check_columns(df, [label, *criteria])
    values = df[[label, *criteria]].copy()
    for c in criteria:
        values[c] = pd.to_numeric(values[c], errors="coerce")
    means = values.groupby(label, sort=False)[criteria].mean()
    finite = means.to_numpy()[np.isfinite(means.to_numpy())]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        logger.warning("radar: values outside [0, 1] are clipped to the unit range")

    n = len(means)
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(2.9 * ncols, 2.9 * nrows + (0.3 if title else 0)), layout="constrained")
    angles = np.linspace(0, 2 * np.pi, len(criteria), endpoint=False)
    closed = np.append(angles, angles[0])
    colors = method_colors(means.index)
    for i, (name, row) in enumerate(means.iterrows()):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="polar")
        raw = row.to_numpy(dtype=float)
        vals = np.clip(np.nan_to_num(raw, nan=0.0), 0.0, 1.0)
        color = colors[str(name)]
        ax.plot(closed, np.append(vals, vals[0]), color=color, linewidth=1.6)
        ax.fill(closed, np.append(vals, vals[0]), color=color, alpha=0.25)
        ax.set_ylim(0, 1)
        ax.set_yticks([0.25, 0.5, 0.75, 1.0])
        ax.set_yticklabels([], fontsize=7)
        ax.set_xticks(angles)
        ax.set_xticklabels(
            [
                _pretty(c) + ("\n(n/a)" if np.isnan(v) else "")
                for c, v in zip(criteria, raw, strict=True)
            ],
            fontsize=8,
        )
        ax.set_title(str(name), color=color, pad=12)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


@_styled
def roc_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
    *,
    logx: bool = False,
    floor: float = 1e-4,
    title: str | None = None,
) -> Figure:
    """Plot ROC curves (false positive rate, true positive rate, AUC) by name, with the diagonal.

    `logx=True` shows the low false-positive region that membership-inference papers report;
    false positive rates of zero are then drawn at `floor`.
    """
    fig = Figure(figsize=(4.8, 4.4), layout="constrained")
    ax = fig.add_subplot()
    colors = method_colors(curves.keys())
    n_clipped = 0
    for name, (fpr, tpr, auc) in curves.items():
        fpr = np.asarray(fpr, dtype=float)
        tpr = np.asarray(tpr, dtype=float)
        if fpr.shape != tpr.shape:
            raise ValueError(f"{name}: fpr and tpr differ in shape: {fpr.shape} vs {tpr.shape}")
        if logx:
            n_clipped += int(np.sum(fpr < floor))
            fpr = np.maximum(fpr, floor)
        auc_text = "n/a" if auc is None or not np.isfinite(auc) else f"{auc:.3f}"
        ax.plot(fpr, tpr, color=colors[str(name)], label=f"{name} (AUC {auc_text})")
    if logx:
        diag = np.geomspace(floor, 1, 200)
        ax.set_xscale("log")
        ax.set_xlim(floor, 1)
        xlabel = "false positive rate (log"
        xlabel += f"; values < {floor:.0e} shown at {floor:.0e})" if n_clipped else ")"
    else:
        diag = np.linspace(0, 1, 2)
        ax.set_xlim(0, 1)
        xlabel = "false positive rate"
    ax.plot(diag, diag, color="#999999", linestyle=":", linewidth=1, label="chance")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    return fig


@_styled
def histograms(
    samples: Mapping[str, np.ndarray],
    bins: int = 20,
    xlabel: str = "truth ratio",
    logx: bool = False,
    *,
    floor: float | None = None,
    title: str | None = None,
) -> Figure:
    """Overlay density step histograms of per-example values (e.g. target vs method vs oracle).

    All samples share one set of bin edges so their shapes compare. NaN values are dropped and
    counted in the legend. With `logx` the bins are log-spaced and the y axis shows the fraction
    of examples per bin instead of a density.
    """
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    arrays = {str(k): np.asarray(v, dtype=float).ravel() for k, v in samples.items()}
    n_nan = {k: int(np.sum(~np.isfinite(v))) for k, v in arrays.items()}
    arrays = {k: v[np.isfinite(v)] for k, v in arrays.items()}
    label = xlabel
    if logx:
        everything = np.concatenate([*arrays.values(), np.empty(0)])
        _, used_floor, n_clipped = _log_clip(everything, floor)
        arrays = {k: _log_clip(v, used_floor)[0] for k, v in arrays.items()}
        label = _log_label(xlabel, used_floor, n_clipped)
    combined = np.concatenate([*arrays.values(), np.empty(0)])

    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    if combined.size:
        if logx:
            lo, hi = combined.min(), combined.max()
            hi = hi * 10 if hi <= lo else hi
            edges = np.geomspace(lo, hi, bins + 1)
        else:
            edges = np.histogram_bin_edges(combined, bins=bins)
    colors = method_colors(arrays.keys())
    for name, values in arrays.items():
        legend = f"{name} (n={values.size}" + (
            f", {n_nan[name]} NaN dropped)" if n_nan[name] else ")"
        )
        if values.size == 0:
            logger.warning("histograms: sample %r has no finite values", name)
            ax.plot([], [], color=colors[name], label=legend)
            continue
        ax.hist(
            values,
            bins=edges,
            # On log-spaced bins a density (per unit of x) exaggerates the narrow low bins;
            # the fraction of examples per bin reads correctly there.
            density=not logx,
            weights=np.full(values.size, 1 / values.size) if logx else None,
            histtype="step",
            linewidth=1.8,
            color=colors[name],
            label=legend,
        )
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("fraction of examples" if logx else "density")
    ax.legend()
    if title:
        ax.set_title(title)
    return fig


ErrorBar = str | tuple[str, float] | None
ERRORBAR_DEFAULT: ErrorBar = ("ci", 95)
BOOTSTRAP_SEED = 0  # seaborn's bootstrap CIs are random; a fixed seed makes figures reproducible


def _errorbar_text(errorbar: ErrorBar) -> str:
    """How the spread of repeated rows is drawn, for the axis label."""
    if errorbar is None:
        return "mean"
    kind, level = (errorbar, None) if isinstance(errorbar, str) else errorbar
    if kind == "ci":
        return f"mean, {level or 95:g}% bootstrap CI"
    if kind == "pi":
        return f"mean, {level or 95:g}% interval of rows"
    if kind == "sd":
        return "mean ± sd" if level in (None, 1) else f"mean ± {level:g} sd"
    if kind == "se":
        return "mean ± s.e." if level in (None, 1) else f"mean ± {level:g} s.e."
    raise ValueError(f"errorbar {errorbar!r}: use 'ci', 'pi', 'sd', 'se' (with a level) or None")


def _prepare(
    df: pd.DataFrame, keys: list[str], y: str, logy: bool, floor: float | None
) -> tuple[pd.DataFrame, str, int, float | None]:
    """Numeric `y`, clipped to a floor on a log axis; returns (data, y label suffix, max rows
    per group, floor used). Rows keep their order (categories in order of first appearance)."""
    data = df[[*keys, y]].copy()
    data[y] = pd.to_numeric(data[y], errors="coerce")
    data.loc[~np.isfinite(data[y].to_numpy(dtype=float)), y] = np.nan
    suffix, used_floor = "", None
    if logy:
        clipped, used_floor, n_clipped = _log_clip(data[y].to_numpy(), floor)
        data[y] = clipped
        if n_clipped:
            suffix = f"\n{n_clipped} value(s) < {used_floor:.0e} drawn at {used_floor:.0e}"
    counts = data.dropna(subset=[y]).groupby(keys, sort=False)[y].count()
    return data, suffix, int(counts.max()) if len(counts) else 0, used_floor


def _y_label(
    y: str,
    directions: Mapping[str, Any] | None,
    units: Mapping[str, str] | None,
    errorbar: ErrorBar,
    repeated: bool,
    logy: bool,
    suffix: str,
) -> str:
    label = _label(y, directions, units)
    notes = [_errorbar_text(errorbar)] if repeated else []
    if logy:
        notes.append("log")
    # The estimator note on its own line keeps the label short enough to fit beside the axis.
    return label + (f"\n({', '.join(notes)})" if notes else "") + suffix


def _legend_outside(ax: Any, title: str) -> None:
    """The legend right of the axes, where it cannot hide bars, points or lines."""
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _hue_palette(hues: list[Any]) -> dict[Any, str]:
    colors = method_colors([str(h) for h in hues])
    return {h: colors[str(h)] for h in hues}


def _missing_groups(data: pd.DataFrame, keys: list[str], y: str) -> list[tuple[Any, ...]]:
    """Groups (x, hue) that have rows but no finite value."""
    groups = data.groupby(keys, sort=False)[y].apply(lambda v: bool(v.notna().any()))
    return [g if isinstance(g, tuple) else (g,) for g, ok in groups.items() if not ok]


@_styled
def bar_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    logy: bool = False,
    *,
    floor: float | None = None,
    title: str | None = None,
    errorbar: ErrorBar = ERRORBAR_DEFAULT,
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
) -> Figure:
    """Draw grouped bars of `y` per category of `x`, one bar per `hue` value inside each group.

    Drawn by `seaborn.barplot`: the bar is the mean of the rows of its group and, when a group
    has several rows (seeds), the error bar is `errorbar` (default a 95% bootstrap CI with a
    fixed seed). A group whose values are all NaN is marked "n/a". On a log axis values are
    clipped to the floor before averaging, and the label says how many.
    """
    import seaborn as sns

    _check_columns(df, [x, y, hue])
    _errorbar_text(errorbar)  # validate before drawing
    keys = [x] if hue is None else [x, hue]
    data, suffix, max_rows, _ = _prepare(df, keys, y, logy, floor)
    xs = _categories(data[x])
    hues = None if hue is None else _categories(data[hue])
    repeated = max_rows > 1
    # Wide enough for the bars, but capped: a figure wider than a page is shrunk unreadably.
    width = min(10.0, max(4.0, 0.8 + 0.3 * len(xs) * (len(hues) if hues else 1)))
    fig = Figure(figsize=(width, 3.8), layout="constrained")
    ax = fig.add_subplot()
    sns.barplot(
        data=data,
        x=x,
        y=y,
        hue=hue,
        order=xs,
        hue_order=hues,
        palette=_hue_palette(hues) if hues else None,
        color=None if hues else OKABE_ITO[0],
        errorbar=errorbar if repeated else None,
        seed=BOOTSTRAP_SEED,
        capsize=0.15,
        err_kws={"linewidth": 0.9, "color": "#333333"},
        saturation=1.0,
        ax=ax,
    )
    for group in _missing_groups(data, keys, y):
        pos = xs.index(group[0])
        if hues:
            width = 0.8 / len(hues)
            pos = pos - 0.4 + width * (hues.index(group[1]) + 0.5)
        ax.annotate(
            "n/a",
            (pos, 0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=7,
            color="#555555",
        )
    if len(xs) > 4:
        ax.tick_params(axis="x", labelrotation=30)
        for tick in ax.get_xticklabels():
            tick.set_ha("right")
    if logy:
        ax.set_yscale("log")
    else:
        values = data[y].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size and values.min() >= 0:  # bars of non-negative values start at 0
            ax.set_ylim(bottom=0, top=None if values.max() > 0 else 1)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel(_label(x, directions, units))
    ax.set_ylabel(_y_label(y, directions, units, errorbar, repeated, logy, suffix))
    if hue is not None and ax.get_legend() is not None:
        _legend_outside(ax, _pretty(hue))
    if title:
        ax.set_title(title)
    return fig


@_styled
def point_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    logy: bool = False,
    floor: float | None = None,
    title: str | None = None,
    errorbar: ErrorBar = ERRORBAR_DEFAULT,
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
) -> Figure:
    """Draw the mean of `y` per category of `x` as points joined by lines, one line per `hue`.

    For a metric over a grid of settings (e.g. a learning rate per method): `x` is treated as
    categories in order of first appearance. Drawn by `seaborn.pointplot` with `errorbar`
    (default a 95% bootstrap CI, fixed seed) where a point has several rows.
    """
    import seaborn as sns

    _check_columns(df, [x, y, hue])
    _errorbar_text(errorbar)
    keys = [x] if hue is None else [x, hue]
    data, suffix, max_rows, _ = _prepare(df, keys, y, logy, floor)
    xs = _categories(data[x])
    hues = None if hue is None else _categories(data[hue])
    repeated = max_rows > 1
    data[x] = data[x].astype(str)
    fig = Figure(figsize=(max(4.4, 1.2 + 0.7 * len(xs)), 3.8), layout="constrained")
    ax = fig.add_subplot()
    sns.pointplot(
        data=data,
        x=x,
        y=y,
        hue=hue,
        order=[str(v) for v in xs],
        hue_order=hues,
        palette=_hue_palette(hues) if hues else None,
        color=None if hues else OKABE_ITO[0],
        errorbar=errorbar if repeated else None,
        seed=BOOTSTRAP_SEED,
        dodge=0.25 if hues and len(hues) > 1 else False,
        capsize=0.1,
        err_kws={"linewidth": 1.0},
        markersize=5,
        linewidth=1.5,
        ax=ax,
    )
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(_label(x, directions, units))
    ax.set_ylabel(_y_label(y, directions, units, errorbar, repeated, logy, suffix))
    if hue is not None and ax.get_legend() is not None:
        _legend_outside(ax, _pretty(hue))
    if title:
        ax.set_title(title)
    return fig


@_styled
def line_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str | None = None,
    *,
    logy: bool = False,
    logx: bool = False,
    floor: float | None = None,
    title: str | None = None,
    errorbar: ErrorBar = ERRORBAR_DEFAULT,
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
    vlines: Mapping[str, float] | None = None,
) -> Figure:
    """Draw `y` against a numeric `x` (e.g. a metric over unlearning steps), one line per `hue`.

    Drawn by `seaborn.lineplot`: the line is the mean of the rows at each x and, where there
    are several (seeds), a shaded band shows `errorbar` (default a 95% bootstrap CI, fixed
    seed). NaN values are left out of the mean; an x where a line has no finite value is
    skipped (the line joins its neighbours) and the figure notes it. `logx` draws x on a log
    axis (x must be > 0). `vlines` marks x positions with dashed vertical lines labelled by
    their key (e.g. a break-even point); non-finite positions are listed in a note instead.
    """
    import seaborn as sns

    _check_columns(df, [x, y, hue])
    _errorbar_text(errorbar)
    keys = [x] if hue is None else [hue, x]
    data, suffix, max_rows, _ = _prepare(df, keys, y, logy, floor)
    hues = None if hue is None else _categories(data[hue])
    repeated = max_rows > 1
    fig = Figure(figsize=(6.0, 3.8), layout="constrained")
    ax = fig.add_subplot()
    few = data[x].nunique() <= 20
    sns.lineplot(
        data=data.dropna(subset=[y]),
        x=x,
        y=y,
        hue=hue,
        hue_order=hues,
        palette=_hue_palette(hues) if hues else None,
        color=None if hues else OKABE_ITO[0],
        errorbar=errorbar if repeated else None,
        seed=BOOTSTRAP_SEED,
        marker="o" if few else None,
        markeredgecolor="white" if few else None,
        ax=ax,
    )
    skipped = _missing_groups(data, keys, y)
    if skipped:
        shown = ", ".join(
            f"{g[0]} at {x}={g[1]}" if hue else f"{x}={g[0]}" for g in skipped[:4]
        ) + (" …" if len(skipped) > 4 else "")
        _note(ax, f"no value: {shown}")
    if logy:
        ax.set_yscale("log")
    if logx:
        if not (data[x].to_numpy(dtype=float) > 0).all():
            raise ValueError(f"logx needs {x} > 0")
        ax.set_xscale("log")
    off_axis = []
    for i, (name, position) in enumerate((vlines or {}).items()):
        if not np.isfinite(position):
            off_axis.append(f"{name}: {format_number(position)}")
            continue
        ax.axvline(position, color="#555555", linestyle="--", linewidth=0.9)
        ax.annotate(
            f"{name} = {format_number(position)}",
            (position, 0.97 - 0.07 * i),
            xycoords=("data", "axes fraction"),
            ha="left",
            va="top",
            fontsize=7,
            color="#333333",
            xytext=(3, 0),
            textcoords="offset points",
        )
    if off_axis:
        _note(ax, "; ".join(off_axis))
    ax.set_xlabel(_label(x, directions, units) + (" (log)" if logx else ""))
    ax.set_ylabel(_y_label(y, directions, units, errorbar, repeated, logy, suffix))
    if hue is not None and ax.get_legend() is not None:
        _legend_outside(ax, _pretty(hue))
    if title:
        ax.set_title(title)
    return fig


_TRUE_COLOR = "#B7E1CD"  # light green: the property holds
_FALSE_COLOR = "#EEEEEE"  # light grey: it does not
_MISSING_COLOR = "#FFFFFF"
# Light tints of the palette for categorical (string) cells, so black text stays readable.
_TINTS: tuple[str, ...] = tuple(
    "#{:02x}{:02x}{:02x}".format(*(int(255 * (0.62 + 0.38 * c)) for c in to_rgb(color)))
    for color in PALETTE
)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


@_styled
def heatmap(
    df: pd.DataFrame,
    *,
    cmap: str = "cividis",
    title: str | None = None,
    max_text: int = 18,
) -> Figure:
    """Draw a DataFrame as a coloured grid with the value written in each cell.

    Made for tables such as a method taxonomy: boolean columns become ✓ (green) / ✗ (grey),
    numeric columns are coloured by `cmap` scaled per column, string columns get one light
    tint per distinct value. Missing cells are blank. Rows are the index, columns the columns.
    """
    if df.empty:
        raise ValueError("heatmap needs a non-empty DataFrame")
    nrows, ncols = df.shape
    rgb = np.ones((nrows, ncols, 3))
    texts: list[list[tuple[str, str]]] = [[("", "black")] * ncols for _ in range(nrows)]
    colormap = mpl.colormaps[cmap]
    for j, column in enumerate(df.columns):
        col = df[column]
        present = [v for v in col.tolist() if not _is_missing(v)]
        is_bool = bool(present) and all(isinstance(v, (bool, np.bool_)) for v in present)
        is_num = (
            not is_bool
            and bool(present)
            and all(isinstance(v, (int, float, np.number)) for v in present)
        )
        if is_num:
            numbers = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
            lo, hi = np.nanmin(numbers), np.nanmax(numbers)
        tint_of = {
            v: _TINTS[k % len(_TINTS)] for k, v in enumerate(dict.fromkeys(map(str, present)))
        }
        for i, value in enumerate(col.tolist()):
            if _is_missing(value):
                rgb[i, j] = to_rgb(_MISSING_COLOR)
            elif is_bool:
                rgb[i, j] = to_rgb(_TRUE_COLOR if value else _FALSE_COLOR)
                texts[i][j] = ("✓" if value else "✗", "#1b5e20" if value else "#777777")
            elif is_num:
                scaled = 0.5 if hi == lo else (float(value) - lo) / (hi - lo)
                rgba = colormap(scaled)
                rgb[i, j] = rgba[:3]
                luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
                texts[i][j] = (format_number(float(value)), "black" if luminance > 0.5 else "white")
            else:
                text = str(value)
                rgb[i, j] = to_rgb(tint_of[text])
                if len(text) > max_text:
                    text = text[: max_text - 1] + "…"
                texts[i][j] = (text, "black")

    width = 1.8 + 1.15 * ncols + 0.06 * max(len(str(i)) for i in df.index)
    fig = Figure(figsize=(width, 0.9 + 0.38 * nrows), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(rgb, aspect="auto", interpolation="nearest")
    for i in range(nrows):
        for j in range(ncols):
            text, color = texts[i][j]
            if text:
                # Symbols (✓/✗) are small glyphs: draw them a bit larger than words.
                size = 11 if text in ("✓", "✗") else 8
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
    ax.set_xticks(range(ncols))
    labels = [_pretty(c) for c in df.columns]
    if max(len(label) for label in labels) * 0.075 < 1.1:  # short labels fit horizontally
        ax.set_xticklabels(labels)
    else:
        ax.set_xticklabels(labels, rotation=30, ha="left", rotation_mode="anchor")
    ax.set_yticks(range(nrows))
    ax.set_yticklabels([str(i) for i in df.index])
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    # Thin white lines between cells read as a table rather than an image.
    ax.set_xticks(np.arange(-0.5, ncols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, nrows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.grid(which="major", visible=False)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return fig


def _tick(value: Any) -> str:
    """A grid value as a tick label: whole numbers as integers, the rest as in the tables."""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e6 else format_number(number)


@_styled
def grid_heatmaps(
    df: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    facet: str,
    *,
    mark: str | None = None,
    log: bool = False,
    ncols: int = 4,
    cmap: str = "cividis",
    title: str | None = None,
    directions: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
) -> Figure:
    """Small multiples of one metric over a 2-D grid: one panel per `facet` value (e.g. a
    method) showing `value` for every (`x`, `y`) cell (e.g. epochs x learning rate).

    All panels share one colour scale (log10 when `log`; values <= 0 are then left blank and
    noted), so equal colours mean equal values across panels; each cell shows its value. Cells
    where the boolean column `mark` is True get a thick outline (e.g. a "good region"), and
    the legend says what it means. Grid values are sorted; panels keep their order of first
    appearance; several rows per cell are averaged; a missing cell is blank.
    """
    _check_columns(df, [x, y, value, facet, mark])
    if df.empty:
        raise ValueError("grid_heatmaps needs a non-empty DataFrame")
    data = df.copy()
    data[value] = pd.to_numeric(data[value], errors="coerce")
    facets = _categories(data[facet])
    xs, ys = sorted(data[x].unique()), sorted(data[y].unique())
    shown = data[value].to_numpy(dtype=float)
    n_dropped = 0
    if log:
        n_dropped = int(np.sum(np.isfinite(shown) & (shown <= 0)))
        shown = np.where(shown > 0, shown, np.nan)
        data["_shade"] = np.log10(shown)
    else:
        data["_shade"] = shown
    finite = data["_shade"].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi == lo:
        hi = lo + 1.0
    colormap = mpl.colormaps[cmap]
    ncols = max(1, min(ncols, len(facets)))
    nrows = math.ceil(len(facets) / ncols)
    width = max(1.0, 0.62 * len(xs) + 1.3)
    fig = Figure(
        figsize=(width * ncols + 1.2, (0.42 * len(ys) + 1.1) * nrows + (0.4 if title else 0)),
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for k, name in enumerate(facets):
        ax = axes[k // ncols][k % ncols]
        panel = data[data[facet] == name]
        grid = np.full((len(ys), len(xs)), np.nan)
        values = np.full((len(ys), len(xs)), np.nan)
        marked = np.zeros((len(ys), len(xs)), dtype=bool)
        for (xv, yv), cell in panel.groupby([x, y], sort=False):
            i, j = ys.index(yv), xs.index(xv)
            grid[i, j] = cell["_shade"].mean()
            values[i, j] = cell[value].mean()
            if mark is not None:
                marked[i, j] = bool(cell[mark].astype(bool).any())
        image = ax.imshow(
            np.ma.masked_invalid(grid),
            cmap=colormap,
            vmin=lo,
            vmax=hi,
            aspect="auto",
            origin="lower",
            interpolation="nearest",
        )
        for i in range(len(ys)):
            for j in range(len(xs)):
                if np.isfinite(values[i, j]):
                    scaled = (grid[i, j] - lo) / (hi - lo) if np.isfinite(grid[i, j]) else 0.5
                    rgba = colormap(float(np.clip(scaled, 0, 1)))
                    light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 0.5
                    ax.text(
                        j,
                        i,
                        format_number(float(values[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if light else "white",
                    )
                if marked[i, j]:
                    ax.add_patch(
                        mpl.patches.Rectangle(
                            (j - 0.46, i - 0.46),
                            0.92,
                            0.92,
                            fill=False,
                            edgecolor="#D55E00",
                            linewidth=2.2,
                        )
                    )
        ax.set_xticks(range(len(xs)), [_tick(v) for v in xs])
        ax.set_yticks(range(len(ys)), [_tick(v) for v in ys])
        ax.set_xlabel(_label(x, directions, units))
        ax.set_ylabel(_label(y, directions, units) if k % ncols == 0 else "")
        ax.set_title(str(name))
        ax.grid(False)
    for k in range(len(facets), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    label = _label(value, directions, units) + (" (log10 colour scale)" if log else "")
    bar = fig.colorbar(image, ax=axes, shrink=0.9)
    if log:
        ticks = bar.get_ticks()
        bar.set_ticks(ticks, labels=[format_number(float(10**t)) for t in ticks])
    bar.set_label(label)
    notes = []
    if mark is not None:
        notes.append(f"outlined: {_pretty(mark)}")
    if n_dropped:
        notes.append(f"{n_dropped} value(s) <= 0 not shown on the log scale")
    if notes:
        fig.text(0.0, 0.0, "; ".join(notes), fontsize=8, color="#555555", ha="left", va="bottom")
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


__all__ = [
    "ERRORBAR_DEFAULT",
    "OKABE_ITO",
    "PALETTE",
    "STYLE",
    "axis_label",
    "bar_chart",
    "grid_heatmaps",
    "heatmap",
    "histograms",
    "line_chart",
    "method_colors",
    "place_labels",
    "point_chart",
    "radar",
    "roc_curves",
    "tradeoff_scatter",
    "use_reference_rows",
    "use_style",
]


@_styled
def interval_chart(
    df: pd.DataFrame,
    category: str,
    value: str,
    low: str,
    high: str,
    *,
    hue: str | None = None,
    references: Mapping[str, float] | None = None,
    title: str | None = None,
    xlabel: str | None = None,
) -> Figure:
    """Dot plot of precomputed values with their intervals (e.g. a metric per method with its
    95% bootstrap CI), one row per category; `hue` groups several metrics side by side;
    `references` draws labelled vertical lines (e.g. {"oracle": 0.1}).

    For intervals computed elsewhere (cluster bootstrap): seaborn's estimators only bootstrap
    the rows they are given.
    """
    _check_columns(df, [category, value, low, high, hue])
    cats = _categories(df[category])
    hues = [None] if hue is None else _categories(df[hue])
    fig = Figure(
        figsize=(6.4, 0.9 + 0.32 * len(cats) * max(1, len(hues) * 0.6)), layout="constrained"
    )
    ax = fig.add_subplot()
    palette = _hue_palette(hues) if hue is not None else {None: OKABE_ITO[0]}
    step = 0.7 / max(1, len(hues))
    for j, h in enumerate(hues):
        part = df if h is None else df[df[hue] == h]
        for i, cat in enumerate(cats):
            row = part[part[category] == cat]
            if row.empty:
                continue
            v, lo, hi = (float(row.iloc[0][c]) for c in (value, low, high))
            y_pos = i + (j - (len(hues) - 1) / 2) * step
            if math.isfinite(lo) and math.isfinite(hi):
                ax.plot([lo, hi], [y_pos, y_pos], color=palette[h], lw=1.6, alpha=0.8)
            ax.plot(
                [v],
                [y_pos],
                "o",
                color=palette[h],
                label=str(h) if i == 0 and h is not None else None,
            )
    for name, x_ref in (references or {}).items():
        ax.axvline(x_ref, color="#555555", ls="--", lw=1)
        ax.annotate(
            name,
            (x_ref, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=8,
            color="#555555",
        )
    ax.set_yticks(range(len(cats)), [str(c) for c in cats])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel or _pretty(value))
    if hue is not None:
        _legend_outside(ax, _pretty(hue))
    if title:
        ax.set_title(title)
    return fig


@_styled
def trajectory_chart(
    df: pd.DataFrame,
    x: str,
    y: str,
    path: str,
    order: str,
    *,
    hue: str | None = None,
    selected: pd.DataFrame | None = None,
    logy: bool = False,
    title: str | None = None,
    directions: Mapping[str, Any] | None = None,
) -> Figure:
    """Checkpoints joined in `order` (e.g. epochs) along each `path` (e.g. method and learning
    rate), in a small panel per `hue` value; the Pareto front of each panel (no other point
    better on both axes, higher = better) is outlined, and `selected` rows are circled.
    """
    _check_columns(df, [x, y, path, order, hue])
    panels = [None] if hue is None else _categories(df[hue])
    n_cols = min(4, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    fig = Figure(figsize=(3.0 * n_cols + 0.6, 2.6 * n_rows + 0.5), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
    for k, panel in enumerate(panels):
        ax = axes[k // n_cols][k % n_cols]
        part = df if panel is None else df[df[hue] == panel]
        paths = _categories(part[path])
        colors = _hue_palette(paths)
        for p_name in paths:
            line = part[part[path] == p_name].sort_values(order)
            ax.plot(line[x], line[y], "-o", color=colors[p_name], ms=3, lw=1.2, label=str(p_name))
        pts = part[[x, y]].to_numpy(float)
        front = [
            i
            for i, (a, b) in enumerate(pts)
            if not any((c >= a and d >= b) and (c > a or d > b) for c, d in pts)
        ]
        if front:
            fpts = pts[front][np.argsort(pts[front][:, 0])]
            ax.plot(fpts[:, 0], fpts[:, 1], color="#222222", lw=0.8, ls=":", zorder=1)
        if selected is not None and panel is not None and panel in set(selected[hue]):
            pick = selected[selected[hue] == panel]
            ax.scatter(
                pick[x], pick[y], s=120, facecolors="none", edgecolors="#000000", lw=1.4, zorder=5
            )
        if logy:
            ax.set_yscale("log")
        ax.set_title(str(panel) if panel is not None else "", fontsize=9)
        ax.legend(fontsize=7, title=_pretty(path), title_fontsize=7)
    for k in range(len(panels), n_rows * n_cols):
        axes[k // n_cols][k % n_cols].set_visible(False)
    fig.supxlabel(_label(x, directions))
    fig.supylabel(_label(y, directions))
    if title:
        fig.suptitle(title)
    return fig
