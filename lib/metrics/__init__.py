"""Pure numpy/scipy metrics of the study (no torch, no model code).

Modules: `tofu` (probability, truth ratio, forget quality, model utility), `mia`
(membership-inference scores, AUC, PrivLeak), `memorization` (exact memorization, extraction
strength), `text` (ROUGE-L recall), `cost` (FLOP estimates).
"""

from __future__ import annotations

from lib.metrics.cost import eval_flops, train_flops
from lib.metrics.memorization import exact_memorization, extraction_strength
from lib.metrics.mia import bootstrap_ci, mia_auc, privleak, roc, tpr_at_fpr
from lib.metrics.text import rouge_l_recall, rouge_l_recall_many
from lib.metrics.tofu import (
    aggregate_from_logs,
    forget_quality,
    forget_quality_test,
    forget_truth_score,
    model_utility,
    normalized_probability,
    probability,
    retain_truth_score,
    truth_ratio,
)

__all__ = [
    "aggregate_from_logs",
    "bootstrap_ci",
    "eval_flops",
    "exact_memorization",
    "extraction_strength",
    "forget_quality",
    "forget_quality_test",
    "forget_truth_score",
    "mia_auc",
    "model_utility",
    "normalized_probability",
    "privleak",
    "probability",
    "retain_truth_score",
    "roc",
    "rouge_l_recall",
    "rouge_l_recall_many",
    "tpr_at_fpr",
    "train_flops",
    "truth_ratio",
]
