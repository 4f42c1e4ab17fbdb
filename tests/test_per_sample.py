"""Per-example gradients with torch.func against a Python loop of ordinary backward passes."""

from __future__ import annotations

import pytest
import torch

from lib.algorithms.per_sample import (
    ParamLayout,
    loss_gradient,
    per_sample_gradients,
    prepare_targets,
    select_parameters,
)


def _batch(m: int = 5, length: int = 9, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 2000, (m, length), generator=gen)
    lengths = torch.tensor([length, 4, length - 2, 2, 6][:m])
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    ids = ids.masked_fill(mask == 0, 0)
    return ids, mask


def _loop_gradients(model, ids, mask, names):
    named = dict(model.named_parameters())
    rows = []
    for i in range(ids.shape[0]):
        n = int(mask[i].sum())
        model.zero_grad()
        out = model(input_ids=ids[i : i + 1, :n], labels=ids[i : i + 1, :n])
        out.loss.backward()  # Hugging Face's own mean next-token loss of a batch of one
        rows.append(torch.cat([named[k].grad.reshape(-1) for k in names]))
    return torch.stack(rows)


def test_select_parameters_last_k_and_all(tiny_model):
    last1 = select_parameters(tiny_model, "last_k", k=1)
    assert last1 and all(n.startswith("model.layers.1.") or n == "model.norm.weight" for n in last1)
    assert "model.norm.weight" in last1
    assert not any(n.startswith("model.layers.0.") for n in last1)
    last2 = select_parameters(tiny_model, "last_k", k=2)
    assert any(n.startswith("model.layers.0.") for n in last2)
    assert "model.embed_tokens.weight" not in last2
    # Tied embeddings: the head is the embedding matrix, listed once under its embedding name.
    with_head = select_parameters(tiny_model, "last_k", k=1, include_head=True)
    assert set(with_head) - set(last1) == {"model.embed_tokens.weight"}
    everything = select_parameters(tiny_model, "all")
    assert everything == [n for n, _ in tiny_model.named_parameters()]
    with pytest.raises(ValueError, match="scope"):
        select_parameters(tiny_model, "first_k")
    with pytest.raises(ValueError, match="1..2"):
        select_parameters(tiny_model, "last_k", k=3)


def test_per_sample_equals_loop_of_backward_passes(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=1, include_head=True)
    ids, mask = _batch()
    G, layout = per_sample_gradients(tiny_model, ids, mask, params=names, chunk_size=2)
    assert G.dtype == torch.float32 and G.shape == (5, layout.numel)
    expected = _loop_gradients(tiny_model, ids, mask, names)
    rel = (G - expected).norm(dim=1) / expected.norm(dim=1)
    assert rel.max() < 1e-5
    # Not trivially zero: each row carries that example's own gradient.
    assert (G.norm(dim=1) > 0).all() and not torch.allclose(G[0], G[1])


def test_loss_gradient_is_sum_or_mean_of_rows(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=2)
    ids, mask = _batch(seed=1)
    G, layout = per_sample_gradients(tiny_model, ids, mask, params=names, chunk_size=5)
    total = loss_gradient(tiny_model, ids, mask, params=layout, reduction="sum", batch_size=2)
    mean = loss_gradient(tiny_model, ids, mask, params=layout, reduction="mean", batch_size=3)
    assert torch.allclose(total, G.sum(0), rtol=1e-4, atol=1e-6)
    assert torch.allclose(mean, G.mean(0), rtol=1e-4, atol=1e-7)
    # requires_grad flags are restored afterwards.
    assert all(p.requires_grad for p in tiny_model.parameters())


def test_layout_roundtrip(tiny_model):
    names = select_parameters(tiny_model, "last_k", k=1)
    layout = ParamLayout.from_model(tiny_model, names)
    vector = layout.get(tiny_model)
    assert vector.shape == (layout.numel,)
    parts = layout.unflatten(vector)
    assert [tuple(t.shape) for t in parts.values()] == list(layout.shapes)
    layout.set_(tiny_model, vector + 1.0)
    assert torch.allclose(layout.get(tiny_model), vector + 1.0)
    with pytest.raises(KeyError, match="unknown parameter"):
        ParamLayout.from_model(tiny_model, ["model.nope.weight"])


def test_bad_inputs_are_refused():
    ids = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="right-padded"):
        prepare_targets(ids, torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="padding positions"):
        prepare_targets(ids, torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]), ids.clone())
    with pytest.raises(ValueError, match="no target"):
        prepare_targets(ids, torch.tensor([[1, 0, 0, 0], [1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="shape"):
        prepare_targets(torch.ones(4, dtype=torch.long))
