"""Tests of lib.benchmarks.pretraining: chunking, the metrics by hand (macro perplexity, next-token
accuracy, Min-K%, the folded AUC with balanced accuracy and TPR at 5% FPR), split
disjointness, the exact-retraining construction, the memoised reference, and unlearning runs
on the tiny model (the grid's epoch-prefix evaluation equals separate runs)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from lib import runner
from lib.benchmarks import pretraining as pt
from lib.specs import ModelSpec, TrainSpec
from lib.train import TrainResult

TINY = ModelSpec("tiny-random", dtype="float32", device="cpu")
CORPUS = pt.CorpusSpec(
    domains=("code", "bio"),
    n_forget=2,
    n_approximate=2,
    n_retain=3,
    n_general_retain=2,
    n_general_eval=2,
    max_chars=400,
    min_chars=200,
    chunk_tokens=32,
)
PHASE = TrainSpec(epochs=1.0, lr=1e-3, batch_size=4, max_length=32, warmup_ratio=0.0)
SPEC = pt.PretrainSpec(TINY, CORPUS, PHASE, replace(PHASE, epochs=2.0))
EVAL = pt.EvalSpec(batch_size=4, n_retain=2, n_general=3, n_probes=2)


# --------------------------------------------------------------------------- chunks
def test_chunks_fit_and_tokenise_back_exactly(tiny_tokenizer):
    rows = pt.chunks(replace(CORPUS, chunk_tokens=40), "tiny-random")
    seen = 0
    for split_rows in rows.values():
        for row in split_rows:
            ids = tiny_tokenizer(row["text"], add_special_tokens=False)["input_ids"]
            assert len(ids) == row["n_tokens"] <= 40
            assert row["n_tokens"] >= CORPUS.min_chunk_tokens
            seen += 1
    assert seen > 20


def test_chunk_document_covers_the_text_and_drops_short_chunks(tiny_tokenizer):
    text = "def f(x):\n    return x + 1\n\n" * 12 + "unbelievable naïve café " * 5
    pieces = pt.chunk_document(tiny_tokenizer, text, chunk_tokens=16, min_tokens=1)
    assert "".join(t for t, _ in pieces) == text
    assert all(n <= 16 for _, n in pieces) and len(pieces) > 5
    for piece, n in pieces:  # each chunk re-tokenises to exactly its own tokens
        assert len(tiny_tokenizer(piece, add_special_tokens=False)["input_ids"]) == n
    total = len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert sum(n for _, n in pieces) == total
    long_min = pt.chunk_document(tiny_tokenizer, text, chunk_tokens=16, min_tokens=14)
    assert all(n >= 14 for _, n in long_min) and len(long_min) < len(pieces)


def test_splits_are_disjoint_and_the_mia_takes_the_first_approximate_chunks():
    rows = pt.chunks(CORPUS, "tiny-random")
    docs = {key: {r["doc_id"] for r in value} for key, value in rows.items()}
    keys = list(docs)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            assert not docs[a] & docs[b], (a, b)
    texts = [r["text"] for value in rows.values() for r in value]
    assert len(texts) == len(set(texts))
    picked = pt.eval_rows(SPEC, "code", EVAL)
    assert picked["forget"] == list(rows[("code", "forget")])
    assert picked["approximate"] == list(rows[("code", "approximate")][: len(picked["forget"])])
    assert picked["general"] == list(rows[("general", "evaluation")][:3])
    hashes = pt.split_hashes(CORPUS, "tiny-random")
    assert set(hashes) == {f"{d}/{s}" for d, s in rows} and len(set(hashes.values())) == len(rows)


def test_exact_retraining_replays_the_final_slice_without_the_forget_chunks():
    target = pt.phase_rows(SPEC, "target")
    retrained = pt.phase_rows(SPEC, "retrained")
    forget_ids = {
        r["doc_id"] for d in CORPUS.domains for r in pt.chunks(CORPUS, "tiny-random")[(d, "forget")]
    }
    assert retrained == [r for r in target if r["doc_id"] not in forget_ids]
    assert len(retrained) < len(target) and forget_ids
    shared_ids = {r["doc_id"] for r in pt.phase_rows(SPEC, "shared")}
    assert not shared_ids & forget_ids  # the shared checkpoint never saw the forget documents
    assert {r["doc_id"] for r in retrained} <= shared_ids
    with pytest.raises(ValueError, match="phase must be"):
        pt.phase_rows(SPEC, "oracle")


def test_target_and_retrained_start_from_the_same_shared_checkpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    starts, trained = [], []

    def fake_training(model, tokenizer, rows, spec, desc):  # records, and marks the weights
        starts.append(float(sum(p.detach().double().sum() for p in model.parameters())))
        trained.append({r["doc_id"] for r in rows})
        with torch.no_grad():
            model.model.norm.weight.add_(len(rows))
        return model, TrainResult(steps=1, train_tokens=sum(r["n_tokens"] for r in rows))

    monkeypatch.setattr(pt, "train_language_model", fake_training)
    pt.final_checkpoint(SPEC, True)
    pt.final_checkpoint(SPEC, False)
    pt.final_checkpoint(SPEC, True)  # cached: nothing trains again
    assert len(starts) == 3  # shared, then target and retrained from the shared weights
    assert starts[1] == starts[2] != starts[0]
    assert trained[0] == {r["doc_id"] for r in pt.phase_rows(SPEC, "shared")}
    assert trained[2] < trained[1]
    record = pt.train_record(pt.final_checkpoint(SPEC, False))
    retrained_tokens = sum(r["n_tokens"] for r in pt.phase_rows(SPEC, "retrained"))
    assert record["train_tokens"] == retrained_tokens and record["n_params"] > 0


def test_native_mode_has_no_retrained_model():
    native = replace(SPEC, continued=False)
    assert native.final_key(True) == pt.base_key(TINY)
    with pytest.raises(ValueError, match="no retrained model"):
        native.final_key(False)
    with pytest.raises(ValueError, match="native mode"):
        pt.final_checkpoint(native, True)


# --------------------------------------------------------------------------- metrics by hand
def test_macro_perplexity_and_accuracy_by_hand():
    lp = [np.log([0.5, 0.25]), np.log([0.1, 0.1, 0.1, 0.1])]
    # per-chunk mean log-probs: log(0.5*0.25)/2 and log(0.1); macro = mean of the two
    expected = math.exp(-(math.log(0.125) / 2 + math.log(0.1)) / 2)
    assert pt.macro_ppl(lp) == pytest.approx(expected)
    micro = math.exp(-np.concatenate(lp).mean())
    assert pt.macro_ppl(lp) != pytest.approx(micro)  # not the token-weighted (micro) one
    correct = [np.array([True, False]), np.array([True, True, True, False])]
    assert pt.next_token_accuracy(correct) == pytest.approx(100 * (0.5 + 0.75) / 2)
    assert math.isnan(pt.macro_ppl([]))


def test_min_k_scores_by_hand():
    lp = [np.array([-1.0, -5.0, -2.0, -0.5, -3.0])]
    assert pt.mink_scores(lp, 0.4)[0] == pytest.approx((5.0 + 3.0) / 2)  # floor(0.4 * 5) = 2
    assert pt.mink_scores(lp, 1.0)[0] == pytest.approx(11.5 / 5)
    assert pt.mink_scores(lp, 0.1)[0] == pytest.approx(5.0)  # at least one token


def test_mia_summary_folds_and_reads_the_roc_in_the_folded_direction():
    member = np.array([1.0, 2.0, 3.0, 4.0])  # loss-like: members lower
    nonmember = np.array([2.5, 5.0, 6.0, 7.0])
    s = pt.mia_summary(member, nonmember)
    # pairs (m < n): 1:4, 2:4, 3:3, 4:3 -> 14 of 16
    assert s["auc"] == pytest.approx(14 / 16) == s["auc_raw"]
    # best threshold flags {1, 2} or {1, 2, 3, 4} ...: TPR 1 at FPR 1/4 -> 1 - (0.25 + 0) / 2
    assert s["balanced_accuracy"] == pytest.approx(0.875)
    assert s["tpr_at_fpr"] == pytest.approx(0.5)  # FPR < 5%: only scores below 2.5
    flipped = pt.mia_summary(nonmember, member)  # members look *less* likely: folded
    assert flipped["auc"] == pytest.approx(14 / 16) and flipped["auc_raw"] == pytest.approx(2 / 16)
    # read as "member if the loss is high": 7, 6, 5 are flagged before any non-member
    assert flipped["balanced_accuracy"] == pytest.approx(0.875)
    assert flipped["tpr_at_fpr"] == pytest.approx(0.75)
    same = pt.mia_summary(member, member)
    assert same["auc"] == pytest.approx(0.5)


def test_set_metrics_names():
    scores = pt.SetScores([np.log([0.5, 0.5])] * 2, [np.array([True, False])] * 2, ["a", "b"])
    out = pt.set_metrics({"code/forget": scores, "code/approximate": scores, "general": scores})
    assert out["forget_ppl"] == pytest.approx(2.0) and out["general_acc"] == pytest.approx(50.0)
    assert out["mink_auc_0.4"] == pytest.approx(0.5) and "mink_tpr5_1" in out
    assert "mink_auc_0.4" not in pt.set_metrics({"general": scores})


def test_pretraining_tokens_are_cited_or_given_or_unknown():
    tokens, source = pt.pretraining_tokens("smollm2-135m")
    assert tokens == 2e12 and "SmolLM2" in source
    assert pt.pretraining_tokens("tiny-random", 5e9) == (5e9, "given as a parameter")
    unknown, why = pt.pretraining_tokens("tiny-random")
    assert math.isnan(unknown) and "unknown" in why
    with pytest.raises(ValueError, match="> 0"):
        pt.pretraining_tokens("tiny-random", 0.0)


# --------------------------------------------------------------------------- reference memo
def test_memoised_reference_equals_the_model_and_loads_once(tiny_model):
    pt.REFERENCE_STORE.clear()
    loads = []

    def load():
        loads.append(1)
        return tiny_model

    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    direct = tiny_model(input_ids=ids, attention_mask=mask).logits
    first = pt.MemoizedReference("m", load, 10**9)(ids, attention_mask=mask, use_cache=False)
    assert torch.allclose(first.logits, direct) and loads == [1]
    again = pt.MemoizedReference("m", load, 10**9)(ids[1:], attention_mask=mask[1:]).logits
    assert torch.equal(again[0], first.logits[1]) and loads == [1]  # from memory, no load
    assert pt.REFERENCE_STORE.hits == 1 and pt.REFERENCE_STORE.misses == 2
    row_bytes = first.logits[0].numel() * first.logits.element_size()
    pt.REFERENCE_STORE.clear()
    small = pt.MemoizedReference("m", load, row_bytes)  # room for one row only
    small(ids, attention_mask=mask)
    assert len(pt.REFERENCE_STORE.items) == 1 and pt.REFERENCE_STORE.bytes == row_bytes
    pt.REFERENCE_STORE.clear()


def test_lazy_streams_build_on_first_access_only():
    built = []
    streams = pt.LazyStreams({"a": lambda: built.append("a") or [1], "b": lambda: [2]})
    assert "a" in streams and "c" not in streams and built == []
    assert streams["a"] == [1] and streams["a"] == [1] and built == ["a"]
    assert sorted(streams) == ["a", "b"] and len(streams) == 2
    with pytest.raises(KeyError):
        streams["c"]


# --------------------------------------------------------------------------- runs
def _unlearn(method: str, **kw) -> pt.UnlearnRunSpec:
    train = dict(epochs=1, lr=1e-3, batch_size=1, grad_accum=1, max_length=32)
    train.update(warmup_ratio=0.0, schedule="constant")
    train.update(kw.pop("train", {}))
    return pt.UnlearnRunSpec(SPEC, "code", method, TrainSpec(**train), EVAL, **kw)


def test_bad_run_specs_fail_before_any_work():
    with pytest.raises(ValueError, match="domain 'prose'"):
        replace(_unlearn("pt_ga"), domain="prose")
    with pytest.raises(ValueError, match="subset of"):
        _unlearn("pt_ga", sets=("forget", "holdout"))
    with pytest.raises(ValueError, match="must equal the last"):
        _unlearn("pt_ga", eval_epochs=(1, 2))
    with pytest.raises(ValueError, match="max_length"):
        _unlearn("pt_ga", train={"max_length": 16})
    with pytest.raises(ValueError, match="source must be"):
        pt.CorpusSpec(source="web")
    with pytest.raises(ValueError, match="distinct names"):
        pt.CorpusSpec(source="hub", domains=("code",))
    with pytest.raises(KeyError, match="forget_idk"):
        pt.validate(["idk"], {}, TINY)
    with pytest.raises(KeyError, match="unknown method"):
        pt.validate(["nope"], {}, TINY)
    with pytest.raises(KeyError, match="not run"):
        pt.validate(["pt_ga"], {"pt_rl": {}}, TINY)
    pt.validate(["pt_ga", "pt_as", "ga"], {"pt_as": {"official_off_by_one": True}}, TINY)


def test_grid_epochs_from_one_run_equal_separate_runs():
    pt.REFERENCE_STORE.clear()
    grid = runner.run(
        _unlearn("pt_ga_kl_in", train={"epochs": 2}, sets=("forget", "general"), eval_epochs=(1, 2))
    )
    one = runner.run(_unlearn("pt_ga_kl_in", sets=("forget", "general")))
    assert [p["epoch"] for p in grid.points] == [1, 2]
    assert grid.points[0]["forget_ppl"] == pytest.approx(one.metrics["forget_ppl"], rel=1e-6)
    assert grid.points[0]["general_ppl"] == pytest.approx(one.metrics["general_ppl"], rel=1e-6)
    assert grid.points[1]["forget_ppl"] == pytest.approx(grid.metrics["forget_ppl"])
    assert grid.cost["steps"] == 2 * one.cost["steps"]
    assert pt.REFERENCE_STORE.hits > 0  # the second epoch and the second run reused outputs
    assert grid.status == "ok" and "forget PPL" in grid.summary_line()


def test_a_main_run_scores_every_set_and_meters_its_cost():
    run = runner.run(_unlearn("pt_as"))
    for name in ("forget", "approximate", "retain", "general"):
        assert run.metrics[f"{name}_ppl"] > 0
    assert 0.5 <= run.metrics["mink_auc_0.4"] <= 1.0 and 0 < run.metrics["probe_prob"] < 1
    forget_tokens = sum(r["n_tokens"] for r in pt.chunks(CORPUS, "tiny-random")[("code", "forget")])
    assert run.cost["reference_tokens"] == forget_tokens  # the adversarial labels' forward pass
    assert run.cost["flops"] == pytest.approx(
        6 * run.cost["n_params"] * run.cost["train_tokens"]
        + 2 * run.cost["n_params"] * forget_tokens
    )
    assert set(run.scores) == {"code/forget", "code/approximate", "code/retain", "general"}
    row = run.row()
    assert row["method"] == "pt_as" and row["domain"] == "code"
