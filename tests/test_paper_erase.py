"""lib.papers.erase: configuration checks, accuracy intervals over tasks, holistic cost and the
break-even point against hand-computed values, and the claims' verdicts from the numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lib.benchmarks import icl
from lib.papers import erase

BASE = dict(
    model="tiny-random",
    dtype="float32",
    tasks=["topic_blue_green"],
    bigbench_path="",
    n_train=24,
    n_test=8,
    data_seed=0,
    methods=["erase", "random_kshot", "zero_shot", "sisa", "retrain"],
    icl_seeds=[0],
    ft_seeds=[0],
    n_deletions=6,
    icl_checkpoints=[0, 6],
    ft_checkpoints=[0, 6],
    erase_k=3,
    erase_epsilon=0.05,
    erase_projection=4,
    erase_encoder="",
    sisa_shards=2,
    sisa_slices=2,
    sisa_aggregation="probabilities",
    ft_epochs=1.0,
    ft_lr=1e-3,
    ft_batch=4,
    ft_full=False,
    ft_lora_top_layers=1,
    cost_sizes=[10, 100],
    cost_deletions=5,
    cost_models=[],
    eval_batch=8,
    n_boot=50,
    q_per_u=100.0,
    comparable_margin=0.05,
)


def test_config_builds_specs_and_rejects_bad_values() -> None:
    cfg = erase.config(**BASE)
    erase.check(cfg)
    specs = erase.specs(cfg)
    # zero-shot once per task; others once per seed
    assert [s.method for s in specs] == ["erase", "random_kshot", "zero_shot", "sisa", "retrain"]
    assert dict(specs[3].hparams)["n_shards"] == 2 and specs[3].checkpoints == (0, 6)
    assert specs[3].finetune.lora is not None and specs[3].finetune.schedule == "constant"
    with pytest.raises(KeyError, match="methods"):
        erase.config(**{**BASE, "methods": ["erase", "ga"]})
    with pytest.raises(ValueError, match="icl_seeds"):
        erase.config(**{**BASE, "icl_seeds": []})
    with pytest.raises(KeyError, match="unknown task"):
        erase.config(**{**BASE, "tasks": ["nope"]})
    with pytest.raises(ValueError, match="n_deletions"):
        erase.check(erase.config(**{**BASE, "n_deletions": 22, "ft_checkpoints": [0, 22]}))
    with pytest.raises(ValueError, match="lora_top_layers"):
        erase.check(erase.config(**{**BASE, "ft_lora_top_layers": 3}))
    with pytest.raises(ValueError, match="beyond"):
        erase.check(erase.config(**{**BASE, "icl_checkpoints": [0, 7]}))
    with pytest.raises(ValueError, match="epsilon"):
        erase.check(erase.config(**{**BASE, "erase_epsilon": 0.0}))


def _result(
    method: str, task: str, seed: int, before: float, after: float, **kw
) -> icl.StreamResult:
    n = 2
    return icl.StreamResult(
        method=method,
        task=task,
        seed=seed,
        checkpoints=[0, n],
        accuracy=[before, after],
        deletion_seconds=np.full(n, kw.get("seconds", 0.0)),
        deletion_flops=np.full(n, kw.get("flops", 0.0)),
        deletion_tokens=np.zeros(n),
        reclustered=np.array(kw.get("reclustered", [False] * n)),
        selection_changed=np.zeros(n, dtype=bool),
        inference_flops_per_query=kw.get("query", 1.0),
        prompt_tokens=10.0,
        n_models=1,
        setup_flops=0.0,
        setup_seconds=0.0,
        n_params=100,
        diagnostics={"seconds_per_token": 0.5},
    )


@pytest.fixture
def results() -> list[icl.StreamResult]:
    out = []
    for t, task in enumerate(["a", "b", "c"]):
        for seed in (0, 1):
            out.append(_result("erase", task, seed, 0.7 + 0.1 * t, 0.6 + 0.1 * t, flops=10.0,
                               query=1000.0, reclustered=[True, False]))  # fmt: skip
        out.append(_result("sisa", task, 0, 0.9, 0.9, flops=1e6, query=100.0))
    return out


def test_accuracy_table_means_and_task_level_intervals(results) -> None:
    table = erase.accuracy_table(results, n_boot=200)
    assert list(table.index) == ["erase", "sisa"]
    assert table.loc["erase", "accuracy_before"] == pytest.approx(0.8)
    assert table.loc["erase", "accuracy_after_deletions"] == pytest.approx(0.7)
    assert table.loc["erase", "runs"] == 6 and table.loc["erase", "tasks"] == 3
    low, high = table.loc[
        "erase", ["accuracy_after_deletions_low", "accuracy_after_deletions_high"]
    ]
    assert 0.6 <= low <= 0.7 <= high <= 0.8  # task means are 0.6, 0.7, 0.8
    assert table.loc["sisa", "accuracy_after_deletions_low"] == pytest.approx(0.9)  # no spread
    curve = erase.accuracy_curve(results)
    assert set(curve["deletions"]) == {0, 2} and len(curve) == 2 * len(results)


def test_costs_holistic_and_break_even_hand_computed(results) -> None:
    costs = erase.cost_table(results)
    assert costs.loc["erase", "recluster_rate"] == pytest.approx(0.5)
    assert math.isnan(costs.loc["sisa", "recluster_rate"])
    # ERASE: 10 per deletion, 1000 per query; SISA: 1e6 per deletion, 100 per query
    # equal when 10 + 1000 r = 1e6 + 100 r  ->  r = (1e6 - 10) / 900
    points = erase.break_even(costs)
    assert points == {"sisa": pytest.approx((1e6 - 10) / 900)}
    long = erase.holistic(costs, ratios=[0.0, 10.0])
    row = long[(long["method"] == "erase") & (long["queries_per_deletion"] == 10.0)]
    assert row["total_flops_per_deletion"].iloc[0] == pytest.approx(10 + 10 * 1000)
    cheap_queries = costs.copy()
    cheap_queries.loc["erase", "inference_flops_per_query"] = 50.0  # ICL cheaper at everything
    assert erase.break_even(cheap_queries) == {"sisa": math.inf}
    assert erase.break_even_record(cheap_queries) == {"sisa": None}
    pricey = cheap_queries.copy()
    pricey.loc["erase", "deletion_flops"] = 2e6  # ICL dearer per deletion, cheaper per query
    # lines cross at (1e6 - 2e6) / (50 - 100) = 2e4, ICL cheaper above it
    assert erase.break_even(pricey) == {"sisa": pytest.approx(2e4)}
    assert erase.icl_cheaper_below(pricey) == {"sisa": False}
    never = pricey.copy()
    never.loc["erase", "inference_flops_per_query"] = 200.0  # dearer at both
    assert erase.break_even(never) == {"sisa": 0.0}


def _cfg(**overrides):
    return erase.config(**{**BASE, **overrides})


def _curve(erase_seconds: list[float], n: list[int]) -> pd.DataFrame:
    rows = [
        {"model": "tiny-random", "n_params": 100, "n": k, "source": "real", "method": "erase",
         "seconds_per_deletion": s, "median_seconds": m, "flops_per_deletion": 10.0,
         "recluster_rate": 0.1}
        for k, s, m in zip(n, erase_seconds, [1e-4, 2e-4, 1e-4], strict=True)
    ] + [
        {"model": "tiny-random", "n_params": 100, "n": k, "source": "counted", "method": "sisa",
         "seconds_per_deletion": k * 1.0, "flops_per_deletion": k * 1e4, "recluster_rate": np.nan}
        for k in n
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_claims_verdicts_follow_the_numbers(results) -> None:
    cfg = _cfg()
    accuracy = erase.accuracy_table(results, n_boot=50)
    costs = erase.cost_table(results)
    flat = _curve([1e-3, 1.5e-3, 1.2e-3], [100, 1000, 10000])
    steep = _curve([1e-3, 1e-2, 1e-1], [100, 1000, 10000])
    c1, c2, c3 = erase.claims(cfg, accuracy, costs, flat, results)
    assert c1["verdict"] == "held" and c1["evidence"]["ERASE largest/smallest over n"] == 1.5
    assert c1["evidence"]["ERASE median largest/smallest over n"] == 2.0
    assert erase.claims(cfg, accuracy, costs, steep, results)[0]["verdict"] == "did not hold"
    # accuracy: ERASE 0.7 vs SISA 0.9 after deletions -> gap 0.2 > 0.05
    assert c2["verdict"] == "did not hold"
    assert (
        erase.claims(_cfg(comparable_margin=0.25), accuracy, costs, flat, results)[1]["verdict"]
        == "held"
    )
    # holistic at Q/U = 100: ERASE 10 + 1e5 < SISA 1e6 + 1e4 -> held; at Q/U = 1e4 it is not
    assert c3["verdict"] == "held"
    assert erase.claims(_cfg(q_per_u=1e4), accuracy, costs, flat, results)[2]["verdict"] == (
        "did not hold"
    )
    text = erase.claims_markdown([c1, c2, c3])
    assert text.count("\n") == 2 and "**held**" in text and "**did not hold**" in text


def test_records_hold_the_issue_keys(results) -> None:
    accuracy = erase.accuracy_table(results, n_boot=20)
    costs = erase.cost_table(results)
    records = erase.method_records(accuracy, costs)
    for method in ("erase", "sisa"):
        assert set(erase.RECORD_KEYS) <= set(records[method])
    assert records["sisa"]["recluster_rate"] is None and records["erase"]["recluster_rate"] == 0.5
    headline = erase.headline_table(accuracy, costs)
    assert len(headline.select_dtypes("number").columns) <= 8
