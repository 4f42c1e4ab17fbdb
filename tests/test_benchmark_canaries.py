"""The canary-exposure protocol: data and deletion groups, summaries by hand, exposure of a
model against brute force, unlearning cycles end to end (cached), DP-SGD training."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import numpy as np
import pytest

from lib import runner
from lib.algorithms.secret_rank import score_secrets, secret_format
from lib.benchmarks import canaries as cb
from lib.cache import json_ready
from lib.metrics import mia
from lib.metrics.exposure import exposure_from_rank, rank_from_scores
from lib.specs import ModelSpec, TrainSpec

SMALL = cb.CanaryDataSpec(
    n_authors=8,
    n_holdout_authors=2,
    qa_per_author=4,
    n_cycles=2,
    forget_per_cycle=3,
    n_retain_canaries=2,
    n_digits=3,
    doc_sentences=4,
    passage_sentences=2,
)
TINY = ModelSpec("tiny-random", dtype="float32", device="cpu")
FAST_TRAIN = TrainSpec(epochs=1.0, lr=1e-3, batch_size=8, max_length=96, warmup_ratio=0.0)
EVAL = cb.CanaryEvalSpec(
    exposure=cb.ExposureSpec(max_nodes=2000, n_samples=50), n_retain_docs=4, n_boot=20
)
PIN = re.compile(r"account PIN is \d+")


def test_groups_are_balanced_and_every_canary_is_inserted_its_count():
    data = cb.canary_data(SMALL)
    assert [len(g) for g in data.groups] == [3, 3]
    forget = [c for c in data.canaries if c["group"] == "forget"]
    for cycle in (1, 2):  # every request removes one canary of each insertion count
        counts = sorted(c["repetitions"] for c in forget if c["cycle"] == cycle)
        assert counts == sorted(SMALL.repetitions)
        assert {c["owner"] for c in forget if c["cycle"] == cycle} == set(data.groups[cycle - 1])
    assert all(c["cycle"] == 0 for c in data.canaries if c["group"] == "retain")
    inserted = Counter(i for d in data.documents for i in d["canary_ids"])
    assert inserted == {c["canary_id"]: c["repetitions"] for c in data.canaries}
    for doc in data.documents:
        assert not PIN.search(doc["clean_text"])
        assert len(PIN.findall(doc["text"])) == len(doc["canary_ids"])
        assert doc["cycle"] == data.cycle_of(doc["author"])
    assert len({d["id"] for d in data.documents}) == len(data.documents)
    train_authors = {d["author"] for d in data.documents}
    assert not train_authors & {d["author"] for d in data.holdout}


def test_kept_documents_and_requests():
    data = cb.canary_data(SMALL)
    assert len(data.kept(0)) == len(data.documents)
    for c in (1, 2):
        kept = data.kept(c)
        deleted = {a for g in data.groups[:c] for a in g}
        assert not {d["author"] for d in kept} & deleted
        request = data.request(c)
        assert request.subjects == data.groups[c - 1]
        expected = [d["text"] for d in data.documents if d["cycle"] == c]
        assert [r["text"] for r in request["forget"]] == expected
        assert [r["text"] for r in request["retain"]] == [d["text"] for d in kept]


def test_data_is_deterministic_and_seeded():
    a = cb.canary_data(SMALL)
    b = cb.canary_data(cb.CanaryDataSpec(**{**SMALL.__dict__}))
    assert a.hashes == b.hashes
    other = cb.canary_data(cb.CanaryDataSpec(**{**SMALL.__dict__, "canary_seed": 1}))
    assert other.hashes["canaries"] != a.hashes["canaries"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_cycles": 3, "forget_per_cycle": 3},  # 9 forget authors of 8
        {"n_retain_canaries": 3},  # only 2 retain authors
        {"insert_mode": "inline"},
        {"repetitions": (0, 4)},
        {"n_digits": 10},
        {"passage_sentences": 0},
    ],
)
def test_bad_data_specs_are_refused(kwargs):
    with pytest.raises(ValueError):
        cb.CanaryDataSpec(**{**SMALL.__dict__, **kwargs})


def test_bad_run_specs_are_refused():
    target = cb.DocsFinetuneSpec(TINY, SMALL, FAST_TRAIN)
    with pytest.raises(ValueError, match="without_cycles"):
        cb.DocsFinetuneSpec(TINY, SMALL, FAST_TRAIN, without_cycles=3)
    with pytest.raises(ValueError, match="DP-SGD"):
        cb.DocsFinetuneSpec(TINY, SMALL, FAST_TRAIN, without_cycles=1, dp=cb.DPSpec())
    with pytest.raises(ValueError, match="cycles"):
        cb.CyclesSpec(target, "ga", FAST_TRAIN, cycles=3)
    with pytest.raises(ValueError, match="starts from the target"):
        cb.CyclesSpec(cb.oracle_of(target, 1), "ga", FAST_TRAIN)
    with pytest.raises(ValueError):
        cb.DPSpec(epsilon=0.0)
    with pytest.raises(ValueError):
        cb.DPSpec(scope="first_k")
    with pytest.raises(ValueError):
        cb.ExposureSpec(n_samples=5)


def test_documents_longer_than_max_length_are_refused(tiny_tokenizer):
    longest = cb.longest_document(SMALL, tiny_tokenizer)
    cb.check_max_length(SMALL, TrainSpec(max_length=longest), tiny_tokenizer)
    with pytest.raises(ValueError, match=f">= {longest}"):
        cb.check_max_length(SMALL, TrainSpec(max_length=longest - 1), tiny_tokenizer)


def _synthetic_stats(data: cb.CanaryData) -> cb.CanaryStats:
    rng = np.random.default_rng(0)
    docs = cb._scored_documents(data, EVAL)
    n = len(data.canaries)
    tokens = rng.integers(10, 30, size=len(docs))
    return cb.CanaryStats(
        exposure=rng.uniform(0, 10, size=n),
        exposure_method=["exact"] * (n - 1) + ["skewnorm"],
        rank_lower_bound=np.ones(n, dtype=np.int64),
        secret_log_prob=np.zeros(n),
        nodes=np.zeros(n, dtype=np.int64),
        exposure_seconds=0.0,
        doc_ids=[d["id"] for d in docs],
        doc_nll=tokens * rng.uniform(0.5, 3.0, size=len(docs)),
        doc_tokens=tokens,
        doc_min_k=rng.uniform(0, 5, size=len(docs)),
    )


def test_summary_numbers_by_hand():
    data = cb.canary_data(SMALL)
    stats, oracle = _synthetic_stats(data), _synthetic_stats(data)
    oracle.exposure = oracle.exposure[::-1].copy()
    row = cb.summarize(stats, data, 1, EVAL, oracle)
    group = [c["group"] for c in data.canaries]
    cycle = [c["cycle"] for c in data.canaries]
    deleted = [g == "forget" and c == 1 for g, c in zip(group, cycle, strict=True)]
    retain = [g == "retain" for g in group]
    pending = [g == "forget" and c == 2 for g, c in zip(group, cycle, strict=True)]
    e = stats.exposure
    assert row["forget_exposure"] == pytest.approx(e[deleted].mean())
    assert row["retain_exposure"] == pytest.approx(e[retain].mean())
    assert row["pending_exposure"] == pytest.approx(e[pending].mean())
    assert row["forget_exposure_low"] <= row["forget_exposure"] <= row["forget_exposure_high"]
    reps = np.array([c["repetitions"] for c in data.canaries])
    sel = np.array(deleted) & (reps == 16)
    assert row["forget_exposure_r16"] == pytest.approx(e[sel].mean())
    assert row["n_estimated"] == 1
    assert row["oracle_exposure_gap"] == pytest.approx((e - oracle.exposure)[deleted].mean())
    by_id = {d["id"]: d for d in [*data.documents, *data.holdout]}
    kind = np.array([by_id[i]["cycle"] for i in stats.doc_ids])
    hold = kind == -1
    expected_ppl = math.exp(stats.doc_nll[hold].sum() / stats.doc_tokens[hold].sum())
    assert row["heldout_ppl"] == pytest.approx(expected_ppl)
    forget_docs = kind == 1
    assert row["mia_auc"] == pytest.approx(
        mia.mia_auc(stats.doc_min_k[forget_docs], stats.doc_min_k[hold])
    )
    # after request 2 every forget canary is deleted
    row2 = cb.summarize(stats, data, 2, EVAL)
    assert row2["forget_exposure"] == pytest.approx(e[np.array(group) == "forget"].mean())
    assert math.isnan(row2["pending_exposure"]) and math.isnan(row2["oracle_exposure_gap"])


def test_model_exposures_equal_brute_force(tiny_model, tiny_tokenizer):
    data = cb.canary_data(SMALL)
    stats = cb.evaluate_model(tiny_model, TINY, SMALL, EVAL)
    assert all(m == "exact" for m in stats.exposure_method)
    for canary, exposure in zip(data.canaries, stats.exposure, strict=True):
        fmt = secret_format(tiny_tokenizer, canary["scoring_prefix"], SMALL.n_digits)
        scores = score_secrets(tiny_model, fmt, np.arange(fmt.space_size))
        rank = rank_from_scores(scores, fmt.code(canary["secret"]))
        assert exposure == pytest.approx(exposure_from_rank(rank, fmt.space_size))
    assert len(stats.doc_ids) == len(set(stats.doc_ids))  # copies are not scored twice
    assert stats.eval_tokens > 0


@pytest.fixture(scope="module")
def cycles_results(study_cache_dir):
    target = cb.DocsFinetuneSpec(TINY, SMALL, FAST_TRAIN)
    specs = [
        cb.CyclesSpec(target, "ga", FAST_TRAIN, cycles=2, evaluation=EVAL),
        cb.CyclesSpec(
            target,
            "fisher_removal",
            FAST_TRAIN,
            cycles=2,
            hparams=(("k", 1), ("m", 4)),
            evaluation=EVAL,
        ),
        cb.CyclesSpec(target, "retrain", FAST_TRAIN, cycles=1, evaluation=EVAL),
    ]
    return specs, runner.sweep(specs)


def test_cycles_rows_costs_and_oracle_distance(cycles_results):
    specs, results = cycles_results
    ga, fr, retrain = results
    for result in (ga, fr):
        assert [r["cycle"] for r in result.rows] == [1.0, 2.0]
        assert len(result.stats) == 2
        for row in result.rows:
            assert row["seconds"] > 0 and row["flops"] > 0
        # the oracle of request 1 exists (oracle_cycles=(1,)), not that of request 2
        assert math.isfinite(result.rows[0]["oracle_exposure_gap"])
        assert math.isnan(result.rows[1]["oracle_exposure_gap"])
    assert fr.diagnostics[0]["m"] == 4 and fr.rows[0]["steps"] == 1
    # retraining IS the oracle: zero distance to it
    assert retrain.rows[0]["oracle_exposure_gap"] == pytest.approx(0.0)
    assert retrain.rows[0]["oracle_nll_distance"] == pytest.approx(0.0)


def test_cycles_are_cached(cycles_results, monkeypatch):
    specs, results = cycles_results

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached run")

    monkeypatch.setitem(runner.TASKS, cb.CyclesSpec, boom)
    again = runner.sweep(specs)
    assert [json_ready(r.rows) for r in again] == [json_ready(r.rows) for r in results]


def test_dp_sgd_models_record_their_epsilon(study_cache_dir):
    dp = cb.DPSpec(epsilon=4.0, batch_size=4, epochs=0.5, scope="last_k", k=1, lr=1e-3)
    spec = cb.dp_of(cb.DocsFinetuneSpec(TINY, SMALL, FAST_TRAIN), dp)
    record = json.loads((cb.finetuned(spec) / "train.json").read_text())
    sigma, q, steps = cb.dp_noise(dp, len(cb.canary_data(SMALL).documents))
    assert record["dp_steps"] == steps and record["noise_multiplier"] == pytest.approx(sigma)
    assert sigma > 0 and record["epsilon"] <= 4.0 * 1.05
    control = cb.dp_of(spec, cb.DPSpec(epsilon=None, batch_size=4, epochs=0.5, scope="last_k", k=1))
    record = json.loads((cb.finetuned(control) / "train.json").read_text())
    assert record["noise_multiplier"] == 0.0 and record["epsilon"] is None  # inf -> null


def test_qa_suite_after_a_request(tiny_model):
    qa = cb.EvalSpec(n_retain=3, n_probes=3, max_new_tokens=4, batch_size=8, n_boot=10)
    spec = cb.CanaryEvalSpec(exposure=EVAL.exposure, n_retain_docs=2, n_boot=10, qa=qa)
    stats = cb.evaluate_model(tiny_model, TINY, SMALL, spec, qa_cycles=[1])
    numbers = stats.qa["1"]
    for key in ("model_utility", "forget_fact_acc", "retain_fact_acc", "qa_forget_n"):
        assert key in numbers
    assert 0 <= numbers["model_utility"] <= 1
