"""Membership-inference scores, AUC / ROC / TPR@FPR, bootstrap CIs and MUSE's PrivLeak.

Every example is a 1-D array of the natural-log probabilities `log p(y_t | y_<t, x)` of its
labelled tokens. All per-example scores are oriented LIKE A LOSS, as in OpenUnlearning:
higher = looks less like a training member.

Difference from OpenUnlearning: OU's token-wise log-probs drop the last labelled token
("ignore eos prediction"). Here every token given is used: `lib.evaluate.score_answers` passes
the answer tokens *including* the closing EOS (stopping is part of the memorised answer), so
scores differ slightly from OU's on the same model.

AUC convention (OU): `mia_auc` = P(score_nonmember > score_member) with members (the forget
set) labelled 0 and non-members (holdout) labelled 1. 1.0 = members still clearly look seen
(not unlearned), 0.5 = indistinguishable (ideal for an oracle-like model).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata
from sklearn.metrics import auc, roc_curve

from lib.metrics._checks import as_1d, fraction_k, same_length

logger = logging.getLogger(__name__)

#: Names accepted by `scores`.
SCORE_NAMES: tuple[str, ...] = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference")
#: Min-K%++ clamps the per-token variance at 1e-6 (as OU) so a peaked distribution cannot
#: blow the z-score up; this is the matching floor on the standard deviation.
MIN_SIGMA: float = 1e-3


def _lowest_k_mean(values: np.ndarray, k: float) -> float:
    """Mean of the lowest `max(1, int(k * n))` values (at least one token always counts)."""
    n_keep = max(1, int(fraction_k(k) * len(values)))
    return float(np.mean(np.sort(values)[:n_keep]))


def loss_score(lp: ArrayLike) -> float:
    """LOSS attack: average token NLL `-mean(lp)` in nats; higher = less member-like."""
    return float(-np.mean(as_1d(lp, "lp")))


def zlib_score(lp: ArrayLike, text: str) -> float:
    """zlib attack: average NLL divided by the zlib-compressed byte length of `text`.

    `text` is the decoded labelled span. Dividing by compressibility discounts texts that are
    likely for any model (repetitive, templated). Units: nats per byte; higher = less
    member-like.
    """
    return loss_score(lp) / len(zlib.compress(text.encode("utf-8")))


def min_k_score(lp: ArrayLike, k: float = 0.4) -> float:
    """Min-K% attack: `-mean` of the lowest `max(1, int(k * n))` token log-probs (nats).

    Members rarely have very unlikely tokens, so the worst tokens separate best.
    `k` must be in (0, 1]; higher score = less member-like.
    """
    return -_lowest_k_mean(as_1d(lp, "lp"), k)


def min_k_plus_plus_score(lp: ArrayLike, mu: ArrayLike, sigma: ArrayLike, k: float = 0.4) -> float:
    """Min-K%++ attack: `-mean` of the lowest `max(1, int(k * n))` z-scores.

    `z_t = (lp_t - mu_t) / sigma_t` with `mu_t = E_v[log p_v]` and `sigma_t` the standard
    deviation of `log p_v` under the model's next-token distribution (computed with the
    log-probs by `lib.evaluate.vocab_moments`); `sigma_t` is clamped at `MIN_SIGMA`.
    Unitless; higher = less member-like.
    """
    lp_arr, mu_arr, sigma_arr = as_1d(lp, "lp"), as_1d(mu, "mu"), as_1d(sigma, "sigma")
    same_length([lp_arr, mu_arr, sigma_arr], ["lp", "mu", "sigma"])
    if np.any(sigma_arr < 0):
        raise ValueError("sigma must be >= 0")
    z = (lp_arr - mu_arr) / np.maximum(sigma_arr, MIN_SIGMA)
    return -_lowest_k_mean(z, k)


def reference_score(lp_target: ArrayLike, lp_reference: ArrayLike) -> float:
    """Reference attack: `avg_nll_target - avg_nll_reference` (nats per token).

    The reference model (e.g. the retain oracle) calibrates away how hard the text is in
    general. The two arrays may differ in length (e.g. another tokenizer). Higher = less
    member-like for the target.
    """
    return loss_score(lp_target) - loss_score(lp_reference)


def scores(
    name: str,
    examples: Sequence[ArrayLike],
    *,
    texts: Sequence[str] | None = None,
    mu: Sequence[ArrayLike] | None = None,
    sigma: Sequence[ArrayLike] | None = None,
    references: Sequence[ArrayLike] | None = None,
    k: float = 0.4,
) -> np.ndarray:
    """Score many examples with one attack; returns shape (len(examples),), loss-like.

    Args:
        name: one of `SCORE_NAMES`.
        examples: per-example token log-prob arrays.
        texts: decoded labelled spans (needed by "zlib").
        mu, sigma: per-example Min-K%++ moments (needed by "min_k_plus_plus").
        references: per-example log-probs under the reference model (needed by "reference").
        k: Min-K% / Min-K%++ fraction in (0, 1].
    """
    if name not in SCORE_NAMES:
        raise KeyError(f"unknown MIA score {name!r}; allowed: {list(SCORE_NAMES)}")
    needs = {
        "zlib": {"texts": texts},
        "min_k_plus_plus": {"mu": mu, "sigma": sigma},
        "reference": {"references": references},
    }.get(name, {})
    for arg, value in needs.items():
        if value is None:
            raise ValueError(f"score {name!r} needs {arg}=")
        if len(value) != len(examples):
            raise ValueError(f"{arg} has {len(value)} entries for {len(examples)} examples")
    if name == "loss":
        out = [loss_score(lp) for lp in examples]
    elif name == "zlib":
        out = [zlib_score(lp, t) for lp, t in zip(examples, texts, strict=True)]
    elif name == "min_k":
        out = [min_k_score(lp, k) for lp in examples]
    elif name == "min_k_plus_plus":
        out = [
            min_k_plus_plus_score(lp, m, s, k) for lp, m, s in zip(examples, mu, sigma, strict=True)
        ]
    else:
        out = [reference_score(lp, r) for lp, r in zip(examples, references, strict=True)]
    return np.asarray(out, dtype=np.float64)


def mia_auc(member_scores: ArrayLike, nonmember_scores: ArrayLike) -> float:
    """ROC AUC of loss-like scores, OU convention (member = 0, non-member = 1).

    Equals P(score_nonmember > score_member) + 0.5 P(tie). In [0, 1]: 1.0 = members (forget
    set) still clearly look seen, 0.5 = indistinguishable, < 0.5 = members look *less* seen
    than non-members (over-unlearning).
    """
    member = as_1d(member_scores, "member_scores")
    nonmember = as_1d(nonmember_scores, "nonmember_scores")
    # Mann-Whitney U from average ranks: identical to sklearn's roc_auc_score (ties count 1/2)
    # but ~50x faster, which matters inside bootstrap loops.
    ranks = rankdata(np.concatenate([member, nonmember]))
    n_m, n_n = len(member), len(nonmember)
    u = ranks[n_m:].sum() - n_n * (n_n + 1) / 2.0
    return float(u / (n_m * n_n))


def roc(
    member_scores: ArrayLike, nonmember_scores: ArrayLike
) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve of detecting members (predict "member" when the loss-like score is low).

    Returns:
        `(fpr, tpr, auc)`: fpr = fraction of non-members flagged, tpr = fraction of members
        flagged, both increasing in [0, 1]; `auc` equals `mia_auc` (same orientation).
    """
    member = as_1d(member_scores, "member_scores")
    nonmember = as_1d(nonmember_scores, "nonmember_scores")
    labels = np.concatenate([np.ones(len(member)), np.zeros(len(nonmember))])
    # Negate so that "higher = more member-like", the orientation roc_curve expects.
    fpr, tpr, _ = roc_curve(labels, -np.concatenate([member, nonmember]), drop_intermediate=False)
    return fpr, tpr, float(auc(fpr, tpr))


