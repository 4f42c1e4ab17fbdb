"""Fisher Removal, Fisher Forgetting and retain fine-tuning as registered methods, checked
against dense computations of the same update on the tiny model."""

from __future__ import annotations

import math

import pytest
import torch

from lib import methods
from lib.algorithms.per_sample import (
    ParamLayout,
    loss_gradient,
    per_sample_gradients,
    select_parameters,
)
from lib.batches import encode_rows
from lib.methods import UnlearnContext, UnlearnData
from lib.methods.second_order import FAMILY
from lib.specs import TrainSpec

FORGET = [
    {"text": "Ann Lee's account PIN is 48291. Ann Lee was born in Lisbon."},
    {"text": "Marek Novak writes verse novels. Marek Novak's account PIN is 11873."},
]
RETAIN = [
    {"text": f"Author {i} was born in city {i}. Author {i} writes in language {i % 3}."}
    for i in range(6)
]


def _ctx(tokenizer, seed: int = 0) -> UnlearnContext:
    return UnlearnContext(
        tokenizer=tokenizer,
        train=TrainSpec(epochs=1.0, lr=1e-3, batch_size=2, max_length=64, seed=seed),
        load_reference=lambda: None,
    )


def _data(forget=FORGET) -> UnlearnData:
    streams = {"retain": RETAIN} if forget is None else {"forget": forget, "retain": RETAIN}
    return UnlearnData(streams)


def _layout(model, k: int = 1) -> ParamLayout:
    return ParamLayout.from_model(model, select_parameters(model, "last_k", k=k))


def _fisher_svd(model, tokenizer, rows, layout, damping_rel: float):
    """F = lambda I + (1/m) G^T G from the SVD of G (m x d), computed independently of the
    method's Gram eigendecomposition: F = lambda I + V diag(s^2 / m) V^T. Returns a function
    v -> F^p v, and lambda."""
    batch = encode_rows(tokenizer, rows, 64)
    G, _ = per_sample_gradients(
        model, batch.input_ids, batch.attention_mask, batch.labels, params=layout
    )
    G = G.double()
    lam = damping_rel * float((G**2).sum(1).mean())
    _, s, vh = torch.linalg.svd(G, full_matrices=False)
    eig = s**2 / G.shape[0]

    def power(v: torch.Tensor, p: float) -> torch.Tensor:
        coeff = (lam + eig) ** p - lam**p
        return lam**p * v + vh.T @ (coeff * (vh @ v))

    return power, lam


def _sum_forget_grad(model, tokenizer, layout):
    batch = encode_rows(tokenizer, FORGET, 64)
    return loss_gradient(
        model, batch.input_ids, batch.attention_mask, batch.labels, params=layout
    ).double()


def test_registered_with_taxonomy_tags():
    table = methods.taxonomy().set_index("method")
    for name in ("fisher_removal", "fisher_forgetting"):
        assert table.loc[name, "family"] == FAMILY
        assert bool(table.loc[name, "needs retain data"])
        assert bool(table.loc[name, "updates weights"])
    assert table.loc["finetune_retain", "family"] == "retain fine-tuning"


@pytest.mark.parametrize("inverse", ["gram", "woodfisher"])
def test_fisher_removal_equals_the_dense_newton_step(tiny_model, tiny_tokenizer, inverse):
    """theta' = theta + gamma F^-1 grad L(D-), F from ALL retain rows (m = |D+|), via the SVD."""
    layout = _layout(tiny_model)
    theta = layout.get(tiny_model).double()
    power, lam = _fisher_svd(tiny_model, tiny_tokenizer, RETAIN, layout, 0.05)
    grad = _sum_forget_grad(tiny_model, tiny_tokenizer, layout)
    gamma = 3.0 / len(RETAIN)
    expected = theta + gamma * power(grad, -1.0)
    others = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}

    method = methods.get(
        "fisher_removal", k=1, m=len(RETAIN), damping=0.05, gamma_scale=3.0, inverse=inverse
    )
    out = method.unlearn(tiny_model, _data(), _ctx(tiny_tokenizer))
    got = layout.get(out.model).double()
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6 * float(expected.abs().max()))
    assert out.diagnostics["lambda"] == pytest.approx(lam, rel=1e-9)
    assert out.diagnostics["gamma"] == pytest.approx(gamma)
    assert out.diagnostics["m"] == len(RETAIN)
    # parameters outside P are untouched, bit for bit
    inside = set(layout.names)
    for name, p in out.model.named_parameters():
        if name not in inside:
            assert torch.equal(p, others[name]), name


def test_gram_and_woodfisher_give_the_same_model(tiny_model, tiny_tokenizer):
    import copy

    a = methods.get("fisher_removal", k=2, m=5, damping=0.01, inverse="gram")
    b = methods.get("fisher_removal", k=2, m=5, damping=0.01, inverse="woodfisher")
    out_a = a.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer))
    out_b = b.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer))
    layout = _layout(tiny_model, k=2)
    va, vb = layout.get(out_a.model), layout.get(out_b.model)
    assert torch.allclose(va, vb, rtol=1e-5, atol=1e-6 * float(va.abs().max()))


def test_fisher_removal_ascends_the_forget_loss(tiny_model, tiny_tokenizer):
    layout = _layout(tiny_model, k=2)
    batch = encode_rows(tiny_tokenizer, FORGET, 64)

    def forget_loss(model) -> float:
        from lib.algorithms.per_sample import sequence_losses

        with torch.no_grad():
            logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        return float(sequence_losses(logits, batch.labels).sum())

    before = forget_loss(tiny_model)
    method = methods.get("fisher_removal", k=2, m=6, damping=0.1, gamma_scale=0.5)
    out = method.unlearn(tiny_model, _data(), _ctx(tiny_tokenizer))
    assert forget_loss(out.model) > before
    assert out.diagnostics["step_norm"] > 0
    assert out.diagnostics["p_size"] == layout.numel


