"""Tests of lib.train (the loop, schedules, divergence guard, mixed precision) and of the
micro-batch streams of lib.batches."""

from __future__ import annotations

import copy
import math
import mmap
import time

import numpy as np
import pytest
import torch
from torch import nn

from lib import methods
from lib.batches import anchored_batches, encode_rows, epoch_orders, n_micro_batches
from lib.data import build_benchmark
from lib.methods.losses import ce_mean, forward_logits
from lib.specs import SCHEDULES, TrainSpec
from lib.train import PeakMemory, TrainResult, seed_everything, train


@pytest.fixture(scope="module")
def bench():
    return build_benchmark(n_authors=4, qa_per_author=4)


def _rows(qas) -> list[dict]:
    return [q.to_dict() for q in qas]


def _qa_batches(tokenizer, qas, spec) -> list:
    stream = anchored_batches(tokenizer, {"train": _rows(qas)}, spec, "train")
    return [m["train"] for m in stream]


def _ce_loss_fn(model, batch):
    return ce_mean(forward_logits(model, batch), batch.labels), {}, batch.n_tokens, 0


def _run(model, micro, loss_fn, spec, **kw) -> TrainResult:
    micro = list(micro)
    return train(model, micro, len(micro), loss_fn, spec, **kw)


@torch.no_grad()
def _mean_nll(model, batches) -> float:
    model.eval()
    return float(np.mean([float(ce_mean(forward_logits(model, b), b.labels)) for b in batches]))


# --------------------------------------------------------------------------- does it learn


def test_finetuning_lowers_the_nll_of_the_trained_qa(tiny_model, tiny_tokenizer, bench):
    qas = bench.records("forget10")[:2]
    spec = TrainSpec(epochs=4, lr=1e-3, batch_size=2, warmup_ratio=0.0, schedule="constant")
    batches = _qa_batches(tiny_tokenizer, qas, spec)
    assert len(batches) == 4 == n_micro_batches(len(qas), spec)
    before = _mean_nll(tiny_model, batches[:1])
    result = _run(tiny_model, batches, _ce_loss_fn, spec)
    after = _mean_nll(tiny_model, batches[:1])
    assert result.steps == 4 and not result.diverged
    assert after < before - 0.05
    assert [entry["step"] for entry in result.log] == [1, 2, 3, 4]
    assert result.log[-1]["loss"] < result.log[0]["loss"]
    assert result.train_tokens == sum(b.n_tokens for b in batches)
    assert result.reference_tokens == 0
    assert result.seconds > 0
    assert not tiny_model.training  # back in eval mode


def test_one_gradient_ascent_step_raises_the_forget_nll(tiny_model, tiny_tokenizer, bench):
    forget = _rows(bench.records("forget10"))
    spec = TrainSpec(epochs=1, lr=1e-3, batch_size=4, warmup_ratio=0.0)
    batches = list(anchored_batches(tiny_tokenizer, {"forget": forget}, spec, "forget"))
    assert len(batches) == 1 and set(batches[0]) == {"forget"}
    method = methods.get("ga")
    before = _mean_nll(tiny_model, [batches[0]["forget"]])

    def loss_fn(model, batch):
        loss, logs = method.loss(model, batch, None)
        return loss, logs, batch["forget"].n_tokens, 0

    result = _run(tiny_model, batches, loss_fn, spec, desc="ga")
    after = _mean_nll(tiny_model, [batches[0]["forget"]])
    assert result.steps == 1
    assert after > before + 0.01
    assert result.log[0]["forget_nll"] == pytest.approx(before, rel=1e-4)


# --------------------------------------------------------------------------- divergence guard


class Linear1(nn.Module):
    """y = w . x: the smallest model the loop accepts."""

    def __init__(self, dim: int = 4, value: float = 0.0):
        super().__init__()
        self.w = nn.Parameter(torch.full((dim,), value))


def _regression_batches(n: int, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 4, generator=generator) for _ in range(n)]


def _quadratic_loss_fn(model, x):
    target = torch.tensor([1.0, -2.0, 0.5, 3.0])
    return ((x @ (model.w.float() - target)) ** 2).mean(), {"aux": 1.0}, x.shape[0], 0


