"""Text-overlap metrics between generations and reference answers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rouge_score import rouge_scorer


@lru_cache(maxsize=1)
def _scorer() -> rouge_scorer.RougeScorer:
    # Built once, lazily: the scorer loads the Porter stemmer and is reused across calls.
    # Stemming matches TOFU / OpenUnlearning (use_stemmer=True).
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l_recall(prediction: str, reference: str) -> float:
    """ROUGE-L recall of `prediction` against `reference` (TOFU's ROUGE).

    Recall = LCS length / reference length in (stemmed) words, so run-on generations are not
    penalised. Returns a float in [0, 1]; higher = the generation reproduces more of the
    reference answer (on the forget set: less forgotten).
    """
    if not isinstance(prediction, str) or not isinstance(reference, str):
        raise ValueError("prediction and reference must be str")
    return float(_scorer().score(reference, prediction)["rougeL"].recall)


def rouge_l_recall_many(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """`rouge_l_recall` for aligned lists; returns shape (n,), each in [0, 1]."""
    if len(predictions) != len(references):
        raise ValueError(
            f"length mismatch: {len(predictions)} predictions, {len(references)} references"
        )
    return np.asarray(
        [rouge_l_recall(p, r) for p, r in zip(predictions, references, strict=True)],
        dtype=np.float64,
    )
