"""Unit tests of lib.metrics.cost."""

from __future__ import annotations

import pytest

from lib.metrics.cost import eval_flops, train_flops


def test_flops():
    assert train_flops(135e6, 1e6) == pytest.approx(6 * 135e6 * 1e6)
    assert eval_flops(135e6, 1e6) == pytest.approx(2 * 135e6 * 1e6)
    assert train_flops(7, 3) == 3 * eval_flops(7, 3)
    with pytest.raises(ValueError, match=">= 0"):
        train_flops(-1, 10)
