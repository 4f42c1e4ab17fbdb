"""Uncertainty of the study's numbers: cluster bootstrap, paired tests, rank intervals.

Questions about one author are not independent (they share the author's training exposure), so
confidence intervals resample *authors* (clusters) with replacement and keep all of a drawn
author's questions (`cluster_bootstrap`). Everything is seeded: the same seed gives the same
interval.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as scipy_stats


def cluster_indices(groups: Sequence[object]) -> list[np.ndarray]:
    """Example indices of each group (in order of first appearance)."""
    order: dict[object, list[int]] = {}
    for i, g in enumerate(groups):
        order.setdefault(g, []).append(i)
    return [np.asarray(v) for v in order.values()]


def cluster_bootstrap(
    statistic: Callable[[np.ndarray], float],
    groups: Sequence[object],
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Bootstrap replicates of `statistic(indices)`, resampling whole groups.

    Args:
        statistic: maps an index array (examples of the resampled groups, with repeats) to a
            number; it may read several aligned arrays (e.g. a model's and an oracle's values).
        groups: the group (e.g. author) of each example.

    Returns:
        (n_boot,) replicates (NaN where the statistic is undefined on a replicate).
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    clusters = cluster_indices(groups)
    if not clusters:
        raise ValueError("cannot bootstrap an empty sample")
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        drawn = rng.integers(0, len(clusters), len(clusters))
        out[b] = statistic(np.concatenate([clusters[i] for i in drawn]))
    return out


def percentile_interval(replicates: ArrayLike, alpha: float = 0.05) -> tuple[float, float]:
    """(low, high) percentile interval of bootstrap replicates (NaNs ignored)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    values = np.asarray(replicates, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def cluster_ci(
    statistic: Callable[[np.ndarray], float],
    groups: Sequence[object],
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile CI of `statistic` under the cluster bootstrap (see `cluster_bootstrap`)."""
    return percentile_interval(cluster_bootstrap(statistic, groups, n_boot, seed), alpha)


def paired_wilcoxon(a: ArrayLike, b: ArrayLike) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples (e.g. the log truth ratios of a
    model and of the oracle on the same questions); 1.0 when every difference is zero.

    Lower = the model's per-question values differ systematically from the oracle's.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired samples must be 1-D of equal length, got {x.shape}, {y.shape}")
    if not np.any(x - y):
        return 1.0
    return float(scipy_stats.wilcoxon(x, y).pvalue)


def rank_intervals(
    replicates: dict[str, np.ndarray], higher_is_better: bool, alpha: float = 0.05
) -> dict[str, tuple[int, int]]:
    """Rank interval of each entry from aligned bootstrap replicates of one score.

    `replicates[name][b]` is the score of `name` on replicate `b` (the same resample for every
    name). Ranks are 1 = best; returns name -> (best plausible rank, worst plausible rank).
    """
    names = list(replicates)
    table = np.vstack([np.asarray(replicates[n], dtype=float) for n in names])  # (k, B)
    keyed = -table if higher_is_better else table
    keyed = np.where(np.isfinite(keyed), keyed, np.inf)  # undefined = worst
    ranks = scipy_stats.rankdata(keyed, axis=0, method="min")  # (k, B)
    out = {}
    for i, name in enumerate(names):
        low, high = np.quantile(ranks[i], [alpha / 2, 1 - alpha / 2])
        out[name] = (int(np.floor(low)), int(np.ceil(high)))
    return out


def kendall_tau(a: ArrayLike, b: ArrayLike) -> float:
    """Kendall's tau-b between two rankings (NaN entries dropped pairwise)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3:
        return float("nan")
    return float(scipy_stats.kendalltau(x[keep], y[keep]).statistic)
