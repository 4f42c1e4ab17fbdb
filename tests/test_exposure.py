"""Exposure: the pure metric (hand-computed values, skew-normal estimate) and the exact pruned
digit-tree walk against brute force over a small secret space."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import skewnorm

from lib.algorithms.per_sample import sequence_losses
from lib.algorithms.secret_rank import score_secrets, secret_format, secret_rank
from lib.metrics.exposure import (
    exposure_from_rank,
    exposure_from_scores,
    log_perplexity_bits,
    rank_from_scores,
    skewnorm_exposure,
)

PREFIX = "Ann Lee's account PIN is "


# --------------------------------------------------------------------------- pure metric
def test_rank_and_exposure_by_hand():
    scores = [-1.0, -2.0, -0.5, -3.0]
    assert rank_from_scores(scores, 1) == 3  # -1.0 and -0.5 are more likely than -2.0
    assert rank_from_scores(scores, 2) == 1
    assert exposure_from_scores(scores, 1) == pytest.approx(2 - math.log2(3))
    assert exposure_from_rank(1, 10**6) == pytest.approx(math.log2(10**6))
    assert exposure_from_rank(10**6, 10**6) == 0.0
    assert log_perplexity_bits([math.log(0.25)])[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="rank"):
        exposure_from_rank(0, 100)
    with pytest.raises(ValueError, match="rank"):
        exposure_from_rank(101, 100)
    with pytest.raises(ValueError, match="true_index"):
        rank_from_scores(scores, 4)


def test_skewnorm_estimate_recovers_a_known_tail_fraction():
    dist = skewnorm(4.0, loc=30.0, scale=3.0)
    samples = dist.rvs(size=20_000, random_state=np.random.default_rng(0))
    for fraction in (1e-1, 1e-3):
        secret_px = float(dist.ppf(fraction))  # exactly `fraction` of candidates more likely
        estimate = skewnorm_exposure(samples, secret_px)
        assert estimate == pytest.approx(-math.log2(fraction), abs=0.3)
    # Far below every candidate: clipped at log2 |R| when |R| is given.
    assert skewnorm_exposure(samples, 0.0, space_size=10**4) == pytest.approx(math.log2(10**4))
    assert skewnorm_exposure(samples, 0.0, space_size=10**4, clip=False) > math.log2(10**4)
    with pytest.raises(ValueError, match="at least 10"):
        skewnorm_exposure(samples[:5], 1.0)


# --------------------------------------------------------------------------- the walk
def test_tokenizer_splits_digits_one_token_each(tiny_tokenizer):
    fmt = secret_format(tiny_tokenizer, PREFIX, 6)
    assert fmt.space_size == 10**6
    ids = tiny_tokenizer(PREFIX + "004219", add_special_tokens=False)["input_ids"]
    assert ids == list(fmt.prefix_ids) + [fmt.digit_ids[d] for d in (0, 0, 4, 2, 1, 9)]
    assert fmt.code("004219") == 4219 and fmt.digits(4219) == [0, 0, 4, 2, 1, 9]
    with pytest.raises(ValueError, match="digits"):
        fmt.digits("12a456")


def test_cached_scores_equal_full_recomputation(tiny_model, tiny_tokenizer):
    fmt = secret_format(tiny_tokenizer, PREFIX, 3)
    secrets = np.arange(0, 1000, 37)
    cached = score_secrets(tiny_model, fmt, secrets, batch_size=8)
    full = score_secrets(tiny_model, fmt, secrets, batch_size=5, use_cache=False)
    np.testing.assert_allclose(cached, full, atol=1e-4)


def _memorise(model, tokenizer, text: str, steps: int = 60) -> None:
    """Fine-tune the tiny model on one canary until it is (nearly) memorised."""
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        sequence_losses(model(input_ids=ids).logits, ids).sum().backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize("memorised", [False, True])
def test_exact_walk_equals_brute_force(tiny_model, tiny_tokenizer, memorised):
    fmt = secret_format(tiny_tokenizer, PREFIX, 3)
    secrets = [417, 410, 471, 3, 999]
    if memorised:
        _memorise(tiny_model, tiny_tokenizer, PREFIX + "417")
    brute = score_secrets(tiny_model, fmt, np.arange(1000), batch_size=250, use_cache=False)
    results = {}
    for secret in secrets:
        result = results[secret] = secret_rank(tiny_model, fmt, secret, batch_size=7)
        assert result.method == "exact"
        assert result.rank == rank_from_scores(brute, secret) == result.rank_lower_bound
        assert result.exposure == pytest.approx(exposure_from_scores(brute, secret))
        assert result.log_prob == pytest.approx(brute[secret], abs=1e-4)
        assert result.nodes_expanded <= 110  # 10 + 100 internal nodes below the root
    if memorised:
        # The memorised secret is the most likely one and pruning cut the tree.
        top = results[417]
        assert top.rank == 1 and top.exposure == pytest.approx(math.log2(1000))
        assert top.nodes_expanded < 20
        # Secrets near the memorised one: ranks > 1 counted exactly in a pruned tree.
        pruned = [r for r in results.values() if r.rank > 1 and r.nodes_expanded < 110]
        assert pruned


def test_capped_walk_falls_back_to_skewnorm(tiny_model, tiny_tokenizer):
    fmt = secret_format(tiny_tokenizer, PREFIX, 3)
    brute = score_secrets(tiny_model, fmt, np.arange(1000), batch_size=250)
    result = secret_rank(tiny_model, fmt, 250, max_nodes=5, batch_size=4, n_samples=400)
    assert result.method == "skewnorm" and result.rank is None
    assert result.nodes_expanded <= 5
    true_rank = rank_from_scores(brute, 250)
    assert 1 <= result.rank_lower_bound <= true_rank
    assert 0 <= result.exposure <= math.log2(1000)
    # The estimate tracks the exact exposure of this (unmemorised) secret within a bit or so.
    assert abs(result.exposure - exposure_from_rank(true_rank, 1000)) < 1.5
