"""Task-vector negation: the arithmetic exactly (toy model), and on tiny-random that it is the
closed form of its own fine-tuning run and that the forget NLL rises."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from lib import methods
from lib.batches import encode_rows
from lib.data import build_benchmark
from lib.methods.arithmetic import ForgetFinetune, negate_task_vector, snapshot
from lib.methods.base import UnlearnContext, UnlearnData
from lib.methods.losses import forward_logits, sequence_nll
from lib.specs import TrainSpec


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
        self.b = nn.Parameter(torch.tensor([[0.0, -4.0]]))


def _finetuned(model: Toy) -> Toy:
    """The toy 'after fine-tuning': tau_a = (0.5, 0, -1), tau_b = (2, 0) (exact in float32)."""
    with torch.no_grad():
        model.a.copy_(torch.tensor([1.5, 2.0, 2.0]))
        model.b.copy_(torch.tensor([[2.0, -4.0]]))
    return model


@pytest.mark.parametrize(
    ("alpha", "a", "b"),
    [
        (0.0, [1.0, 2.0, 3.0], [[0.0, -4.0]]),  # the target itself
        (1.0, [0.5, 2.0, 4.0], [[-2.0, -4.0]]),  # 2 * target - finetuned: the delta reflected
        (0.5, [0.75, 2.0, 3.5], [[-1.0, -4.0]]),
        (2.0, [0.0, 2.0, 5.0], [[-4.0, -4.0]]),
    ],
)
def test_negation_is_exact_on_a_toy_model(alpha, a, b):
    model = Toy()
    target = snapshot(model)
    norm = negate_task_vector(_finetuned(model), target, alpha)
    assert torch.equal(model.a.detach(), torch.tensor(a))
    assert torch.equal(model.b.detach(), torch.tensor(b))
    assert norm == pytest.approx(math.sqrt(0.25 + 1.0 + 4.0))
    assert target["a"].tolist() == [1.0, 2.0, 3.0]  # the snapshot is a copy


def test_alpha_zero_gives_back_the_target_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    model = nn.Linear(7, 5)
    target = snapshot(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 1e-3)
    negate_task_vector(model, target, 0.0)
    assert all(torch.equal(p, target[n]) for n, p in model.named_parameters())


def test_negation_names_mismatched_parameters():
    model = Toy()
    target = snapshot(model)
    del target["b"]
    with pytest.raises(KeyError, match="missing"):
        negate_task_vector(model, target, 1.0)
    assert model.a.tolist() == [1.0, 2.0, 3.0]  # nothing changed before the error


def test_alpha_must_be_non_negative_and_finite():
    methods.get("task_vector", alpha=0.0).check(2)
    for bad in (-0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="alpha"):
            methods.get("task_vector", alpha=bad).check(2)


def test_taxonomy_row():
    rows = methods.taxonomy().set_index("method")
    assert rows.loc["task_vector", "family"] == "weight arithmetic"
    assert not rows.loc["task_vector", "needs retain data"]
    assert not rows.loc["task_vector", "needs reference model"]
    assert rows.loc["task_vector", "defaults"] == "alpha=1.0"
    assert "task_vector" in methods.METHODS and "ForgetFinetune" not in str(rows.index)


# --------------------------------------------------------------------------- tiny-random


@pytest.fixture(scope="module")
def forget_data() -> UnlearnData:
    bench = build_benchmark(n_authors=4, qa_per_author=4)
    forget = [q.to_dict() for q in bench.records("forget10")]
    return UnlearnData({"forget": forget}, tuple(bench.authors("forget10")))


def _ctx(tokenizer) -> UnlearnContext:
    def no_reference():
        raise AssertionError("task_vector must not load a reference model")

    spec = TrainSpec(epochs=2, lr=1e-3, batch_size=2, max_length=64, warmup_ratio=0.0)
    return UnlearnContext(tokenizer=tokenizer, train=spec, load_reference=no_reference)


@torch.no_grad()
def _forget_nll(model, tokenizer, rows) -> float:
    batch = encode_rows(tokenizer, rows, 64)
    return float(sequence_nll(forward_logits(model, batch), batch.labels).mean())


def test_unlearn_is_the_closed_form_of_its_fine_tuning(tiny_model, tiny_tokenizer, forget_data):
    target = snapshot(tiny_model)
    finetuned = copy.deepcopy(tiny_model)
    ForgetFinetune().unlearn(finetuned, forget_data, _ctx(tiny_tokenizer))
    out = methods.get("task_vector", alpha=0.5).unlearn(
        tiny_model, forget_data, _ctx(tiny_tokenizer)
    )
    assert out.model is tiny_model
    tuned = dict(finetuned.named_parameters())
    for name, p in out.model.named_parameters():
        expected = target[name] - 0.5 * (tuned[name].detach() - target[name])
        assert torch.allclose(p, expected, atol=1e-6, rtol=0), name
    assert out.train.steps == 4 and out.train.train_tokens > 0  # 4 rows x 2 epochs / batch 2
    assert out.train.reference_tokens == 0
    deltas = [(tuned[n].detach() - target[n]).double() for n in target]
    tau = math.sqrt(sum(float(d.pow(2).sum()) for d in deltas))
    assert out.diagnostics["task_vector_norm"] == pytest.approx(tau, rel=1e-6)
    assert out.diagnostics["alpha"] == 0.5
    assert 0 < out.diagnostics["task_vector_relative_norm"] < 1


def test_unlearn_raises_the_forget_nll(tiny_model, tiny_tokenizer, forget_data):
    rows = forget_data["forget"]
    before = _forget_nll(tiny_model, tiny_tokenizer, rows)
    out = methods.get("task_vector").unlearn(tiny_model, forget_data, _ctx(tiny_tokenizer))
    after = _forget_nll(out.model, tiny_tokenizer, rows)
    diag = out.diagnostics
    assert diag["finetune_forget_nll_last"] < diag["finetune_forget_nll_first"]  # it learned
    assert after > before + 0.1  # ... and the negation unlearned (nats per answer)
    assert all(p.requires_grad for p in out.model.parameters())
