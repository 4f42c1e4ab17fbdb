"""Tests of lib.plotting: every figure function returns a Figure with the expected artists."""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from lib import plotting


@pytest.fixture
def methods() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": ["target", "retrain", "grad_ascent", "npo", "npo", "broken"],
            "model_utility": [0.60, 0.58, 0.10, 0.50, 0.52, np.nan],
            "forget_quality": [1e-12, 0.9, 0.0, 0.2, 0.3, 0.1],
            "privacy": [0.2, 1.0, 0.5, np.nan, 0.7, 0.1],
        }
    )


def test_method_colors_are_stable_and_distinct() -> None:
    names = ["npo", "grad_ascent", "grad_diff", "simnpo", "rmu"]
    colors = plotting.method_colors(names)
    assert list(colors) == names
    assert len(set(colors.values())) == len(names)
    assert plotting.method_colors(reversed(names)) == colors  # order does not matter
    refs = plotting.method_colors(["target", "npo", "retrain"], reference=["target", "retrain"])
    assert refs["target"] == "#000000" and refs["retrain"] != refs["npo"]
    assert plotting.method_colors(["target"])["target"] != "#000000"  # core names none


def test_reference_rows_are_a_study_setting() -> None:
    previous = plotting.use_reference_rows(["target", "oracle"])
    try:
        colors = plotting.method_colors(["oracle", "npo", "target"])
        assert colors["target"] == "#000000" and colors["oracle"] == "#7F7F7F"
        assert plotting.method_colors(["oracle"], reference=[])["oracle"] != "#7F7F7F"
    finally:
        plotting.use_reference_rows(previous)
    many = plotting.method_colors([f"m{i}" for i in range(40)])
    assert len(many) == 40  # more names than colours still gets a colour each


def test_style_is_scoped() -> None:
    before = mpl.rcParams["axes.spines.top"]
    with plotting.use_style():
        assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["axes.spines.top"] == before


def test_tradeoff_scatter(methods: pd.DataFrame) -> None:
    fig = plotting.tradeoff_scatter(methods)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert len(ax.collections) == 4  # target, retrain, grad_ascent, npo; the NaN row is dropped
    labels = {t.get_text() for t in ax.texts}
    assert {"target", "retrain", "grad_ascent", "npo"} <= labels
    assert any("NaN not shown: broken" in t for t in labels)
    assert any("= 0.05" in t for t in labels)  # threshold line label
    assert "drawn at" in ax.get_ylabel()  # the zero was clipped and the label says so
    assert np.isfinite(ax.get_ylim()).all()


def test_tradeoff_scatter_linear_without_threshold(methods: pd.DataFrame) -> None:
    fig = plotting.tradeoff_scatter(methods, logy=False, threshold=None)
    assert fig.axes[0].get_yscale() == "linear"
    with pytest.raises(KeyError, match="available"):
        plotting.tradeoff_scatter(methods, x="nope")


def test_radar(methods: pd.DataFrame) -> None:
    fig = plotting.radar(methods, ["model_utility", "forget_quality", "privacy"])
    assert len(fig.axes) == 5  # one panel per method, NaN values included
    assert all(ax.name == "polar" for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes][:2] == ["target", "retrain"]
    with pytest.raises(ValueError, match="at least 3"):
        plotting.radar(methods, ["privacy"])


def test_roc_curves() -> None:
    fpr = np.linspace(0, 1, 11)
    curves = {"loss": (fpr, np.sqrt(fpr), 0.66), "zlib": (fpr, fpr, float("nan"))}
    for logx in (False, True):
        fig = plotting.roc_curves(curves, logx=logx)
        (ax,) = fig.axes
        assert len(ax.lines) == 3  # two curves and the chance diagonal
        assert ax.get_xscale() == ("log" if logx else "linear")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "loss (AUC 0.660)" in legend and "zlib (AUC n/a)" in legend


def test_histograms_with_nan_and_zero() -> None:
    rng = np.random.default_rng(0)
    samples = {
        "target": rng.lognormal(size=50),
        "npo": np.r_[rng.lognormal(size=50), 0.0, np.nan],
        "empty": np.array([np.nan]),
    }
    fig = plotting.histograms(samples, bins=10, logx=True)
    (ax,) = fig.axes
    assert len(ax.patches) == 2  # one step outline per sample with finite values
    assert "drawn at" in ax.get_xlabel()
    assert plotting.histograms({"a": rng.normal(size=20)}).axes[0].get_ylabel() == "density"


def _bar_heights(ax) -> list[float]:
    return sorted(
        round(float(p.get_height()), 6)
        for c in ax.containers
        if isinstance(c, BarContainer)
        for p in c
        if np.isfinite(p.get_height())
    )