# lib.train formats the NaN loss with float(loss) (not detached): torch warns; harmless here.
@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True")
def test_divergence_guard_stops_and_keeps_the_last_finished_step():
    model = Linear1()
    snapshot: dict[str, torch.Tensor] = {}
    calls = []

    def loss_fn(m, x):
        calls.append(len(calls))
        if len(calls) == 2:  # second micro-batch: the first step has finished
            snapshot["w"] = m.w.detach().clone()
            return torch.tensor(float("nan"), requires_grad=True), {}, 3, 0
        return _quadratic_loss_fn(m, x)

    spec = TrainSpec(epochs=1, lr=0.1, batch_size=1, warmup_ratio=0.0)
    result = _run(model, _regression_batches(5), loss_fn, spec)
    assert result.diverged
    assert result.steps == 1
    assert "non-finite" in result.message and "step 2" in result.message
    assert len(calls) == 2  # nothing ran after the NaN
    assert torch.equal(model.w.detach(), snapshot["w"])
    assert not torch.equal(snapshot["w"], torch.zeros(4))  # the first step did move
    assert model.w.grad is None
    assert result.as_dict()["diverged"] is True


def test_divergence_guard_on_inf_with_accumulation_discards_the_partial_step():
    model = Linear1()
    n = {"calls": 0}

    def loss_fn(m, x):
        n["calls"] += 1
        if n["calls"] == 2:
            return torch.tensor(float("inf")), {}, 3, 0
        return _quadratic_loss_fn(m, x)

    spec = TrainSpec(epochs=1, lr=0.1, batch_size=1, grad_accum=2, warmup_ratio=0.0)
    result = _run(model, _regression_batches(4), loss_fn, spec)
    assert result.diverged and result.steps == 0
    assert "non-finite" in result.message
    assert torch.equal(model.w.detach(), torch.zeros(4))
    assert model.w.grad is None


def test_divergence_guard_on_a_non_finite_gradient_norm():
    model = Linear1()

    def loss_fn(m, _x):  # a finite loss whose gradient overflows float32
        return m.w.sum() * 1e30 * 1e30 * 0.0 + (m.w * 3e38).sum() * 10.0, {}, 1, 0

    result = _run(model, _regression_batches(2), loss_fn, TrainSpec(batch_size=1))
    assert result.diverged and result.steps == 0
    assert "gradient norm" in result.message
    assert torch.equal(model.w.detach(), torch.zeros(4))


# --------------------------------------------------------------------------- schedules


def _lrs_seen(spec: TrainSpec, n: int = 4) -> list[float]:
    seen: list[float] = []
    original_step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    torch.optim.AdamW.step = spy
    try:
        _run(Linear1(), _regression_batches(n), _quadratic_loss_fn, spec)
    finally:
        torch.optim.AdamW.step = original_step
    return seen


