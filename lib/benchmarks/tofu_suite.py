"""The evaluation suite of the TOFU-style QA benchmark: per-example statistics of one model,
and their summary into numbers with author-level confidence intervals.

`collect(model, tokenizer, rows, spec)` runs the model once over every probe set (teacher-forced
scores of the true, paraphrased and perturbed answers on one shared prompt computation, plus a
greedy answer) and returns `SuiteStats`: plain arrays and strings, cached as JSON + npz.
`summarize(stats, oracle, spec)` is pure numpy and returns a flat dict of metrics whose
direction is stated in `METRIC_HELP`.

Forgetting is measured on the *fact*: `*_fact_acc` is the fraction of greedy answers that state
the gold value (`lib.metrics.facts`), because full-answer ROUGE also rewards the answer template,
which the benchmark's authors share. Forget rows whose value another trained author also holds
(`value_shared`) are left out of fact accuracy: a model that never saw the author could state
them. Full-answer ROUGE-L stays as a secondary column.

Confidence intervals resample *authors* (`lib.metrics.stats.cluster_bootstrap`): questions about
one author are not independent. Probes are resampled one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import metrics, progress
from lib.evaluate import SharedPromptResult, TokenCounter, TokenScores, score_and_generate
from lib.metrics import facts, mia
from lib.metrics import stats as st
from lib.prompting import format_prompt

Row = Mapping[str, Any]

#: MIA attacks reported; `min_k` (40%) is the headline attack and the basis of PrivLeak (MUSE).
ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference")
HEADLINE_ATTACK = "min_k"

METRIC_HELP = {
    "forget_fact_acc": "fraction of greedy answers to forget questions that state the gold "
    "fact; lower = more forgotten (the oracle's level = never learned)",
    "paraphrase_fact_acc": "same on paraphrased forget questions (held-out templates); lower = "
    "more forgotten",
    "multihop_fact_acc": "same on multi-hop questions about forget authors; lower = more forgotten",
    "combined_forget_fact_acc": "questions joining a forget and a retain author: forget part "
    "stated; lower = more forgotten",
    "combined_retain_fact_acc": "same questions: retain part stated; higher = utility kept",
    "forget_value_rouge": "ROUGE-L recall of the gold fact's words in forget answers; lower = "
    "more forgotten",
    "forget_rouge": "ROUGE-L recall of the full forget answer (template included); secondary",
    "forget_quality": "KS p-value of forget truth ratios vs the retain oracle; higher = closer "
    "to retraining (1 = indistinguishable, < 0.05 = distinguishable)",
    "forget_ks": "KS statistic D of that test (0 = same distribution, 1 = disjoint)",
    "tr_wilcoxon_p": "paired Wilcoxon p-value of log truth ratios, model vs oracle, question by "
    "question; higher = no systematic difference",
    "model_utility": "harmonic mean of retain and real-world probability, ROUGE-L and truth "
    "score; higher = more utility kept",
    "retain_fact_acc": "fact accuracy on retain questions; higher = utility kept",
    "probe_fact_acc": "fraction of real-world probes answered correctly; higher = utility kept",
    "forget_prob": "mean probability of the true forget answers; lower = more forgotten",
    "forget_truth": "mean min(TR, 1/TR) on forget questions (TOFU forget truth ratio)",
    "exact_memorization": "teacher-forced argmax accuracy on forget answer text; lower = less "
    "memorized",
    "extraction_strength": "fraction of a forget answer's suffix extractable; lower = less "
    "memorized",
    "mia_auc": "Min-K% (40%) AUC, forget (members) vs holdout authors; 0.5 = undetectable, 1 = "
    "clearly seen",
    "privleak": "MUSE PrivLeak vs the oracle's AUC, in %; ~0 ideal, < 0 under-unlearned, > 0 "
    "over-unlearned",
}


@dataclass(frozen=True)
class EvalSpec:
    """How much of the benchmark each model is evaluated on, and how."""

    n_retain: int = 40  # retain QA evaluated (spread over authors); TOFU uses 300-400
    n_probes: int = 40  # real-world probes evaluated (of those the base model knows)
    max_new_tokens: int = 32  # greedy generation budget per answer
    batch_size: int = 16  # prompts per forward pass
    n_boot: int = 200  # bootstrap replicates of every confidence interval
    score_eos: bool = False  # memorisation and Min-K% on the answer text (False) or + its EOS

    def __post_init__(self) -> None:
        for name in ("n_retain", "n_probes", "max_new_tokens", "batch_size", "n_boot"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EvalSpec.{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class SuiteRows:
    """The rows one model is evaluated on (built by the benchmark)."""

    forget: Sequence[Row]
    multihop: Sequence[Row]
    combined: Sequence[Row]
    retain: Sequence[Row]
    holdout: Sequence[Row]
    probes: Sequence[Row]


@dataclass
class SuiteStats:
    """Per-example statistics of one model on the benchmark (see `collect`)."""

    forget: TokenScores  # true answers + EOS, with Min-K%++ moments
    forget_answers: list[str]
    forget_values: list[str]
    forget_authors: list[str]
    forget_scored: list[bool]  # fact accuracy defined (value not shared with a trained author)
    forget_para_nll: np.ndarray  # (n,) avg NLL of paraphrased answers
    forget_pert_nll: np.ndarray  # (n, k) avg NLL of perturbed answers
    forget_gen: list[str]
    forget_para_gen: list[str]
    multihop_values: list[str]
    multihop_authors: list[str]
    multihop_gen: list[str]
    combined_forget_values: list[str]
    combined_retain_values: list[str]
    combined_authors: list[str]  # the forget author of each combined question
    combined_gen: list[str]
    holdout: TokenScores
    holdout_answers: list[str]
    holdout_authors: list[str]
    retain_nll: np.ndarray
    retain_para_nll: np.ndarray
    retain_pert_nll: np.ndarray
    retain_answers: list[str]
    retain_values: list[str]
    retain_authors: list[str]
    retain_gen: list[str]
    probe_nll: np.ndarray
    probe_pert_nll: np.ndarray
    probe_answers: list[str]
    probe_aliases: list[list[str]]
    probe_gen: list[str]
    eval_tokens: int = 0
    extra: dict = field(default_factory=dict)


def retain_subset(retain: Sequence[Row], n: int) -> list[Row]:
    """`n` retain QA spread evenly over the split (deterministic)."""
    if n >= len(retain):
        return list(retain)
    picks = np.linspace(0, len(retain) - 1, n).round().astype(int)
    return [retain[i] for i in picks]


def _avg_nll(scores: TokenScores, k: int) -> np.ndarray:
    """(n, k) mean token NLL of k candidates per question, from prompt-major scores."""
    return scores.avg_nll.reshape(-1, k) if len(scores.logprobs) else np.zeros((0, k))


def _n_candidates(rows: Sequence[Row], column: str) -> int:
    return len(rows[0][column]) if rows else 0


def collect(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: SuiteRows,
    spec: EvalSpec,
    context: str = "",
    desc: str = "evaluate",
) -> SuiteStats:
    """Run every forward pass and generation the suite needs (context = ICU prompt, if any).

    Each question's prompt is computed once and shared by its answer, paraphrased answer,
    perturbed answers and greedy generation (`lib.evaluate.score_and_generate`).
    """
    count = TokenCounter()
    kw = {"batch_size": spec.batch_size, "counter": count, "max_new_tokens": spec.max_new_tokens}

    def run(part: Sequence[Row], question: str = "question", generate: bool = True, **cands):
        prompts = [format_prompt(tokenizer, r[question], context) for r in part]
        if not prompts:
            return SharedPromptResult({name: TokenScores() for name in cands}, [])
        candidates = {name: [list(get(r)) for r in part] for name, get in cands.items()}
        return score_and_generate(
            model,
            tokenizer,
            prompts,
            candidates,
            vocab_stats=[n for n in ("answer",) if n in candidates],
            generate=generate,
            **kw,
        )

    def answer(r: Row) -> list[str]:
        return [r["answer"]]

    def paraphrased(r: Row) -> list[str]:
        return [r["paraphrased_answer"]]

    def perturbed(r: Row) -> list[str]:
        return list(r["perturbed_answers"])

    forget, retain, probes = rows.forget, rows.retain, rows.probes
    parts = [forget, forget, rows.multihop, rows.combined, rows.holdout, retain, probes]
    with progress.bar(sum(len(p) for p in parts), desc, unit="question") as bar:
        f = run(forget, answer=answer, paraphrased=paraphrased, perturbed=perturbed)
        bar.update(len(forget))
        f_para = run(forget, question="paraphrased_question")
        bar.update(len(forget))
        mh = run(rows.multihop)
        bar.update(len(rows.multihop))
        co = run(rows.combined)
        bar.update(len(rows.combined))
        ho = run(rows.holdout, generate=False, answer=answer)
        bar.update(len(rows.holdout))
        re = run(retain, answer=answer, paraphrased=paraphrased, perturbed=perturbed)
        bar.update(len(retain))
        pr = run(probes, answer=answer, perturbed=perturbed)
        bar.update(len(probes))
    stats = SuiteStats(
        forget=f.scores["answer"],
        forget_answers=[r["answer"] for r in forget],
        forget_values=[r["value"] for r in forget],
        forget_authors=[r["author"] for r in forget],
        forget_scored=[bool(r["value"]) and not r.get("value_shared", False) for r in forget],
        forget_para_nll=f.scores["paraphrased"].avg_nll,
        forget_pert_nll=_avg_nll(f.scores["perturbed"], _n_candidates(forget, "perturbed_answers")),
        forget_gen=f.generations,
        forget_para_gen=f_para.generations,
        multihop_values=[r["value"] for r in rows.multihop],
        multihop_authors=[r["author"] for r in rows.multihop],
        multihop_gen=mh.generations,
        combined_forget_values=[r["forget_value"] for r in rows.combined],
        combined_retain_values=[r["retain_value"] for r in rows.combined],
        combined_authors=[r["forget_author"] for r in rows.combined],
        combined_gen=co.generations,
        holdout=ho.scores["answer"],
        holdout_answers=[r["answer"] for r in rows.holdout],
        holdout_authors=[r["author"] for r in rows.holdout],
        retain_nll=re.scores["answer"].avg_nll,
        retain_para_nll=re.scores["paraphrased"].avg_nll,
        retain_pert_nll=_avg_nll(
            re.scores["perturbed"], _n_candidates(retain, "perturbed_answers")
        ),
        retain_answers=[r["answer"] for r in retain],
        retain_values=[r["value"] for r in retain],
        retain_authors=[r["author"] for r in retain],
        retain_gen=re.generations,
        probe_nll=pr.scores["answer"].avg_nll,
        probe_pert_nll=_avg_nll(pr.scores["perturbed"], _n_candidates(probes, "perturbed_answers")),
        probe_answers=[p["answer"] for p in probes],
        probe_aliases=[[p["answer"], *p.get("aliases", [])] for p in probes],
        probe_gen=pr.generations,
    )
    stats.eval_tokens = count.tokens
    return stats


# --------------------------------------------------------------------------- per-example numbers
def forget_truth_ratios(stats: SuiteStats) -> np.ndarray:
    """Per-example TOFU truth ratio on the forget set (P_perturbed / P_paraphrased)."""
    return metrics.truth_ratio(stats.forget_para_nll, stats.forget_pert_nll)


def _fact(generations: Sequence[str], values: Sequence[str]) -> np.ndarray:
    """Per-example fact correctness; NaN where the value is undefined (empty)."""
    out = np.full(len(values), np.nan)
    for i, (g, v) in enumerate(zip(generations, values, strict=True)):
        if facts.normalize(v):
            out[i] = float(facts.contains_phrase(g, v))
    return out


def fact_vectors(stats: SuiteStats) -> dict[str, np.ndarray]:
    """Per-example fact correctness of every probe set (NaN = not scored)."""
    forget = _fact(stats.forget_gen, stats.forget_values)
    forget[~np.asarray(stats.forget_scored, dtype=bool)] = np.nan
    paraphrase = _fact(stats.forget_para_gen, stats.forget_values)
    paraphrase[~np.asarray(stats.forget_scored, dtype=bool)] = np.nan
    probe = np.array(
        [
            float(any(facts.contains_phrase(g, a) for a in aliases))
            for g, aliases in zip(stats.probe_gen, stats.probe_aliases, strict=True)
        ]
    )
    return {
        "forget": forget,
        "paraphrase": paraphrase,
        "multihop": _fact(stats.multihop_gen, stats.multihop_values),
        "combined_forget": _fact(stats.combined_gen, stats.combined_forget_values),
        "combined_retain": _fact(stats.combined_gen, stats.combined_retain_values),
        "retain": _fact(stats.retain_gen, stats.retain_values),
        "probe": probe,
    }


def _value_rouge(stats: SuiteStats) -> float:
    """Mean ROUGE-L recall of the gold value's words over the scored forget questions."""
    keep = [i for i, ok in enumerate(stats.forget_scored) if ok]
    if not keep:
        return float("nan")
    gens = [stats.forget_gen[i] for i in keep]
    return float(facts.value_recall(gens, [stats.forget_values[i] for i in keep]).mean())


