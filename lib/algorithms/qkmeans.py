"""Quantized k-means with exact, mostly constant-time deletion, and demonstration selection on top.

Algorithm (Q-k-means of Ginart, Guan, Valiant, Zou 2019, "Making AI Forget You"; reference code
`tginart/deletion-efficient-kmeans`, `del_eff_kmeans.py::QKmeans`; this is our own code):

- init: k-means++ (D^2 sampling, one candidate per step, i.e. `sklearn.cluster.kmeans_plusplus`
  with `n_local_trials=1`); the chosen row indices are recorded. The initial centres are not
  quantized (as in the reference).
- iteration t = 1..T (Lloyd): with the assignment `labels[t-1]` to the centres `C[t-1]`, take
  every cluster's sum `s_j` and size `n_j`; the analog centroid is the mean `s_j / n_j`, except for
  small clusters (`n_j < m`, momentum `m = gamma * n / k`), which lag towards the previous centre:
  `c_j = (n_j/m) * mean_j + (1 - n_j/m) * C[t-1]_j` (computed as `s_j/m + (1 - n_j/m) C[t-1]_j`,
  so an empty cluster keeps its previous centre); then `C[t] = Q(c, epsilon, theta_t)` with a
  fresh random phase `theta_t ~ U[0,1)^d`, and `labels[t]` = nearest centre of `C[t]`.
- quantizer: `Q(c) = epsilon * (round(c/epsilon + theta - 1/2) - (theta - 1/2))`, a grid of
  spacing `epsilon` shifted by the phase (`quantize`).
- stopping (`stop="loss"`, the reference's behaviour, which its QKmeans applies always): stop at
  the first iteration whose loss (mean squared distance to the assigned quantized centre) is not
  lower than the best so far; the model is the last improving iteration (`best_iter_`).
  `stop="none"` runs exactly `n_iter` iterations and keeps the last.
- metadata kept for deletion, per iteration: the centres `C[t]` (k x d), the assignment
  `labels[t]` (n), the cluster sums and sizes, the total squared distance (sse) and the phases.
  Memory: (T+1)(2kd + n + k + 1) numbers besides the data.

Deletion of row x (`delete`):

1. if x is one of the k-means++ init points, draw a new init on D minus x (the next
   `init_generation_` of the init random stream) and re-run everything;
2. otherwise the certificate walks t = 1..n_iter_: with x removed, recompute the analog centroid
   of x's cluster (`labels[t-1][x]`) from the *exact* new sum, `(n_a c - x)/(n_a - 1)`, and, when
   the momentum changes (`gamma > 0`: m depends on n), of every cluster that is small before or
   after; quantize with the stored phase and compare with the stored `C[t]`. It also re-derives the
   stopping decision from the updated sse (sse minus x's squared distance). At the first iteration
   where a quantized centre or the stopping decision changes, the Lloyd iterations are re-run from
   that iteration (the earlier ones are certified unchanged, so their metadata is updated in
   place). If every check passes, only the metadata is updated: O(T k d) work, independent of n.

Randomness and exactness (what "the same randomness" means). Two random sources:

- phases: `numpy.random.default_rng([seed, 0]).random((n_iter, d))`, drawn before any
  data-dependent step; they depend on (seed, n_iter, d) only, so D and D minus x see the same.
- init: `numpy.random.RandomState([seed, 1, generation])` passed to k-means++ on the active rows.

Given the init indices and the phases the algorithm is deterministic, so the definition is:

(E1) Deterministic exactness. After any sequence of deletions, the model's state (quantized centres
     of every iteration, final centres, assignments of the remaining rows, number of iterations,
     the selected demonstrations) equals `QuantizedKMeans(same parameters, same seed)
     .fit(D_remaining, init_indices=model.init_indices_)` (indices mapped to the compacted rows).
     Tested bitwise on many random small datasets (`tests/test_qkmeans.py`).
(E2) Exactness in distribution of the init. For D^2 sampling, the law of the init on D conditioned
     on "x not chosen" equals the law of the init on D minus x (each step's probabilities
     d_i^2 / sum_{j != x} d_j^2 are those of D minus x given the same earlier picks). Keeping the
     init when x was not chosen and drawing a fresh one on D minus x when it was therefore gives
     exactly the k-means++ law on D minus x (the same argument covers the first, uniform, pick).
     This is why the redraw uses a new stream (`generation + 1`): re-using the old stream would
     correlate the new init with the event "x was chosen". Tested against the enumerated law on
     a tiny dataset. (E1) + (E2): the state after deleting x has the law of `fit(D minus x)` with
     a fresh seed, which is the definition of exact unlearning.

Floating point. Sums are updated as `s - x` while a fit from scratch adds the n-1 rows in another
order, so analog centroids may differ in the last bits. The certificate therefore passes only when
the updated centroid lies at least `guard` grid units (default 1e-9) from a rounding boundary, and
the updated sse at least a relative `guard` from the value it is compared with; anything closer
counts as a change and triggers a re-run (always exact). Assignments use the BLAS form
`|x|^2 - 2 x.c + |c|^2` and recompute near-ties (relative gap < 1e-9) element-wise, so a row's
label does not depend on which other rows are present. Residual risk: a fit from scratch itself
landing within ~1e-12 grid units of a boundary (probability ~1e-10 per run).

Deviations from the reference (each documented where it happens):

- the certificate uses the exact new mean `(n c - x)/(n - 1)`; the reference uses `c - x/n`
  (`certificate="reference"` reproduces its test, with its momentum substitution; that mode is
  NOT exact and exists to compare re-clustering rates);
- x's cluster at iteration t is read from the stored assignment `labels[t-1]` (the one the means
  were computed from); the reference takes the nearest *analog centroid of iteration t*, which
  can be a different cluster;
- the certificate also checks the clusters whose momentum correction changes because m depends
  on n, and the loss-based stopping decision; the reference checks neither;
- an empty cluster keeps its previous centre (weight 0 in the momentum formula; with gamma = 0 the
  same rule); the reference re-seeds it with a k-means++ draw, which would make the run depend on
  extra data-dependent randomness;
- on failure we re-run from the failing iteration with the same init and phases (exact by (E1));
  the reference re-runs everything with fresh global randomness.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import kmeans_plusplus

logger = logging.getLogger(__name__)

__all__ = [
    "CERTIFICATES",
    "REASONS",
    "STOP_RULES",
    "ClusterDemonstrations",
    "DeletionReport",
    "QuantizedKMeans",
    "RandomDemonstrations",
    "assign_nearest",
    "grid_coordinates",
    "quantize",
]

#: Stopping rules: "loss" = the reference's (stop when the loss stops improving), "none" = T.
STOP_RULES = ("loss", "none")
#: Certificates: "exact" (new mean (n c - x)/(n-1), exact) or "reference" (c - x/n, not exact).
CERTIFICATES = ("exact", "reference")
#: Why a deletion did or did not re-cluster (`DeletionReport.reason`).
REASONS = ("certified", "init_point", "centroid_changed", "stopping_changed")

# Relative gap under which two candidate centres count as a near-tie and are re-compared
# element-wise (BLAS distance errors are ~d * 1e-16 relative, far below this).
_TIE_RTOL = 1e-9


# ------------------------------------------------------------------------------------ quantizer
def grid_coordinates(values: np.ndarray, epsilon: float, phase: np.ndarray) -> np.ndarray:
    """`values / epsilon + phase - 1/2`: integers exactly on the grid of `quantize`."""
    return np.asarray(values, dtype=np.float64) / epsilon + (phase - 0.5)


def quantize(values: np.ndarray, epsilon: float, phase: np.ndarray) -> np.ndarray:
    """Round every coordinate to the epsilon-grid shifted by `phase` (broadcast over the last axis).

    `Q(v) = epsilon * (round(v/epsilon + phase - 1/2) - (phase - 1/2))`; the grid points are
    `epsilon * (z + 1/2 - phase)` for integers z, `|Q(v) - v| <= epsilon/2`, and with a uniform
    phase the rounding is unbiased (E_phase Q(v) = v).
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return epsilon * (np.rint(grid_coordinates(values, epsilon, phase)) - (phase - 0.5))


