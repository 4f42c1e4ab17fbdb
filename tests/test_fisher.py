"""Empirical Fisher powers (Gram form) against a dense eigendecomposition; WoodFisher against
the Gram form; the Fisher Removal / Fisher Forgetting updates."""

from __future__ import annotations

import pytest
import torch

from lib.algorithms.fisher import (
    EmpiricalFisher,
    WoodFisher,
    fisher_forgetting,
    fisher_removal,
    influence_gamma,
)
from lib.algorithms.per_sample import (
    ParamLayout,
    loss_gradient,
    per_sample_gradients,
    sequence_losses,
)

POWERS = (-1.0, -0.25, 0.5)


def _dense_power(G: torch.Tensor, damping: float, p: float) -> torch.Tensor:
    """F^p by building F (d x d) in float64, eigh, and powering the eigenvalues."""
    G = G.double()
    F = damping * torch.eye(G.shape[1], dtype=torch.float64) + G.T @ G / G.shape[0]
    E, W = torch.linalg.eigh(F)
    return (W * E**p) @ W.T


def _random_grads(m: int, d: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    # Columns of very different scales, like gradients of different layers.
    scales = torch.logspace(-2, 1, d)
    return (torch.randn(m, d, generator=gen) * scales).float()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("damping", [1e-3, 0.5])
@pytest.mark.parametrize("p", POWERS)
def test_gram_power_equals_dense(p, damping):
    G = _random_grads(12, 40)
    fisher = EmpiricalFisher(G, damping)
    dense = _dense_power(G, damping, p)
    # Applied to the identity, the Gram form reproduces the whole matrix F^p.
    assert _rel(fisher.power(torch.eye(40), p), dense) < 1e-5
    v = torch.randn(40, generator=torch.Generator().manual_seed(3))
    assert _rel(fisher.power(v, p), dense @ v.double()) < 1e-5
    assert fisher.rank == 12 and fisher.n_dropped == 0


@pytest.mark.parametrize("p", POWERS)
def test_rank_deficient_gradients_are_handled(p):
    base = _random_grads(5, 30, seed=1)
    duplicated = torch.cat([base, base, base[:2]])  # m = 12, rank 5
    fisher = EmpiricalFisher(duplicated, 1e-2)
    assert fisher.rank == 5 and fisher.n_dropped == 7
    assert _rel(fisher.power(torch.eye(30), p), _dense_power(duplicated, 1e-2, p)) < 1e-5
    wide = _random_grads(50, 20, seed=2)  # m > d: rank <= d
    fisher = EmpiricalFisher(wide, 1e-2)
    assert fisher.rank == 20
    assert _rel(fisher.power(torch.eye(20), p), _dense_power(wide, 1e-2, p)) < 1e-5


def _tiny_problem(model, m: int = 8):
    # A small P (1088 parameters) so the dense d x d matrix is cheap.
    names = [
        "model.layers.1.input_layernorm.weight",
        "model.layers.1.self_attn.k_proj.weight",
        "model.layers.1.self_attn.v_proj.weight",
        "model.norm.weight",
    ]
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 3000, (m, 10), generator=gen)
    G, layout = per_sample_gradients(model, ids, params=names, chunk_size=4)
    return G, layout, ids


@pytest.mark.parametrize("p", POWERS)
def test_power_on_tiny_model_gradients_equals_dense(tiny_model, p):
    G, layout, _ = _tiny_problem(tiny_model)
    assert layout.numel == 1088
    damping = 1e-4 * float(G.square().sum(1).mean())  # relative to the gradient scale
    fisher = EmpiricalFisher(G, damping)
    assert _rel(fisher.power(torch.eye(layout.numel), p), _dense_power(G, damping, p)) < 1e-5


