"""TOFU metrics: probability, truth ratio, forget quality, model utility.

Formulas follow the original TOFU release (locuslab/tofu, `aggregate_eval_stat.py`), which is
what the published numbers were computed with; OpenUnlearning's re-implementation agrees up to
a 1e-10 epsilon that we do not add. All inputs are *average per-token negative log-likelihoods*
(natural log, nats per answer token) of an answer given its question, one value per example
(or one row of several perturbed answers per example).

Directions at a glance:

* probability / normalized probability: in [0, 1], higher = model more confident in the answer.
* truth ratio TR: in (0, inf), lower = model prefers the true answer over the wrong ones.
* forget truth score: in [0, 1], higher = TR closer to 1 (true and wrong answers equally likely,
  i.e. more forgotten).
* retain truth score: in [0, 1], higher = model still prefers true answers (utility kept).
* forget quality: KS p-value in [0, 1], higher = forget-set TR distribution closer to the retain
  oracle's (better unlearning).
* model utility: harmonic mean in [0, 1], higher = more utility kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from lib.metrics._checks import as_1d, as_2d, same_length

logger = logging.getLogger(__name__)

#: Task name -> file name inside a TOFU aggregated eval log (`eval_results/.../*.json`).
LOG_FILES: dict[str, str] = {
    "retain": "eval_log.json",
    "real_authors": "eval_real_author_wo_options.json",
    "world_facts": "eval_real_world_wo_options.json",
    "forget": "eval_log_forget.json",
}
#: Tasks whose probability is normalised against the perturbed answers (TOFU "w/o options").
NORMALIZED_PROB_TASKS: frozenset[str] = frozenset({"real_authors", "world_facts"})
#: Tasks entering Model Utility, in TOFU's order.
UTILITY_TASKS: tuple[str, ...] = ("retain", "real_authors", "world_facts")
#: The 9 Model Utility components, as keys of `aggregate_from_logs`'s result.
UTILITY_KEYS: tuple[str, ...] = tuple(
    f"{task}_{metric}" for task in UTILITY_TASKS for metric in ("prob", "rouge", "truth_ratio")
)


def probability(avg_nll: ArrayLike) -> np.ndarray:
    """Length-normalised answer probability `exp(-avg_nll)`, one value per example.

    Args:
        avg_nll: average per-token NLL (nats) of each answer, shape (n,).

    Returns:
        Array (n,) in [0, 1]; higher = model more confident in the answer.
    """
    return np.exp(-as_1d(avg_nll, "avg_nll"))


def normalized_probability(avg_nll_correct: ArrayLike, avg_nll_perturbed: ArrayLike) -> np.ndarray:
    """TOFU's real-authors / world-facts probability `P_c / (P_c + sum_j P_j)`.

    Each probability is length-normalised (`exp(-avg_nll)`), as in TOFU, so answers of
    different lengths compete on a per-token footing.

    Args:
        avg_nll_correct: average per-token NLL of the correct answer, shape (n,).
        avg_nll_perturbed: average per-token NLL of each wrong answer, shape (n, k).

    Returns:
        Array (n,) in [0, 1]; higher = correct answer more likely than the wrong ones.
    """
    correct = as_1d(avg_nll_correct, "avg_nll_correct")
    perturbed = as_2d(avg_nll_perturbed, "avg_nll_perturbed")
    same_length([correct, perturbed], ["avg_nll_correct", "avg_nll_perturbed"])
    p_correct = np.exp(-correct)
    return p_correct / (p_correct + np.exp(-perturbed).sum(axis=1))


def truth_ratio(avg_nll_paraphrased: ArrayLike, avg_nll_perturbed: ArrayLike) -> np.ndarray:
    """Per-example truth ratio `TR = Pbar_pert / P_para`.

    `P_para = exp(-avg_nll_paraphrased)` and `Pbar_pert = exp(-mean_j avg_nll_perturbed_j)`,
    i.e. the *geometric* mean of the wrong answers' length-normalised probabilities, exactly as
    TOFU's `aggregate_eval_stat.py` (which logs the reciprocal, `exp(pert - para)`). For
    real authors / world facts TOFU passes the original answer as the "paraphrased" one.
    Computed in log space so no epsilon is needed.

    Args:
        avg_nll_paraphrased: average per-token NLL of the true (paraphrased) answer, shape (n,).
        avg_nll_perturbed: average per-token NLL of each wrong answer, shape (n, k).

    Returns:
        Array (n,) in (0, inf); lower = model prefers the true answer over the wrong ones,
        1 = indifferent (what an unlearned model should show on the forget set).
    """
    para = as_1d(avg_nll_paraphrased, "avg_nll_paraphrased")
    perturbed = as_2d(avg_nll_perturbed, "avg_nll_perturbed")
    same_length([para, perturbed], ["avg_nll_paraphrased", "avg_nll_perturbed"])
    return np.exp(para - perturbed.mean(axis=1))


def _check_tr(tr: ArrayLike) -> np.ndarray:
    arr = as_1d(tr, "tr")
    if np.any(arr < 0):
        raise ValueError("truth ratios must be >= 0")
    return arr


def forget_truth_score(tr: ArrayLike) -> float:
    """Forget-set truth score `mean(min(TR, 1/TR))` (TOFU "closer_to_1_better").

    Returns:
        Float in [0, 1]; higher = true and wrong answers closer to equally likely
        (= more forgotten).
    """
    arr = _check_tr(tr)
    # TR == 0 (exp underflow) must score 0, not raise a divide-by-zero warning.
    inverse = np.divide(1.0, arr, out=np.full_like(arr, np.inf), where=arr > 0)
    return float(np.mean(np.minimum(arr, inverse)))


def retain_truth_score(tr: ArrayLike) -> float:
    """Retain / real-authors / world-facts truth score `mean(max(0, 1 - TR))` ("true_better").

    Returns:
        Float in [0, 1]; higher = model still clearly prefers the true answers (utility kept).
    """
    return float(np.mean(np.maximum(0.0, 1.0 - _check_tr(tr))))


@dataclass(frozen=True)
class KSResult:
    """Two-sample Kolmogorov-Smirnov test between two truth-ratio samples.

    Attributes:
        statistic: KS distance in [0, 1]; lower = distributions closer.
        pvalue: two-sided p-value in [0, 1]; higher = closer (this is TOFU's Forget Quality).
    """

    statistic: float
    pvalue: float


def forget_quality_test(tr_model: ArrayLike, tr_oracle: ArrayLike) -> KSResult:
    """KS test of the model's forget-set truth ratios against the retain oracle's.

    The test is rank based, so it is invariant to TOFU logging `1/TR` instead of `TR`.
    Uses scipy's default (exact for small samples), as TOFU does.
    """
    model = as_1d(tr_model, "tr_model")
    oracle = as_1d(tr_oracle, "tr_oracle")
    result = stats.ks_2samp(model, oracle)
    return KSResult(statistic=float(result.statistic), pvalue=float(result.pvalue))


def forget_quality(tr_model: ArrayLike, tr_oracle: ArrayLike) -> float:
    """TOFU Forget Quality: two-sided KS p-value, in [0, 1].

    Higher = the model's forget-set truth-ratio distribution is closer to that of a model never
    trained on the forget set (1 for identical samples; ~1e-20 for the un-unlearned model).
    """
    return forget_quality_test(tr_model, tr_oracle).pvalue


def model_utility(values: Mapping[str, float]) -> float:
    """TOFU Model Utility: harmonic mean of the components (TOFU uses the 9 `UTILITY_KEYS`).

    Any zero component collapses the result to 0 (handled explicitly: scipy would warn).

    Args:
        values: component name -> value, each finite and >= 0 (normally in [0, 1]).

    Returns:
        Float in [0, max(values)]; higher = more utility kept.
    """
    if not values:
        raise ValueError("model_utility needs at least one component")
    arr = as_1d(list(values.values()), "model utility components")
    if np.any(arr < 0):
        negative = {k: v for k, v in values.items() if v < 0}
        raise ValueError(f"model utility components must be >= 0, got {negative}")
    if np.any(arr == 0):
        return 0.0
    return float(stats.hmean(arr))


def task_metrics(
    task: str,
    *,
    avg_nll_gt: ArrayLike,
    rouge_l_recall: ArrayLike,
    avg_nll_paraphrased: ArrayLike,
    avg_nll_perturbed: ArrayLike,
) -> dict[str, float]:
    """The three TOFU numbers of one eval task: `prob`, `rouge`, `truth_ratio`.

    `prob` is the normalised probability for `NORMALIZED_PROB_TASKS` and the plain mean
    probability otherwise; `truth_ratio` is `forget_truth_score` for "forget" and
    `retain_truth_score` otherwise (TOFU's choice of aggregator by task).

    Args:
        task: one of `LOG_FILES` ("retain", "real_authors", "world_facts", "forget").
        avg_nll_gt: average per-token NLL of the ground-truth answer, shape (n,).
        rouge_l_recall: ROUGE-L recall of the greedy generation, shape (n,), in [0, 1].
        avg_nll_paraphrased: average per-token NLL of the paraphrased answer (the original
            answer for real authors / world facts), shape (n,).
        avg_nll_perturbed: average per-token NLL of the wrong answers, shape (n, k).
    """
    if task not in LOG_FILES:
        raise KeyError(f"unknown TOFU task {task!r}; allowed: {sorted(LOG_FILES)}")
    gt = as_1d(avg_nll_gt, "avg_nll_gt")
    rouge = as_1d(rouge_l_recall, "rouge_l_recall")
    same_length([gt, rouge], ["avg_nll_gt", "rouge_l_recall"])
    if task in NORMALIZED_PROB_TASKS:
        prob = normalized_probability(gt, avg_nll_perturbed)
    else:
        prob = probability(gt)
    tr = truth_ratio(avg_nll_paraphrased, avg_nll_perturbed)
    same_length([gt, tr], ["avg_nll_gt", "avg_nll_paraphrased"])
    tr_score = forget_truth_score(tr) if task == "forget" else retain_truth_score(tr)
    return {"prob": float(prob.mean()), "rouge": float(rouge.mean()), "truth_ratio": tr_score}


_LOG_COLUMNS: tuple[str, ...] = (
    "avg_gt_loss",
    "rougeL_recall",
    "avg_paraphrased_loss",
    "average_perturb_loss",
)


def _log_task(log: Mapping[str, Any], task: str, max_items: int | None) -> dict[str, np.ndarray]:
    """Columns of one task of a TOFU eval log as arrays, rows ordered by integer index."""
    file_name = LOG_FILES[task]
    if file_name not in log:
        raise KeyError(f"eval log lacks {file_name!r}; expected keys: {sorted(LOG_FILES.values())}")
    task_log = log[file_name]
    missing = [c for c in _LOG_COLUMNS if c not in task_log]
    if missing:
        raise KeyError(f"{file_name} lacks {missing}; needed: {list(_LOG_COLUMNS)}")
    index = sorted(task_log["avg_gt_loss"], key=int)
    for column in _LOG_COLUMNS:
        if set(task_log[column]) != set(index):
            raise ValueError(f"{file_name}: {column!r} and 'avg_gt_loss' cover different indices")
    if max_items is not None:
        # TOFU's published ds_size300 logs keep the first N items of each split.
        index = index[:max_items]
    return {c: np.asarray([task_log[c][i] for i in index], dtype=np.float64) for c in _LOG_COLUMNS}


def _truth_ratio_from_log(columns: Mapping[str, np.ndarray]) -> np.ndarray:
    return truth_ratio(columns["avg_paraphrased_loss"], columns["average_perturb_loss"])


def aggregate_from_logs(
    ckpt_log: Mapping[str, Any],
    retain_log: Mapping[str, Any],
    *,
    max_items: int | None = None,
) -> dict[str, float]:
    """Recompute TOFU's aggregate numbers from two raw eval logs (parsed JSON dicts).

    Reproduces `aggregate_eval_stat.py`: Model Utility of `ckpt_log` and Forget Quality of
    `ckpt_log` against `retain_log` (the retain-only oracle). The published ds_size300 logs
    already hold 300 items per split, so no truncation is needed to match them.

    Args:
        ckpt_log: eval log of the evaluated model, keys `LOG_FILES.values()`, each mapping
            metric name -> {index string: value}.
        retain_log: eval log of the retain oracle (only its forget file is used).
        max_items: keep only the first N items (by index) of every split; None = all.

    Returns:
        Dict with the 9 `UTILITY_KEYS` (each in [0, 1]), `forget_prob`, `forget_rouge`,
        `forget_truth_ratio` (min(TR,1/TR), higher = more forgotten), `model_utility`
        (higher = more utility), `forget_quality` (KS p-value, higher = closer to the oracle),
        `forget_ks_statistic` (lower = closer) and `n_forget` (items used).
    """
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be a positive int or None, got {max_items}")
    result: dict[str, float] = {}
    columns = {task: _log_task(ckpt_log, task, max_items) for task in LOG_FILES}
    for task, cols in columns.items():
        scores = task_metrics(
            task,
            avg_nll_gt=cols["avg_gt_loss"],
            rouge_l_recall=cols["rougeL_recall"],
            avg_nll_paraphrased=cols["avg_paraphrased_loss"],
            avg_nll_perturbed=cols["average_perturb_loss"],
        )
        for name, value in scores.items():
            result[f"{task}_{name}"] = value
    result["model_utility"] = model_utility({k: result[k] for k in UTILITY_KEYS})

    tr_model = _truth_ratio_from_log(columns["forget"])
    tr_oracle = _truth_ratio_from_log(_log_task(retain_log, "forget", max_items))
    ks = forget_quality_test(tr_model, tr_oracle)
    result["forget_quality"] = ks.pvalue
    result["forget_ks_statistic"] = ks.statistic
    result["n_forget"] = len(tr_model)
    logger.debug("TOFU aggregate: MU=%.4f FQ=%.3g", result["model_utility"], ks.pvalue)
    return result