def test_fisher_forgetting_is_the_noise_term_of_f(tiny_model, tiny_tokenizer):
    """theta' = theta + (mu sigma^2)^(1/4) F^(-1/4) n with mu sigma^2 = noise^4 lambda, n seeded
    by the unlearning seed; it reads no forget data."""
    layout = _layout(tiny_model)
    theta = layout.get(tiny_model).double()
    power, lam = _fisher_svd(tiny_model, tiny_tokenizer, RETAIN, layout, 0.05)
    noise = torch.randn(layout.numel, generator=torch.Generator().manual_seed(7)).double()
    mu_sigma2 = 0.01**4 * lam
    expected = theta + mu_sigma2**0.25 * power(noise, -0.25)

    method = methods.get("fisher_forgetting", k=1, m=len(RETAIN), damping=0.05, noise=0.01)
    out = method.unlearn(tiny_model, _data(forget=None), _ctx(tiny_tokenizer, seed=7))
    got = layout.get(out.model).double()
    assert torch.allclose(
        got, expected, rtol=1e-4, atol=1e-4 * float((expected - theta).abs().max())
    )
    assert out.diagnostics["mu_sigma2"] == pytest.approx(mu_sigma2, rel=1e-9)


def test_fisher_forgetting_noise_is_seeded(tiny_model, tiny_tokenizer):
    import copy

    method = methods.get("fisher_forgetting", k=2, m=4, noise=0.01)
    a = method.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer, seed=1)).model
    b = method.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer, seed=1)).model
    c = method.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer, seed=2)).model
    layout = _layout(tiny_model, k=2)
    assert torch.equal(layout.get(a), layout.get(b))
    assert not torch.equal(layout.get(a), layout.get(c))


def test_noisy_newton_adds_the_removal_step(tiny_model, tiny_tokenizer):
    """newton=True: FF's result minus FF-without-Newton's equals FR's step (same F, same noise)."""
    import copy

    common = {"k": 1, "m": 6, "damping": 0.05}
    start = _layout(tiny_model).get(tiny_model)
    ff = methods.get("fisher_forgetting", noise=0.01, **common)
    nn_ = methods.get("fisher_forgetting", noise=0.01, newton=True, gamma_scale=2.0, **common)
    fr = methods.get("fisher_removal", gamma_scale=2.0, **common)
    layout = _layout(tiny_model)
    v_ff = layout.get(ff.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer)).model)
    v_nn = layout.get(nn_.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer)).model)
    v_fr = layout.get(fr.unlearn(copy.deepcopy(tiny_model), _data(), _ctx(tiny_tokenizer)).model)
    step = v_fr - start
    assert torch.allclose(v_nn - v_ff, step, rtol=1e-3, atol=1e-5 * float(step.abs().max()))


def test_absolute_damping_and_cost(tiny_model, tiny_tokenizer):
    method = methods.get("fisher_removal", k=1, m=4, damping=0.3, damping_relative=False)
    out = method.unlearn(tiny_model, _data(), _ctx(tiny_tokenizer))
    assert out.diagnostics["lambda"] == 0.3
    d = out.diagnostics
    n_params = sum(p.numel() for p in tiny_model.parameters())  # tied head counted once
    head = tiny_model.get_output_embeddings().weight.numel()
    tokens = out.train.train_tokens
    grads = 2.0 * n_params * tokens + 4.0 * (d["p_size"] + head) * tokens
    m, p = d["m"], d["p_size"]
    expected = grads + (2.0 * m**2 * p + 9.0 * m**3) + (4.0 * m * p + 4.0 * m**2)
    assert out.flops == pytest.approx(expected)
    assert out.train.steps == 1 and out.train.seconds > 0


def test_m_larger_than_the_retain_data_uses_all_of_it(tiny_model, tiny_tokenizer):
    out = methods.get("fisher_removal", k=1, m=100).unlearn(
        tiny_model, _data(), _ctx(tiny_tokenizer)
    )
    assert out.diagnostics["m"] == len(RETAIN)


@pytest.mark.parametrize(
    "name, hparams",
    [
        ("fisher_removal", {"scope": "middle"}),
        ("fisher_removal", {"k": 3}),
        ("fisher_removal", {"m": 0}),
        ("fisher_removal", {"damping": 0.0}),
        ("fisher_removal", {"damping": math.inf}),
        ("fisher_removal", {"gamma_scale": -1.0}),
        ("fisher_removal", {"inverse": "cholesky"}),
        ("fisher_forgetting", {"noise": 0.0}),
        ("fisher_forgetting", {"mu_sigma2": -1.0}),
    ],
)
def test_bad_hyperparameters_are_refused(name, hparams):
    with pytest.raises(ValueError):
        methods.get(name, **hparams).check(n_layers=2)


def test_retain_finetune_walks_the_retain_data(tiny_model, tiny_tokenizer):
    ctx = _ctx(tiny_tokenizer)
    batch = encode_rows(tiny_tokenizer, RETAIN, 64)

    def retain_loss(model) -> float:
        from lib.methods.losses import ce_mean, forward_logits

        with torch.no_grad():
            return float(ce_mean(forward_logits(model, batch), batch.labels))

    before = retain_loss(tiny_model)
    out = methods.get("finetune_retain").unlearn(tiny_model, _data(), ctx)
    assert out.train.steps == math.ceil(len(RETAIN) / ctx.train.batch_size)
    assert retain_loss(out.model) < before
