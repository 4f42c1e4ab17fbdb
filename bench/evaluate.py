"""Evaluation speed: the suite of one model, naive vs shared-prompt, in one run.

The naive baseline is the suite as first written: every candidate answer (answer, paraphrase,
5 perturbed answers) recomputes its question's prompt, and greedy generation runs Hugging
Face `generate`, keeping finished sequences in the batch until the longest one ends. The
current suite (`lib.benchmarks.tofu_suite.collect`) computes each prompt once, scores every
candidate on its KV cache, decodes from the same cache and drops a sequence at its EOS.

    python bench/evaluate.py                    # embedded model, default sizes (CPU: minutes)
    python bench/evaluate.py --model tiny-random --n-authors 10

Prints the wall time of each, the ratio, and the largest difference between their numbers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lib import models
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec, SuiteRows, SuiteStats, collect, summarize
from lib.evaluate import TokenCounter, avg_nll_many, generate, score_answers
from lib.specs import ModelSpec


def naive_collect(model, tokenizer, rows: SuiteRows, spec: EvalSpec, context: str = ""):
    """The first suite implementation: one prompt computation per candidate answer, and
    Hugging Face `generate` for every greedy answer (finished rows stay in the batch)."""
    count = TokenCounter()
    kw = {"context": context, "batch_size": spec.batch_size, "counter": count}
    gen_kw = {**kw, "max_new_tokens": spec.max_new_tokens}
    forget, retain, probes = rows.forget, rows.retain, rows.probes

    def questions(part, column="question"):
        return [r[column] for r in part]

    fq, rq, pq = questions(forget), questions(retain), questions(probes)
    stats = SuiteStats(
        forget=score_answers(
            model, tokenizer, fq, [q["answer"] for q in forget], vocab_stats=True, **kw
        ),
        forget_answers=[q["answer"] for q in forget],
        forget_values=[q["value"] for q in forget],
        forget_authors=[q["author"] for q in forget],
        forget_scored=[bool(q["value"]) and not q.get("value_shared", False) for q in forget],
        forget_para_nll=avg_nll_many(
            model, tokenizer, fq, [[q["paraphrased_answer"]] for q in forget], **kw
        )[:, 0],
        forget_pert_nll=avg_nll_many(
            model, tokenizer, fq, [q["perturbed_answers"] for q in forget], **kw
        ),
        forget_gen=generate(model, tokenizer, fq, **gen_kw),
        forget_para_gen=generate(
            model, tokenizer, questions(forget, "paraphrased_question"), **gen_kw
        ),
        multihop_values=[q["value"] for q in rows.multihop],
        multihop_authors=[q["author"] for q in rows.multihop],
        multihop_gen=generate(model, tokenizer, questions(rows.multihop), **gen_kw),
        combined_forget_values=[q["forget_value"] for q in rows.combined],
        combined_retain_values=[q["retain_value"] for q in rows.combined],
        combined_authors=[q["forget_author"] for q in rows.combined],
        combined_gen=generate(model, tokenizer, questions(rows.combined), **gen_kw),
        holdout=score_answers(
            model,
            tokenizer,
            questions(rows.holdout),
            [q["answer"] for q in rows.holdout],
            vocab_stats=True,
            **kw,
        ),
        holdout_answers=[q["answer"] for q in rows.holdout],
        holdout_authors=[q["author"] for q in rows.holdout],
        retain_nll=score_answers(model, tokenizer, rq, [q["answer"] for q in retain], **kw).avg_nll,
        retain_para_nll=avg_nll_many(
            model, tokenizer, rq, [[q["paraphrased_answer"]] for q in retain], **kw
        )[:, 0],
        retain_pert_nll=avg_nll_many(
            model, tokenizer, rq, [q["perturbed_answers"] for q in retain], **kw
        ),
        retain_answers=[q["answer"] for q in retain],
        retain_values=[q["value"] for q in retain],
        retain_authors=[q["author"] for q in retain],
        retain_gen=generate(model, tokenizer, rq, **gen_kw),
        probe_nll=score_answers(model, tokenizer, pq, [p["answer"] for p in probes], **kw).avg_nll,
        probe_pert_nll=avg_nll_many(
            model, tokenizer, pq, [p["perturbed_answers"] for p in probes], **kw
        ),
        probe_answers=[p["answer"] for p in probes],
        probe_aliases=[[p["answer"], *p.get("aliases", [])] for p in probes],
        probe_gen=generate(model, tokenizer, pq, **gen_kw),
    )
    stats.eval_tokens = count.tokens
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--n-authors", type=int, default=40)
    parser.add_argument("--qa-per-author", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_spec = ModelSpec(args.model, dtype=args.dtype)
    data = tofu.DataSpec(args.n_authors, args.qa_per_author)
    evaluation = EvalSpec()
    rows = tofu.suite_rows(model_spec, data, evaluation)
    model, tokenizer = models.load_model(model_spec.name, model_spec.dtype, model_spec.device)
    timings, results = {}, {}
    for name, fn in (("naive", naive_collect), ("shared prompt", collect)):
        start = time.perf_counter()
        results[name] = fn(model, tokenizer, rows, evaluation)
        timings[name] = time.perf_counter() - start
    naive, fast = results["naive"], results["shared prompt"]
    nll_diff = max(
        float(np.max(np.abs(a - b)))
        for a, b in (
            (naive.forget_pert_nll, fast.forget_pert_nll),
            (naive.retain_pert_nll, fast.retain_pert_nll),
            (naive.probe_pert_nll, fast.probe_pert_nll),
            (naive.forget.avg_nll, fast.forget.avg_nll),
            (naive.holdout.avg_nll, fast.holdout.avg_nll),
        )
    )
    same_gen = sum(
        a == b
        for x, y in (
            (naive.forget_gen, fast.forget_gen),
            (naive.retain_gen, fast.retain_gen),
            (naive.probe_gen, fast.probe_gen),
            (naive.forget_para_gen, fast.forget_para_gen),
            (naive.multihop_gen, fast.multihop_gen),
            (naive.combined_gen, fast.combined_gen),
        )
        for a, b in zip(x, y, strict=True)
    )
    n_gen = sum(
        len(x)
        for x in (
            fast.forget_gen,
            fast.retain_gen,
            fast.probe_gen,
            fast.forget_para_gen,
            fast.multihop_gen,
            fast.combined_gen,
        )
    )
    metric_diff = max(
        abs(summarize(naive, naive)[k] - summarize(fast, fast)[k])
        for k in ("model_utility", "forget_fact_acc", "forget_rouge", "forget_truth", "mia_auc")
    )
    device = next(model.parameters()).device
    print(
        f"model {args.model} ({model.compute_dtype}, {device}, {torch.get_num_threads()} threads), "
        f"{len(rows.forget)} forget / {len(rows.retain)} retain / {len(rows.probes)} probes"
    )
    print(f"{'evaluation':<16}{'seconds':>10}{'tokens':>12}")
    for name in timings:
        print(f"{name:<16}{timings[name]:>10.1f}{results[name].eval_tokens:>12,}")
    print(f"speed-up: {timings['naive'] / timings['shared prompt']:.2f}x")
    print(
        f"largest |difference| of a mean NLL: {nll_diff:.2e} nats; "
        f"of a summary metric: {metric_diff:.2e}"
    )
    print(f"identical greedy answers: {same_gen}/{n_gen}")


if __name__ == "__main__":
    main()
