"""Exact unlearning: retrain without the forget data (the gold standard of TOFU)."""

from __future__ import annotations

from dataclasses import dataclass

from lib.methods import register
from lib.methods.base import Method


@register
@dataclass(frozen=True)
class Retrain(Method):
    """Fine-tune the base model on the retain split only (TOFU's retain model).

    Its model *is* the retain oracle that every metric compares against; its cost is the full
    fine-tuning cost on the retain data. Runner-special: no loss here.
    """

    name = "retrain"
    family = "exact"
    citation = "Bourtoule et al. 2021 (exact unlearning); Maini et al. 2024 (TOFU retain model)"
    needs_retain = True
    updates_weights = False
