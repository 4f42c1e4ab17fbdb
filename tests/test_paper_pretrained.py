"""Tests of lib.papers.pretrained (notebook 02's protocol) on synthetic scores: parameter
validation, the document bootstrap, the main table with its reference rows, the grid's good
region and area, the cost ratios, and the three claims' verdicts by hand. No model runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lib.benchmarks import pretraining as pt
from lib.papers import pretrained

PARAMS = dict(
    model="tiny-random",
    dtype="float32",
    data_source="local",
    domains=["code", "prose"],
    n_forget_docs=2,
    n_approx_docs=2,
    n_retain_docs=3,
    n_general_retain_docs=2,
    n_general_eval_docs=2,
    doc_max_chars=400,
    doc_min_chars=200,
    data_seed=0,
    chunk_tokens=32,
    continued=True,
    pretrain_lr=1e-3,
    pretrain_batch=4,
    shared_epochs=1.0,
    slice_epochs=2.0,
    methods=["pt_ga", "pt_ga_gd_in", "pt_ga_gd_gen"],
    method_hparams={},
    unlearn_lr=1e-3,
    unlearn_epochs=1.0,
    unlearn_batch=1,
    unlearn_accum=2,
    grid_domains=["code"],
    grid_lrs=[1e-3, 1e-2],
    grid_epochs=[1, 2],
    seeds=[0],
    mink_k=0.4,
    eval_batch=4,
    eval_retain_chunks=2,
    eval_general_chunks=3,
    grid_general_chunks=2,
    n_probes=0,
    n_boot=50,
    pretraining_tokens=2e12,
)


@pytest.fixture(scope="module")
def cfg() -> pretrained.Config:
    return pretrained.config(**PARAMS)


def test_config_builds_the_specs_and_the_paper_recipe(cfg):
    assert cfg.unlearn.schedule == "cosine" and cfg.unlearn.warmup_ratio == 0.03
    assert cfg.unlearn.weight_decay == 0.0 and cfg.unlearn.max_length == 32
    assert cfg.grid_train.schedule == "constant" and cfg.grid_train.epochs == 2
    assert cfg.grid_train.warmup_ratio == 0.0
    assert cfg.grid_evaluation.n_general == 2 and cfg.pretraining_tokens == 2e12
    assert cfg.pretrain.final.epochs == 2.0 and cfg.pretrain.shared.epochs == 1.0
    specs = pretrained.grid_specs(cfg)
    assert len(specs) == 1 * 3 * 2 and {s.train.lr for s in specs} == {1e-3, 1e-2}
    assert all(s.eval_epochs == (1, 2) and s.sets == ("forget", "general") for s in specs)
    assert len(pretrained.main_specs(cfg)) == 2 * 3


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"grid_epochs": [2, 1]}, ValueError, "increasing"),
        ({"grid_epochs": [0]}, ValueError, "integers >= 1"),
        ({"grid_lrs": [0.0]}, ValueError, "positive"),
        ({"grid_domains": ["bio"]}, ValueError, "must be among domains"),
        ({"mink_k": 0.2}, ValueError, "mink_k must be one of"),
        ({"grid_general_chunks": 9}, ValueError, "grid_general_chunks"),
        ({"seeds": []}, ValueError, "seeds"),
        ({"n_boot": 2}, ValueError, "n_boot"),
        ({"methods": ["pt_ga", "nope"]}, KeyError, "unknown method"),
        ({"method_hparams": {"pt_ga_kl_in": {"kl_mask": "x"}}}, KeyError, "not run"),
        ({"domains": ["code", "web"]}, ValueError, "distinct names"),
        ({"data_source": "web"}, ValueError, "source must be"),
        ({"chunk_tokens": 4}, ValueError, "chunk_tokens"),
    ],
)
def test_bad_parameters_fail_before_any_work(override, error, match):
    with pytest.raises(error, match=match):
        pretrained.config(**{**PARAMS, **override})


def test_kl_mask_is_checked_through_the_registry():
    params = {
        **PARAMS,
        "methods": ["pt_ga_kl_in"],
        "method_hparams": {"pt_ga_kl_in": {"kl_mask": "x"}},
    }
    with pytest.raises(ValueError, match="kl_mask"):
        pretrained.config(**params)


# --------------------------------------------------------------------------- synthetic scores
def _set(means: list[float], docs: list[str], n: int = 4, spread: float = 0.5) -> pt.SetScores:
    """One chunk per mean log-prob (n tokens spread around it), with its document id."""
    logprobs = [np.linspace(m - spread, m + spread, n) for m in means]
    return pt.SetScores(logprobs, [np.ones(n, dtype=bool)] * len(means), docs)


def test_auc_interval_resamples_documents_not_chunks():
    forget = _set([-1.0, -1.1, -0.9, -1.2], ["a", "a", "b", "c"])
    approx = _set([-3.0, -3.1, -2.9], ["x", "y", "z"])
    low, high = pretrained.auc_ci(forget, approx, 0.4, n_boot=200)
    assert low == high == 1.0  # perfectly separated in every resample
    mixed = _set([-1.0, -3.0, -2.0, -2.5], ["a", "a", "b", "c"])
    low, high = pretrained.auc_ci(mixed, approx, 0.4, n_boot=200)
    assert 0.5 <= low < high <= 1.0
    again = pretrained.auc_ci(mixed, approx, 0.4, n_boot=200)
    assert again == (low, high)  # seeded
    p_low, p_high = pretrained.ppl_ci(forget, n_boot=200)
    assert p_low <= pt.macro_ppl(forget.logprobs) <= p_high


def _scores(forget_mean: float, approx_mean: float, general_mean: float, retain=-1.0) -> dict:
    sets = {}
    for domain in ("code", "prose"):
        sets[f"{domain}/forget"] = _set(
            [forget_mean, forget_mean - 0.1], [f"{domain}f1", f"{domain}f2"]
        )
        sets[f"{domain}/approximate"] = _set(
            [approx_mean, approx_mean - 0.1], [f"{domain}a1", f"{domain}a2"]
        )
        sets[f"{domain}/retain"] = _set([retain], [f"{domain}r1"])
    sets["general"] = _set([general_mean, general_mean, general_mean], ["g1", "g2", "g3"])
    return sets


def _run(method, domain, forget, general, lr=1e-3, points=(), retain=-1.0) -> pt.PretrainRun:
    scores = _scores(forget, -3.0, general, retain)
    sets = {k: v for k, v in scores.items() if k.startswith(domain) or k == "general"}
    return pt.PretrainRun(
        method=method,
        domain=domain,
        seed=0,
        lr=lr,
        epochs=1.0,
        metrics={},
        points=list(points),
        scores=sets,
        probe_nll=np.zeros(0),
        cost={"seconds": 2.0, "flops": 1e12, "steps": 3, "n_params": 1e6},
    )


@pytest.fixture
def synthetic(cfg, monkeypatch):
    """Stored scores: target memorised the forget chunks (-1 vs -3), retrained did not (-3)."""
    stored = {
        "base": pt.ModelScores(_scores(-3.0, -3.0, -2.0), np.zeros(0)),
        "target": pt.ModelScores(_scores(-1.0, -3.0, -2.0), np.zeros(0)),
        "retrained": pt.ModelScores(_scores(-3.05, -3.0, -2.0), np.zeros(0)),
    }
    monkeypatch.setattr(pt, "stored_model_scores", lambda spec, which, ev: stored[which])
    main_runs = [
        # GA: forgets (forget NLL 3.5 > approximate level 3) but general PPL up by e^0.5
        _run("pt_ga", "code", -3.5, -2.5),
        _run("pt_ga", "prose", -3.5, -2.5),
        # GA+GD_in: forgets, general unchanged
        _run("pt_ga_gd_in", "code", -3.2, -2.0),
        _run("pt_ga_gd_in", "prose", -3.2, -2.0),
        # GA+GD_gen: forgets less, general unchanged, in-distribution retain PPL up
        _run("pt_ga_gd_gen", "code", -2.0, -2.0, retain=-1.5),
        _run("pt_ga_gd_gen", "prose", -2.0, -2.0, retain=-1.5),
    ]

    def point(e, f, g):
        return {
            "epoch": e,
            "step": e,
            "forget_ppl": math.exp(-f),
            "general_ppl": math.exp(-g),
        }

    grid_runs = []
    for method, cells in {
        "pt_ga": [(-3.5, -2.5), (-4.0, -3.0), (-3.5, -2.5), (-4.0, -3.0)],
        "pt_ga_gd_in": [(-3.2, -2.0), (-3.4, -2.01), (-2.0, -2.0), (-3.3, -2.0)],
        "pt_ga_gd_gen": [(-2.0, -2.0), (-3.3, -2.01), (-2.0, -2.0), (-2.5, -2.0)],
    }.items():
        for i, lr in enumerate((1e-3, 1e-2)):
            (f1, g1), (f2, g2) = cells[2 * i], cells[2 * i + 1]
            grid_runs.append(_run(method, "code", f2, g2, lr, [point(1, f1, g1), point(2, f2, g2)]))
    monkeypatch.setattr(
        pt.runner,
        "sweep",
        lambda specs, desc="": main_runs if desc == "unlearning runs" else grid_runs,
    )
    monkeypatch.setattr(
        pt, "train_record", lambda folder: {"n_params": 1e6, "train_tokens": 1e4, "seconds": 30.0}
    )
    monkeypatch.setattr(pt, "final_checkpoint", lambda spec, with_forget: "unused")
    return stored


def test_setup_and_membership_by_hand(cfg, synthetic):
    table = pretrained.setup(cfg)
    assert list(table.index.get_level_values("model").unique()) == ["base", "target", "retrained"]
    target = table.loc[("target", "code")]
    assert target["forget_ppl"] == pytest.approx(math.exp(1.05))
    assert target["mink_auc"] == 1.0 and target["mink_auc_raw"] == 1.0
    retrained = table.loc[("retrained", "code")]  # forget chunks now *less* likely: folded
    assert retrained["mink_auc_raw"] == pytest.approx(0.25) and retrained["mink_auc"] == 0.75
    text, evidence = pretrained.membership(table, cfg)
    assert "established in **2 of 2**" in text and evidence["domains with membership"] == "2/2"


def test_main_table_grid_costs_and_claims_by_hand(cfg, synthetic):
    setup = pretrained.setup(cfg)
    main = pretrained.main_runs(cfg, setup)
    assert list(main.table.index) == [
        (d, m) for d in ("code", "prose") for m in ("target", "retrained", *cfg.methods)
    ]
    ga = main.table.loc[("code", "pt_ga")]
    retrained = main.table.loc[("code", "retrained")]
    assert ga["forget_ppl_vs_retrained"] == pytest.approx(
        ga["forget_ppl"] / retrained["forget_ppl"]
    )
    assert ga["mink_auc_gap"] == pytest.approx(abs(ga["mink_auc"] - retrained["mink_auc"]))

    result = pretrained.grid(cfg)
    level = result.levels.loc["code"]
    assert level["forget_level"] == pytest.approx(math.exp(3.05))
    assert level["general_limit"] == pytest.approx(math.exp(2.0) * 1.05)
    areas = result.areas.set_index("method")["area"]
    # GA never keeps utility; GD_in: 3 of 4 cells; GD_gen: 1 of 4 cells
    assert areas.to_dict() == {"GA": 0.0, "GA+GD_in": 0.75, "GA+GD_gen": 0.25}
    assert level["retrained_forget_ppl"] == pytest.approx(math.exp(3.1))  # chunks -3.05, -3.15
    strict = result.areas.set_index("method")["area_retrained_level"]
    assert strict.to_dict() == {"GA": 0.0, "GA+GD_in": 0.75, "GA+GD_gen": 0.25}

    cost = pretrained.costs(cfg, main)
    assert cost["ratio_vs_pretraining"].iloc[0] == pytest.approx(6 * 1e6 * 2e12 / 1e12)
    assert cost["ratio_vs_retrained_slice"].iloc[0] == pytest.approx(6 * 1e6 * 1e4 / 1e12)

    c_cost, c_robust, c_general = pretrained.claims(cfg, main, result, cost)
    assert c_cost.verdict == "held"  # 1.2e7 > 1e5
    assert c_robust.verdict == "held"  # largest area and, of GA and GD_in (both forget), least PPL
    assert c_robust.evidence["best utility among methods that forget"] is True
    assert c_general.verdict == "held"  # area 0.75 >= 0.25, retain PPL lower with GD_in
    records = pretrained.records(main, result, cost)
    assert records["pt_ga_gd_in"]["code"]["good_region_area"] == 0.75
    assert math.isnan(records["pt_ga_gd_in"]["prose"]["good_region_area"])  # not a grid domain
    assert records["pt_ga"]["code"]["mink_auc_ci"][0] <= records["pt_ga"]["code"]["mink_auc"]
    summary = pretrained.summary(main, result.areas, cost)
    assert list(summary.index[:2]) == ["target", "retrained"]
    assert summary.loc["GA+GD_in", "good_region_area"] == 0.75
    assert "held" in pretrained.claims_markdown([c_cost, c_robust, c_general])


def test_claims_that_do_not_hold_or_cannot_be_tested(cfg, synthetic):
    setup = pretrained.setup(cfg)
    main = pretrained.main_runs(cfg, setup)
    result = pretrained.grid(cfg)
    cost = pretrained.costs(cfg, main)
    cheap = cost.assign(ratio_vs_pretraining=[50.0] + [1e7] * (len(cost) - 1))
    assert pretrained.claim_cost(cheap).verdict == "did not hold"
    unknown = cost.assign(ratio_vs_pretraining=np.nan)
    assert pretrained.claim_cost(unknown).verdict == "not testable at this scale"
    no_good = result.areas.assign(area=0.0)
    verdict = pretrained.claim_robustness(cfg, main, no_good, result.levels).verdict
    assert verdict == "not testable at this scale"
    gen_wins = result.areas.assign(area=[0.0, 0.25, 0.75])
    assert pretrained.claim_robustness(cfg, main, gen_wins, result.levels).verdict == "did not hold"
    assert pretrained.claim_general_retain(main, gen_wins).verdict == "did not hold"


def test_native_mode_has_a_target_but_no_retrained_reference(synthetic):
    native = pretrained.config(**{**PARAMS, "continued": False})
    setup = pretrained.setup(native)
    assert list(setup.index.get_level_values("model").unique()) == ["target"]
    text, _ = pretrained.membership(setup, native)
    assert "Native mode" in text and "retrained AUC" not in text
    main = pretrained.main_runs(native, setup)
    assert "retrained" not in main.table.index.get_level_values("method")
    cost = pretrained.costs(native, main)
    assert (
        cost["ratio_vs_retrained_slice"].isna().all() and cost["ratio_vs_pretraining"].gt(0).all()
    )
    result = pretrained.grid(native)
    records = pretrained.records(main, result, cost)
    assert math.isnan(records["pt_ga"]["code"]["mink_auc_retrained"])
    assert pretrained.claims(native, main, result, cost)[0].verdict == "held"
