"""Tests of lib.methods.pretrained (the seven methods of Yao et al. 2024): every loss against a
hand computation on a toy batch (sign, per-chunk weighting, masking), the RL and AS label
construction (intended alignment and the official off-by-one), the chunk schedule, and the
training loop on the tiny model."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from lib import methods
from lib.batches import IGNORE, Batch
from lib.methods.base import UnlearnContext, UnlearnData
from lib.methods.losses import ce_mean
from lib.methods.pretrained import (
    ADVERSARIAL_STREAM,
    PAPER_NAMES,
    adversarial_from_logits,
    adversarial_labels,
    random_labels,
    reference_cross_entropy,
    token_ids,
)
from lib.specs import TrainSpec

NAMES = list(PAPER_NAMES)
V = 7


class BigramLM(nn.Module):
    """Logits at position t are a row of a table indexed by token t."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(V, V, generator=generator))

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.table[input_ids])


def _text_batch(rows: list[list[int]]) -> Batch:
    """Raw-text rows, right-padded with 0: every token after the first is labelled."""
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
        labels[i, 1 : len(r)] = torch.tensor(r[1:])
    return Batch(ids, mask, labels)


def _log_softmax(row: np.ndarray) -> np.ndarray:
    return row - np.log(np.exp(row).sum())


def _chunk_ce(table: np.ndarray, ids: list[int]) -> float:
    """Mean NLL of tokens 1..n-1 of one chunk under the bigram table (by hand)."""
    return float(
        np.mean([-_log_softmax(table[a])[b] for a, b in zip(ids[:-1], ids[1:], strict=True)])
    )


FORGET = [[1, 2, 3, 4, 5], [6, 1]]  # unequal lengths: 4 and 1 labelled tokens
RETAIN = [[3, 3, 2, 1], [0, 5, 6]]


@pytest.fixture
def toy():
    model, reference = BigramLM(0), BigramLM(1)
    return SimpleNamespace(
        model=model,
        reference=reference,
        table=model.table.detach().numpy(),
        ref_table=reference.table.detach().numpy(),
        forget=_text_batch(FORGET),
        retain=_text_batch(RETAIN),
    )


# --------------------------------------------------------------------------- losses by hand
def test_pt_ga_is_minus_the_per_chunk_mean_not_the_token_mean(toy):
    loss, logs = methods.get("pt_ga").loss(toy.model, {"forget": toy.forget}, None)
    per_chunk = [_chunk_ce(toy.table, ids) for ids in FORGET]
    assert loss.item() == pytest.approx(-np.mean(per_chunk), rel=1e-5)
    assert logs["forget_nll"] == pytest.approx(np.mean(per_chunk), rel=1e-5)
    # the study's `ga` weighs tokens (4:1 here), so it differs on unequal chunks ...
    token_mean = ce_mean(toy.model(toy.forget.input_ids).logits, toy.forget.labels).item()
    assert token_mean == pytest.approx((4 * per_chunk[0] + per_chunk[1]) / 5, rel=1e-5)
    assert loss.item() != pytest.approx(-token_mean, rel=1e-3)
    # ... and agrees with it on a single chunk (batch size 1, as the official code)
    one = {"forget": _text_batch(FORGET[:1])}
    ga_loss, _ = methods.get("ga").loss(toy.model, one, None)
    pt_loss, _ = methods.get("pt_ga").loss(toy.model, one, None)
    assert pt_loss.item() == pytest.approx(ga_loss.item(), rel=1e-6)


@pytest.mark.parametrize("name", ["pt_rl", "pt_as"])
def test_relabelling_methods_descend_on_the_labels_they_are_given(toy, name):
    relabelled = _text_batch(FORGET)
    relabelled.labels[0, 1:5] = torch.tensor([6, 6, 0, 2])
    loss, _ = methods.get(name).loss(toy.model, {"forget": relabelled}, None)
    first = np.mean(
        [-_log_softmax(toy.table[a])[b] for a, b in zip([1, 2, 3, 4], [6, 6, 0, 2], strict=True)]
    )
    second = _chunk_ce(toy.table, FORGET[1])
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-5)  # sign +: descent


@pytest.mark.parametrize("name", ["pt_ga_gd_in", "pt_ga_gd_gen"])
def test_ga_gd_is_the_factor_weighted_mean_over_forget_and_retain_chunks(toy, name):
    batch = {"forget": _text_batch(FORGET[:1]), "retain": toy.retain}
    loss, logs = methods.get(name, retain_weight=0.5).loss(toy.model, batch, None)
    f = _chunk_ce(toy.table, FORGET[0])
    r = [_chunk_ce(toy.table, ids) for ids in RETAIN]
    assert loss.item() == pytest.approx((-f + 0.5 * (r[0] + r[1])) / 3, rel=1e-5)
    assert logs["retain_nll"] == pytest.approx(np.mean(r), rel=1e-5)
    only_retain, _ = methods.get(name).loss(toy.model, {"retain": toy.retain}, None)
    assert only_retain.item() == pytest.approx(np.mean(r), rel=1e-5)  # a retain micro-batch


