"""lib.methods.sisa on tiny-random: the left-padded completion loss against a direct computation,
exact retraining (one request at a time = several together = training without the rows), only
the affected shard and slices retrained, aggregation, full fine-tuning as a switch, the method
contract and its validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from lib import methods
from lib.methods.base import UnlearnContext, UnlearnData
from lib.methods.sisa import Sisa, aggregate, encode_left
from lib.specs import LoraSpec, TrainSpec

SPEC = TrainSpec(epochs=2.0, lr=1e-2, batch_size=4, warmup_ratio=0.0, schedule="constant")
LORA = LoraSpec(r=2, alpha=4)


def _rows(n: int) -> list[dict[str, str]]:
    words = ["foo", "bar"]
    return [
        {"prompt": f"Review: thing number {i} was {'good' if i % 2 else 'bad'}\nLabel:",
         "completion": " " + words[i % 2]}
        for i in range(n)
    ]  # fmt: skip


def test_encode_left_puts_completions_in_the_kept_positions(tiny_tokenizer) -> None:
    batch = encode_left(tiny_tokenizer, ["a b c", "d"], [" foo", " sunny day"], max_length=64)
    ids = lambda t: tiny_tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    width = batch.input_ids.shape[1]
    assert width == max(len(ids("a b c")) + 1, len(ids("d")) + len(ids(" sunny day")))
    assert batch.n_kept == len(ids(" sunny day"))
    # row 1 ends with its completion, labelled in full; row 0 only in the last kept slot
    assert batch.labels[1].tolist() == ids(" sunny day")
    assert batch.labels[0, -1].item() == ids(" foo")[0] and (batch.labels[0, :-1] == -100).all()
    assert batch.input_ids[0, -1].item() == ids(" foo")[0]
    # positions count real tokens only
    real = batch.attention_mask[0].bool()
    assert batch.position_ids[0, real].tolist() == list(range(int(real.sum())))
    # a long prompt loses its start, never the completion
    cut = encode_left(tiny_tokenizer, ["w " * 50], [" foo"], max_length=8)
    assert cut.input_ids.shape[1] == 8 and cut.labels[0, -1].item() == ids(" foo")[0]


def test_pair_loss_equals_cross_entropy_of_the_full_sequences(tiny_model, tiny_tokenizer) -> None:
    from lib.methods.sisa import _pair_loss

    prompts, completions = ["a b c", "d e"], [" foo", " sunny day"]
    batch = encode_left(tiny_tokenizer, prompts, completions, max_length=64)
    ids = lambda t: tiny_tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    terms = []
    with torch.no_grad():
        loss = _pair_loss(tiny_model, batch)
        for p, c in zip(prompts, completions, strict=True):
            full = torch.tensor([ids(p) + ids(c)])
            logp = F.log_softmax(tiny_model(input_ids=full).logits[0].float(), -1)
            n_p = len(ids(p))
            terms += [-logp[n_p - 1 + j, t].item() for j, t in enumerate(ids(c))]
    assert loss.item() == pytest.approx(np.mean(terms), abs=1e-5)


def _checkpoints(ensemble) -> dict[tuple[int, int], dict[str, torch.Tensor]]:
    return {
        (s, r): load_file(str(ensemble._path(s, r)))
        for s in range(ensemble.partition.n_shards)
        for r in range(ensemble.partition.n_slices)
    }


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def fitted(_tiny_pristine, tiny_tokenizer):
    """One ensemble (2 shards x 3 slices over 24 rows), fitted, with its initial checkpoints."""
    method = Sisa(n_shards=2, n_slices=3)
    spec = TrainSpec(**{**SPEC.__dict__, "lora": LORA})
    ensemble = method.ensemble(_tiny_pristine, tiny_tokenizer, _rows(24), spec)
    ensemble.fit()
    return method, ensemble, _checkpoints(ensemble)


def test_deletion_retrains_only_the_affected_shard_from_the_affected_slice(fitted) -> None:
    method, ensemble, before = fitted
    part = ensemble.partition
    # a row of shard 0 in its last slice: stages < 2 of shard 0 and all of shard 1 untouched
    victim = int(part.members(0, 2)[0])
    plans, result = ensemble.delete([victim])
    assert [(p.shard, p.from_slice) for p in plans] == [(0, 2)]
    after = _checkpoints(ensemble)
    for key in before:
        unchanged = key[0] == 1 or key[1] < 2
        assert _same(before[key], after[key]) == unchanged, key
    assert result.train_tokens > 0 and result.steps >= 1
    # adapters only (LoRA): the checkpoint holds lora_ parameters, nothing else
    assert all("lora_" in name for name in after[(0, 0)])


def test_exact_one_at_a_time_equals_together_equals_never_trained(_tiny_pristine, tiny_tokenizer):
    spec = TrainSpec(**{**SPEC.__dict__, "lora": LORA})
    method = Sisa(n_shards=2, n_slices=2)
    rows = _rows(16)

    def build():
        return method.ensemble(_tiny_pristine, tiny_tokenizer, rows, spec)

    part = build().partition
    doomed = [int(part.members(0, 1)[0]), int(part.members(1, 0)[1]), int(part.members(0, 0)[2])]
    one_by_one, together, never = build(), build(), build()
    one_by_one.fit()
    tokens = sum(one_by_one.delete([i])[1].train_tokens for i in doomed)
    together.fit()
    plans, result = together.delete(doomed)
    never.partition.delete(doomed)  # removed before any training
    never.fit()
    a, b, c = _checkpoints(one_by_one), _checkpoints(together), _checkpoints(never)
    for key in a:
        assert _same(a[key], b[key]) and _same(a[key], c[key]), key
    # together retrains each shard once, from its earliest slice: fewer tokens than one by one
    assert sorted((p.shard, p.from_slice) for p in plans) == [(0, 0), (1, 0)]
    assert result.train_tokens < tokens


def test_aggregation_by_vote_and_by_mean_probability() -> None:
    # 3 shards, 2 examples, 2 labels
    lp = np.log(
        np.array(
            [
                [[0.6, 0.4], [0.9, 0.1]],
                [[0.55, 0.45], [0.2, 0.8]],
                [[0.1, 0.9], [0.3, 0.7]],
            ]
        )
    )
    assert aggregate(lp, "vote").tolist() == [0, 1]  # 2 of 3 shards vote 0, then 1
    # mean of p(label 0): (0.6 + 0.55 + 0.1)/3 = 0.417 -> label 1; (0.9 + 0.2 + 0.3)/3 = 0.467 -> 1
    assert aggregate(lp, "probabilities").tolist() == [1, 1]
    with pytest.raises(ValueError, match="aggregation"):
        aggregate(lp, "max")


def test_full_finetune_checkpoints_every_weight_and_unlearn_contract(
    _tiny_pristine, tiny_tokenizer
) -> None:
    rows = _rows(12)
    method = methods.get("sisa", n_shards=2, n_slices=2, full_finetune=True)
    data = UnlearnData({"retain": rows[:10], "forget": rows[10:]})
    ctx = UnlearnContext(tiny_tokenizer, SPEC, load_reference=lambda: _tiny_pristine)
    out = method.unlearn(_tiny_pristine, data, ctx)
    assert out.model is None and len(out.ensemble) == 2
    n_params = sum(p.numel() for p in _tiny_pristine.parameters())
    assert out.flops == pytest.approx(6.0 * n_params * out.train.train_tokens) and out.flops > 0
    assert out.diagnostics["shards_retrained"] == len(out.diagnostics["plans"]) >= 1
    # every (untied) weight is trained and checkpointed: ~n_params float32 per checkpoint
    assert out.diagnostics["checkpoint_bytes"] >= 4 * 4 * n_params
    moved = [
        not torch.equal(a, b)
        for a, b in zip(_tiny_pristine.parameters(), out.ensemble[0].parameters(), strict=True)
    ]
    assert all(moved)  # full fine-tuning: even the embeddings moved
    # the base model was not modified
    assert not any("lora" in n for n, _ in _tiny_pristine.named_parameters())


def test_lora_top_layers_and_validation(_tiny_pristine, tiny_tokenizer) -> None:
    method = Sisa(n_shards=1, n_slices=1, lora_top_layers=1)
    ensemble = method.ensemble(
        _tiny_pristine, tiny_tokenizer, _rows(4), TrainSpec(**{**SPEC.__dict__, "lora": LORA})
    )
    assert ensemble.lora_layers == [1]
    model = ensemble._model_at(0, -1)
    adapted = {n for n, p in model.named_parameters() if p.requires_grad}
    assert adapted and all(".layers.1." in n for n in adapted)
    for bad, match in (
        ({"n_shards": 0}, "n_shards"),
        ({"n_slices": 1.5}, "n_slices"),
        ({"aggregation": "max"}, "aggregation"),
        ({"lora_top_layers": 3}, "lora_top_layers"),
    ):
        with pytest.raises(ValueError, match=match):
            Sisa(**bad).check(2)
    with pytest.raises(ValueError, match="n_shards"):
        Sisa(n_shards=30).partition(20, 1.0)
