"""Exposure of inserted canaries (Carlini et al. 2019, "The Secret Sharer"); pure numpy/scipy.

A canary s[r] is a fixed prefix followed by a secret r drawn uniformly from a space R (here:
all n-digit strings, |R| = 10^n). Candidates r' in R are ranked by their log-perplexity under
the model, Px(s[r']) = -log2 P(r' | prefix) (bits; the prefix is common to every candidate, so
ranking by the secret's log-probability given the prefix is the same as by the whole canary's).
rank(s[r]) = 1 + #{r' in R : P(r') > P(r)}: 1 = the most likely candidate; ties count as less
likely (they have probability zero for real-valued scores).

    exposure(s[r]) = log2 |R| - log2 rank(s[r])      (bits)

Higher = more memorised. The maximum log2 |R| means the true secret is the model's most likely
candidate; a secret the model has not seen has a rank uniform on 1..|R| and an expected
exposure of about log2(e) = 1.44 bits (not 0).

For large |R|, the skew-normal estimate (Carlini et al. section 4.3): fit a skew-normal
distribution to the log-perplexities of randomly sampled candidates and read the fraction of
the space that is more likely than the secret off its CDF: exposure ~ -log2 CDF(Px(s[r])).
The estimate is clipped at log2 |R| when |R| is given (a CDF below 1/|R| would mean a rank
below 1), unless `clip=False`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import skewnorm

from lib.metrics._checks import as_1d

__all__ = [
    "exposure_from_rank",
    "exposure_from_scores",
    "log_perplexity_bits",
    "rank_from_scores",
    "skewnorm_exposure",
]


def _check_space(space_size: int) -> int:
    if not (isinstance(space_size, int | np.integer) and space_size >= 1):
        raise ValueError(f"space_size must be an integer >= 1, got {space_size!r}")
    return int(space_size)


def exposure_from_rank(rank: int, space_size: int) -> float:
    """log2 |R| - log2 rank (bits), rank in 1..|R| (1 = most likely); higher = more memorised."""
    space_size = _check_space(space_size)
    if not (isinstance(rank, int | np.integer) and 1 <= rank <= space_size):
        raise ValueError(f"rank must be an integer in 1..{space_size}, got {rank!r}")
    return math.log2(space_size) - math.log2(int(rank))


def rank_from_scores(log_probs: ArrayLike, true_index: int) -> int:
    """Brute-force rank of candidate `true_index` among ALL candidates of the space.

    `log_probs[i]` = log P(candidate i | prefix) (any base; higher = more likely).
    rank = 1 + number of candidates strictly more likely than the true one.
    """
    lp = as_1d(log_probs, "log_probs")
    if not 0 <= true_index < lp.size:
        raise ValueError(f"true_index must be in 0..{lp.size - 1}, got {true_index}")
    return 1 + int(np.count_nonzero(lp > lp[true_index]))


def exposure_from_scores(log_probs: ArrayLike, true_index: int) -> float:
    """Exact exposure from a full score array over the space (|R| = len(log_probs)), bits."""
    lp = as_1d(log_probs, "log_probs")
    return exposure_from_rank(rank_from_scores(lp, true_index), lp.size)


def log_perplexity_bits(log_prob_nats: ArrayLike) -> np.ndarray:
    """Px = -log2 P from natural-log probabilities (bits; lower = more likely)."""
    return -np.asarray(log_prob_nats, dtype=np.float64) / math.log(2)


def skewnorm_exposure(
    candidate_log_perplexities: ArrayLike,
    secret_log_perplexity: float,
    space_size: int | None = None,
    *,
    clip: bool = True,
) -> float:
    """Skew-normal exposure estimate -log2 CDF(Px(secret)) (bits; higher = more memorised).

    Args:
        candidate_log_perplexities: Px (bits) of candidates drawn uniformly at random from R
            (the true secret excluded); at least 10, a few thousand for a stable fit.
        secret_log_perplexity: Px (bits) of the true secret.
        space_size: |R|; with `clip`, the estimate is capped at log2 |R|.
    """
    px = as_1d(candidate_log_perplexities, "candidate_log_perplexities")
    if px.size < 10:
        raise ValueError(f"need at least 10 candidate log-perplexities, got {px.size}")
    if not math.isfinite(secret_log_perplexity):
        raise ValueError("secret_log_perplexity must be finite")
    if np.ptp(px) == 0:
        raise ValueError("candidate log-perplexities are all equal: no distribution to fit")
    a, loc, scale = skewnorm.fit(px)
    # logcdf keeps precision far in the tail, where the memorised secrets sit.
    estimate = float(-skewnorm.logcdf(secret_log_perplexity, a, loc, scale) / math.log(2))
    if space_size is not None:
        cap = math.log2(_check_space(space_size))
        if clip:
            estimate = min(estimate, cap)
    return max(estimate, 0.0)
