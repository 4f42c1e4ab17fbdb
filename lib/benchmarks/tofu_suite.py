"""The evaluation suite of the TOFU-style QA benchmark: per-example statistics of one model,
and their summary into numbers.

`collect(...)` runs the model (forward passes and greedy generations) on the forget, multi-hop,
retain, holdout and real-world probe rows and returns a `SuiteStats` (plain arrays and strings,
stored in the cache as JSON + npz); `summarize(stats, oracle)` is pure numpy and returns a flat
dict of metrics (direction stated per key in `METRIC_HELP`).

Rows are mappings with the benchmark's columns (`question`, `answer`, `paraphrased_question`,
`paraphrased_answer`, `perturbed_answers`; probes: `question`, `answer`, `perturbed_answers`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib import metrics, progress
from lib.evaluate import SharedPromptResult, TokenCounter, TokenScores, score_and_generate
from lib.metrics import mia
from lib.prompting import format_prompt

Row = Mapping[str, Any]

#: MIA attacks reported; `min_k` (40%) is the headline attack and the basis of PrivLeak (MUSE).
ATTACKS = ("loss", "zlib", "min_k", "min_k_plus_plus", "reference")
HEADLINE_ATTACK = "min_k"

METRIC_HELP = {
    "forget_quality": "KS p-value of forget truth ratios vs the retain oracle; higher = closer "
    "to retraining (1 = indistinguishable, < 0.05 = distinguishable)",
    "model_utility": "harmonic mean of retain and real-world probability, ROUGE-L and truth "
    "score; higher = more utility kept",
    "forget_rouge": "ROUGE-L recall of greedy answers to forget questions; lower = more forgotten",
    "paraphrase_rouge": "same on paraphrased forget questions; lower = more forgotten",
    "multihop_rouge": "same on multi-hop questions about forget authors; lower = more forgotten",
    "forget_prob": "mean probability of the true forget answers; lower = more forgotten",
    "forget_truth": "mean min(TR, 1/TR) on forget questions (TOFU forget truth ratio)",
    "exact_memorization": "teacher-forced argmax accuracy on forget answers; lower = less "
    "memorized",
    "extraction_strength": "fraction of a forget answer's suffix extractable; lower = less "
    "memorized",
    "mia_auc": "Min-K% (40%) AUC, forget (members) vs holdout; 0.5 = undetectable, 1 = "
    "clearly seen",
    "privleak": "MUSE PrivLeak vs the oracle's AUC, in %; ~0 ideal, < 0 under-unlearned, > 0 "
    "over-unlearned",
}


@dataclass(frozen=True)
class EvalSpec:
    """How much of the benchmark each model is evaluated on."""

    n_retain: int = 40  # retain QA evaluated (spread over authors); TOFU uses 300-400
    n_probes: int = 40  # real-world probes evaluated (of those the base model knows)
    max_new_tokens: int = 32  # greedy generation budget per answer
    batch_size: int = 16  # sequences per forward pass

    def __post_init__(self) -> None:
        for name in ("n_retain", "n_probes", "max_new_tokens", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"EvalSpec.{name} must be an integer >= 1, got {value!r}")


@dataclass
class SuiteStats:
    """Per-example statistics of one model on the benchmark (see `collect`)."""

    forget: TokenScores
    forget_answers: list[str]
    forget_para_nll: np.ndarray  # (n,) avg NLL of paraphrased answers
    forget_pert_nll: np.ndarray  # (n, 5) avg NLL of perturbed answers
    forget_gen: list[str]
    forget_para_gen: list[str]
    multihop_answers: list[str]
    multihop_gen: list[str]
    holdout: TokenScores
    holdout_answers: list[str]
    retain_nll: np.ndarray
    retain_para_nll: np.ndarray
    retain_pert_nll: np.ndarray
    retain_answers: list[str]
    retain_gen: list[str]
    probe_nll: np.ndarray
    probe_pert_nll: np.ndarray
    probe_answers: list[str]
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
    return scores.avg_nll.reshape(-1, k)


def collect(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    forget: Sequence[Row],
    multihop: Sequence[Row],
    retain: Sequence[Row],
    holdout: Sequence[Row],
    probes: Sequence[Row],
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

    def run(rows: Sequence[Row], question: str = "question", generate: bool = True, **cands):
        prompts = [format_prompt(tokenizer, r[question], context) for r in rows]
        if not prompts:
            return SharedPromptResult({name: TokenScores() for name in cands}, [])
        candidates = {name: [list(get(r)) for r in rows] for name, get in cands.items()}
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

    total = 2 * len(forget) + len(multihop) + len(holdout) + len(retain) + len(probes)
    with progress.bar(total, desc, unit="question") as bar:
        f = run(forget, answer=answer, paraphrased=paraphrased, perturbed=perturbed)
        bar.update(len(forget))
        f_para = run(forget, question="paraphrased_question")
        bar.update(len(forget))
        mh = run(multihop)
        bar.update(len(multihop))
        ho = run(holdout, generate=False, answer=answer)
        bar.update(len(holdout))
        re = run(retain, answer=answer, paraphrased=paraphrased, perturbed=perturbed)
        bar.update(len(retain))
        pr = run(probes, answer=answer, perturbed=perturbed)
        bar.update(len(probes))
    n_pert = len(forget[0]["perturbed_answers"]) if forget else 0
    stats = SuiteStats(
        forget=f.scores["answer"],
        forget_answers=[q["answer"] for q in forget],
        forget_para_nll=f.scores["paraphrased"].avg_nll,
        forget_pert_nll=_avg_nll(f.scores["perturbed"], n_pert),
        forget_gen=f.generations,
        forget_para_gen=f_para.generations,
        multihop_answers=[q["answer"] for q in multihop],
        multihop_gen=mh.generations,
        holdout=ho.scores["answer"],
        holdout_answers=[q["answer"] for q in holdout],
        retain_nll=re.scores["answer"].avg_nll,
        retain_para_nll=re.scores["paraphrased"].avg_nll,
        retain_pert_nll=_avg_nll(re.scores["perturbed"], len(retain[0]["perturbed_answers"])),
        retain_answers=[q["answer"] for q in retain],
        retain_gen=re.generations,
        probe_nll=pr.scores["answer"].avg_nll,
        probe_pert_nll=_avg_nll(pr.scores["perturbed"], len(probes[0]["perturbed_answers"])),
        probe_answers=[p["answer"] for p in probes],
        probe_gen=pr.generations,
    )
    stats.eval_tokens = count.tokens
    return stats


def forget_truth_ratios(stats: SuiteStats) -> np.ndarray:
    """Per-example TOFU truth ratio on the forget set (P_perturbed / P_paraphrased)."""
    return metrics.truth_ratio(stats.forget_para_nll, stats.forget_pert_nll)


def attack_scores(
    stats: SuiteStats, attack: str, oracle: SuiteStats | None
) -> tuple[np.ndarray, np.ndarray]:
    """(member scores on forget, non-member scores on holdout), loss-like orientation."""
    out = []
    for part, texts, ref in (
        (stats.forget, stats.forget_answers, oracle and oracle.forget),
        (stats.holdout, stats.holdout_answers, oracle and oracle.holdout),
    ):
        if attack == "reference":
            if ref is None:
                raise ValueError("the reference attack needs the oracle's statistics")
            out.append(mia.scores("reference", part.logprobs, references=ref.logprobs))
        else:
            out.append(mia.scores(attack, part.logprobs, texts=texts, mu=part.mu, sigma=part.sigma))
    return out[0], out[1]


def summarize(
    stats: SuiteStats, oracle: SuiteStats, n_boot: int = 200, seed: int = 0
) -> dict[str, float]:
    """All scalar metrics of one model (keys documented in `METRIC_HELP`)."""
    rouge = metrics.rouge_l_recall_many
    retain_tr = metrics.truth_ratio(stats.retain_para_nll, stats.retain_pert_nll)
    probe_tr = metrics.truth_ratio(stats.probe_nll, stats.probe_pert_nll)
    utility_parts = {
        "retain_prob": float(metrics.probability(stats.retain_nll).mean()),
        "retain_rouge": float(rouge(stats.retain_gen, stats.retain_answers).mean()),
        "retain_truth": metrics.retain_truth_score(retain_tr),
        "probe_prob": float(
            metrics.normalized_probability(stats.probe_nll, stats.probe_pert_nll).mean()
        ),
        "probe_rouge": float(rouge(stats.probe_gen, stats.probe_answers).mean()),
        "probe_truth": metrics.retain_truth_score(probe_tr),
    }
    tr = forget_truth_ratios(stats)
    ks = metrics.forget_quality_test(tr, forget_truth_ratios(oracle))
    out: dict[str, float] = {
        "forget_quality": ks.pvalue,
        "forget_ks": ks.statistic,
        "model_utility": metrics.model_utility(utility_parts),
        **utility_parts,
        "forget_rouge": float(rouge(stats.forget_gen, stats.forget_answers).mean()),
        "paraphrase_rouge": float(rouge(stats.forget_para_gen, stats.forget_answers).mean()),
        "multihop_rouge": float(rouge(stats.multihop_gen, stats.multihop_answers).mean())
        if stats.multihop_gen
        else float("nan"),
        "forget_prob": float(metrics.probability(stats.forget.avg_nll).mean()),
        "forget_truth": metrics.forget_truth_score(tr),
        "exact_memorization": float(
            np.mean([metrics.exact_memorization(c) for c in stats.forget.correct])
        ),
        "extraction_strength": float(
            np.mean([metrics.extraction_strength(c) for c in stats.forget.correct])
        ),
    }
    oracle_aucs = {}
    for attack in ATTACKS:
        member, nonmember = attack_scores(stats, attack, oracle)
        auc = mia.mia_auc(member, nonmember)
        out[f"mia_{attack}_auc"] = auc
        out[f"mia_{attack}_tpr1"] = mia.tpr_at_fpr(member, nonmember, 0.01)
        if attack == HEADLINE_ATTACK:
            lo, hi = mia.bootstrap_ci(mia.mia_auc, member, nonmember, n_boot=n_boot, seed=seed)
            out["mia_auc"], out["mia_auc_low"], out["mia_auc_high"] = auc, lo, hi
            o_member, o_nonmember = attack_scores(oracle, attack, oracle)
            oracle_aucs[attack] = mia.mia_auc(o_member, o_nonmember)
    oracle_auc = oracle_aucs[HEADLINE_ATTACK]
    # An oracle whose AUC is exactly 1 (tiny forget sets) leaves PrivLeak undefined: report NaN.
    out["privleak"] = mia.privleak(out["mia_auc"], oracle_auc) if oracle_auc < 1.0 else np.nan
    return out


def roc_curve(
    stats: SuiteStats, oracle: SuiteStats, attack: str = HEADLINE_ATTACK
) -> tuple[np.ndarray, np.ndarray, float]:
    """(fpr, tpr, auc) of detecting forget examples as members with one attack."""
    member, nonmember = attack_scores(stats, attack, oracle)
    return mia.roc(member, nonmember)
