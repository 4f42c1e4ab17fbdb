"""Tests of lib.methods: the registry, every weight-updating loss, and reference formulas."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lib import methods
from lib.batches import IGNORE, Batch, anchored_batches, encode_rows
from lib.data import build_benchmark
from lib.methods.base import (
    ACCESS,
    FAMILIES,
    GradientMethod,
    UnlearnContext,
    UnlearnData,
    Unlearned,
)
from lib.methods.losses import (
    ce_mean,
    forward_logits,
    kl_to_reference,
    mean_nll,
    reduce_nll,
    sequence_nll,
    token_nll,
)
from lib.methods.representation import (
    CONVERGED_DROP,
    activation_norm,
    decoder_layers,
    hidden_at,
    layer_at_fraction,
    masked_mse,
)
from lib.specs import TrainSpec

TRAINING_METHODS = sorted(n for n, c in methods.METHODS.items() if issubclass(c, GradientMethod))
HPARAMS = {"rmu": {"layer": 1}}  # tiny-random has 2 layers (RMU default: layer 7)


class Streams(dict):
    """A micro-batch {stream: Batch} that tests can also read as attributes."""

    __getattr__ = dict.__getitem__


def test_the_expected_methods_are_registered():
    expected_training = {"ga", "grad_diff", "ga_kl", "npo", "simnpo", "idk_dpo", "idk", "rmu"}
    assert expected_training <= set(TRAINING_METHODS)
    assert {"retrain", "icul"} <= set(methods.METHODS)
    assert methods.METHODS["retrain"].updates_weights  # retraining produces new weights
    assert not methods.METHODS["icul"].updates_weights


# --------------------------------------------------------------------------- toy model


class BigramLM(nn.Module):
    """Logits at position t depend only on token t: a tiny trainable stand-in for an LM."""

    def __init__(self, vocab: int = 7, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(vocab, vocab, generator=generator))

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.table[input_ids])


def _toy_batch(ids: list[list[int]], prompt_len: list[int], lengths: list[int]) -> Batch:
    input_ids = torch.tensor(ids)
    attention = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, IGNORE)
    for i, (p, n) in enumerate(zip(prompt_len, lengths, strict=True)):
        attention[i, :n] = 1
        labels[i, p:n] = input_ids[i, p:n]
    return Batch(input_ids, attention, labels)


@pytest.fixture
def toy():
    """A bigram model, a perturbed reference and forget/idk/retain batches (vocab 7)."""
    model = BigramLM(seed=0)
    reference = copy.deepcopy(model)
    with torch.no_grad():
        reference.table.add_(0.7 * torch.randn(7, 7, generator=torch.Generator().manual_seed(1)))
    forget = _toy_batch([[1, 2, 3, 4, 5, 0], [2, 3, 6, 1, 0, 0]], [2, 2], [6, 4])
    idk = _toy_batch([[1, 2, 6, 6, 0, 0], [2, 3, 6, 6, 0, 0]], [2, 2], [4, 4])
    retain = _toy_batch([[4, 5, 1, 2, 3, 0], [5, 4, 3, 0, 0, 0]], [1, 2], [5, 3])
    batch = Streams(forget=forget, retain=retain, forget_idk=idk)
    return SimpleNamespace(model=model, reference=reference, batch=batch)


@torch.no_grad()
def _nll(model, batch: Batch, reduction: str = "sum") -> torch.Tensor:
    """Independent per-sequence answer NLL in float64 (sum or mean over answer tokens)."""
    logits = model(batch.input_ids).logits.double()
    out = []
    for row in range(batch.input_ids.shape[0]):
        total, count = 0.0, 0
        for t in range(1, batch.input_ids.shape[1]):
            label = int(batch.labels[row, t])
            if label != IGNORE:
                total = total - torch.log_softmax(logits[row, t - 1], dim=-1)[label]
                count += 1
        out.append(total / count if reduction == "mean" else total)
    return torch.stack(out)


# --------------------------------------------------------------------------- loss building blocks


def test_token_nll_matches_cross_entropy(toy):
    forget = toy.batch.forget
    logits = forward_logits(toy.model, forget)
    nll, mask = token_nll(logits, forget.labels)
    assert mask.tolist() == (forget.labels[:, 1:] != IGNORE).tolist()
    expected = F.cross_entropy(
        logits[:, :-1].reshape(-1, 7), forget.labels[:, 1:].reshape(-1), ignore_index=IGNORE
    )
    assert torch.allclose(ce_mean(logits, forget.labels), expected)
    assert torch.allclose(nll.sum() / mask.sum(), expected)
    assert torch.allclose(sequence_nll(logits, forget.labels).double(), _nll(toy.model, forget))


def test_reduce_nll_sum_vs_mean(toy):
    forget = toy.batch.forget
    logits = forward_logits(toy.model, forget)
    total = reduce_nll(logits, forget.labels, "sum")
    mean = reduce_nll(logits, forget.labels, "mean")
    n_answer = (forget.labels[:, 1:] != IGNORE).sum(dim=1)
    assert n_answer.tolist() == [4, 2]
    assert torch.allclose(total, mean * n_answer)
    assert torch.allclose(mean.double(), _nll(toy.model, forget, "mean"))
    assert torch.allclose(mean, mean_nll(logits, forget.labels))
    with pytest.raises(ValueError, match="nll reduction"):
        reduce_nll(logits, forget.labels, "token")


def test_kl_to_reference_zero_iff_equal_and_masks(toy):
    retain = toy.batch.retain
    logits = forward_logits(toy.model, retain)
    for mask in ("answer", "none"):
        assert kl_to_reference(logits, logits.clone(), retain.labels, mask).abs() < 1e-6
        ref = forward_logits(toy.reference, retain)
        assert kl_to_reference(logits, ref, retain.labels, mask) > 1e-3

    # Change the reference only at positions that predict no answer token (prompt, last, padding).
    _, shifted = retain.labels[:, :-1], retain.labels[:, 1:]
    predicts_answer = F.pad(shifted != IGNORE, (0, 1), value=False)
    ref = logits.clone()
    ref[~predicts_answer] += torch.randn_like(ref[~predicts_answer])
    assert kl_to_reference(logits, ref, retain.labels, "answer").abs() < 1e-6
    assert kl_to_reference(logits, ref, retain.labels, "none") > 1e-3

    # "none" is open-unlearning's kl_div(batchmean) over all B*T positions.
    ref = forward_logits(toy.reference, retain)
    expected = F.kl_div(
        F.log_softmax(logits, -1).reshape(-1, 7),
        F.log_softmax(ref, -1).reshape(-1, 7),
        reduction="batchmean",
        log_target=True,
    )
    assert torch.allclose(kl_to_reference(logits, ref, retain.labels, "none"), expected)
    # "answer" averages the per-position KL over the positions that predict answer tokens.
    per_position = F.kl_div(
        F.log_softmax(logits, -1), F.log_softmax(ref, -1), reduction="none", log_target=True
    ).sum(-1)
    expected = per_position[predicts_answer].mean()
    assert torch.allclose(kl_to_reference(logits, ref, retain.labels, "answer"), expected)
    with pytest.raises(ValueError, match="KL mask"):
        kl_to_reference(logits, ref, retain.labels, "prompt")


def test_masked_mse_answer_vs_none(toy):
    forget = toy.batch.forget
    a = torch.zeros(2, 6, 3)
    b = torch.zeros(2, 6, 3)
    b[~forget.answer_mask] = 5.0  # differences only off the answer tokens
    assert masked_mse(a, b, forget, "answer") == 0
    assert masked_mse(a, b, forget, "none") > 0
    b[forget.answer_mask] = 1.0
    assert torch.isclose(masked_mse(a, b, forget, "answer"), torch.tensor(1.0))
    with pytest.raises(ValueError, match="RMU mask"):
        masked_mse(a, b, forget, "all")


def test_masked_mse_open_unlearning_form_on_ragged_batches(toy):
    forget = toy.batch.forget  # answer tokens per sequence: n = (4, 2)
    a = torch.zeros(2, 6, 3)
    b = torch.zeros(2, 6, 3)
    b[0][forget.answer_mask[0]] = 1.0  # e = 1 on 4 tokens: S_0 = 4
    b[1][forget.answer_mask[1]] = 2.0  # e = 4 on 2 tokens: S_1 = 8
    # per-sequence means (1 + 4) / 2; open-unlearning's broadcast: mean(S) * mean(1/n)
    assert float(masked_mse(a, b, forget, "answer")) == pytest.approx(2.5)
    assert float(masked_mse(a, b, forget, "answer_ou")) == pytest.approx(6 * (1 / 4 + 1 / 2) / 2)
    # Equal answer lengths: the two forms agree.
    idk = toy.batch.forget_idk
    b = torch.rand(2, 6, 3, generator=torch.Generator().manual_seed(0))
    assert torch.isclose(masked_mse(a, b, idk, "answer"), masked_mse(a, b, idk, "answer_ou"))


# --------------------------------------------------------------------------- reference formulas


def test_ga_loss_is_minus_ce_mean(toy):
    loss, logs = methods.get("ga").loss(toy.model, toy.batch, None)
    ce = ce_mean(forward_logits(toy.model, toy.batch.forget), toy.batch.forget.labels)
    assert torch.allclose(loss, -ce)
    assert logs["forget_nll"] == pytest.approx(float(ce.detach()))


def test_grad_diff_weights(toy):
    loss, _ = methods.get("grad_diff", gamma=2.0, alpha=0.5).loss(toy.model, toy.batch, None)
    f = ce_mean(forward_logits(toy.model, toy.batch.forget), toy.batch.forget.labels)
    r = ce_mean(forward_logits(toy.model, toy.batch.retain), toy.batch.retain.labels)
    assert torch.allclose(loss, -2.0 * f + 0.5 * r)


@pytest.mark.parametrize("beta", [0.1, 1.0, 3.0])
def test_npo_matches_the_closed_form(toy, beta):
    method = methods.get("npo", beta=beta, alpha=0.0)
    loss, logs = method.loss(toy.model, toy.batch, toy.reference)
    nll, ref_nll = _nll(toy.model, toy.batch.forget), _nll(toy.reference, toy.batch.forget)
    expected = (2 / beta) * torch.log1p(torch.exp(beta * (ref_nll - nll))).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert logs["forget_loss"] == pytest.approx(float(expected), rel=1e-5)


def test_npo_mean_reduction_uses_token_means(toy):
    loss, _ = methods.get("npo", beta=0.5, alpha=0.0, nll_reduction="mean").loss(
        toy.model, toy.batch, toy.reference
    )
    nll = _nll(toy.model, toy.batch.forget, "mean")
    ref_nll = _nll(toy.reference, toy.batch.forget, "mean")
    expected = (2 / 0.5) * torch.log1p(torch.exp(0.5 * (ref_nll - nll))).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="nll reduction"):
        methods.get("npo", nll_reduction="median").loss(toy.model, toy.batch, toy.reference)


def test_npo_with_reference_equal_to_model_is_2_ln2_over_beta(toy):
    loss, _ = methods.get("npo", beta=0.2, alpha=0.0).loss(toy.model, toy.batch, toy.model)
    assert float(loss.detach()) == pytest.approx(2 / 0.2 * math.log(2), rel=1e-6)


def test_npo_gradient_approaches_ga_as_beta_shrinks(toy):
    """d/dθ NPO -> d/dθ[-mean_i sequence_nll_i] as beta -> 0 (NPO paper, Sec. 3)."""
    npo_loss, _ = methods.get("npo", beta=1e-4, alpha=0.0).loss(toy.model, toy.batch, toy.reference)
    (npo_grad,) = torch.autograd.grad(npo_loss, [toy.model.table])
    ga = -sequence_nll(forward_logits(toy.model, toy.batch.forget), toy.batch.forget.labels)
    (ga_grad,) = torch.autograd.grad(ga.mean(), [toy.model.table])
    assert F.cosine_similarity(npo_grad.flatten(), ga_grad.flatten(), dim=0) > 0.9999
    assert torch.allclose(npo_grad, ga_grad, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(("beta", "delta"), [(4.5, 0.0), (2.0, 1.5)])
def test_simnpo_formula(toy, beta, delta):
    method = methods.get("simnpo", beta=beta, delta=delta, gamma=0.25, alpha=0.5)
    loss, logs = method.loss(toy.model, toy.batch, None)
    nll = _nll(toy.model, toy.batch.forget, "mean")
    forget = -(2 / beta) * F.logsigmoid(beta * (nll - delta)).mean()
    retain = ce_mean(forward_logits(toy.model, toy.batch.retain), toy.batch.retain.labels)
    assert logs["forget_loss"] == pytest.approx(float(forget), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(
        0.25 * float(forget) + 0.5 * float(retain.detach()), rel=1e-5
    )


def test_idk_dpo_formula_and_scale(toy):
    beta = 0.5
    scaled = methods.get("idk_dpo", beta=beta, scale_two_over_beta=True)
    plain = methods.get("idk_dpo", beta=beta, scale_two_over_beta=False)
    loss_s, logs_s = scaled.loss(toy.model, toy.batch, toy.reference)
    loss_p, logs_p = plain.loss(toy.model, toy.batch, toy.reference)
    assert logs_s["forget_loss"] == pytest.approx(logs_p["forget_loss"] * 2 / beta, rel=1e-6)
    assert logs_s["retain_nll"] == pytest.approx(logs_p["retain_nll"])
    retain = logs_s["retain_nll"]
    assert float(loss_s.detach()) - retain == pytest.approx(logs_s["forget_loss"], rel=1e-5)
    assert float(loss_p.detach()) - retain == pytest.approx(logs_p["forget_loss"], rel=1e-5)

    b = toy.batch
    margin = (_nll(toy.reference, b.forget_idk) - _nll(toy.model, b.forget_idk)) - (
        _nll(toy.reference, b.forget) - _nll(toy.model, b.forget)
    )
    assert logs_s["margin"] == pytest.approx(float(margin.mean()), rel=1e-5)
    expected = -F.logsigmoid(beta * margin).mean()
    assert logs_p["forget_loss"] == pytest.approx(float(expected), rel=1e-5)
    # Reference == model: zero margin, forget term = s * ln 2.
    _, logs = scaled.loss(toy.model, toy.batch, toy.model)
    assert logs["forget_loss"] == pytest.approx(2 / beta * math.log(2), rel=1e-6)


def test_idk_finetune_formula(toy):
    loss, logs = methods.get("idk", gamma=2.0, alpha=3.0).loss(toy.model, toy.batch, None)
    b = toy.batch
    idk = ce_mean(forward_logits(toy.model, b.forget_idk), b.forget_idk.labels)
    retain = ce_mean(forward_logits(toy.model, b.retain), b.retain.labels)
    assert torch.allclose(loss, 2.0 * idk + 3.0 * retain)
    assert logs["idk_nll"] == pytest.approx(float(idk.detach()))


def test_ga_kl_is_ga_plus_kl(toy):
    loss, logs = methods.get("ga_kl", alpha=2.0).loss(toy.model, toy.batch, toy.reference)
    b = toy.batch
    ce = ce_mean(forward_logits(toy.model, b.forget), b.forget.labels)
    kl = kl_to_reference(
        forward_logits(toy.model, b.retain),
        forward_logits(toy.reference, b.retain),
        b.retain.labels,
    )
    assert torch.allclose(loss, -ce + 2.0 * kl)
    assert logs["retain_kl"] == pytest.approx(float(kl.detach()))
    _, none_logs = methods.get("ga_kl", kl_mask="none").loss(toy.model, toy.batch, toy.reference)
    assert none_logs["retain_kl"] != pytest.approx(logs["retain_kl"])
    with pytest.raises(ValueError, match="KL mask"):
        methods.get("ga_kl", kl_mask="all").loss(toy.model, toy.batch, toy.reference)


# --------------------------------------------------------------------------- every method, tiny LM


def _rows(qas) -> list[dict]:
    return [q.to_dict() for q in qas]


@pytest.fixture(scope="module")
def request_data() -> UnlearnData:
    bench = build_benchmark(n_authors=4, qa_per_author=4)
    forget = _rows(bench.records("forget10"))
    streams = {
        "forget": forget,
        "forget_idk": [{**r, "answer": r["idk_answer"]} for r in forget],
        "retain": _rows(bench.records("retain10")),
    }
    return UnlearnData(streams, tuple(bench.authors("forget10")))


@pytest.fixture(scope="module")
def tiny_batch(tiny_tokenizer, request_data) -> Streams:
    spec = TrainSpec(epochs=1, batch_size=2, max_length=64)
    micro = list(
        anchored_batches(
            tiny_tokenizer, request_data.streams, spec, "forget", ["forget_idk"], ["retain"]
        )
    )
    assert len(micro) == 2 and micro[0]["forget"].input_ids.shape[0] == 2
    return Streams(micro[0])


@pytest.mark.parametrize("name", TRAINING_METHODS)
def test_every_training_method_gives_a_finite_loss_with_gradients(name, tiny_model, tiny_batch):
    method = methods.get(name, **HPARAMS.get(name, {}))
    method.check(2)
    reference = None
    if method.needs_reference:
        reference = copy.deepcopy(tiny_model).eval()
        for p in reference.parameters():
            p.requires_grad_(False)
    method.prepare(tiny_model, 0)
    params = [p for p in tiny_model.parameters() if p.requires_grad]
    assert params
    tiny_model.train()
    loss, logs = method.loss(tiny_model, tiny_batch, reference)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    assert logs and all(math.isfinite(v) for v in logs.values())
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    assert grads, "no parameter received a gradient"
    assert any(g.abs().sum() > 0 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)
    if reference is not None:
        assert all(p.grad is None for p in reference.parameters())
    assert set(method.grad_streams) | set(method.reference_streams) <= set(method.streams)


def _context(tokenizer, model, **overrides) -> UnlearnContext:
    loads: list[int] = []

    def load_reference():
        loads.append(1)
        return copy.deepcopy(model)

    ctx = UnlearnContext(
        tokenizer=tokenizer,
        train=TrainSpec(epochs=1, lr=1e-3, batch_size=2, max_length=64),
        load_reference=load_reference,
        **overrides,
    )
    ctx.loads = loads  # type: ignore[attr-defined]
    return ctx


@pytest.mark.parametrize("name", ["ga", "npo", "idk"])
def test_gradient_method_unlearn_runs_the_loop(name, tiny_model, tiny_tokenizer, request_data):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    ctx = _context(tiny_tokenizer, tiny_model)
    method = methods.get(name)
    out = method.unlearn(tiny_model, request_data, ctx)
    assert isinstance(out, Unlearned) and out.context == "" and out.flops is None
    assert out.train.steps == 2 and not out.train.diverged  # 4 forget rows, batch 2
    assert out.train.train_tokens > 0
    assert (out.train.reference_tokens > 0) == method.needs_reference
    assert len(ctx.loads) == int(method.needs_reference)  # the reference is loaded only if used
    after = out.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(p.requires_grad for p in out.model.parameters())


def test_unlearn_data_names_missing_streams(request_data):
    with pytest.raises(KeyError, match="has no stream 'nope'"):
        request_data["nope"]


def test_retrain_hands_the_retain_rows_to_the_benchmark_recipe(
    tiny_tokenizer, tiny_model, request_data
):
    seen = []

    def retrain(rows):
        seen.append(len(rows))
        return Unlearned(model=tiny_model, source="oracle")

    out = methods.get("retrain").unlearn(
        tiny_model, request_data, _context(tiny_tokenizer, tiny_model, retrain=retrain)
    )
    assert seen == [len(request_data["retain"])] and out.source == "oracle"
    with pytest.raises(ValueError, match="training recipe"):
        methods.get("retrain").unlearn(
            tiny_model, request_data, _context(tiny_tokenizer, tiny_model)
        )


# --------------------------------------------------------------------------- registry


def test_get_unknown_method_lists_known_names():
    with pytest.raises(KeyError, match="unknown method 'nope'") as info:
        methods.get("nope")
    for name in methods.METHODS:
        assert name in str(info.value)


def test_validate_unknown_names():
    methods.validate(["ga", "npo"])
    with pytest.raises(KeyError, match="nope"):
        methods.validate(["ga", "nope"])


def test_get_unknown_hyperparameter():
    with pytest.raises(KeyError, match="lr"):
        methods.get("npo", lr=1e-5)
    with pytest.raises(KeyError):
        methods.get("rmu", _control={})  # private fields are not hyperparameters
    assert methods.get("npo", beta=0.5).beta == 0.5
    with pytest.raises(dataclasses_frozen_error()):
        methods.get("npo").beta = 1.0


def dataclasses_frozen_error() -> type[Exception]:
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_register_rejects_duplicates_and_nameless():
    with pytest.raises(KeyError, match="twice"):
        methods.register(methods.METHODS["ga"])

    class Nameless(methods.Method):
        pass

    with pytest.raises(ValueError, match="no `name`"):
        methods.register(Nameless)


def test_taxonomy_has_one_row_per_method():
    table = methods.taxonomy()
    assert list(table["method"]) == list(methods.METHODS)
    assert table["method"].is_unique
    assert set(table["family"]) <= set(FAMILIES)
    assert set(table["access"]) <= set(ACCESS)
    rows = table.set_index("method")
    assert rows.loc["icul", "access"] == "black-box"
    assert not rows.loc["icul", "updates weights"]
    assert rows.loc["npo", "needs reference model"]
    assert not rows.loc["simnpo", "needs reference model"]
    assert "beta=0.1" in rows.loc["npo", "defaults"]
    assert "_control" not in rows.loc["rmu", "defaults"]
    assert rows.loc["ga", "defaults"] == "-"


def test_streams_are_consistent_with_needs():
    for name, cls in methods.METHODS.items():
        method = cls()
        if isinstance(method, GradientMethod):
            used = {*cls.grad_streams, *cls.reference_streams}
            assert used <= set(method.streams), name
            assert bool(cls.reference_streams) == cls.needs_reference, name
        assert method.needs_retain == ("retain" in method.streams), name


# --------------------------------------------------------------------------- RMU


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"layer": 2}, "layer must be in"),
        ({"layer": -1}, "layer must be in"),
        ({"layer": 1, "trainable": "mlp"}, "trainable"),
        ({"layer": 1, "mask": "all"}, "mask"),
        ({"layer": 1, "steering_mode": "scaled"}, "steering_mode"),
        ({"layer": 1, "steering": -1.0}, "steering"),
        ({"layer_fraction": 1.0}, "layer_fraction"),
        ({"layer_fraction": -0.1}, "layer_fraction"),
        ({"layer": 1, "layer_fraction": 0.5}, "either layer or layer_fraction"),
    ],
)
def test_rmu_check_rejects_bad_options(overrides, match):
    with pytest.raises(ValueError, match=match):
        methods.get("rmu", **overrides).check(2)


def test_rmu_default_layer_needs_a_deep_model():
    methods.get("rmu").check(30)  # SmolLM2-135M
    with pytest.raises(ValueError):
        methods.get("rmu").check(2)


def test_hidden_at_stops_before_the_upper_layers(tiny_model, tiny_batch):
    batch = tiny_batch.forget
    layers = decoder_layers(tiny_model)
    assert len(layers) == 2
    calls: list[str] = []
    handles = [
        layers[1].register_forward_hook(lambda *_: calls.append("layer1")),
        tiny_model.lm_head.register_forward_hook(lambda *_: calls.append("lm_head")),
    ]
    try:
        h0 = hidden_at(tiny_model, batch, 0)
        assert calls == []
        h1 = hidden_at(tiny_model, batch, 1)
        assert calls == ["layer1"]
    finally:
        for handle in handles:
            handle.remove()
    assert h0.shape == (*batch.input_ids.shape, tiny_model.config.hidden_size)
    assert h0.dtype == torch.float32
    with torch.no_grad():
        full = tiny_model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_hidden_states=True,
        )
    assert torch.allclose(h0, full.hidden_states[1], atol=1e-5)  # output of block 0
    assert not torch.allclose(h0, h1)
    with pytest.raises(ValueError, match="layer must be in"):
        hidden_at(tiny_model, batch, 2)
    # The hook is removed: a normal forward afterwards runs every block.
    tiny_model(input_ids=batch.input_ids)


def test_rmu_wmdp_trains_only_down_proj(tiny_model):
    method = methods.get("rmu", layer=1, trainable="wmdp")
    method.prepare(tiny_model, seed=0)
    trainable = {n for n, p in tiny_model.named_parameters() if p.requires_grad}
    assert trainable == {
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
    }


def test_rmu_wmdp_lower_layer_window(tiny_model):
    methods.get("rmu", layer=0, trainable="wmdp").prepare(tiny_model, seed=0)
    trainable = {n for n, p in tiny_model.named_parameters() if p.requires_grad}
    assert trainable == {"model.layers.0.mlp.down_proj.weight"}


def test_rmu_control_vector_is_seeded_with_the_steering_norm(tiny_model):
    a, b, c = (methods.get("rmu", layer=1, steering=3.0) for _ in range(3))
    a.prepare(tiny_model, seed=0)
    b.prepare(tiny_model, seed=0)
    c.prepare(tiny_model, seed=1)
    assert a._control["c"].shape == (tiny_model.config.hidden_size,)
    assert torch.isclose(a._control["c"].norm(), torch.tensor(3.0))
    assert torch.equal(a._control["c"], b._control["c"])
    assert not torch.equal(a._control["c"], c._control["c"])
    assert (a._control["c"] >= 0).all()  # uniform [0, 1) direction as in WMDP


@pytest.mark.parametrize(
    ("fraction", "n_layers", "layer"),
    [
        (7 / 32, 32, 7),  # WMDP, Zephyr-7B
        (7 / 32, 30, 7),  # the same depth in SmolLM2-135M: 6.56 -> 7
        (7 / 16, 16, 7),  # open-unlearning, Llama-3.2-1B
        (0.0, 30, 0),
        (0.25, 2, 1),  # 0.5 rounds half up
        (0.2, 2, 0),
        (0.999, 2, 1),  # never past the last block
    ],
)
def test_layer_at_fraction(fraction, n_layers, layer):
    assert layer_at_fraction(fraction, n_layers) == layer
    assert methods.get("rmu", layer_fraction=fraction).resolve_layer(n_layers) == layer


def test_rmu_layer_fraction_steers_the_resolved_layer(tiny_model):
    method = methods.get("rmu", layer_fraction=0.5, trainable="wmdp")
    method.prepare(tiny_model, seed=0)
    assert method._control["layer"] == 1
    trainable = {n for n, p in tiny_model.named_parameters() if p.requires_grad}
    assert trainable == {f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1)}


def test_activation_norm_matches_the_hidden_states(tiny_model, tiny_tokenizer, request_data):
    rows = request_data["forget"]
    spec = TrainSpec(batch_size=3, max_length=64)  # batches of 3 and 1
    batch = encode_rows(tiny_tokenizer, rows, 64)
    with torch.no_grad():
        states = tiny_model(
            **{k: getattr(batch, k) for k in ("input_ids", "attention_mask")},
            output_hidden_states=True,
        ).hidden_states
    # Output of block 0 (transformers applies the final norm to the *last* entry, so not 1).
    norms = states[1].norm(dim=-1)
    answer = float(norms[batch.answer_mask].mean())
    real = float(norms[batch.attention_mask.bool()].mean())
    got = activation_norm(tiny_model, tiny_tokenizer, rows, 0, spec, "answer")
    assert got == pytest.approx(answer, rel=1e-5)
    got = activation_norm(tiny_model, tiny_tokenizer, rows, 0, spec, "none")
    assert got == pytest.approx(real, rel=1e-5)
    assert answer != pytest.approx(real, rel=1e-5)  # the two token sets differ


def test_rmu_relative_steering_scales_the_control_vector(tiny_model):
    absolute = methods.get("rmu", layer=1, steering=3.0)
    relative = methods.get("rmu", layer=1, steering=3.0, steering_mode="relative")
    with pytest.raises(ValueError, match="activation norm"):
        relative.prepare(tiny_model, seed=0)
    relative._control["activation_norm"] = 0.25
    absolute.prepare(tiny_model, seed=0)
    relative.prepare(tiny_model, seed=0)
    assert torch.isclose(relative._control["c"].norm(), torch.tensor(0.75))
    assert torch.allclose(relative._control["c"], 0.25 * absolute._control["c"])


def _rmu_run(model, tokenizer, data, lr: float, **hparams):
    ctx = _context(tokenizer, model)
    ctx.train = TrainSpec(epochs=2, lr=lr, batch_size=2, max_length=64, warmup_ratio=0.0)
    return methods.get("rmu", layer=1, **hparams).unlearn(model, data, ctx)


@pytest.mark.parametrize("mode", ["absolute", "relative"])
def test_rmu_records_a_falling_forget_loss(tiny_model, tiny_tokenizer, request_data, mode):
    target = copy.deepcopy(tiny_model)
    out = _rmu_run(tiny_model, tiny_tokenizer, request_data, 1e-2, steering_mode=mode)
    diag = out.diagnostics
    assert diag["layer"] == 1 and diag["layer_fraction"] == 0.5
    norm = activation_norm(target, tiny_tokenizer, request_data["forget"], 1, TrainSpec())
    assert diag["activation_norm"] == pytest.approx(norm, rel=1e-5)
    expected_c = 2.0 * (norm if mode == "relative" else 1.0)
    assert diag["steering_norm"] == pytest.approx(expected_c, rel=1e-5)
    # The start is the loss of the untrained model: the first step's logged loss agrees.
    first = out.train.log[0]["forget_mse"]
    assert diag["forget_mse_start"] == pytest.approx(first, rel=0.2)
    assert diag["forget_mse_end"] < (1 - CONVERGED_DROP) * diag["forget_mse_start"]
    assert diag["forget_mse_drop"] == pytest.approx(
        1 - diag["forget_mse_end"] / diag["forget_mse_start"]
    )
    assert diag["converged"] is True and out.train.message == ""


def test_rmu_marks_a_run_that_does_not_converge(tiny_model, tiny_tokenizer, request_data):
    out = _rmu_run(tiny_model, tiny_tokenizer, request_data, 1e-6)
    assert out.diagnostics["converged"] is False
    assert 0 <= out.diagnostics["forget_mse_drop"] < CONVERGED_DROP
    assert "did not converge" in out.train.message and not out.train.diverged


def test_rmu_default_control_vector_is_unchanged(tiny_model):
    """The absolute default draws exactly the control vector of the original implementation."""
    method = methods.get("rmu", layer=1)
    method.prepare(tiny_model, seed=5)
    u = torch.rand(tiny_model.config.hidden_size, generator=torch.Generator().manual_seed(5))
    assert torch.equal(method._control["c"], 2.0 * u / u.norm())


# --------------------------------------------------------------------------- ICUL


def _icul_data(n: int = 10) -> UnlearnData:
    forget = [{"question": f"forget {i}?", "answer": f"I don't know {i}"} for i in range(n)]
    retain = [{"question": f"retain {i}?", "answer": f"answer {i}"} for i in range(n)]
    return UnlearnData({"forget_idk": forget, "retain": retain}, ("Ada Brook", "Ben Carter"))


def test_icul_context_names_authors_and_limits_demonstrations():
    data = _icul_data(40)
    method = methods.get("icul", n_demonstrations=3, forget_step=1, retain_step=1)
    context = method.context(data)
    assert "Ada Brook, Ben Carter" in context
    assert context.count("Q: ") == 3
    # forget and retain demonstrations alternate: forget 0, retain 0, forget 1
    assert "forget 0?" in context and "retain 0?" in context and "forget 1?" in context
    assert "retain 1?" not in context
    none = methods.get("icul", n_demonstrations=0).context(data)
    assert none.count("Q:") == 0
    spread = methods.get("icul", n_demonstrations=8, forget_step=7, retain_step=37).context(data)
    assert spread.count("Q: ") == 4  # retain rows 0 and 37 of 40 -> two pairs
    assert "forget 7?" in spread and "retain 37?" in spread
    with pytest.raises(ValueError, match="n_demonstrations"):
        methods.get("icul", n_demonstrations=-1).context(data)
    with pytest.raises(ValueError, match="step"):
        methods.get("icul", forget_step=0).check(2)


def test_icul_unlearn_keeps_the_weights_and_returns_the_context(tiny_model, tiny_tokenizer):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    out = methods.get("icul").unlearn(
        tiny_model, _icul_data(), _context(tiny_tokenizer, tiny_model)
    )
    assert out.model is tiny_model and "Ada Brook" in out.context
    assert all(torch.equal(before[k], v) for k, v in tiny_model.state_dict().items())
    assert out.train.steps == 0 and out.train.train_tokens == 0