def _hand_cross_entropy(table, ref_table, ids: list[int], positions: list[int]) -> float:
    """-sum_v p_ref(v) log p(v), averaged over `positions` of the padded row `ids`."""
    values = []
    for t in positions:
        p_ref = np.exp(_log_softmax(ref_table[ids[t]]))
        values.append(-(p_ref * _log_softmax(table[ids[t]])).sum())
    return float(np.mean(values))


@pytest.mark.parametrize("name", ["pt_ga_kl_in", "pt_ga_kl_gen"])
def test_ga_kl_cross_entropy_to_the_reference_masked_and_unmasked(toy, name):
    batch = {"forget": _text_batch(FORGET[:1]), "retain": toy.retain}
    f = _chunk_ce(toy.table, FORGET[0])
    padded = [r + [0] * (4 - len(r)) for r in RETAIN]  # RETAIN[1] has one padding position
    masked = [
        _hand_cross_entropy(toy.table, toy.ref_table, padded[i], list(range(len(r) - 1)))
        for i, r in enumerate(RETAIN)
    ]
    unmasked = [_hand_cross_entropy(toy.table, toy.ref_table, p, list(range(4))) for p in padded]
    loss, logs = methods.get(name).loss(toy.model, batch, toy.reference)
    assert loss.item() == pytest.approx((-f + masked[0] + masked[1]) / 3, rel=1e-5)
    assert logs["retain_ce_to_reference"] == pytest.approx(np.mean(masked), rel=1e-5)
    code, _ = methods.get(name, kl_mask="none").loss(toy.model, batch, toy.reference)
    assert code.item() == pytest.approx((-f + unmasked[0] + unmasked[1]) / 3, rel=1e-5)
    # the cross-entropy is KL + the entropy of p_ref: equal models leave only the entropy
    same, _ = methods.get(name).loss(toy.model, {"retain": toy.retain}, toy.model)
    entropy = np.mean(
        [
            _hand_cross_entropy(toy.table, toy.table, padded[i], list(range(len(r) - 1)))
            for i, r in enumerate(RETAIN)
        ]
    )
    assert same.item() == pytest.approx(entropy, rel=1e-5)
    with pytest.raises(ValueError, match="kl_mask"):
        methods.get(name, kl_mask="answer").check(2)


def test_reference_cross_entropy_rejects_unknown_masks(toy):
    logits = toy.model(toy.retain.input_ids).logits
    with pytest.raises(ValueError, match="kl_mask must be one of"):
        reference_cross_entropy(logits, logits, toy.retain.labels, "all")


def test_the_gradient_of_ga_raises_the_forget_nll(toy):
    method = methods.get("pt_ga")
    loss, logs = method.loss(toy.model, {"forget": toy.forget}, None)
    loss.backward()
    with torch.no_grad():
        toy.model.table -= 0.1 * toy.model.table.grad
    _, after = method.loss(toy.model, {"forget": toy.forget}, None)
    assert after["forget_nll"] > logs["forget_nll"]


# --------------------------------------------------------------------------- labels
def test_adversarial_labels_intended_alignment_by_hand():
    ids = torch.tensor([0, 1, 2, 3])
    logits = torch.tensor(
        [
            [0.0, 5.0, 4.0, 1.0, 2.0],  # predicts ids[1] = 1: excluded -> 2
            [9.0, 0.0, 8.0, 0.0, 0.0],  # predicts ids[2] = 2: top-1 is 0 anyway
            [0.0, 0.0, 0.0, 7.0, 6.0],  # predicts ids[3] = 3: excluded -> 4
            [0.0, 0.0, 0.0, 0.0, 3.0],  # predicts beyond the chunk: unused
        ]
    )
    labels = adversarial_from_logits(logits, ids)
    assert labels.tolist() == [IGNORE, 2, 0, 4]


def test_adversarial_labels_official_off_by_one_by_hand():
    ids = torch.tensor([0, 1, 2, 3])
    logits = torch.tensor(
        [
            [0.0, 5.0, 4.0, 1.0, 2.0],  # (label 0 is never used by the shifted loss)
            [9.0, 0.0, 8.0, 0.0, 0.0],  # masks ids[1] = 1 (the *input* token): top-1 is 0
            [0.0, 0.0, 0.0, 7.0, 6.0],  # masks ids[2] = 2 and vocab id 4: top-1 is 3
            [0.0, 0.0, 0.0, 5.0, 3.0],  # masks ids[3] = 3 and vocab id 4: top-1 is 0
        ]
    )
    labels = adversarial_from_logits(logits, ids, official_off_by_one=True)
    assert labels.tolist() == [IGNORE, 0, 3, 0]
    # so position 1 (which predicts token 2) is trained towards the guess made at position 2
    # for token 3: the code's off-by-one


