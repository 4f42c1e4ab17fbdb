"""Input checks shared by the metric modules (private).

Every public metric validates its inputs here so that a bad array (empty, ragged, NaN) fails
loudly with a `ValueError` at the call site instead of silently producing a NaN summary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


def as_1d(values: ArrayLike, name: str, *, allow_empty: bool = False) -> np.ndarray:
    """Return `values` as a finite 1-D float64 array, or raise `ValueError` naming `name`."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def as_2d(values: ArrayLike, name: str) -> np.ndarray:
    """Return `values` as a finite, non-empty 2-D float64 array (rows = examples)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be rectangular (n_examples, n_options)") from err
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n_examples, n_options), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite values")
    return arr


def same_length(arrays: Sequence[np.ndarray], names: Sequence[str]) -> None:
    """Raise `ValueError` unless all arrays have the same first dimension."""
    lengths = {name: len(arr) for arr, name in zip(arrays, names, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"length mismatch: {lengths}")


def fraction_k(k: float) -> float:
    """Validate a Min-K% fraction: allowed values are 0 < k <= 1."""
    if not 0.0 < float(k) <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k}")
    return float(k)