# ----------------------------------------------------------------------------------- assignment
def assign_nearest(
    X: np.ndarray, centers: np.ndarray, x_sq: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre (lowest index on exact ties) and the squared distance, per row.

    Distances use `|x|^2 - 2 x.c + |c|^2` (one matrix product); rows whose two best candidates
    are within a relative 1e-9 are recomputed element-wise so that the label of a row depends on
    that row alone (not on the other rows of the product), which the exactness tests rely on.
    """
    if x_sq is None:
        x_sq = (X * X).sum(axis=1)
    c_sq = (centers * centers).sum(axis=1)
    d2 = x_sq[:, None] - 2.0 * (X @ centers.T) + c_sq[None, :]
    labels = np.argmin(d2, axis=1)
    best = d2[np.arange(len(X)), labels]
    if centers.shape[0] > 1:
        two = np.partition(d2, 1, axis=1)[:, :2]
        scale = x_sq + c_sq.max() + np.finfo(np.float64).tiny
        for r in np.nonzero(two[:, 1] - two[:, 0] <= _TIE_RTOL * scale)[0]:
            exact = ((X[r][None, :] - centers) ** 2).sum(axis=1)
            labels[r] = int(np.argmin(exact))
            best[r] = exact[labels[r]]
    return labels.astype(np.int64), np.maximum(best, 0.0)


def _corrected_centroids(
    sums: np.ndarray, sizes: np.ndarray, momentum: float, previous: np.ndarray
) -> np.ndarray:
    """Analog centroids with the momentum correction (row-wise, so subsets give identical rows).

    Cluster j with `n_j >= m` gets its mean `s_j/n_j`; a small one (`n_j < m`) gets
    `s_j/m + (1 - n_j/m) * previous_j` (= the reference's lagged centroid); an empty cluster that
    is not small (only possible with m = 0) keeps `previous_j`.
    """
    out = previous.copy()
    sizes_f = sizes.astype(np.float64)
    small = sizes_f < momentum
    big = ~small & (sizes > 0)
    out[big] = sums[big] / sizes_f[big, None]
    if small.any():
        out[small] = (
            sums[small] / momentum + (1.0 - sizes_f[small] / momentum)[:, None] * (previous[small])
        )
    return out


# ------------------------------------------------------------------------------------ the model
@dataclass(frozen=True)
class DeletionReport:
    """Outcome of one deletion.

    Attributes:
        index: the deleted row (index into the data given to `fit`).
        reclustered: whether any Lloyd iteration (or the init) had to be re-run.
        reason: one of `REASONS`.
        failed_iteration: first iteration (1-based) whose check failed; 0 for an init point;
            None when certified.
        iterations_rerun: Lloyd iterations recomputed (0 when certified).
        seconds: wall-clock time of the whole deletion (certificate + re-run).
        flops: estimated floating-point operations (certificate ~ T*|J|*d*8; each re-run
            iteration ~ 4*n*k*d for the distances and the cluster sums; k-means++ ~ 3*n*k*d).
    """

    index: int
    reclustered: bool
    reason: str
    failed_iteration: int | None
    iterations_rerun: int
    seconds: float
    flops: float


class QuantizedKMeans:
    """Quantized Lloyd k-means with a deletion certificate (see the module docstring).

    Args:
        n_clusters: k (>= 1).
        epsilon: grid spacing of the quantizer, in the units of the data (> 0). Larger = fewer
            re-clusterings on deletion, coarser centres.
        n_iter: maximum number of Lloyd iterations T (>= 1).
        gamma: momentum parameter (>= 0): clusters smaller than `gamma * n / k` lag towards their
            previous centre (reference default 0.2; 0 disables it).
        stop: `"loss"` (reference: stop when the loss stops improving) or `"none"`.
        certificate: `"exact"` or `"reference"` (the reference's `c - x/n`; not exact).
        guard: safety margin of the certificate, in grid units for centroids and relative for
            the loss (see "Floating point" in the module docstring).
        seed: seed of the phase and init random streams.

    Attributes after `fit`: `centroids_` (k x d, the quantized centres of `best_iter_`),
    `labels_` (n; -1 for deleted rows), `init_indices_`, `init_generation_`, `n_iter_`,
    `best_iter_`, `phases_` (T x d), `active_` (bool mask of remaining rows), `deletions_`
    (list of `DeletionReport`).
    """

    def __init__(
        self,
        n_clusters: int,
        epsilon: float,
        n_iter: int = 10,
        gamma: float = 0.2,
        stop: str = "loss",
        certificate: str = "exact",
        guard: float = 1e-9,
        seed: int = 0,
    ) -> None:
        if int(n_clusters) != n_clusters or n_clusters < 1:
            raise ValueError(f"n_clusters must be an integer >= 1, got {n_clusters!r}")
        if not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")
        if int(n_iter) != n_iter or n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
        if not gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}")
        if stop not in STOP_RULES:
            raise ValueError(f"stop must be one of {STOP_RULES}, got {stop!r}")
        if certificate not in CERTIFICATES:
            raise ValueError(f"certificate must be one of {CERTIFICATES}, got {certificate!r}")
        if not 0 <= guard < 0.5:
            raise ValueError(f"guard must be in [0, 0.5), got {guard!r}")
        if int(seed) != seed or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.n_clusters = int(n_clusters)
        self.epsilon = float(epsilon)
        self.n_iter = int(n_iter)
        self.gamma = float(gamma)
        self.stop = stop
        self.certificate = certificate
        self.guard = float(guard)
        self.seed = int(seed)
        self._fitted = False

    # ------------------------------------------------------------------------------ public API
    def fit(self, X: np.ndarray, init_indices: np.ndarray | None = None) -> QuantizedKMeans:
        """Cluster the rows of X (n x d; kept as float64 without a copy when it already is one,
        so do not modify it afterwards).

        Args:
            X: data, n >= n_clusters rows, finite values.
            init_indices: k distinct row indices to use as initial centres instead of drawing
                them with k-means++ (how a run "with the same randomness" is reproduced).
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] < self.n_clusters or X.shape[1] < 1:
            raise ValueError(
                f"X must be 2-D with at least n_clusters={self.n_clusters} rows, got {X.shape}"
            )
        if not np.isfinite(X).all():
            raise ValueError("X contains NaN or infinite values")
        n, d = X.shape
        k, T = self.n_clusters, self.n_iter
        self._X = X
        self._x_sq = (X * X).sum(axis=1)
        self.active_ = np.ones(n, dtype=bool)
        self._n_active = n
        self.phases_ = np.random.default_rng([self.seed, 0]).random((T, d))
        self._centers = np.zeros((T + 1, k, d))
        self._labels = np.full((T + 1, n), -1, dtype=np.int64)
        self._sums = np.zeros((T + 1, k, d))
        self._sizes = np.zeros((T + 1, k), dtype=np.int64)
        self._sse = np.zeros(T + 1)
        self.deletions_: list[DeletionReport] = []
        self.init_generation_ = 0
        if init_indices is None:
            self.init_indices_ = self._draw_init()
        else:
            init = np.asarray(init_indices, dtype=np.int64)
            if (
                init.shape != (k,)
                or len(set(init.tolist())) != k
                or init.min() < 0
                or init.max() >= n
            ):
                raise ValueError(
                    f"init_indices must be {k} distinct row indices in [0, {n}), got {init_indices}"
                )
            self.init_indices_ = init
        self._run_from(0)
        self._fitted = True
        return self

    @property
    def centroids_(self) -> np.ndarray:
        """Quantized centres of the returned iteration (`best_iter_`), k x d."""
        self._check_fitted()
        return self._centers[self.best_iter_].copy()

    @property
    def labels_(self) -> np.ndarray:
        """Cluster of every row under `centroids_`; -1 for deleted rows."""
        self._check_fitted()
        return self._labels[self.best_iter_].copy()

    @property
    def n_active_(self) -> int:
        """Number of rows not deleted."""
        self._check_fitted()
        return self._n_active

    @property
    def recluster_rate(self) -> float:
        """Fraction of deletions so far that re-ran any clustering (nan before any deletion)."""
        if not self.deletions_:
            return float("nan")
        return float(np.mean([r.reclustered for r in self.deletions_]))

    def history(self) -> dict[str, np.ndarray]:
        """Per-iteration metadata, iteration 0 (init) to `n_iter_` (copies).

        Keys: `centers` (T'+1, k, d), `labels` (T'+1, n), `sums` and `sizes` (index 0 unused),
        `sse` (total squared distance of the remaining rows, per iteration), `phases` (T', d).
        """
        self._check_fitted()
        t = self.n_iter_ + 1
        return {
            "centers": self._centers[:t].copy(),
            "labels": self._labels[:t].copy(),
            "sums": self._sums[:t].copy(),
            "sizes": self._sizes[:t].copy(),
            "sse": self._sse[:t].copy(),
            "phases": self.phases_[: self.n_iter_].copy(),
        }

    def delete(self, index: int) -> DeletionReport:
        """Remove row `index` (of the data given to `fit`) exactly; see the module docstring."""
        self._check_fitted()
        index = int(index)
        if not 0 <= index < len(self.active_):
            raise KeyError(f"index must be in [0, {len(self.active_)}), got {index}")
        if not self.active_[index]:
            raise KeyError(f"row {index} was already deleted")
        if self.n_active_ - 1 < self.n_clusters:
            raise ValueError(
                f"cannot delete: {self.n_active_ - 1} rows would remain for "
                f"n_clusters={self.n_clusters}"
            )
        start = time.perf_counter()
        n_act, k, d = self.n_active_, self.n_clusters, self._X.shape[1]
        if index in set(self.init_indices_.tolist()):
            self.active_[index] = False
            self._n_active -= 1
            self._labels[:, index] = -1
            self.init_generation_ += 1
            self.init_indices_ = self._draw_init()
            self._run_from(0)
            rerun = self.n_iter_
            report = DeletionReport(
                index, True, "init_point", 0, rerun, time.perf_counter() - start,
                3.0 * n_act * k * d + 4.0 * rerun * n_act * k * d,
            )  # fmt: skip
        else:
            failed, reason, cert_flops = self._certify_and_update(index)
            rerun = 0
            if failed is not None:
                before = self.n_iter_
                self._run_from(failed - 1)
                rerun = self.n_iter_ - (failed - 1)
                logger.debug("row %d: %s at iteration %d/%d", index, reason, failed, before)
            report = DeletionReport(
                index, failed is not None, reason, failed, rerun, time.perf_counter() - start,
                cert_flops + 4.0 * rerun * n_act * k * d,
            )  # fmt: skip
        self.deletions_.append(report)
        return report

    # ------------------------------------------------------------------------------- internals
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("call fit() first")

    def _momentum(self, n_active: int) -> float:
        return self.gamma * n_active / self.n_clusters

    def _draw_init(self) -> np.ndarray:
        """k-means++ (plain D^2 sampling) on the active rows, from stream (seed, 1, generation)."""
        rows = np.nonzero(self.active_)[0]
        state = np.random.RandomState([self.seed, 1, self.init_generation_])
        _, local = kmeans_plusplus(
            self._X[rows], self.n_clusters, random_state=state, n_local_trials=1
        )
        return rows[np.asarray(local, dtype=np.int64)]

    def _assign_active(self, centers: np.ndarray) -> tuple[np.ndarray, float]:
        labels, dist = assign_nearest(self._X, centers, self._x_sq)
        labels[~self.active_] = -1
        return labels, float(dist[self.active_].sum())

    def _cluster_sums(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = np.nonzero(labels >= 0)[0]
        onehot = np.zeros((self.n_clusters, len(labels)))
        onehot[labels[rows], rows] = 1.0
        return onehot @ self._X, np.bincount(labels[rows], minlength=self.n_clusters)

    def _run_from(self, start: int) -> None:
        """Recompute iterations start+1..T; iterations 0..start must be valid for the active rows.

        With stop="loss", iterations 1..start are known to have improved, so the best sse so far
        is `sse[start]`.
        """
        momentum = self._momentum(self._n_active)
        if start == 0:
            self._centers[0] = self._X[self.init_indices_]
            self._labels[0], self._sse[0] = self._assign_active(self._centers[0])
        best = self._sse[start] if start > 0 else np.inf
        self.best_iter_ = start
        for t in range(start + 1, self.n_iter + 1):
            sums, sizes = self._cluster_sums(self._labels[t - 1])
            analog = _corrected_centroids(sums, sizes, momentum, self._centers[t - 1])
            self._centers[t] = quantize(analog, self.epsilon, self.phases_[t - 1])
            self._sums[t], self._sizes[t] = sums, sizes
            self._labels[t], self._sse[t] = self._assign_active(self._centers[t])
            self.n_iter_ = t
            if self.stop == "loss" and not self._sse[t] < best:
                break  # the reference: stop when the loss did not improve; keep the previous
            best = self._sse[t]
            self.best_iter_ = t

    def _certify_and_update(self, index: int) -> tuple[int | None, str, float]:
        """Run the certificate for row `index`; update metadata in place for certified iterations.

        All iterations are checked at once (vectorised over the (iteration, cluster) pairs that
        removing x can affect). Returns (first failing iteration or None, reason, estimated
        flops). On return the row is marked deleted and the iterations before the failing one
        (all of them when certified) no longer count it, ready for `_run_from(failed - 1)`.
        """
        x = self._X[index]
        d, T = len(x), self.n_iter_
        n_old = self._n_active
        m_old, m_new = self._momentum(n_old), self._momentum(n_old - 1)
        steps = np.arange(T)  # row s describes iteration t = s + 1
        a = self._labels[steps, index]  # x's cluster when the means of iteration t are taken
        sizes_new = self._sizes[1 : T + 1].copy()
        sizes_new[steps, a] -= 1
        if self.certificate == "exact":
            bad_iters, n_checked = self._changed_iterations(x, a, sizes_new, m_old, m_new)
        else:
            bad_iters = [
                t
                for t in range(1, self.best_iter_ + 1)
                if not self._reference_check(t, a, x, m_old)
            ]
            n_checked = T
        first_bad = int(min(bad_iters)) if len(bad_iters) else None
        # sse of every iteration (0..T) without x: subtract x's squared distance to its centre.
        b = self._labels[: T + 1, index]
        new_sse = self._sse[: T + 1] - ((x - self._centers[np.arange(T + 1), b]) ** 2).sum(axis=1)
        flops = 8.0 * n_checked * d + 3.0 * (T + 1) * d
        failed, reason = (first_bad, "centroid_changed") if first_bad is not None else (None, "")
        if self.stop == "loss" and self.certificate == "exact":
            best = np.inf
            for t in range(1, (first_bad or T + 1)):
                improved_new = new_sse[t] < best
                close = np.isfinite(best) and abs(new_sse[t] - best) <= self.guard * max(
                    abs(new_sse[t]), abs(best)
                )
                if close or improved_new != (t <= self.best_iter_):
                    failed, reason = t, "stopping_changed"
                    break
                if improved_new:
                    best = new_sse[t]
        last = T if failed is None else failed - 1
        # Metadata of the certified iterations 0..last: remove x.
        certified = steps[:last]
        self._sums[certified + 1, a[:last]] -= x
        self._sizes[certified + 1, a[:last]] -= 1
        self._sse[: last + 1] = new_sse[: last + 1]
        self._labels[:, index] = -1
        self.active_[index] = False
        self._n_active -= 1
        return failed, reason or "certified", flops

    def _changed_iterations(
        self, x: np.ndarray, a: np.ndarray, sizes_new: np.ndarray, m_old: float, m_new: float
    ) -> tuple[np.ndarray, int]:
        """Exact certificate: the iterations (1-based) whose quantized centres change without x.

        Checked pairs (iteration t, cluster j): x's cluster, plus, when the momentum is on (it
        depends on n, so it changes), every cluster that is small before or after. The new
        analog centroid is computed with the same row-wise formula as the fit, from the exact
        new sum; the check also fails inside the `guard` band around a rounding boundary.
        """
        T = len(a)
        sizes_old = self._sizes[1 : T + 1]
        if m_old > 0:
            affected = (sizes_new < m_new) | (sizes_old < m_old)
        else:
            affected = np.zeros(sizes_old.shape, dtype=bool)
        affected[np.arange(T), a] = True
        s, j = np.nonzero(affected)
        sums = self._sums[s + 1, j]
        sums[j == a[s]] -= x
        analog = _corrected_centroids(sums, sizes_new[s, j], m_new, self._centers[s, j])
        phase = self.phases_[s]
        u = grid_coordinates(analog, self.epsilon, phase)
        z = np.rint(u)
        stored = np.rint(grid_coordinates(self._centers[s + 1, j], self.epsilon, phase))
        ok = (z == stored).all(axis=1) & (np.abs(u - z) < 0.5 - self.guard).all(axis=1)
        return np.unique(s[~ok]) + 1, len(s)

    def _reference_check(self, t: int, a: np.ndarray, x: np.ndarray, m_old: float) -> bool:
        """The reference's test (`_certify_invariance`): Q(c) == Q(c - x/n_a), momentum-substituted.

        Not exact (the perturbed centroid is not the mean without x, other clusters' momentum
        changes and the stopping rule are ignored); like the reference it checks the iterations
        up to the returned one only. Kept to reproduce the reference's re-clustering rate.
        """
        a = int(a[t - 1])
        size = float(self._sizes[t][a])
        centroid = self._sums[t][a] / size if size > 0 else self._centers[t - 1][a]
        if size < m_old:
            lag = (m_old - size) / m_old
            centroid = (size / m_old) * centroid + lag * self._centers[t - 1][a]
            size = m_old
        phase = self.phases_[t - 1]
        return bool(
            np.array_equal(
                quantize(centroid, self.epsilon, phase),
                quantize(centroid - x / size, self.epsilon, phase),
            )
        )


# ----------------------------------------------------------------------- demonstration selection
class ClusterDemonstrations:
    """One demonstration per non-empty cluster: the member nearest to its quantized centre.

    Distances are Euclidean in the clustered space, computed element-wise (row-deterministic);
    ties go to the lower row index. `indices` lists one row per non-empty cluster in cluster
    order (clusters are numbered in k-means++ init order); an empty cluster contributes none.

    Deletion goes through `delete`, which deletes from the wrapped `QuantizedKMeans`; if the
    clustering was certified unchanged, a deleted demonstration is replaced by the next nearest
    remaining member of its cluster (a per-cluster sorted order is kept, O(1) amortised);
    otherwise the selection is rebuilt. Either way the selection equals the selection on a
    from-scratch fit with the same randomness (property (E1) of the module docstring).
    """

    def __init__(self, kmeans: QuantizedKMeans) -> None:
        kmeans._check_fitted()
        self.kmeans = kmeans
        self._rebuild()

    def _rebuild(self) -> None:
        X, centers, labels = self.kmeans._X, self.kmeans.centroids_, self.kmeans.labels_
        self._order: list[np.ndarray] = []
        self._pos = np.zeros(self.kmeans.n_clusters, dtype=np.int64)
        for j in range(self.kmeans.n_clusters):
            members = np.nonzero(labels == j)[0]
            dist = ((X[members] - centers[j]) ** 2).sum(axis=1)
            self._order.append(members[np.lexsort((members, dist))])

    @property
    def indices(self) -> np.ndarray:
        """Selected rows, one per non-empty cluster, in cluster order."""
        out = [
            int(order[pos])
            for order, pos in zip(self._order, self._pos, strict=True)
            if pos < len(order)
        ]
        return np.asarray(out, dtype=np.int64)

    def delete(self, index: int) -> tuple[DeletionReport, bool]:
        """Delete row `index`; returns (the clustering's report, whether the selection changed)."""
        before = self.indices
        report = self.kmeans.delete(index)
        if report.reclustered:
            self._rebuild()
        else:
            active = self.kmeans.active_
            for j, order in enumerate(self._order):
                while self._pos[j] < len(order) and not active[order[self._pos[j]]]:
                    self._pos[j] += 1
        return report, not np.array_equal(before, self.indices)


class RandomDemonstrations:
    """Uniformly random k-shot selection with exact deletion (a baseline).

    The selection is an ordered k-tuple of distinct rows, uniform over all such tuples (order =
    prompt order). Deleting a row that is not selected changes nothing; deleting a selected row
    refills its slot with a uniform draw among the remaining unselected rows. Conditioned on x not
    being selected, a uniform tuple from D is a uniform tuple from D minus x, and refilling the slot
    uniformly keeps it uniform, so the selection after deletion has exactly the law of a fresh
    selection on D minus x. When fewer than k rows remain, the slot is dropped.

    Args:
        n: number of rows to select from.
        k: number of demonstrations (1 <= k <= n).
        seed: seed of the selection's random stream (`numpy.random.default_rng([seed, 2])`).
    """

    def __init__(self, n: int, k: int, seed: int = 0) -> None:
        if int(k) != k or not 1 <= k <= n:
            raise ValueError(f"k must be an integer in [1, n={n}], got {k!r}")
        self._rng = np.random.default_rng([int(seed), 2])
        self.active_ = np.ones(n, dtype=bool)
        self._slots = [int(i) for i in self._rng.choice(n, size=k, replace=False)]

    @property
    def indices(self) -> np.ndarray:
        """Selected rows in prompt order."""
        return np.asarray(self._slots, dtype=np.int64)

    def delete(self, index: int) -> bool:
        """Delete row `index`; returns whether the selection changed."""
        index = int(index)
        if not 0 <= index < len(self.active_) or not self.active_[index]:
            raise KeyError(f"row {index} is not an active row")
        self.active_[index] = False
        if index not in self._slots:
            return False
        slot = self._slots.index(index)
        chosen = set(self._slots)
        free = int(self.active_.sum()) - (len(chosen) - 1)
        if free <= 0:
            del self._slots[slot]
            return True
        n = len(self.active_)
        if free * 4 >= n:  # rejection sampling: expected <= 4 draws
            while True:
                j = int(self._rng.integers(n))
                if self.active_[j] and j not in chosen:
                    break
        else:
            candidates = np.nonzero(self.active_)[0]
            candidates = candidates[~np.isin(candidates, list(chosen))]
            j = int(candidates[self._rng.integers(len(candidates))])
        self._slots[slot] = j
        return True