def test_bar_chart_means_and_confidence_intervals() -> None:
    df = pd.DataFrame(
        {
            "split": ["forget", "forget", "retain", "retain", "holdout", "forget"],
            "method": ["ga", "npo", "ga", "npo", "ga", "ga"],
            "rouge": [0.1, 0.3, 0.0, 0.8, np.nan, 0.2],
        }
    )
    fig = plotting.bar_chart(df, "split", "rouge", hue="method", logy=True)
    (ax,) = fig.axes
    # forget/ga is the mean of 0.1 and 0.2; retain/ga's 0 is clipped to the floor 0.01 (one
    # decade below the smallest positive value); holdout/ga is all NaN: no bar, "n/a".
    assert _bar_heights(ax) == [0.01, 0.15, 0.3, 0.8]
    assert "mean, 95% bootstrap CI" in ax.get_ylabel() and "drawn at 1e-02" in ax.get_ylabel()
    assert [t.get_text() for t in ax.texts] == ["n/a"]
    # one error bar: the only group with two rows (forget/ga), within the range of its rows
    finite = [y[np.isfinite(y)] for y in (np.asarray(ln.get_ydata(), float) for ln in ax.lines)]
    (error_bar,) = [y for y in finite if y.size]
    assert 0.1 <= error_bar.min() < 0.15 < error_bar.max() <= 0.2
    single = plotting.bar_chart(df.iloc[[1, 3]], "split", "rouge")  # one row per bar
    assert _bar_heights(single.axes[0]) == [0.3, 0.8]
    assert "CI" not in single.axes[0].get_ylabel()  # no spread to show, none claimed
    sd = plotting.bar_chart(df, "split", "rouge", errorbar=("sd", 1))
    assert "mean ± sd" in sd.axes[0].get_ylabel()
    with pytest.raises(ValueError, match="'ci', 'pi', 'sd', 'se'"):
        plotting.bar_chart(df, "split", "rouge", errorbar="iqr")


def test_labels_state_direction_and_unit() -> None:
    df = pd.DataFrame({"method": ["ga", "npo"], "flops": [1e9, 2e9]})
    fig = plotting.bar_chart(
        df, "method", "flops", logy=True, directions={"flops": "lower"}, units={"flops": "FLOPs"}
    )
    assert fig.axes[0].get_ylabel().startswith("flops [FLOPs] (↓ better)\n(log)")


def test_point_chart() -> None:
    df = pd.DataFrame(
        {
            "lr": [1e-5, 1e-5, 1e-4, 1e-4] * 2,
            "method": ["ga"] * 4 + ["npo"] * 4,
            "forget_quality": [0.1, 0.3, 0.5, 0.7, 0.2, 0.2, 0.4, 0.4],
        }
    )
    fig = plotting.point_chart(df, "lr", "forget_quality", hue="method")
    (ax,) = fig.axes
    means = sorted(
        round(float(v), 6)
        for ln in ax.lines
        if len(ln.get_xdata()) == 2 and ln.get_marker() not in (None, "None", "")
        for v in ln.get_ydata()
    )
    assert means == [0.2, 0.2, 0.4, 0.6]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e-05", "0.0001"]


def test_line_chart() -> None:
    steps = np.arange(5)
    df = pd.DataFrame(
        {
            "step": np.tile(steps, 4),
            "method": np.repeat(["ga", "npo"], 10),
            "loss": np.r_[np.linspace(1, 0, 10), [0.5] * 9, np.nan],
        }
    )
    fig = plotting.line_chart(df, "step", "loss", hue="method", logy=True)
    (ax,) = fig.axes
    drawn = [ln for ln in ax.lines if len(ln.get_xdata()) > 0]
    assert len(drawn) == 2  # one line per method (seaborn's legend proxies are empty)
    assert len(ax.collections) == 2  # one CI band per method (two seeds per step)
    assert ax.get_yscale() == "log"
    assert len(plotting.line_chart(df, "step", "loss").axes[0].lines) >= 1
    df.loc[df["step"] == 4, "loss"] = np.nan  # step 4 has no value for either method
    notes = [
        t.get_text() for t in plotting.line_chart(df, "step", "loss", hue="method").axes[0].texts
    ]
    assert notes == ["no value: ga at step=4, npo at step=4"]


