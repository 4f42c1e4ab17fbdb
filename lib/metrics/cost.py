"""Compute-cost estimates with the Kaplan et al. (2020) approximation.

A dense transformer with N non-embedding parameters spends about 2N FLOPs per token in the
forward pass and 4N in the backward pass. Attention's context-length term is ignored, which
is accurate to a few percent for short sequences such as QA pairs.
"""

from __future__ import annotations


def _check(n_params: float, tokens: float) -> None:
    if n_params < 0 or tokens < 0:
        raise ValueError(f"n_params and tokens must be >= 0, got {n_params}, {tokens}")


def train_flops(n_params: float, tokens: float) -> float:
    """Training cost `6 * N * tokens` in FLOPs (forward + backward), for `tokens` processed.

    Lower = cheaper. Methods that run extra forward passes (e.g. a frozen reference model for
    NPO/KL terms) should add `eval_flops` for those.
    """
    _check(n_params, tokens)
    return 6.0 * float(n_params) * float(tokens)


def eval_flops(n_params: float, tokens: float) -> float:
    """Inference cost `2 * N * tokens` in FLOPs (forward pass only). Lower = cheaper."""
    _check(n_params, tokens)
    return 2.0 * float(n_params) * float(tokens)
