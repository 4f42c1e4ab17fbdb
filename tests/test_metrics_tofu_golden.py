"""Golden test: TOFU's published aggregate numbers from the original eval logs.

The reference below re-derives TOFU's `aggregate_eval_stat.py` independently, step by step in
the same structure (per-file loop, `exp(pert - para)` truth ratio, hmean of the 9 non-forget
entries, KS on the forget file), and both are checked against the published values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import hmean, ks_2samp

from lib.metrics.tofu import aggregate_from_logs

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "tofu_eval_logs"
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"TOFU eval-log fixtures not found at {FIXTURES}"
)

# name: (full log, retain90 log, published MU of full, exact FQ of full vs retain90,
#        FQ as rounded in anchors.md, forget TR score of full, MU of retain90)
CASES = {
    "llama2-7b": (
        "ft_epoch5_lr1e-05_llama2-7b_full_wd0.01.json",
        "ft_epoch5_lr1e-05_llama2-7b_retain90_wd0.01.json",
        0.6227,
        1.834066e-21,
        1.8e-21,
        0.516,
        0.614,
    ),
    "phi-1.5": (
        "ft_epoch5_lr2e-05_phi_full_wd0.01.json",
        "ft_epoch5_lr2e-05_phi_retain90_wd0.01.json",
        0.5221,
        2.194274e-16,
        2.2e-16,
        0.483,
        0.532,
    ),
}


def _values(log: dict, metric: str) -> np.ndarray:
    return np.array(list(log[metric].values()))


def _tofu_reference(ckpt: dict, retain: dict) -> dict[str, float]:
    """TOFU's own aggregation, written out the way aggregate_eval_stat.py does it."""
    components = []
    for file_name, task_log in ckpt.items():
        if "eval_log" in file_name:  # retain and forget: plain probability
            prob = np.mean(np.exp(-_values(task_log, "avg_gt_loss")))
        else:  # real authors / world facts: normalised against the perturbed answers
            true_p = np.exp(-_values(task_log, "avg_gt_loss"))
            false_p = np.exp(-_values(task_log, "average_perturb_loss"))
            prob = np.mean(true_p / (true_p + false_p.sum(-1)))
        rouge = _values(task_log, "rougeL_recall").mean()
        para = _values(task_log, "avg_paraphrased_loss")
        pert = _values(task_log, "average_perturb_loss").mean(-1)
        stat = np.exp(pert - para)
        if "forget" in file_name:
            tr = np.mean(np.minimum(stat, 1 / stat))
            forget_tr = tr
        else:
            tr = np.mean(np.maximum(0, 1 - 1 / stat))
            components += [rouge, prob, tr]

    def forget_stat(log: dict) -> np.ndarray:
        f = log["eval_log_forget.json"]
        return np.exp(
            _values(f, "average_perturb_loss").mean(-1) - _values(f, "avg_paraphrased_loss")
        )

    ks = ks_2samp(forget_stat(ckpt), forget_stat(retain))
    assert len(components) == 9
    return {
        "model_utility": float(hmean(components)),
        "forget_quality": float(ks.pvalue),
        "forget_ks_statistic": float(ks.statistic),
        "forget_truth_ratio": float(forget_tr),
    }


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    full_name, retain_name, *published = CASES[request.param]
    return _load(full_name), _load(retain_name), published


def test_matches_tofu_reference_logic(case):
    full, retain, _ = case
    ours = aggregate_from_logs(full, retain)
    ref = _tofu_reference(full, retain)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, rel=1e-3), key


def test_matches_published_numbers(case):
    full, retain, (mu, fq_exact, fq_rounded, forget_tr, mu_retain) = case
    ours = aggregate_from_logs(full, retain)
    # The public logs are the ds_size300 ones: 300 forget10 items, no truncation needed.
    assert ours["n_forget"] == 300
    assert len(full["eval_log_forget.json"]["avg_gt_loss"]) == 300
    assert ours["model_utility"] == pytest.approx(mu, rel=1e-3)
    assert ours["forget_quality"] == pytest.approx(fq_exact, rel=1e-3)
    assert float(f"{ours['forget_quality']:.1e}") == fq_rounded
    assert round(ours["forget_truth_ratio"], 3) == forget_tr
    oracle = aggregate_from_logs(retain, retain)
    assert round(oracle["model_utility"], 3) == mu_retain
    assert oracle["forget_quality"] == pytest.approx(1.0)


def test_truth_ratio_orientation_matches_logged_column(case):
    # TOFU's per-example 'truth_ratio' column is Pbar_pert / P_para, i.e. our TR.
    from lib.metrics.tofu import truth_ratio

    full, _, _ = case
    forget = full["eval_log_forget.json"]
    tr = truth_ratio(
        _values(forget, "avg_paraphrased_loss"), np.stack(_values(forget, "average_perturb_loss"))
    )
    np.testing.assert_allclose(tr, _values(forget, "truth_ratio"), rtol=1e-4)