def test_adversarial_labels_from_a_model_exclude_the_true_next_token(tiny_model, tiny_tokenizer):
    rows = [{"text": "def add(a, b):\n    return a + b"}, {"text": "The cat sat on the mat."}]
    labels = adversarial_labels(tiny_model, tiny_tokenizer, rows, max_length=64, batch_size=2)
    for row, lab in zip(rows, labels, strict=True):
        ids = token_ids(tiny_tokenizer, row["text"], 64)
        assert len(lab) == len(ids) and lab[0] == IGNORE
        assert all(lab[t] != ids[t] for t in range(1, len(ids)))
        with torch.no_grad():
            logits = tiny_model(input_ids=torch.tensor([ids])).logits[0]
        expected = adversarial_from_logits(logits, torch.tensor(ids))
        assert lab.tolist() == expected.tolist()


def test_random_labels_keep_special_tokens_and_are_seeded(tiny_tokenizer):
    eos, pad = tiny_tokenizer.eos_token_id, tiny_tokenizer.pad_token_id
    ids = [10, 11, eos, 12, pad, 13]
    labels = random_labels(tiny_tokenizer, ids, seed=0, index=3)
    assert labels[0] == IGNORE and labels[2] == eos and labels[4] == pad
    assert all(0 <= labels[t] < tiny_tokenizer.vocab_size for t in (1, 3, 5))
    assert labels.tolist() == random_labels(tiny_tokenizer, ids, 0, 3).tolist()
    assert labels.tolist() != random_labels(tiny_tokenizer, ids, 0, 4).tolist()
    assert labels.tolist() != random_labels(tiny_tokenizer, ids, 1, 3).tolist()


# --------------------------------------------------------------------------- schedule
def _data(n_forget: int, n_retain: int) -> UnlearnData:
    forget = [{"text": f"forget chunk number {i} says something"} for i in range(n_forget)]
    retain = [{"text": f"retain chunk number {i} says something else"} for i in range(n_retain)]
    return UnlearnData({"forget": forget, "retain": retain})


def test_schedule_shuffles_forget_epochs_and_interleaves_retain_in_order():
    spec = TrainSpec(epochs=2, batch_size=1, seed=0)
    ga = methods.get("pt_ga").schedule(_data(3, 0), spec)
    assert sorted(i for _, i in ga[:3]) == [0, 1, 2] and sorted(i for _, i in ga[3:]) == [0, 1, 2]
    assert {s for s, _ in ga} == {"forget"}
    gd = methods.get("pt_ga_gd_in", retain_ratio=2).schedule(_data(2, 5), spec)
    one = [("forget", 0), ("retain", 0), ("retain", 1), ("forget", 1), ("retain", 2)]
    one += [("retain", 3)]
    assert gd == one + one  # the first n_forget x ratio retain chunks, in order, per epoch
    half = methods.get("pt_ga_kl_gen").schedule(_data(2, 2), TrainSpec(epochs=1.5))
    assert half == [("forget", 0), ("retain", 0), ("forget", 1), ("retain", 1)] * 1 + [
        ("forget", 0),
        ("retain", 0),
    ]
    with pytest.raises(ValueError, match="need 4 retain chunks"):
        methods.get("pt_ga_gd_in", retain_ratio=2).schedule(_data(2, 3), spec)
    with pytest.raises(ValueError, match="retain_ratio"):
        methods.get("pt_ga_gd_in", retain_ratio=0).check(2)


def test_taxonomy_rows_of_the_seven_methods():
    table = methods.taxonomy().set_index("method")
    assert set(NAMES) <= set(table.index)
    assert table.loc["pt_rl", "family"] == "relabeling" == table.loc["pt_as", "family"]
    assert not table.loc["pt_ga", "needs retain data"]
    assert table.loc["pt_ga_gd_gen", "needs retain data"]
    assert table.loc["pt_ga_kl_in", "needs reference model"]
    assert not table.loc["pt_ga_gd_in", "needs reference model"]
    assert methods.METHODS["pt_ga_gd_gen"].retain_set == "general"
    assert methods.METHODS["pt_ga_kl_in"].retain_set == "in-distribution"


# --------------------------------------------------------------------------- the loop
def _context(tokenizer, model, loads: list, **train_overrides) -> UnlearnContext:
    def load_reference():
        loads.append(1)
        return copy.deepcopy(model)

    train = dict(epochs=1, lr=1e-3, batch_size=1, grad_accum=2, max_length=24, warmup_ratio=0.0)
    return UnlearnContext(tokenizer, TrainSpec(**{**train, **train_overrides}), load_reference)


