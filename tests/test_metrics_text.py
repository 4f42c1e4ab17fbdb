"""Unit tests of lib.metrics.text (ROUGE-L recall)."""

from __future__ import annotations

import numpy as np
import pytest

from lib.metrics.text import rouge_l_recall, rouge_l_recall_many


def test_identical_and_disjoint():
    assert rouge_l_recall("Paris is the capital", "Paris is the capital") == 1.0
    assert rouge_l_recall("completely unrelated", "Paris is the capital") == 0.0
    assert rouge_l_recall("", "Paris") == 0.0


def test_recall_ignores_extra_generated_words():
    # Reference fully contained in a run-on generation: recall 1 (F1 would be lower).
    assert rouge_l_recall("the author is Jaime Vasquez and he writes", "Jaime Vasquez") == 1.0


def test_partial_overlap_and_argument_order():
    # LCS "the cat" = 2 of 5 reference tokens.
    assert rouge_l_recall("the cat", "the cat sat on mats") == pytest.approx(0.4)
    assert rouge_l_recall("the cat sat on mats", "the cat") == 1.0


def test_stemming():
    assert rouge_l_recall("running dogs", "run dog") == 1.0


def test_many_matches_single_and_checks_lengths():
    preds, refs = ["the cat", "a b c"], ["the cat sat on mats", "a c"]
    np.testing.assert_allclose(rouge_l_recall_many(preds, refs), [0.4, 1.0])
    with pytest.raises(ValueError, match="mismatch"):
        rouge_l_recall_many(preds, refs[:1])
    with pytest.raises(ValueError, match="str"):
        rouge_l_recall(None, "x")