def tpr_at_fpr(member_scores: ArrayLike, nonmember_scores: ArrayLike, fpr: float = 0.01) -> float:
    """TPR of detecting members at a false-positive rate of at most `fpr`.

    Conservative: the largest TPR among operating points whose FPR does not exceed `fpr`
    (no interpolation). In [0, 1]; higher = members more exposed (less unlearned).
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    fprs, tprs, _ = roc(member_scores, nonmember_scores)
    return float(tprs[fprs <= fpr].max())


def bootstrap_ci(
    statistic_fn: Callable[..., float],
    *arrays: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of `statistic_fn(*arrays)`.

    Each array is resampled independently with replacement (so member and non-member sets
    keep their sizes), `n_boot` times, from `numpy.random.default_rng(seed)`: the same seed
    gives the same interval.

    Returns:
        `(low, high)`: the `alpha/2` and `1 - alpha/2` quantiles, in the statistic's units.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    data = [as_1d(a, f"arrays[{i}]") for i, a in enumerate(arrays)]
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        stats[b] = statistic_fn(*(a[rng.integers(0, len(a), len(a))] for a in data))
    low, high = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def privleak(auc_model: float, auc_oracle: float) -> float:
    """MUSE PrivLeak `(AUC_model - AUC_oracle) / AUC_oracle * 100`, in percent.

    Inputs are AUCs in OUR (OU) convention (`mia_auc`); MUSE's AUC is `1 - ours`, so both are
    converted first and the sign matches MUSE's paper. ~0 is ideal (as private as the retain
    oracle); strongly negative = under-unlearned (the target model gives about -100 when the
    oracle is at chance); positive = over-unlearned (forget set looks *less* seen than
    holdout).
    """
    for label, value in (("auc_model", auc_model), ("auc_oracle", auc_oracle)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{label} must be in [0, 1], got {value}")
    muse_model, muse_oracle = 1.0 - auc_model, 1.0 - auc_oracle
    if muse_oracle == 0.0:
        raise ValueError("auc_oracle = 1 gives a MUSE oracle AUC of 0: PrivLeak is undefined")
    return (muse_model - muse_oracle) / muse_oracle * 100.0