def test_the_optimiser_sees_the_transformers_schedules():
    assert set(SCHEDULES) == {"linear", "constant", "cosine"}
    # 2 warm-up steps of 4: lr 0 at the first step (as the Hugging Face Trainer), peak, decay
    linear = TrainSpec(epochs=1, lr=1.0, batch_size=1, warmup_ratio=0.5, max_grad_norm=0)
    assert _lrs_seen(linear) == pytest.approx([0.0, 0.5, 1.0, 0.5])
    cosine = TrainSpec(lr=1.0, batch_size=1, warmup_ratio=0.0, schedule="cosine")
    expected = [0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)]
    assert _lrs_seen(cosine) == pytest.approx(expected)
    constant = TrainSpec(lr=1.0, batch_size=1, warmup_ratio=0.25, schedule="constant")
    assert _lrs_seen(constant) == pytest.approx([0.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="schedule must be one of"):
        TrainSpec(schedule="step")


# --------------------------------------------------------------------------- streams


def test_epoch_orders_deterministic_and_fractional():
    assert epoch_orders(5, 2, seed=3) == epoch_orders(5, 2, seed=3)
    assert epoch_orders(5, 2, seed=3) != epoch_orders(5, 2, seed=4)
    two = epoch_orders(5, 2, seed=0)
    assert sorted(two[:5]) == sorted(two[5:]) == list(range(5))  # each pass is a permutation
    half = epoch_orders(10, 1.5, seed=0)
    assert len(half) == 15
    assert sorted(half[:10]) == list(range(10))
    assert half == epoch_orders(10, 2, seed=0)[:15]  # the last pass is cut, not reshuffled
    assert len(epoch_orders(10, 0.25, seed=0)) == 2  # round(2.5) = 2
    assert len(epoch_orders(10, 0.01, seed=0)) == 1  # at least one example


def test_anchor_stream_batches(tiny_tokenizer, bench):
    qas = bench.records("retain10")
    spec = TrainSpec(epochs=1.5, batch_size=5)
    batches = _qa_batches(tiny_tokenizer, qas, spec)
    n = round(1.5 * len(qas))
    assert [b.input_ids.shape[0] for b in batches] == [5] * (n // 5) + ([n % 5] if n % 5 else [])
    assert n_micro_batches(len(qas), spec) == len(batches)
    with pytest.raises(ValueError, match="empty"):
        list(anchored_batches(tiny_tokenizer, {"train": []}, spec, "train"))
    with pytest.raises(KeyError, match="missing"):
        list(anchored_batches(tiny_tokenizer, {"train": _rows(qas)}, spec, "forget"))


def test_anchored_batches_pair_forget_retain_and_idk(tiny_tokenizer, bench):
    forget, retain = _rows(bench.records("forget10")), _rows(bench.records("retain10"))
    idk = [{**r, "answer": r["idk_answer"]} for r in forget]
    streams = {"forget": forget, "retain": retain, "forget_idk": idk}
    spec = TrainSpec(epochs=2, batch_size=3, seed=5)

    def stream(**changes):
        given = {**streams, **changes}
        return list(
            anchored_batches(tiny_tokenizer, given, spec, "forget", ["forget_idk"], ["retain"])
        )

    batches = stream()
    assert len(batches) == math.ceil(2 * len(forget) / 3)
    for b in batches:
        size = b["forget"].input_ids.shape[0]
        assert b["retain"].input_ids.shape[0] == size
        assert b["forget_idk"].input_ids.shape[0] == size
        assert not torch.equal(b["forget_idk"].labels, b["forget"].labels)
    for a, b in zip(batches, stream(), strict=True):
        assert torch.equal(a["retain"].input_ids, b["retain"].input_ids)  # seeded retain draws
    only_forget = list(anchored_batches(tiny_tokenizer, streams, spec, "forget"))
    for a, b in zip(batches, only_forget, strict=True):  # a sampled stream keeps the order
        assert torch.equal(a["forget"].input_ids, b["forget"].input_ids)
    with pytest.raises(ValueError, match="empty"):
        stream(retain=[])
    with pytest.raises(ValueError, match="as many rows"):
        stream(forget_idk=idk[:1])


def test_raw_text_rows_label_every_token_but_the_first(tiny_tokenizer):
    batch = encode_rows(tiny_tokenizer, [{"text": "one two three"}, {"text": "four"}], 32)
    n = int(batch.attention_mask[0].sum())
    assert (batch.labels[0, 1:n] == batch.input_ids[0, 1:n]).all()
    assert batch.labels[0, 0] == -100 and (batch.labels[0, n:] == -100).all()
    with pytest.raises(KeyError, match="question"):
        encode_rows(tiny_tokenizer, [{"prompt": "x"}], 32)


# --------------------------------------------------------------------------- loop mechanics


def test_same_seed_gives_identical_weights(tiny_tokenizer, bench, _tiny_pristine):
    qas = bench.records("forget10")
    spec = TrainSpec(epochs=1, lr=1e-3, batch_size=2, seed=7)

    def run() -> dict[str, torch.Tensor]:
        seed_everything(spec.seed)
        model = copy.deepcopy(_tiny_pristine)
        _run(model, _qa_batches(tiny_tokenizer, qas, spec), _ce_loss_fn, spec)
        return {k: v.clone() for k, v in model.state_dict().items()}

    first, second = run(), run()
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    pristine = _tiny_pristine.state_dict()
    assert any(not torch.equal(first[k], pristine[k]) for k in first)


def test_grad_accum_divides_the_optimiser_steps():
    def run(accum: int, n: int) -> TrainResult:
        spec = TrainSpec(epochs=1, lr=0.1, batch_size=1, grad_accum=accum)
        return _run(Linear1(), _regression_batches(n), _quadratic_loss_fn, spec)

    assert run(1, 6).steps == 6
    assert run(2, 6).steps == 3
    odd = run(2, 5)
    assert odd.steps == 3  # the last, partial accumulation still steps
    assert odd.train_tokens == 5 * 3
    assert [e["aux"] for e in run(2, 6).log] == pytest.approx([1.0, 1.0, 1.0])


def test_partial_last_accumulation_group_logs_the_mean():
    result = _run(Linear1(), _regression_batches(3), _quadratic_loss_fn, TrainSpec(grad_accum=2))
    assert [e["aux"] for e in result.log] == pytest.approx([1.0, 1.0])


def test_grad_accum_matches_a_big_batch_without_clipping():
    batches = _regression_batches(2)
    big = [torch.cat(batches)]
    results = []
    for stream, accum in ((batches, 2), (big, 1)):
        model = Linear1()
        spec = TrainSpec(lr=0.1, grad_accum=accum, max_grad_norm=0, weight_decay=0)
        _run(model, stream, _quadratic_loss_fn, spec)
        results.append(model.w.detach().clone())
    assert torch.allclose(results[0], results[1], atol=1e-6)


def test_train_rejects_bad_settings():
    model = Linear1()
    with pytest.raises(ValueError, match="grad_accum"):
        TrainSpec(grad_accum=0)
    with pytest.raises(ValueError, match="batch_size"):
        TrainSpec(batch_size=0)
    with pytest.raises(ValueError, match="epochs"):
        TrainSpec(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainSpec(lr=-1e-5)
    with pytest.raises(ValueError, match="nothing to train"):
        train(model, [], 0, _quadratic_loss_fn, TrainSpec())
    with pytest.raises(ValueError, match="expected 3 micro-batches"):
        train(model, _regression_batches(2), 3, _quadratic_loss_fn, TrainSpec())
    model.w.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        _run(model, _regression_batches(1), _quadratic_loss_fn, TrainSpec())


def test_train_updates_only_the_parameters_that_require_grad():
    model = Linear1()
    model.b = nn.Parameter(torch.zeros(2))
    model.b.requires_grad_(False)

    def loss_fn(m, x):
        loss, logs, n, r = _quadratic_loss_fn(m, x)
        return loss + m.b.sum() ** 2 + m.b.sum(), logs, n, r

    _run(model, _regression_batches(2), loss_fn, TrainSpec(lr=0.1))
    assert torch.equal(model.b.detach(), torch.zeros(2))
    assert not torch.equal(model.w.detach(), torch.zeros(4))


# --------------------------------------------------------------------------- mixed precision


class DtypeProbe(nn.Module):
    """Records the dtype its matmul ran in."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 1, bias=False)
        self.seen: list[torch.dtype] = []

    def forward(self, x):
        out = self.lin(x)
        self.seen.append(out.dtype)
        return out


def test_autocast_runs_the_forward_in_the_compute_dtype_and_keeps_fp32_weights():
    model = DtypeProbe()
    model.compute_dtype = torch.bfloat16

    def loss_fn(m, x):
        return m(x).float().pow(2).mean(), {}, 1, 0

    _run(model, _regression_batches(2), loss_fn, TrainSpec(lr=1e-3, batch_size=1))
    assert model.seen == [torch.bfloat16, torch.bfloat16]
    assert model.lin.weight.dtype == torch.float32


def test_small_updates_accumulate_in_the_float32_weights():
    """600 AdamW steps of lr 1e-5 move a weight at 1.0 by ~6e-3 under bf16 compute: the
    weights stay float32, so updates far below bf16's spacing (2^-8) are not rounded away."""
    spec = TrainSpec(lr=1e-5, weight_decay=0.0, warmup_ratio=0.0, schedule="constant")
    model = Linear1(value=1.0)
    model.compute_dtype = torch.bfloat16
    result = _run(model, [torch.zeros(1)] * 600, lambda m, _x: (m.w.sum(), {}, 1, 0), spec)
    assert result.steps == 600
    assert model.w.dtype == torch.float32
    assert torch.all(model.w.detach() < 1.0 - 5e-3)


# --------------------------------------------------------------------------- misc


def test_seed_everything_seeds_torch_and_numpy():
    seed_everything(11)
    a = (torch.rand(2), np.random.rand(2))
    seed_everything(11)
    b = (torch.rand(2), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_peak_memory_on_cpu_sees_an_allocation():
    size = 64 * 2**20
    with PeakMemory(torch.device("cpu"), interval_s=0.005) as memory:
        # A fresh anonymous mapping with every page written: RSS grows by 64 MiB for sure
        # (a numpy array may reuse pages the allocator already holds).
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        time.sleep(0.2)
        block.close()
    assert memory.peak_mb > 32