def test_woodfisher_equals_gram(tiny_model):
    G, layout, _ = _tiny_problem(tiny_model)
    v = torch.randn(layout.numel, generator=torch.Generator().manual_seed(1))
    for damping in (1e-6, 1e-2):
        fisher = EmpiricalFisher(G, damping)
        gram = fisher.inverse(v, method="gram")
        wood = fisher.inverse(v, method="woodfisher")
        assert _rel(wood, gram) < 1e-6
        # Streaming in any order gives the same inverse (the sum does not depend on order).
        stream = WoodFisher(damping, m=G.shape[0])
        for row in G.flip(0):
            stream.add(row)
        assert _rel(stream.inverse(v), gram) < 1e-6
        assert _rel(stream.power(v, -1), gram) < 1e-6
    with pytest.raises(ValueError, match="p = -1"):
        stream.power(v, -0.25)
    with pytest.raises(ValueError, match="already added"):
        stream.add(G[0])


def _forget_loss(model, layout: ParamLayout, theta: torch.Tensor, ids: torch.Tensor) -> float:
    layout.set_(model, theta)
    with torch.no_grad():
        return float(sequence_losses(model(input_ids=ids).logits, ids).sum())


def test_fisher_removal_is_a_newton_step_that_ascends_the_forget_loss(tiny_model):
    G, layout, _ = _tiny_problem(tiny_model)
    damping = 1e-3
    fisher = EmpiricalFisher(G, damping)
    forget_ids = torch.randint(3, 3000, (3, 10), generator=torch.Generator().manual_seed(5))
    grad = loss_gradient(tiny_model, forget_ids, params=layout, reduction="sum")
    theta = layout.get(tiny_model)
    gamma = influence_gamma(G.shape[0])
    assert gamma == pytest.approx(1 / 8)
    new = fisher_removal(theta, grad, fisher, gamma)
    dense_F = _dense_power(G, damping, 1.0)
    # F (theta' - theta) / gamma == grad: the step solves the Newton system.
    assert _rel(dense_F @ ((new - theta).double() / gamma), grad) < 1e-4
    wood = fisher_removal(theta, grad, fisher, gamma, method="woodfisher")
    assert _rel(wood - theta, new - theta) < 1e-5
    # A small step along F^-1 grad increases the forget loss (F^-1 is positive definite).
    small = fisher_removal(theta, grad, fisher, 1e-3 / float((new - theta).norm()))
    before = _forget_loss(tiny_model, layout, theta, forget_ids)
    after = _forget_loss(tiny_model, layout, small, forget_ids)
    assert after > before


def test_fisher_forgetting_noise_is_seeded_and_shaped_by_f(tiny_model):
    G, layout, _ = _tiny_problem(tiny_model)
    fisher = EmpiricalFisher(G, 1e-3)
    theta = layout.get(tiny_model)
    a = fisher_forgetting(theta, fisher, 1e-8, seed=7)
    assert torch.equal(a, fisher_forgetting(theta, fisher, 1e-8, seed=7))
    assert not torch.equal(a, fisher_forgetting(theta, fisher, 1e-8, seed=8))
    # Undo the F^(-1/4) shaping and the scale: the seeded standard normal comes back.
    noise = torch.randn(layout.numel, generator=torch.Generator().manual_seed(7))
    recovered = fisher.power((a - theta) / 1e-8**0.25, 0.25)
    assert _rel(recovered, noise) < 1e-4


def test_flop_estimates_by_hand():
    fisher = EmpiricalFisher(torch.zeros(4, 6), 0.1)
    assert fisher.factorization_flops == 2 * 16 * 6 + 9 * 64
    assert fisher.product_flops == 4 * 4 * 6 + 4 * 16
    # All-zero gradients: every direction is dropped and F = lambda I exactly.
    assert fisher.rank == 0
    assert torch.allclose(fisher.power(torch.ones(6), -0.25), torch.full((6,), 0.1**-0.25))


def test_bad_arguments_are_refused():
    G = _random_grads(4, 6)
    with pytest.raises(ValueError, match="damping"):
        EmpiricalFisher(G, 0.0)
    fisher = EmpiricalFisher(G, 0.1)
    with pytest.raises(ValueError, match="method"):
        fisher.inverse(torch.zeros(6), method="cg")
    with pytest.raises(ValueError, match="shape"):
        fisher.power(torch.zeros(5), -1)
    with pytest.raises(ValueError, match="gamma"):
        fisher_removal(torch.zeros(6), torch.zeros(6), fisher, -1.0)
    with pytest.raises(ValueError, match="mu_sigma2"):
        fisher_forgetting(torch.zeros(6), fisher, 0.0)