def test_tradeoff_labels_do_not_overlap_on_a_crowded_plot() -> None:
    """ga, ga_kl and npo once overlapped; here ten methods share one point and three more are
    near it: every label must still have its own space, inside the axes."""
    import itertools

    names = ["ga", "ga_kl", "npo", "grad_diff", "simnpo", "idk", "idk_dpo", "rmu", "icul", "x"]
    df = pd.DataFrame(
        {
            "method": ["target", *names, "near1", "near2", "near3", "retrain"],
            "model_utility": [0.40] * 11 + [0.401, 0.399, 0.4005, 0.38],
            "forget_quality": [0.2] * 11 + [0.21, 0.19, 0.2, 1.0],
        }
    )
    fig = plotting.tradeoff_scatter(df)
    (ax,) = fig.axes
    fig.draw_without_rendering()
    renderer = plotting._renderer(fig)
    labels = [t for t in ax.texts if t.get_text() in set(df["method"])]
    assert sorted(t.get_text() for t in labels) == sorted(df["method"])
    boxes = [plotting.text_box(t, renderer) for t in labels]
    for (a, ta), (b, tb) in itertools.combinations(zip(boxes, labels, strict=True), 2):
        assert not a.overlaps(b), f"labels {ta.get_text()!r} and {tb.get_text()!r} overlap"
    frame = ax.get_window_extent(renderer)
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 + 1 for b in boxes)
    assert all(frame.y0 <= b.y0 and b.y1 <= frame.y1 + 1 for b in boxes)


def test_heatmap_of_mixed_table() -> None:
    table = pd.DataFrame(
        {
            "family": ["gradient", "gradient", "preference"],
            "needs_retain": [False, True, True],
            "reference_model": [False, None, True],
            "cost": [1.0, np.nan, 3.5],
        },
        index=["grad_ascent", "grad_diff", "npo"],
    )
    fig = plotting.heatmap(table)
    (ax,) = fig.axes
    assert len([a for a in ax.get_children() if isinstance(a, AxesImage)]) == 1
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 12 - 2  # two missing cells are blank
    assert texts.count("✓") == 3 and "3.50" in texts  # lib.reporting.format_number
    with pytest.raises(ValueError, match="non-empty"):
        plotting.heatmap(pd.DataFrame())


def test_grid_heatmaps_share_one_scale_and_outline_marked_cells() -> None:
    rows = []
    for method, scale in (("a", 1.0), ("b", 10.0), ("c", 100.0)):
        for lr in (1e-5, 1e-4):
            for epochs in (1, 2, 3):
                value = scale * lr * 1e5 * epochs
                rows.append(
                    {
                        "method": method,
                        "lr": lr,
                        "epochs": epochs,
                        "ppl": value,
                        "good": method == "b" and epochs > 1,
                    }
                )
    df = pd.DataFrame(rows[:-1])  # one missing cell in the last panel
    fig = plotting.grid_heatmaps(
        df, "epochs", "lr", "ppl", "method", mark="good", log=True, ncols=2, title="grid"
    )
    panels = [ax for ax in fig.axes if ax.get_title() in ("a", "b", "c")]
    assert [ax.get_title() for ax in panels] == ["a", "b", "c"]
    images = [next(a for a in ax.get_children() if isinstance(a, AxesImage)) for ax in panels]
    assert len({im.get_clim() for im in images}) == 1  # one colour scale for all panels
    assert images[0].get_clim() == pytest.approx((0.0, np.log10(2000.0)))  # c/1e-4/3 is missing
    assert sum(len(ax.patches) for ax in panels) == 4  # b at epochs 2 and 3, both learning rates
    assert [len(ax.texts) for ax in panels] == [6, 6, 5]
    assert any("outlined: good" in t.get_text() for t in fig.texts)
    negative = df.assign(ppl=df["ppl"] - 2.0)
    fig = plotting.grid_heatmaps(negative, "epochs", "lr", "ppl", "method", log=True)
    assert any("<= 0 not shown" in t.get_text() for t in fig.texts)
    with pytest.raises(KeyError, match="columns"):
        plotting.grid_heatmaps(df, "epochs", "lr", "nope", "method")


def test_line_chart_log_x_and_vertical_markers() -> None:
    df = pd.DataFrame({"n": [1e2, 1e3, 1e4] * 2, "cost": [1, 2, 3, 1, 10, 100],
                       "method": ["a"] * 3 + ["b"] * 3})  # fmt: skip
    fig = plotting.line_chart(
        df, "n", "cost", hue="method", logx=True, logy=True,
        vlines={"break-even": 500.0, "never": float("inf")},
    )  # fmt: skip
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    vertical = [ln for ln in ax.lines if list(ln.get_xdata()) == [500.0, 500.0]]
    assert len(vertical) == 1
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("break-even = 500") for t in texts)
    assert any("never" in t for t in texts)  # not drawable: noted instead
    with pytest.raises(ValueError, match="logx"):
        plotting.line_chart(df.assign(n=0.0), "n", "cost", logx=True)
