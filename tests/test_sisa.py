"""Tests of lib.algorithms.sisa: shard/slice layout, deletion plans and their costs (against
hand-computed values and a brute-force recount), and the aggregation helpers."""

from __future__ import annotations

import numpy as np
import pytest

from lib.algorithms.sisa import (
    SisaPartition,
    average_probabilities,
    bourtoule_stage_epochs,
    majority_vote,
    normalize_label_logprobs,
)

# --------------------------------------------------------------------------------------- layout


def test_every_example_has_one_shard_and_slice_balanced_and_seeded() -> None:
    p = SisaPartition(103, n_shards=4, n_slices=5, seed=1)
    shard_sizes = np.bincount(p.shard_of, minlength=4)
    assert shard_sizes.sum() == 103 and shard_sizes.max() - shard_sizes.min() <= 1
    for s in range(4):
        rows = p.members(s)
        assert len(rows) == shard_sizes[s]
        slice_sizes = [len(p.members(s, r)) for r in range(5)]
        assert sum(slice_sizes) == len(rows) and max(slice_sizes) - min(slice_sizes) <= 1
        # members come in training order: slice 0 first, the permutation order inside
        assert list(p.slice_of[rows]) == sorted(p.slice_of[rows])
    again = SisaPartition(103, 4, 5, seed=1)
    np.testing.assert_array_equal(again.shard_of, p.shard_of)
    np.testing.assert_array_equal(again.slice_of, p.slice_of)
    other = SisaPartition(103, 4, 5, seed=2)
    assert not np.array_equal(other.shard_of, p.shard_of)
    assert p.locate(int(p.members(2, 3)[0])) == (2, 3)


def test_stage_members_are_cumulative_slices() -> None:
    p = SisaPartition(30, n_shards=2, n_slices=3, seed=0)
    for s in range(2):
        for stage in range(3):
            expected = np.concatenate([p.members(s, r) for r in range(stage + 1)])
            np.testing.assert_array_equal(p.stage_members(s, stage), expected)


# ------------------------------------------------------------------------------------ deletions


def _example(seed: int = 0) -> SisaPartition:
    # 12 examples, 2 shards of 6, 3 slices of 2 per shard; 1 token per unit of index + 1.
    return SisaPartition(12, 2, 3, seed=seed, lengths=np.arange(1, 13), stage_epochs=[1, 2, 3])


def test_plan_hand_computed() -> None:
    p = _example()
    victim = int(p.members(0, 1)[0])  # shard 0, slice 1
    (plan,) = p.plan(victim)
    assert (plan.shard, plan.from_slice, plan.deleted) == (0, 1, (victim,))
    # stages 1 and 2 of shard 0 retrain on 4-1 and 6-1 examples, for 2 and 3 epochs
    assert plan.stage_sizes == (3, 5)
    assert plan.examples_retrained == 2 * 3 + 3 * 5
    stage1 = [i for i in p.stage_members(0, 1) if i != victim]
    stage2 = [i for i in p.stage_members(0, 2) if i != victim]
    assert plan.tokens_retrained == 2 * p.lengths[stage1].sum() + 3 * p.lengths[stage2].sum()
    assert p.active[victim]  # plan() changes nothing


def test_first_and_last_slice() -> None:
    p = _example()
    (last,) = p.plan(int(p.members(1, 2)[0]))
    assert last.from_slice == 2 and last.stage_sizes == (5,) and last.examples_retrained == 15
    (first,) = p.plan(int(p.members(1, 0)[0]))
    assert first.from_slice == 0 and first.stage_sizes == (1, 3, 5)
    assert first.examples_retrained == 1 * 1 + 2 * 3 + 3 * 5


def test_batched_request_retrains_each_shard_once_from_its_earliest_slice() -> None:
    p = _example()
    a, b, c = int(p.members(0, 2)[0]), int(p.members(0, 1)[1]), int(p.members(1, 2)[1])
    plans = p.delete([a, c, b])
    assert [(q.shard, q.from_slice, q.deleted) for q in plans] == [
        (0, 1, tuple(sorted((a, b)))),
        (1, 2, (c,)),
    ]
    assert plans[0].stage_sizes == (3, 4) and plans[1].stage_sizes == (5,)
    assert p.history == [plans] and not p.active[[a, b, c]].any()


