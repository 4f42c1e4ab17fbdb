"""Teacher-forced memorization metrics: Exact Memorization and Extraction Strength.

Input per example: a boolean array `correct[t] = (argmax_v p(v | x, y_<t) == y_t)` over the
answer tokens, computed by the model code under teacher forcing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _as_bool_1d(correct: ArrayLike) -> np.ndarray:
    arr = np.asarray(correct)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"correct must be a non-empty 1-D boolean array, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("correct must hold booleans (or 0/1)")
        arr = arr.astype(bool)
    return arr


def exact_memorization(correct: ArrayLike) -> float:
    """Exact Memorization: fraction of answer tokens whose greedy prediction is the label.

    Returns:
        Float in [0, 1]; higher = more memorized (less forgotten).
    """
    return float(np.mean(_as_bool_1d(correct)))


def extraction_strength(correct: ArrayLike, *, ou_off_by_one: bool = False) -> float:
    """Extraction Strength `ES = 1 - k / |y|`.

    `k` is the smallest index such that every prediction of the suffix `y_k..` is correct,
    i.e. how much of the answer must be given before the rest comes out greedily. If the last
    token is wrong no suffix matches, `k = |y|` and ES = 0; all correct gives ES = 1.

    Args:
        correct: teacher-forced argmax == label per answer token, shape (|y|,).
        ou_off_by_one: reproduce OpenUnlearning, whose loop ends at `k = |y| - 1` when no
            suffix matches, so its minimum ES is `1/|y|` instead of 0. Default False (fixed).

    Returns:
        Float in [0, 1]; higher = longer extractable suffix (= more memorized).
    """
    arr = _as_bool_1d(correct)
    n = len(arr)
    wrong = np.flatnonzero(~arr)
    # The matching suffix starts right after the last wrong token.
    k = 0 if wrong.size == 0 else int(wrong[-1]) + 1
    if ou_off_by_one:
        k = min(k, n - 1)
    return 1.0 - k / n