@pytest.mark.parametrize("name", NAMES)
def test_every_method_unlearns_on_the_tiny_model(name, tiny_model, tiny_tokenizer):
    loads: list[int] = []
    data = _data(4, 6)
    ctx = _context(tiny_tokenizer, tiny_model, loads)
    method = methods.get(name)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    out = method.unlearn(tiny_model, data, ctx)
    chunks = 4 * (2 if method.retain_set else 1)
    assert out.train.steps == math.ceil(chunks / 2) and not out.train.diverged
    n_forget_tokens = sum(len(token_ids(tiny_tokenizer, r["text"], 24)) for r in data["forget"])
    n_retain_tokens = sum(len(token_ids(tiny_tokenizer, r["text"], 24)) for r in data["retain"][:4])
    assert out.train.train_tokens == n_forget_tokens + (n_retain_tokens if method.retain_set else 0)
    expected_ref = {"pt_as": n_forget_tokens, "pt_ga_kl_in": n_retain_tokens}
    expected_ref["pt_ga_kl_gen"] = n_retain_tokens
    assert out.train.reference_tokens == expected_ref.get(name, 0)
    assert len(loads) == int(name in ("pt_as", "pt_ga_kl_in", "pt_ga_kl_gen"))
    after = out.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_adversarial_labels_given_as_a_stream_are_used_without_the_reference(
    tiny_model, tiny_tokenizer
):
    loads: list[int] = []
    data = _data(2, 0)
    given = [
        {"labels": np.array([IGNORE] + [7] * (len(token_ids(tiny_tokenizer, r["text"], 24)) - 1))}
        for r in data["forget"]
    ]
    streams = {**data.streams, ADVERSARIAL_STREAM: given}
    ctx = _context(tiny_tokenizer, tiny_model, loads)
    method = methods.get("pt_as")
    micro = list(
        method._micro_batches(
            UnlearnData(streams), [("forget", 1)], [g["labels"] for g in given], ctx
        )
    )
    batch = micro[0]["forget"]
    assert (
        batch.labels[0, 0] == IGNORE
        and (batch.labels[0, 1:][batch.attention_mask[0, 1:] == 1] == 7).all()
    )
    out = method.unlearn(tiny_model, UnlearnData(streams), ctx)
    assert loads == [] and out.train.steps == 1
    bad = {**data.streams, ADVERSARIAL_STREAM: given[:1]}
    with pytest.raises(ValueError, match="rows for 2 forget rows"):
        method.unlearn(tiny_model, UnlearnData(bad), ctx)


def test_random_labels_replace_the_tokens_in_the_micro_batches(tiny_model, tiny_tokenizer):
    ctx = _context(tiny_tokenizer, tiny_model, [])
    method = methods.get("pt_rl")
    data = _data(2, 0)
    labels, _ = method.forget_labels(data, ctx)
    micro = list(method._micro_batches(data, [("forget", 0)], labels, ctx))[0]["forget"]
    n = int(micro.attention_mask.sum())
    assert micro.labels[0, :n].tolist() == labels[0].tolist()
    assert micro.labels[0, 1:n].tolist() != micro.input_ids[0, 1:n].tolist()


def test_unmasked_kl_pads_rows_to_max_length_as_the_code(tiny_model, tiny_tokenizer):
    ctx = _context(tiny_tokenizer, tiny_model, [])
    data = _data(1, 1)
    masked = next(methods.get("pt_ga_kl_in")._micro_batches(data, [("retain", 0)], None, ctx))
    code = next(
        methods.get("pt_ga_kl_in", kl_mask="none")._micro_batches(data, [("retain", 0)], None, ctx)
    )
    n = int(masked["retain"].attention_mask.sum())
    assert masked["retain"].input_ids.shape[1] == n < 24
    assert code["retain"].input_ids.shape[1] == 24
    assert code["retain"].n_tokens == n and (code["retain"].labels[0, n:] == IGNORE).all()


def test_epoch_hook_sees_each_pass_of_the_interleaved_schedule(tiny_model, tiny_tokenizer):
    seen = []
    ctx = _context(tiny_tokenizer, tiny_model, [], epochs=2)
    ctx.on_epoch = lambda model, epoch: seen.append((epoch, model.training))
    # 3 forget + 3 retain chunks a pass: 6 rows, 2 epochs, so the hook fires after each pass
    out = methods.get("pt_ga_gd_in").unlearn(tiny_model, _data(3, 3), ctx)
    assert seen == [(1, False), (2, False)]
    assert out.train.steps == 6