def _mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _answer_text(scores: TokenScores, score_eos: bool) -> TokenScores:
    """The scores of the answer text, without its closing EOS unless `score_eos`."""
    if score_eos:
        return scores
    cut = TokenScores()
    for lp, correct, mu, sigma in zip(
        scores.logprobs,
        scores.correct,
        scores.mu or [None] * len(scores.logprobs),
        scores.sigma or [None] * len(scores.logprobs),
        strict=True,
    ):
        keep = max(1, len(lp) - 1)
        cut.logprobs.append(lp[:keep])
        cut.correct.append(correct[:keep])
        if mu is not None and len(mu):
            cut.mu.append(mu[:keep])
            cut.sigma.append(sigma[:keep])
    return cut


def attack_scores(
    stats: SuiteStats, attack: str, oracle: SuiteStats | None, score_eos: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(member scores on forget, non-member scores on holdout), loss-like orientation."""
    out = []
    for part, texts, ref in (
        (stats.forget, stats.forget_answers, oracle and oracle.forget),
        (stats.holdout, stats.holdout_answers, oracle and oracle.holdout),
    ):
        part = _answer_text(part, score_eos)
        if attack == "reference":
            if ref is None:
                raise ValueError("the reference attack needs the oracle's statistics")
            ref = _answer_text(ref, score_eos)
            out.append(mia.scores("reference", part.logprobs, references=ref.logprobs))
        else:
            out.append(mia.scores(attack, part.logprobs, texts=texts, mu=part.mu, sigma=part.sigma))
    return out[0], out[1]


# --------------------------------------------------------------------------- summary
def _utility_parts(stats: SuiteStats) -> dict[str, float]:
    rouge = metrics.rouge_l_recall_many
    retain_tr = metrics.truth_ratio(stats.retain_para_nll, stats.retain_pert_nll)
    probe_tr = metrics.truth_ratio(stats.probe_nll, stats.probe_pert_nll)
    return {
        "retain_prob": float(metrics.probability(stats.retain_nll).mean()),
        "retain_rouge": float(rouge(stats.retain_gen, stats.retain_answers).mean()),
        "retain_truth": metrics.retain_truth_score(retain_tr),
        "probe_prob": float(
            metrics.normalized_probability(stats.probe_nll, stats.probe_pert_nll).mean()
        ),
        "probe_rouge": float(rouge(stats.probe_gen, stats.probe_answers).mean()),
        "probe_truth": metrics.retain_truth_score(probe_tr),
    }


def _utility_from_arrays(stats, rouge_r, rouge_p, r, p) -> float:
    retain_tr = metrics.truth_ratio(stats.retain_para_nll[r], stats.retain_pert_nll[r])
    probe_tr = metrics.truth_ratio(stats.probe_nll[p], stats.probe_pert_nll[p])
    parts = {
        "retain_prob": float(metrics.probability(stats.retain_nll[r]).mean()),
        "retain_rouge": float(rouge_r[r].mean()),
        "retain_truth": metrics.retain_truth_score(retain_tr),
        "probe_prob": float(
            metrics.normalized_probability(stats.probe_nll[p], stats.probe_pert_nll[p]).mean()
        ),
        "probe_rouge": float(rouge_p[p].mean()),
        "probe_truth": metrics.retain_truth_score(probe_tr),
    }
    return metrics.model_utility(parts)


def _two_level_bootstrap(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    groups_a: Sequence[object],
    groups_b: Sequence[object],
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Replicates of `statistic(idx_a, idx_b)`, resampling the clusters of two independent
    samples (e.g. forget and holdout authors, or retain authors and probes)."""
    rng = np.random.default_rng(seed)
    clusters_a, clusters_b = st.cluster_indices(groups_a), st.cluster_indices(groups_b)
    out = np.empty(n_boot)
    for b in range(n_boot):
        ia = np.concatenate(
            [clusters_a[i] for i in rng.integers(0, len(clusters_a), len(clusters_a))]
        )
        ib = np.concatenate(
            [clusters_b[i] for i in rng.integers(0, len(clusters_b), len(clusters_b))]
        )
        out[b] = statistic(ia, ib)
    return out


def summarize(
    stats: SuiteStats, oracle: SuiteStats, spec: EvalSpec | None = None, seed: int = 0
) -> dict[str, float]:
    """All scalar metrics of one model (keys documented in `METRIC_HELP`; `<key>_low/_high`
    are 95% author-level bootstrap intervals)."""
    spec = spec or EvalSpec()
    n_boot = spec.n_boot
    rouge = metrics.rouge_l_recall_many
    fv = fact_vectors(stats)
    utility_parts = _utility_parts(stats)
    tr, tr_oracle = forget_truth_ratios(stats), forget_truth_ratios(oracle)
    ks = metrics.forget_quality_test(tr, tr_oracle)
    forget_text = _answer_text(stats.forget, spec.score_eos)
    out: dict[str, float] = {
        "forget_fact_acc": _mean(fv["forget"]),
        "paraphrase_fact_acc": _mean(fv["paraphrase"]),
        "multihop_fact_acc": _mean(fv["multihop"]),
        "combined_forget_fact_acc": _mean(fv["combined_forget"]),
        "combined_retain_fact_acc": _mean(fv["combined_retain"]),
        "retain_fact_acc": _mean(fv["retain"]),
        "probe_fact_acc": _mean(fv["probe"]),
        "forget_value_rouge": _value_rouge(stats),
        "forget_quality": ks.pvalue,
        "forget_ks": ks.statistic,
        "forget_n": float(len(tr)),
        "tr_wilcoxon_p": st.paired_wilcoxon(np.log(tr), np.log(tr_oracle))
        if len(tr) == len(tr_oracle)
        else float("nan"),
        "model_utility": metrics.model_utility(utility_parts),
        **utility_parts,
        "forget_rouge": float(rouge(stats.forget_gen, stats.forget_answers).mean()),
        "paraphrase_rouge": float(rouge(stats.forget_para_gen, stats.forget_answers).mean()),
        "forget_prob": float(metrics.probability(stats.forget.avg_nll).mean()),
        "forget_truth": metrics.forget_truth_score(tr),
        "exact_memorization": float(
            np.mean([metrics.exact_memorization(c) for c in forget_text.correct])
        ),
        "extraction_strength": float(
            np.mean([metrics.extraction_strength(c) for c in forget_text.correct])
        ),
    }
    # ---- author-level confidence intervals
    authors = stats.forget_authors
    for key, vector in (
        ("forget_fact_acc", fv["forget"]),
        ("paraphrase_fact_acc", fv["paraphrase"]),
    ):
        reps = st.cluster_bootstrap(lambda i, v=vector: _mean(v[i]), authors, n_boot, seed)
        out[f"{key}_low"], out[f"{key}_high"] = st.percentile_interval(reps)
    same_questions = len(tr) == len(tr_oracle)
    if same_questions:
        reps = st.cluster_bootstrap(
            lambda i: metrics.forget_quality(tr[i], tr_oracle[i]), authors, n_boot, seed
        )
        out["forget_quality_low"], out["forget_quality_high"] = st.percentile_interval(reps)
    rouge_r = rouge(stats.retain_gen, stats.retain_answers)
    rouge_p = rouge(stats.probe_gen, stats.probe_answers)
    reps = _two_level_bootstrap(
        lambda r, p: _utility_from_arrays(stats, rouge_r, rouge_p, r, p),
        stats.retain_authors,
        list(range(len(stats.probe_gen))),
        n_boot,
        seed,
    )
    out["model_utility_low"], out["model_utility_high"] = st.percentile_interval(reps)
    # ---- membership inference
    oracle_aucs = {}
    for attack in ATTACKS:
        member, nonmember = attack_scores(stats, attack, oracle, spec.score_eos)
        auc = mia.mia_auc(member, nonmember)
        out[f"mia_{attack}_auc"] = auc
        out[f"mia_{attack}_tpr1"] = mia.tpr_at_fpr(member, nonmember, 0.01)
        if attack == HEADLINE_ATTACK:
            reps = _two_level_bootstrap(
                lambda a, b, m=member, n=nonmember: mia.mia_auc(m[a], n[b]),
                authors,
                stats.holdout_authors,
                n_boot,
                seed,
            )
            out["mia_auc"] = auc
            out["mia_auc_low"], out["mia_auc_high"] = st.percentile_interval(reps)
            o_member, o_nonmember = attack_scores(oracle, attack, oracle, spec.score_eos)
            oracle_aucs[attack] = mia.mia_auc(o_member, o_nonmember)
    oracle_auc = oracle_aucs[HEADLINE_ATTACK]
    # An oracle whose AUC is exactly 1 (tiny forget sets) leaves PrivLeak undefined: report NaN.
    out["privleak"] = mia.privleak(out["mia_auc"], oracle_auc) if oracle_auc < 1.0 else np.nan
    return out


def gap_significant(
    model: SuiteStats, reference: SuiteStats, probe_set: str, n_boot: int = 200, seed: int = 0
) -> tuple[float, float, float]:
    """Difference of fact accuracy (model - reference) on one probe set, with its 95% interval
    from an author-level paired bootstrap: (difference, low, high). The gap is significant when
    the interval excludes 0."""
    a, b = fact_vectors(model)[probe_set], fact_vectors(reference)[probe_set]
    groups = {
        "forget": model.forget_authors,
        "paraphrase": model.forget_authors,
        "multihop": model.multihop_authors,
        "combined_forget": model.combined_authors,
        "combined_retain": model.combined_authors,
        "retain": model.retain_authors,
        "probe": list(range(len(model.probe_gen))),
    }[probe_set]
    diff = _mean(a) - _mean(b)
    reps = st.cluster_bootstrap(lambda i: _mean(a[i]) - _mean(b[i]), groups, n_boot, seed)
    low, high = st.percentile_interval(reps)
    return diff, low, high


def roc_curve(
    stats: SuiteStats, oracle: SuiteStats, attack: str = HEADLINE_ATTACK, score_eos: bool = False
) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, auc) of detecting forget examples as members with one attack."""
    member, nonmember = attack_scores(stats, attack, oracle, score_eos)
    return mia.roc(member, nonmember)
