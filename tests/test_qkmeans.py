"""Tests of lib.algorithms.qkmeans: quantizer, assignment, deletion certificate, exactness of
deletion (deterministic given the randomness, and in distribution for the k-means++ init), and
the demonstration selections built on top (fast, numpy only)."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
from scipy.stats import chisquare
from sklearn.cluster import kmeans_plusplus

from lib.algorithms.qkmeans import (
    ClusterDemonstrations,
    QuantizedKMeans,
    RandomDemonstrations,
    assign_nearest,
    grid_coordinates,
    quantize,
)

# ------------------------------------------------------------------------------------ quantizer


def test_quantize_hand_computed() -> None:
    # eps = 0.5, phase 0.25: grid points 0.5 * (z + 0.25) = ..., -0.375, 0.125, 0.625, ...
    phase = np.array([0.25, 0.25, 0.25])
    got = quantize(np.array([0.3, 0.4, -0.2]), 0.5, phase)
    np.testing.assert_allclose(got, [0.125, 0.625, -0.375])
    # phase 1/2 is the plain grid eps * round(v / eps)
    v = np.array([0.74, -1.26, 3.0])
    np.testing.assert_allclose(quantize(v, 0.5, np.full(3, 0.5)), [0.5, -1.5, 3.0])


def test_quantize_lands_on_grid_within_half_epsilon_and_is_idempotent() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(scale=5, size=(50, 7))
    for eps in (0.01, 0.3, 2.0):
        phase = rng.random(7)
        q = quantize(values, eps, phase)
        u = grid_coordinates(q, eps, phase)
        np.testing.assert_allclose(u, np.rint(u), atol=1e-9)
        assert np.all(np.abs(q - values) <= eps / 2 + 1e-12)
        np.testing.assert_allclose(quantize(q, eps, phase), q, atol=1e-12)


def test_phase_shifts_the_grid() -> None:
    # Q(v + eps*s; phase - s) = Q(v; phase) + eps*s: the phase translates the grid.
    rng = np.random.default_rng(1)
    v, eps = rng.normal(size=20), 0.7
    phase, s = rng.random(20) * 0.5 + 0.4, 0.3
    np.testing.assert_allclose(
        quantize(v + eps * s, eps, phase - s), quantize(v, eps, phase) + eps * s, atol=1e-12
    )
    assert not np.allclose(quantize(v, eps, phase), quantize(v, eps, phase - s))


def test_random_phase_makes_quantization_unbiased() -> None:
    rng = np.random.default_rng(2)
    v = np.array([0.13, -2.71, 5.5])
    mean = np.mean([quantize(v, 1.0, rng.random(3)) for _ in range(20000)], axis=0)
    np.testing.assert_allclose(mean, v, atol=0.02)  # std of the mean ~ 0.29/141 = 0.002


def test_quantize_rejects_bad_epsilon() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        quantize(np.zeros(2), 0.0, np.zeros(2))


# ----------------------------------------------------------------------------------- assignment


def test_assign_nearest_matches_brute_force_and_breaks_ties_low() -> None:
    rng = np.random.default_rng(3)
    X, C = rng.normal(size=(200, 5)), rng.normal(size=(6, 5))
    labels, dist = assign_nearest(X, C)
    brute = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, brute.argmin(1))
    np.testing.assert_allclose(dist, brute.min(1), atol=1e-12)
    tie_labels, _ = assign_nearest(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert tie_labels.tolist() == [0]


# ------------------------------------------------------------------------------ the certificate


def _two_blobs() -> tuple[np.ndarray, int]:
    """Two symmetric blobs of 9 points around (100, 100) and (-100, -100); row 4 / 13 are the
    blob centres, i.e. exactly the mean of their blob."""
    offsets = np.array(
        [[-1, -1], [-1, 1], [1, -1], [1, 1], [0, 0], [-2, 0], [2, 0], [0, -2], [0, 2]], float
    )
    X = np.vstack([offsets + 100.0, offsets - 100.0])
    return X, 4


def test_certificate_passes_when_the_mean_cannot_move() -> None:
    # Removing a point that sits exactly at its cluster's mean leaves the mean unchanged, so
    # the exact certificate must pass (gamma=0: no momentum; stop="none": no stopping rule).
    X, centre_row = _two_blobs()
    model = QuantizedKMeans(2, 0.5, n_iter=4, gamma=0.0, stop="none", seed=0)
    model.fit(X, init_indices=[0, 9])
    before = model.history()["centers"]
    report = model.delete(centre_row)
    assert not report.reclustered and report.reason == "certified"
    assert report.failed_iteration is None and report.iterations_rerun == 0
    np.testing.assert_array_equal(model.history()["centers"], before)
    assert model.labels_[centre_row] == -1 and model.n_active_ == 17
    # The reference's form c - x/n moves the centroid by |c|/n ~ 11 >> eps: it re-clusters.
    reference = QuantizedKMeans(2, 0.5, n_iter=4, gamma=0.0, stop="none", certificate="reference")
    reference.fit(X, init_indices=[0, 9])
    assert reference.delete(centre_row).reason == "centroid_changed"


def test_certificate_fails_when_epsilon_is_tiny() -> None:
    # Removing row 0 moves its blob's mean by |x - c| / 8 = 0.18 >> eps = 1e-6 per coordinate.
    X, _ = _two_blobs()
    model = QuantizedKMeans(2, 1e-6, n_iter=4, gamma=0.0, stop="none", seed=0)
    model.fit(X, init_indices=[4, 13])
    report = model.delete(0)
    assert report.reclustered and report.reason == "centroid_changed"
    assert report.failed_iteration == 1 and type(report.failed_iteration) is int
    assert report.iterations_rerun == 4
    assert report.flops > 0 and report.seconds >= 0


def test_deleting_an_init_point_redraws_the_init() -> None:
    X, _ = _two_blobs()
    model = QuantizedKMeans(2, 0.5, n_iter=3, seed=5).fit(X)
    victim = int(model.init_indices_[1])
    report = model.delete(victim)
    assert report.reclustered and report.reason == "init_point" and report.failed_iteration == 0
    assert model.init_generation_ == 1 and victim not in model.init_indices_
    assert model.active_[model.init_indices_].all()
    _assert_matches_scratch(model, X)


# ---------------------------------------------------------------------------------- exactness


def _scratch(model: QuantizedKMeans, X: np.ndarray) -> tuple[QuantizedKMeans, np.ndarray]:
    """Fit from scratch on the remaining rows with the same parameters and randomness."""
    rows = np.nonzero(model.active_)[0]
    position = {int(r): i for i, r in enumerate(rows)}
    init = [position[int(i)] for i in model.init_indices_]
    fresh = QuantizedKMeans(
        model.n_clusters, model.epsilon, model.n_iter, model.gamma, model.stop,
        model.certificate, model.guard, model.seed,
    ).fit(X[rows], init_indices=init)  # fmt: skip
    return fresh, rows


def _assert_matches_scratch(model: QuantizedKMeans, X: np.ndarray) -> None:
    fresh, rows = _scratch(model, X)
    assert (model.n_iter_, model.best_iter_) == (fresh.n_iter_, fresh.best_iter_)
    mine, theirs = model.history(), fresh.history()
    np.testing.assert_array_equal(mine["centers"], theirs["centers"])
    np.testing.assert_array_equal(mine["labels"][:, rows], theirs["labels"])
    np.testing.assert_array_equal(mine["sizes"][1:], theirs["sizes"][1:])
    np.testing.assert_allclose(mine["sums"], theirs["sums"], atol=1e-9)
    np.testing.assert_allclose(mine["sse"], theirs["sse"], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(model.centroids_, fresh.centroids_)
    np.testing.assert_array_equal(model.labels_[rows], fresh.labels_)


def _random_problem(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    n, d, k = int(rng.integers(8, 50)), int(rng.integers(1, 5)), int(rng.integers(1, 5))
    X = rng.normal(size=(n, d)) + 2.0 * rng.integers(0, 3, size=(n, 1))
    params = {
        "n_clusters": k,
        "epsilon": float(rng.choice([0.05, 0.3, 1.0])),
        "n_iter": int(rng.integers(1, 8)),
        "gamma": float(rng.choice([0.0, 0.2, 0.5])),
        "stop": str(rng.choice(["loss", "none"])),
    }
    return X, params


def test_deletion_equals_fit_from_scratch_with_the_same_randomness() -> None:
    # (E1) on 200 random small problems, 5 sequential deletions each, every branch exercised.
    reasons: collections.Counter[str] = collections.Counter()
    for trial in range(200):
        rng = np.random.default_rng(trial)
        X, params = _random_problem(rng)
        model = QuantizedKMeans(**params, seed=trial).fit(X)
        demos = ClusterDemonstrations(model)
        for _ in range(min(5, len(X) - params["n_clusters"])):
            before = demos.indices
            row = int(rng.choice(np.nonzero(model.active_)[0]))
            report, changed = demos.delete(row)
            reasons[report.reason] += 1
            if not report.reclustered and row not in before:
                assert not changed
            _assert_matches_scratch(model, X)
            fresh, rows = _scratch(model, X)
            np.testing.assert_array_equal(demos.indices, rows[ClusterDemonstrations(fresh).indices])
    assert set(reasons) == {"certified", "init_point", "centroid_changed", "stopping_changed"}


def test_reference_certificate_is_not_exact() -> None:
    # The reference's test (c - x/n, no momentum or stopping checks) certifies some deletions
    # that do change the clustering: why "exact" is the default.
    mismatches = 0
    for trial in range(60):
        rng = np.random.default_rng(trial)
        X, params = _random_problem(rng)
        model = QuantizedKMeans(**params, certificate="reference", seed=trial).fit(X)
        for _ in range(min(5, len(X) - params["n_clusters"])):
            model.delete(int(rng.choice(np.nonzero(model.active_)[0])))
            fresh, rows = _scratch(model, X)
            mismatches += not np.array_equal(model.history()["centers"], fresh.history()["centers"])
    assert mismatches > 0


def _kpp_law_without(X: np.ndarray, removed: int) -> dict[tuple[int, int], float]:
    """Exact law of the ordered k-means++ init pair (k=2) on X minus row `removed`."""
    rest = [i for i in range(len(X)) if i != removed]
    law = {}
    for i, j in itertools.permutations(rest, 2):
        d2 = {r: float(((X[r] - X[i]) ** 2).sum()) for r in rest}
        law[(i, j)] = d2[j] / sum(d2.values()) / len(rest)
    return law


def test_init_after_deletion_has_the_kmeanspp_law_of_the_smaller_data() -> None:
    # (E2): over seeds, the init after deleting x is distributed as k-means++ on D minus x.
    X = np.array([[0, 0], [1, 0], [0, 2], [3, 1], [5, 5]], float)
    removed, n_seeds = 3, 2000
    law = _kpp_law_without(X, removed)
    counts: collections.Counter[tuple[int, int]] = collections.Counter()
    for seed in range(n_seeds):
        model = QuantizedKMeans(2, 1.0, n_iter=1, seed=seed).fit(X)
        model.delete(removed)
        counts[tuple(int(i) for i in model.init_indices_)] += 1
    keys = list(law)
    assert sum(counts[key] for key in keys) == n_seeds
    assert (
        chisquare([counts[key] for key in keys], [law[key] * n_seeds for key in keys]).pvalue > 1e-3
    )
    # The same check rejects re-drawing from the *same* stream when x was chosen: the new init
    # then correlates with the event "x was chosen" (why the redraw uses a new generation).
    rest = np.array([i for i in range(len(X)) if i != removed])
    biased: collections.Counter[tuple[int, int]] = collections.Counter()
    for seed in range(n_seeds):
        _, idx = kmeans_plusplus(
            X, 2, random_state=np.random.RandomState([seed, 1, 0]), n_local_trials=1
        )
        if removed in idx:
            state = np.random.RandomState([seed, 1, 0])
            idx = rest[kmeans_plusplus(X[rest], 2, random_state=state, n_local_trials=1)[1]]
        biased[tuple(int(i) for i in idx)] += 1
    assert (
        chisquare([biased[key] for key in keys], [law[key] * n_seeds for key in keys]).pvalue < 1e-6
    )


# ------------------------------------------------------------------------------- demonstrations


def test_cluster_demonstrations_pick_nearest_and_replace_with_next_nearest() -> None:
    X, centre_row = _two_blobs()
    model = QuantizedKMeans(2, 0.5, n_iter=3, gamma=0.0, stop="none", seed=0)
    model.fit(X, init_indices=[0, 9])
    demos = ClusterDemonstrations(model)
    centres = model.centroids_
    # The blob means (rows 4 and 13) are within 0.25*sqrt(2) of the quantized centres, every
    # other member at least sqrt(2) - 0.36 away.
    assert demos.indices.tolist() == [centre_row, 13]
    # Row 4 is its blob's exact mean: the deletion is certified and the demonstration is
    # replaced by the next nearest member (distances to the unchanged centre, ties to lower row).
    report, changed = demos.delete(centre_row)
    assert report.reason == "certified" and changed
    np.testing.assert_array_equal(model.centroids_, centres)
    rest = np.array([r for r in range(9) if r != centre_row])
    dist = ((X[rest] - centres[0]) ** 2).sum(1)
    assert demos.indices.tolist() == [int(rest[np.lexsort((rest, dist))[0]]), 13]


def test_random_demonstrations_law_after_deletion_is_uniform() -> None:
    # Uniform ordered 2-tuples of {0..3}; after deleting row 0 they must be uniform on {1,2,3}.
    counts: collections.Counter[tuple[int, int]] = collections.Counter()
    n_seeds = 3000
    changed = 0
    for seed in range(n_seeds):
        demos = RandomDemonstrations(4, 2, seed=seed)
        had_zero = 0 in demos.indices
        this_changed = demos.delete(0)
        assert this_changed == had_zero
        changed += this_changed
        counts[tuple(int(i) for i in demos.indices)] += 1
    keys = list(itertools.permutations([1, 2, 3], 2))
    assert sum(counts[key] for key in keys) == n_seeds
    assert chisquare([counts[key] for key in keys]).pvalue > 1e-3
    assert abs(changed / n_seeds - 0.5) < 0.05  # P(row 0 selected) = 2/4


def test_random_demonstrations_resample_only_when_a_demo_is_deleted() -> None:
    demos = RandomDemonstrations(50, 4, seed=0)
    chosen = demos.indices.copy()
    outsider = next(i for i in range(50) if i not in chosen)
    assert demos.delete(outsider) is False
    np.testing.assert_array_equal(demos.indices, chosen)
    assert demos.delete(int(chosen[2])) is True
    after = demos.indices
    np.testing.assert_array_equal(after[[0, 1, 3]], chosen[[0, 1, 3]])
    assert after[2] not in (outsider, chosen[2]) and len(set(after.tolist())) == 4
    small = RandomDemonstrations(3, 3, seed=0)
    small.delete(0)
    assert sorted(small.indices.tolist()) == [1, 2]  # no row left to refill the slot
    with pytest.raises(KeyError):
        small.delete(0)


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_clusters": 0, "epsilon": 1.0}, "n_clusters"),
        ({"n_clusters": 2, "epsilon": -1.0}, "epsilon"),
        ({"n_clusters": 2, "epsilon": 1.0, "n_iter": 0}, "n_iter"),
        ({"n_clusters": 2, "epsilon": 1.0, "stop": "center"}, "stop"),
        ({"n_clusters": 2, "epsilon": 1.0, "certificate": "fast"}, "certificate"),
        ({"n_clusters": 2, "epsilon": 1.0, "gamma": -0.1}, "gamma"),
    ],
)
def test_bad_parameters_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        QuantizedKMeans(**kwargs)


def test_bad_data_and_deletions_raise() -> None:
    model = QuantizedKMeans(3, 1.0)
    with pytest.raises(RuntimeError, match="fit"):
        model.delete(0)
    with pytest.raises(ValueError, match="rows"):
        model.fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="init_indices"):
        model.fit(np.eye(4), init_indices=[0, 0, 1])
    model.fit(np.eye(4) * 3, init_indices=[0, 1, 2])
    with pytest.raises(KeyError):
        model.delete(7)
    model.delete(3)
    with pytest.raises(KeyError, match="already"):
        model.delete(3)
    with pytest.raises(ValueError, match="remain"):
        model.delete(0)