def test_sequential_deletions_costs_match_brute_force_recount() -> None:
    p = SisaPartition(200, 5, 4, seed=3, lengths=np.random.default_rng(0).integers(5, 50, 200))
    rng = np.random.default_rng(1)
    alive = set(range(200))
    for victim in rng.choice(200, size=60, replace=False):
        shard, slice_ = p.locate(int(victim))
        (plan,) = p.delete(int(victim))
        alive.discard(int(victim))
        # brute force: for each retrained stage, count the remaining examples of the shard with
        # slice <= stage
        sizes = [
            sum(1 for i in alive if p.shard_of[i] == shard and p.slice_of[i] <= stage)
            for stage in range(slice_, 4)
        ]
        tokens = sum(
            p.lengths[i]
            for stage in range(slice_, 4)
            for i in alive
            if p.shard_of[i] == shard and p.slice_of[i] <= stage
        )
        assert plan.stage_sizes == tuple(sizes) and plan.from_slice == slice_
        assert plan.examples_retrained == sum(sizes) and plan.tokens_retrained == tokens
        assert p.training_cost(shard, slice_) == (plan.examples_retrained, plan.tokens_retrained)
    assert len(p.history) == 60
    assert p.full_training_cost()[0] == sum(p.training_cost(s)[0] for s in range(5))


def test_empty_shard_is_reported() -> None:
    p = SisaPartition(6, 3, 2, seed=0)
    p.delete(p.members(1).tolist())
    assert p.empty_shards == [1]


def test_bad_requests_raise() -> None:
    p = _example()
    victim = int(p.members(0)[0])
    p.delete(victim)
    with pytest.raises(KeyError, match="already"):
        p.delete(victim)
    with pytest.raises(KeyError):
        p.plan(12)
    with pytest.raises(ValueError, match="duplicate"):
        p.plan([1, 1] if victim != 1 else [2, 2])
    with pytest.raises(ValueError, match="n_shards"):
        SisaPartition(3, 4, 1)
    with pytest.raises(ValueError, match="n_slices"):
        SisaPartition(3, 1, 0)
    with pytest.raises(ValueError, match="stage_epochs"):
        SisaPartition(10, 2, 3, stage_epochs=[1, 2])
    with pytest.raises(ValueError, match="lengths"):
        SisaPartition(10, 2, 3, lengths=[1, 2])


def test_bourtoule_epochs_keep_the_total_cost() -> None:
    e, R, n_shard = 4.0, 5, 100
    epochs = bourtoule_stage_epochs(e, R)
    sliced = sum(epochs[r] * n_shard * (r + 1) / R for r in range(R))
    assert sliced == pytest.approx(e * n_shard)


# ---------------------------------------------------------------------------------- aggregation


def test_majority_vote_hand_computed_with_ties_to_lowest_label() -> None:
    preds = np.array([[0, 2, 1, 1], [1, 2, 0, 2], [1, 0, 2, 2]])
    # example 0: 1,1 vs 0 -> 1; example 1: 2 twice -> 2; example 2: one vote each -> 0 (lowest);
    # example 3: 2 twice -> 2
    assert majority_vote(preds).tolist() == [1, 2, 0, 2]
    assert majority_vote(np.array([[3, 3]]), n_labels=5).tolist() == [3, 3]
    with pytest.raises(ValueError, match="n_labels"):
        majority_vote(np.array([[3]]), n_labels=2)


def test_average_probabilities_and_label_normalisation() -> None:
    probs = np.array([[[0.6, 0.4], [0.5, 0.5]], [[0.2, 0.8], [0.5, 0.5]]])
    mean, labels = average_probabilities(probs)
    np.testing.assert_allclose(mean, [[0.4, 0.6], [0.5, 0.5]])
    assert labels.tolist() == [1, 0]  # exact tie -> label 0
    # vote and average can disagree: two confident shards vs one
    votes = majority_vote(np.array([[0], [0], [1]]))
    _, avg = average_probabilities(np.array([[[0.51, 0.49]], [[0.51, 0.49]], [[0.0, 1.0]]]))
    assert votes.tolist() == [0] and avg.tolist() == [1]
    p = normalize_label_logprobs(np.log([[0.2, 0.05], [1e-3, 1e-3]]))
    np.testing.assert_allclose(p, [[0.8, 0.2], [0.5, 0.5]])
    np.testing.assert_allclose(normalize_label_logprobs(np.array([-1000.0, -1001.0])).sum(), 1.0)
