"""Saliency-masked unlearning: exact top-fraction masks (hand example and brute force), the
saliency against a direct computation, masked updates under AdamW weight decay, and the whole
method on tiny-random (weights outside the mask bit-identical, inside moved)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lib import methods
from lib.batches import encode_rows
from lib.data import build_benchmark
from lib.methods import localized
from lib.methods.base import UnlearnContext, UnlearnData
from lib.methods.localized import MaskedUpdates, saliency, top_fraction_masks
from lib.methods.losses import ce_mean, forward_logits
from lib.specs import LoraSpec, TrainSpec

# --------------------------------------------------------------------------- masks


def test_global_mask_hand_example_with_ties():
    scores = {"a": torch.tensor([3.0, 1.0, 2.0]), "b": torch.tensor([[5.0, 0.0], [2.0, 2.0]])}
    # 7 weights, keep round(3.5) = 4: 5 and 3, then two of the three 2s in position order
    masks = top_fraction_masks(scores, 0.5)
    assert masks["a"].tolist() == [True, False, True]
    assert masks["b"].tolist() == [[True, False], [True, False]]
    assert top_fraction_masks(scores, 1.0)["b"].all()
    assert not any(m.any() for m in top_fraction_masks(scores, 0.0).values())


def test_negative_zero_ranks_as_zero():
    scores = {"a": torch.tensor([0.0, -0.0, 1.0, -0.0, 0.0])}
    masks = top_fraction_masks(scores, 0.6)  # keep 3: the 1, then the first two zeros
    assert masks["a"].tolist() == [True, True, True, False, False]


def test_tensor_scope_keeps_the_fraction_of_each_tensor():
    scores = {"a": torch.tensor([3.0, 1.0, 2.0, 0.5]), "b": torch.tensor([[5.0, 0.0], [9.0, 2.0]])}
    masks = top_fraction_masks(scores, 0.5, scope="tensor")
    assert masks["a"].tolist() == [True, False, True, False]
    assert masks["b"].tolist() == [[True, False], [True, False]]


def test_the_sampled_bracket_is_verified(monkeypatch):
    bits = [torch.arange(1000, dtype=torch.float32).view(torch.int32)]
    k = 500  # the k-th largest value is 500.0

    def as_float(v: int) -> float:
        return float(torch.tensor([v], dtype=torch.int32).view(torch.float32))

    low, high, above = localized._bracket(bits, 1000, k)  # a 1000-entry sample: a true bracket
    assert as_float(low) <= 500.0 <= as_float(high)
    assert above == int((bits[0] > high).sum()) < k
    monkeypatch.setattr(localized, "_SAMPLE", 1)  # one sampled entry: a guess, and rejected
    assert localized._bracket(bits, 1000, k) is None


def _brute_force(scores: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Top k by a stable sort of the concatenation (descending value, then position)."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    order = torch.sort(-flat, stable=True).indices[:k]
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[order] = True
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start : start + s.numel()].view(s.shape)
        start += s.numel()
    return out


@pytest.mark.parametrize("path", ["small input", "sample", "bisection"])
@pytest.mark.parametrize("fraction", [0.0, 0.013, 0.25, 0.5, 0.77, 1.0])
def test_global_mask_equals_brute_force_and_keeps_the_exact_count(fraction, path, monkeypatch):
    if path == "sample":  # the threshold is bracketed from ~64 sampled entries
        monkeypatch.setattr(localized, "_SAMPLE", 64)
    if path == "bisection":  # as when the sampled bracket fails its check
        monkeypatch.setattr(localized, "_bracket", lambda *_: None)
    generator = torch.Generator().manual_seed(3)
    scores = {
        "x": torch.randint(0, 5, (40, 7), generator=generator).float() / 4,  # many ties
        "y": torch.rand(13, generator=generator),
        "z": torch.zeros(3, 4),  # all-zero tensor (e.g. unused embedding rows)
        "w": torch.rand(5, 6, generator=generator) * 1e-30,  # tiny (subnormal-range) values
    }
    total = sum(s.numel() for s in scores.values())
    k = int(fraction * total + 0.5)
    masks = top_fraction_masks(scores, fraction)
    assert sum(int(m.sum()) for m in masks.values()) == k
    expected = _brute_force(scores, k)
    for name in scores:
        assert torch.equal(masks[name], expected[name]), name
        assert masks[name].dtype == torch.bool and masks[name].shape == scores[name].shape


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keep_fraction": 1.5}, "keep_fraction"),
        ({"keep_fraction": -0.1}, "keep_fraction"),
        ({"keep_fraction": 0.5, "scope": "layer"}, "scope"),
    ],
)
def test_mask_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        top_fraction_masks({"a": torch.ones(3)}, **kwargs)


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("inf")])
def test_mask_rejects_invalid_scores(bad):
    with pytest.raises(ValueError, match="finite"):
        top_fraction_masks({"a": torch.tensor([1.0, bad])}, 0.5)


def test_method_checks_its_hyperparameters():
    methods.get("salun").check(2)
    with pytest.raises(ValueError, match="keep_fraction"):
        methods.get("salun", keep_fraction=0.0).check(2)
    with pytest.raises(ValueError, match="scope"):
        methods.get("salun", scope="row").check(2)
    rows = methods.taxonomy().set_index("method")
    assert rows.loc["salun", "family"] == "localization-informed"
    assert rows.loc["salun", "needs retain data"]
    assert not rows.loc["salun", "needs reference model"]


# --------------------------------------------------------------------------- masked updates


def _adamw_step(layer: nn.Linear, lr: float, wd: float) -> None:
    optimizer = torch.optim.AdamW(
        [p for p in layer.parameters() if p.requires_grad], lr=lr, weight_decay=wd
    )
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    layer(x).pow(2).sum().backward()
    optimizer.step()


def test_weight_decay_moves_masked_out_weights_unless_restored():
    torch.manual_seed(0)
    lr, wd = 0.1, 0.5
    mask = torch.tensor([[True, False, True, False]] * 3)
    for restore in (False, True):
        layer = nn.Linear(4, 3)
        before = {n: p.detach().clone() for n, p in layer.named_parameters()}
        masks = {"weight": mask, "bias": torch.zeros(3, dtype=torch.bool)}
        with MaskedUpdates(layer, masks, restore_decayed=restore):
            assert not layer.bias.requires_grad  # fully masked out: frozen
            _adamw_step(layer, lr, wd)
            assert layer.weight.grad[~mask].eq(0).all() and layer.weight.grad[mask].ne(0).all()
        assert layer.bias.requires_grad  # re-enabled on exit
        assert torch.equal(layer.bias.detach(), before["bias"])
        outside = layer.weight.detach()[~mask]
        if restore:
            assert torch.equal(outside, before["weight"][~mask])
        else:  # AdamW's decoupled decay alone: p * (1 - lr * wd), with a zero Adam update
            assert torch.equal(outside, before["weight"][~mask] * (1 - lr * wd))
        assert not torch.isclose(layer.weight.detach()[mask], before["weight"][mask]).any()


def test_masked_updates_leaves_no_hooks_behind():
    layer = nn.Linear(4, 3)
    mask = torch.tensor([[True, False, True, False]] * 3)
    with MaskedUpdates(layer, {"weight": mask}):
        pass
    _adamw_step(layer, 0.1, 0.5)  # after exit: every entry moves again
    assert layer.weight.grad.ne(0).all()
    with pytest.raises(KeyError, match="unknown"):
        MaskedUpdates(layer, {"nope": mask})
    with pytest.raises(ValueError, match="bool tensor"):
        MaskedUpdates(layer, {"weight": mask.float()})


# --------------------------------------------------------------------------- tiny-random


@pytest.fixture(scope="module")
def request_data() -> UnlearnData:
    bench = build_benchmark(n_authors=4, qa_per_author=4)
    forget = [q.to_dict() for q in bench.records("forget10")]
    retain = [q.to_dict() for q in bench.records("retain10")]
    return UnlearnData({"forget": forget, "retain": retain}, tuple(bench.authors("forget10")))


def test_saliency_is_the_absolute_summed_batch_gradient(tiny_model, tiny_tokenizer, request_data):
    rows = request_data["forget"]
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    scores, tokens = saliency(tiny_model, tiny_tokenizer, rows, 3, 64)
    params = dict(tiny_model.named_parameters())
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    n_tokens = 0
    for start in (0, 3):  # 4 rows in batches of 3: sizes 3 and 1
        batch = encode_rows(tiny_tokenizer, rows[start : start + 3], 64)
        loss = -ce_mean(forward_logits(tiny_model, batch), batch.labels)
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for name, g in zip(params, grads, strict=True):
            if g is not None:
                expected[name] += g
        n_tokens += batch.n_tokens
    assert tokens == n_tokens
    assert set(scores) == set(params)  # tied lm_head/embedding counted once
    for name in params:
        assert torch.allclose(scores[name], expected[name].abs(), atol=1e-7, rtol=1e-5), name
        assert torch.equal(params[name].detach(), before[name])
        assert params[name].grad is None


def _ctx(tokenizer, **spec) -> UnlearnContext:
    train = TrainSpec(
        **{"epochs": 2, "lr": 1e-2, "batch_size": 2, "max_length": 64, "weight_decay": 0.1, **spec}
    )
    return UnlearnContext(tokenizer=tokenizer, train=train, load_reference=lambda: None)


@pytest.mark.parametrize(
    ("scope", "weight_decay"),
    [("global", 0.1), ("tensor", 0.0)],  # with decay: restored; without: gradient hooks alone
)
def test_unlearn_moves_only_masked_weights(
    tiny_model, tiny_tokenizer, request_data, scope, weight_decay
):
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    scores, _ = saliency(copy.deepcopy(tiny_model), tiny_tokenizer, request_data["forget"], 2, 64)
    masks = top_fraction_masks(scores, 0.3, scope)
    method = methods.get("salun", keep_fraction=0.3, scope=scope)
    out = method.unlearn(tiny_model, request_data, _ctx(tiny_tokenizer, weight_decay=weight_decay))
    assert not out.train.diverged and out.train.steps == 4
    moved = 0
    for name, p in out.model.named_parameters():
        p = p.detach()
        assert torch.equal(p[~masks[name]], before[name][~masks[name]]), name
        moved += int((p[masks[name]] != before[name][masks[name]]).sum())
    n = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    assert moved > 0.9 * kept  # (an entry with exactly zero saliency may stay put)
    diag = out.diagnostics
    assert diag["n_weights"] == n and diag["kept_fraction"] == kept / n
    assert set(diag["kept_by_kind"]) == {"attention", "embedding", "mlp", "norm"}
    assert diag["saliency_tokens"] > 0 and diag["saliency_seconds"] > 0
    assert out.train.train_tokens > diag["saliency_tokens"]  # loop tokens + saliency pass
    if scope == "global":
        assert kept == int(0.3 * n + 0.5)
    assert all(p.requires_grad for p in out.model.parameters())


def test_unlearn_rejects_lora(tiny_model, tiny_tokenizer, request_data):
    ctx = _ctx(tiny_tokenizer, lora=LoraSpec())
    with pytest.raises(ValueError, match="LoRA"):
        methods.get("salun").unlearn(tiny_model, request_data, ctx)
