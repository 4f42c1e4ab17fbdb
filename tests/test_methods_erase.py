"""lib.methods.erase: the row-wise feature map (what exactness needs), exactness at the method
level (the selection after deletions = a fresh fit on the remaining rows with the same
randomness), the unlearn contract on tiny-random, random k-shot, the encoder switch, validation."""

from __future__ import annotations

import numpy as np
import pytest

from lib import methods
from lib.algorithms.qkmeans import ClusterDemonstrations, QuantizedKMeans
from lib.methods.base import UnlearnContext, UnlearnData
from lib.methods.erase import Erase, RandomKShot, demonstration_text
from lib.specs import TrainSpec


def _blobs(n: int, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d)) * 3
    return centres[rng.integers(4, size=n)] + rng.normal(size=(n, d))


def test_projection_is_row_wise_unit_norm_and_seeded() -> None:
    X = _blobs(50)
    method = Erase(projection_dim=8)
    full = method.project(X)
    assert full.shape == (50, 8)
    # row-wise: a subset's features are the subset of the features (deletion cannot move a row)
    np.testing.assert_array_equal(method.project(X[10:20]), full[10:20])
    # scale-free: a row's features do not depend on its norm
    np.testing.assert_allclose(method.project(X * 7.0), full, rtol=1e-12)
    no_projection = Erase(projection_dim=0).project(X)
    np.testing.assert_allclose(np.linalg.norm(no_projection, axis=1), 1.0)
    assert not np.allclose(Erase(projection_dim=8, projection_seed=1).project(X), full)
    with pytest.raises(ValueError, match="zero vector"):
        method.project(np.zeros((2, 3)))


def test_selection_after_deletions_equals_a_fresh_fit_on_the_remaining_rows() -> None:
    X = Erase(projection_dim=6).project(_blobs(300, seed=1))
    method = Erase(k=5, epsilon=0.2, projection_dim=6)
    selection = method.select(len(X), seed=3, features=X)
    doomed = np.random.default_rng(0).choice(len(X), size=40, replace=False)
    outcomes = [selection.delete(int(i)) for i in doomed]
    assert any(o.reclustered for o in outcomes) and any(not o.reclustered for o in outcomes)
    kmeans = selection.selector.kmeans
    keep = np.setdiff1d(np.arange(len(X)), doomed)
    position = {int(r): j for j, r in enumerate(keep)}
    fresh = QuantizedKMeans(5, 0.2, seed=3).fit(
        X[keep], init_indices=np.array([position[int(i)] for i in kmeans.init_indices_])
    )
    expected = keep[ClusterDemonstrations(fresh).indices]
    np.testing.assert_array_equal(selection.indices, expected)
    assert not set(selection.indices.tolist()) & set(doomed.tolist())
    assert all(o.seconds >= 0 and o.flops > 0 for o in outcomes)


def test_unlearn_returns_the_untouched_model_and_a_context_without_forget_rows(
    tiny_model, tiny_tokenizer
) -> None:
    rows = [{"text": f"sentence {i} about {'cats' if i % 2 else 'cars'}"} for i in range(30)]
    data = UnlearnData({"retain": rows[:24], "forget": rows[24:]})
    ctx = UnlearnContext(tiny_tokenizer, TrainSpec(seed=1), load_reference=lambda: tiny_model)
    before = [p.detach().clone() for p in tiny_model.parameters()]
    out = methods.get("erase", k=4, epsilon=0.05, projection_dim=4).unlearn(tiny_model, data, ctx)
    assert out.model is tiny_model
    assert all(
        np.array_equal(a, b.detach()) for a, b in zip(before, tiny_model.parameters(), strict=True)
    )
    chosen = out.diagnostics["demonstrations"]
    assert 1 <= len(chosen) <= 4 and all(i < 24 for i in chosen)
    assert out.context == "\n\n".join(rows[i]["text"] for i in chosen)
    assert out.diagnostics["deletions"] == 6
    assert 0 <= out.diagnostics["recluster_rate"] <= 1 and out.flops > 0
    # the same request gives the same context (seeded), another seed may not
    again = methods.get("erase", k=4, epsilon=0.05, projection_dim=4).unlearn(tiny_model, data, ctx)
    assert again.context == out.context


def test_random_kshot_contract_and_demonstration_text(tiny_model, tiny_tokenizer) -> None:
    rows = [{"question": f"Q{i}?", "answer": f"A{i}."} for i in range(10)]
    assert demonstration_text(rows[0]) == "Q: Q0?\nA: A0."
    assert demonstration_text({"demonstration": "x", "text": "y"}) == "x"
    with pytest.raises(KeyError, match="demonstration"):
        demonstration_text({"label": 1})
    data = UnlearnData({"retain": rows[:7], "forget": rows[7:]})
    ctx = UnlearnContext(tiny_tokenizer, TrainSpec(seed=0), load_reference=lambda: tiny_model)
    out = RandomKShot(k=3).unlearn(tiny_model, data, ctx)
    assert len(out.diagnostics["demonstrations"]) == 3
    assert all(i < 7 for i in out.diagnostics["demonstrations"])
    assert out.diagnostics["reclustered"] == 0


def test_encoder_switch_embeds_with_another_model(tiny_model, tiny_tokenizer) -> None:
    texts = ["one text", "another text", "a third"]
    own = Erase(projection_dim=0).embed(tiny_model, tiny_tokenizer, texts)
    other = Erase(projection_dim=0, encoder="tiny-random").embed(None, None, texts)
    # tiny-random is deterministic; the encoder computes in the policy's dtype (bf16 autocast on
    # a bf16-capable CPU), the fixture in float32
    np.testing.assert_allclose(own, other, atol=3e-2)
    assert not np.allclose(
        own, Erase(projection_dim=0, layer=0).embed(tiny_model, tiny_tokenizer, texts)
    )
    assert own.shape == (3, tiny_model.config.hidden_size)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"k": 0}, "k must"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"n_iter": 0}, "n_iter"),
        ({"gamma": -1.0}, "gamma"),
        ({"projection_dim": -1}, "projection_dim"),
        ({"layer": 5}, "layer"),
    ],
)
def test_bad_hyperparameters_raise(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Erase(**overrides).check(2)


def test_k_larger_than_the_data_raises() -> None:
    with pytest.raises(ValueError, match="larger than the data"):
        Erase(k=10).select(5, 0, np.ones((5, 2)))
    with pytest.raises(ValueError, match="larger than the data"):
        RandomKShot(k=10).select(5, 0)
    with pytest.raises(ValueError, match="features"):
        Erase(k=2).select(5, 0, None)
