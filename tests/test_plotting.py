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
    refs = plotting.method_colors(["target", "npo", "retrain"])
    assert refs["target"] == "#000000" and refs["retrain"] != refs["npo"]
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


def test_bar_chart() -> None:
    df = pd.DataFrame(
        {
            "split": ["forget", "forget", "retain", "retain", "holdout", "forget"],
            "method": ["ga", "npo", "ga", "npo", "ga", "ga"],
            "rouge": [0.1, 0.3, 0.0, 0.8, np.nan, 0.2],
        }
    )
    fig = plotting.bar_chart(df, "split", "rouge", hue="method", logy=True)
    (ax,) = fig.axes
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert sum(len(c) for c in bars) == 3 * 2  # 3 splits x 2 methods, missing ones empty
    assert "mean ± sd" in ax.get_ylabel()
    assert any(t.get_text() == "n/a" for t in ax.texts)
    fig = plotting.bar_chart(df, "split", "rouge")
    assert sum(len(c) for c in fig.axes[0].containers if isinstance(c, BarContainer)) == 3


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
    assert texts.count("✓") == 3 and "3.5" in texts
    with pytest.raises(ValueError, match="non-empty"):
        plotting.heatmap(pd.DataFrame())


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
    assert len(ax.lines) == 2
    assert len(ax.collections) == 2  # one ± sd band per method (two seeds per step)
    assert ax.get_yscale() == "log"
    assert len(plotting.line_chart(df, "step", "loss").axes[0].lines) == 1
