"""Unit tests of lib.metrics.tofu on hand-computed values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from lib.metrics import tofu

LN2, LN4 = math.log(2), math.log(4)


def test_probability_hand_values():
    np.testing.assert_allclose(tofu.probability([0.0, LN2, LN4]), [1.0, 0.5, 0.25])


def test_normalized_probability_hand_value():
    # P_c = 0.5, wrong answers 0.25 + 0.125 -> 0.5 / 0.875
    got = tofu.normalized_probability([LN2], [[LN4, math.log(8)]])
    np.testing.assert_allclose(got, [0.5 / 0.875])


def test_truth_ratio_uses_geometric_mean_of_perturbed():
    # Perturbed probabilities 0.25 and 1.0: geometric mean 0.5, arithmetic mean 0.625.
    tr = tofu.truth_ratio([LN2], [[LN4, 0.0]])
    np.testing.assert_allclose(tr, [1.0])


def test_truth_ratio_lower_when_true_answer_preferred():
    confident, unsure = tofu.truth_ratio([0.1, 3.0], [[2.0, 2.0], [2.0, 2.0]])
    assert confident < 1.0 < unsure
    assert confident == pytest.approx(math.exp(0.1 - 2.0))


def test_forget_and_retain_truth_scores():
    assert tofu.forget_truth_score([0.5, 2.0, 1.0]) == pytest.approx(2 / 3)
    assert tofu.retain_truth_score([0.25, 2.0, 1.0]) == pytest.approx(0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tofu.forget_truth_score([0.0, 1.0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=">= 0"):
        tofu.forget_truth_score([-1.0])


def test_forget_quality_identical_and_disjoint():
    rng = np.random.default_rng(0)
    a = rng.lognormal(size=60)
    assert tofu.forget_quality(a, a) == pytest.approx(1.0)
    tiny = tofu.forget_quality(np.arange(1.0, 51.0), np.arange(100.0, 150.0))
    assert tiny < 1e-20
    res = tofu.forget_quality_test(a, a * 3)
    ref = stats.ks_2samp(a, a * 3)
    assert res.pvalue == pytest.approx(ref.pvalue)
    assert res.statistic == pytest.approx(ref.statistic)


def test_forget_quality_invariant_to_reciprocal():
    # TOFU logs 1/TR; the KS test must not care.
    rng = np.random.default_rng(1)
    a, b = rng.lognormal(size=40), rng.lognormal(0.5, size=55)
    assert tofu.forget_quality(a, b) == pytest.approx(tofu.forget_quality(1 / a, 1 / b))


def test_model_utility_hmean_and_zero():
    assert tofu.model_utility({"a": 1.0, "b": 0.5}) == pytest.approx(2 / 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tofu.model_utility({"a": 0.9, "b": 0.0, "c": 0.7}) == 0.0
    with pytest.raises(ValueError):
        tofu.model_utility({})
    with pytest.raises(ValueError, match=">= 0"):
        tofu.model_utility({"a": -0.1})
    with pytest.raises(ValueError, match="finite"):
        tofu.model_utility({"a": float("nan")})


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: tofu.probability([]), "empty"),
        (lambda: tofu.truth_ratio([1.0, 2.0], [[1.0, 1.0]]), "mismatch"),
        (lambda: tofu.normalized_probability([1.0], [1.0]), "shape"),
        (lambda: tofu.truth_ratio([1.0], [[1.0, 2.0], [3.0]]), "rectangular"),
        (lambda: tofu.probability([float("nan")]), "finite"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_task_metrics_picks_prob_and_aggregator_by_task():
    kwargs = dict(
        avg_nll_gt=[LN2],
        rouge_l_recall=[0.3],
        avg_nll_paraphrased=[LN4],
        avg_nll_perturbed=[[LN2, LN2]],
    )  # TR = 0.5 / 0.25 = 2
    forget = tofu.task_metrics("forget", **kwargs)
    authors = tofu.task_metrics("real_authors", **kwargs)
    assert forget == pytest.approx({"prob": 0.5, "rouge": 0.3, "truth_ratio": 0.5})
    assert authors == pytest.approx({"prob": 0.5 / 1.5, "rouge": 0.3, "truth_ratio": 0.0})
    with pytest.raises(KeyError, match="allowed"):
        tofu.task_metrics("holdout", **kwargs)


def _fake_log(n: int, shift: float = 0.0) -> dict:
    """A tiny TOFU-shaped eval log with n items per split."""
    rng = np.random.default_rng(n)
    task = {
        "avg_gt_loss": {str(i): float(rng.uniform(0.1, 2)) for i in range(n)},
        "rougeL_recall": {str(i): float(rng.uniform(0.2, 1)) for i in range(n)},
        "avg_paraphrased_loss": {str(i): float(rng.uniform(0.5, 2)) for i in range(n)},
        "average_perturb_loss": {
            str(i): [float(x) + shift for x in rng.uniform(1, 3, 3)] for i in range(n)
        },
    }
    return {name: task for name in tofu.LOG_FILES.values()}


def test_aggregate_from_logs_keys_and_truncation():
    log = _fake_log(12)
    out = tofu.aggregate_from_logs(log, log)
    assert set(tofu.UTILITY_KEYS) <= set(out)
    assert out["forget_quality"] == pytest.approx(1.0)
    assert out["n_forget"] == 12
    other = tofu.aggregate_from_logs(_fake_log(12, shift=5.0), log, max_items=7)
    assert other["n_forget"] == 7
    assert other["forget_quality"] < 0.01
    assert 0.0 < out["model_utility"] <= 1.0


def test_aggregate_from_logs_rejects_bad_logs():
    log = _fake_log(4)
    with pytest.raises(KeyError, match="eval_log_forget.json"):
        tofu.aggregate_from_logs({k: v for k, v in log.items() if "forget" not in k}, log)
    broken = {k: dict(v) for k, v in log.items()}
    broken["eval_log.json"]["rougeL_recall"] = {"0": 1.0}
    with pytest.raises(ValueError, match="different indices"):
        tofu.aggregate_from_logs(broken, log)
