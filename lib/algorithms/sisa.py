"""SISA bookkeeping (Bourtoule et al. 2021, "Machine Unlearning"): which examples train which
shard model in which stage, what a deletion forces to be retrained, and how shard predictions are
aggregated. A pure data structure (numpy only); the training itself belongs to the caller.

Layout. The n examples are permuted with a seeded generator and split into `n_shards` shards of
near-equal size (sizes differ by at most one); each shard's examples, in permutation order, are
split into `n_slices` slices the same way. Shard s trains in `n_slices` stages: stage r
(0-based) continues from checkpoint r-1 (stage 0 from the base model), trains on the examples of
slices 0..r (cumulative, the slice-r examples being new) for `stage_epochs[r]` epochs, and saves
checkpoint r. The shard's model is checkpoint `n_slices - 1`.

Deletion. Removing an example of (shard s, slice r) invalidates checkpoints r..R-1 of shard s
only: the shard is retrained from checkpoint r-1 through stages r..R-1 on the remaining examples.
Several deletions applied together retrain each affected shard once, from its earliest affected
slice. Costs are counted in example passes (sum over retrained stages of epochs x examples in the
stage) and, when per-example token lengths are given, in tokens (the FLOPs of the retraining are
about 6 N x tokens for an N-parameter model).

Aggregation (`majority_vote`, `average_probabilities`): ties go to the lowest label id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RetrainPlan",
    "SisaPartition",
    "average_probabilities",
    "bourtoule_stage_epochs",
    "majority_vote",
    "normalize_label_logprobs",
]


@dataclass(frozen=True)
class RetrainPlan:
    """What one deletion request forces in one shard.

    Attributes:
        shard: the affected shard.
        from_slice: first stage to retrain (0-based); training restarts from checkpoint
            `from_slice - 1` (-1 = the base model).
        deleted: the deleted examples of this shard in this request (sorted).
        stage_sizes: examples in each retrained stage `from_slice..n_slices-1`, after deletion.
        examples_retrained: example passes of the retraining (sum of epochs x stage size).
        tokens_retrained: token passes of the retraining (0 when no lengths were given).
    """

    shard: int
    from_slice: int
    deleted: tuple[int, ...]
    stage_sizes: tuple[int, ...]
    examples_retrained: float
    tokens_retrained: float


def bourtoule_stage_epochs(total_epochs: float, n_slices: int) -> list[float]:
    """Per-stage epochs 2e/(R+1) (Bourtoule et al. Sec. V-B): with R equal slices the sliced
    schedule then costs the same example passes as e epochs on the whole shard."""
    if n_slices < 1 or total_epochs <= 0:
        raise ValueError(f"need n_slices >= 1 and total_epochs > 0, got {n_slices}, {total_epochs}")
    return [2.0 * total_epochs / (n_slices + 1)] * n_slices


class SisaPartition:
    """Shard x slice assignment of n examples with deletion planning.

    Args:
        n: number of training examples (indices 0..n-1).
        n_shards: S >= 1, at most n (every shard starts non-empty).
        n_slices: R >= 1 (slices may be empty when a shard has fewer than R examples).
        seed: seed of the permutation (`numpy.random.default_rng([seed, 3])`).
        lengths: optional tokens per example (n non-negative numbers) for token counts.
        stage_epochs: epochs per stage, one number for all stages or R numbers.
    """

    def __init__(
        self,
        n: int,
        n_shards: int,
        n_slices: int,
        seed: int = 0,
        lengths: Sequence[float] | np.ndarray | None = None,
        stage_epochs: float | Sequence[float] = 1.0,
    ) -> None:
        if int(n_shards) != n_shards or not 1 <= n_shards <= n:
            raise ValueError(f"n_shards must be an integer in [1, n={n}], got {n_shards!r}")
        if int(n_slices) != n_slices or n_slices < 1:
            raise ValueError(f"n_slices must be an integer >= 1, got {n_slices!r}")
        epochs = np.asarray(stage_epochs, dtype=np.float64)
        if epochs.ndim > 1 or (epochs.ndim == 1 and len(epochs) != n_slices):
            raise ValueError(f"stage_epochs must be a number or {n_slices} numbers")
        epochs = np.broadcast_to(epochs, (n_slices,)).copy()
        if not (epochs >= 0).all():
            raise ValueError(f"stage_epochs must be >= 0, got {stage_epochs!r}")
        if lengths is None:
            self.lengths = np.zeros(n)
        else:
            self.lengths = np.asarray(lengths, dtype=np.float64)
            if self.lengths.shape != (n,) or not (self.lengths >= 0).all():
                raise ValueError(f"lengths must be {n} non-negative numbers")
        self.n, self.n_shards, self.n_slices, self.seed = n, int(n_shards), int(n_slices), seed
        self.stage_epochs = epochs
        self.order = np.random.default_rng([int(seed), 3]).permutation(n)
        self.shard_of = np.empty(n, dtype=np.int64)
        self.slice_of = np.empty(n, dtype=np.int64)
        for s, shard in enumerate(np.array_split(self.order, self.n_shards)):
            self.shard_of[shard] = s
            for r, part in enumerate(np.array_split(shard, self.n_slices)):
                self.slice_of[part] = r
        self.active = np.ones(n, dtype=bool)
        self.history: list[list[RetrainPlan]] = []

    # -------------------------------------------------------------------------------- queries
    def locate(self, index: int) -> tuple[int, int]:
        """(shard, slice) of example `index` (deleted examples keep their location)."""
        if not 0 <= int(index) < self.n:
            raise KeyError(f"index must be in [0, {self.n}), got {index}")
        return int(self.shard_of[index]), int(self.slice_of[index])

    def members(self, shard: int, slice_: int | None = None) -> np.ndarray:
        """Remaining examples of a shard (or of one of its slices), in training order."""
        self._check_shard(shard)
        keep = self.active[self.order] & (self.shard_of[self.order] == shard)
        if slice_ is not None:
            keep &= self.slice_of[self.order] == slice_
        return self.order[keep]

    def stage_members(self, shard: int, stage: int) -> np.ndarray:
        """Training set of a stage: remaining examples of slices 0..stage, in training order."""
        if not 0 <= stage < self.n_slices:
            raise ValueError(f"stage must be in [0, {self.n_slices}), got {stage}")
        keep = self.members(shard)
        return keep[self.slice_of[keep] <= stage]

    def training_cost(self, shard: int, from_slice: int = 0) -> tuple[float, float]:
        """(example passes, token passes) of training `shard` from stage `from_slice` to the end."""
        examples = tokens = 0.0
        for stage in range(from_slice, self.n_slices):
            rows = self.stage_members(shard, stage)
            examples += self.stage_epochs[stage] * len(rows)
            tokens += self.stage_epochs[stage] * float(self.lengths[rows].sum())
        return examples, tokens

    def full_training_cost(self) -> tuple[float, float]:
        """(example passes, token passes) of training every shard from scratch now."""
        costs = [self.training_cost(s) for s in range(self.n_shards)]
        return sum(c[0] for c in costs), sum(c[1] for c in costs)

    @property
    def empty_shards(self) -> list[int]:
        """Shards with no remaining example (their model should be left out of aggregation)."""
        counts = np.bincount(self.shard_of[self.active], minlength=self.n_shards)
        return [int(s) for s in np.nonzero(counts == 0)[0]]

    # ------------------------------------------------------------------------------ deletions
    def plan(self, indices: int | Iterable[int]) -> list[RetrainPlan]:
        """Retraining plans (one per affected shard, by shard id) for deleting `indices` together;
        nothing is changed. Costs are those of the data as it will be after the deletion."""
        rows = self._validate(indices)
        after = self.active.copy()
        after[rows] = False
        plans = []
        for shard in sorted(set(self.shard_of[rows].tolist())):
            mine = sorted(int(i) for i in rows if self.shard_of[i] == shard)
            start = int(self.slice_of[mine].min())
            sizes, examples, tokens = [], 0.0, 0.0
            in_shard = after & (self.shard_of == shard)
            for stage in range(start, self.n_slices):
                stage_rows = np.nonzero(in_shard & (self.slice_of <= stage))[0]
                sizes.append(len(stage_rows))
                examples += self.stage_epochs[stage] * len(stage_rows)
                tokens += self.stage_epochs[stage] * float(self.lengths[stage_rows].sum())
            plans.append(RetrainPlan(shard, start, tuple(mine), tuple(sizes), examples, tokens))
        return plans

    def delete(self, indices: int | Iterable[int]) -> list[RetrainPlan]:
        """Delete `indices` as one request; returns (and records in `history`) the plans."""
        plans = self.plan(indices)
        self.active[self._validate(indices)] = False
        self.history.append(plans)
        return plans

    def _validate(self, indices: int | Iterable[int]) -> np.ndarray:
        items = list(indices) if isinstance(indices, Iterable) else [indices]
        rows = np.asarray(items, dtype=np.int64).reshape(-1)
        if rows.size == 0:
            raise ValueError("no index to delete")
        if rows.min() < 0 or rows.max() >= self.n:
            raise KeyError(f"indices must be in [0, {self.n}), got {rows.tolist()}")
        if len(set(rows.tolist())) != len(rows):
            raise ValueError(f"duplicate indices in one request: {rows.tolist()}")
        gone = rows[~self.active[rows]]
        if len(gone):
            raise KeyError(f"already deleted: {gone.tolist()}")
        return rows

    def _check_shard(self, shard: int) -> None:
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard must be in [0, {self.n_shards}), got {shard}")


# ---------------------------------------------------------------------------------- aggregation
def majority_vote(predictions: np.ndarray, n_labels: int | None = None) -> np.ndarray:
    """Most frequent label per example over shard models; ties go to the lowest label id.

    Args:
        predictions: (S, m) integer labels of S shard models for m examples.
        n_labels: number of labels (default: max label + 1).
    """
    pred = np.asarray(predictions)
    if pred.ndim != 2 or pred.shape[0] < 1 or not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"predictions must be an (S >= 1, m) integer array, got {pred.shape}")
    if pred.size and pred.min() < 0:
        raise ValueError("labels must be >= 0")
    n_labels = int(pred.max()) + 1 if n_labels is None else n_labels
    if pred.size and pred.max() >= n_labels:
        raise ValueError(f"labels must be < n_labels={n_labels}")
    votes = np.zeros((pred.shape[1], n_labels), dtype=np.int64)
    np.add.at(votes, (np.broadcast_to(np.arange(pred.shape[1]), pred.shape), pred), 1)
    return votes.argmax(axis=1)  # argmax returns the first (lowest) label among ties


def normalize_label_logprobs(logprobs: np.ndarray) -> np.ndarray:
    """Label probabilities from per-label log-probabilities (softmax over the last axis), i.e.
    the model's distribution restricted to the candidate labels."""
    lp = np.asarray(logprobs, dtype=np.float64)
    lp = lp - lp.max(axis=-1, keepdims=True)
    p = np.exp(lp)
    return p / p.sum(axis=-1, keepdims=True)


def average_probabilities(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean label distribution over shard models and its argmax (ties -> lowest label id).

    Args:
        probabilities: (S, m, C) label probabilities of S shard models for m examples.

    Returns:
        (mean probabilities (m, C), predicted labels (m,)).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] < 1:
        raise ValueError(f"probabilities must be an (S >= 1, m, C) array, got {p.shape}")
    mean = p.mean(axis=0)
    return mean, mean.argmax(axis=1)
