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
from lib.benchmarks.tofu_suite import EvalSpec, SuiteStats, collect, retain_subset, summarize
from lib.evaluate import TokenCounter, avg_nll_many, generate, score_answers
from lib.specs import ModelSpec


def naive_collect(model, tokenizer, forget, multihop, retain, holdout, probes, spec, context=""):
    """The first suite implementation: one prompt computation per candidate answer."""
    count = TokenCounter()
    kw = {"context": context, "batch_size": spec.batch_size, "counter": count}
    gen_kw = {**kw, "max_new_tokens": spec.max_new_tokens}
    fq = [q["question"] for q in forget]
    rq = [q["question"] for q in retain]
    pq = [p["question"] for p in probes]
    stats = SuiteStats(
        forget=score_answers(
            model, tokenizer, fq, [q["answer"] for q in forget], vocab_stats=True, **kw
        ),
        forget_answers=[q["answer"] for q in forget],
        forget_para_nll=avg_nll_many(
            model, tokenizer, fq, [[q["paraphrased_answer"]] for q in forget], **kw
        )[:, 0],
        forget_pert_nll=avg_nll_many(
            model, tokenizer, fq, [q["perturbed_answers"] for q in forget], **kw
        ),
        forget_gen=generate(model, tokenizer, fq, **gen_kw),
        forget_para_gen=generate(
            model, tokenizer, [q["paraphrased_question"] for q in forget], **gen_kw
        ),
        multihop_answers=[q["answer"] for q in multihop],
        multihop_gen=generate(model, tokenizer, [q["question"] for q in multihop], **gen_kw),
        holdout=score_answers(
            model,
            tokenizer,
            [q["question"] for q in holdout],
            [q["answer"] for q in holdout],
            vocab_stats=True,
            **kw,
        ),
        holdout_answers=[q["answer"] for q in holdout],
        retain_nll=score_answers(model, tokenizer, rq, [q["answer"] for q in retain], **kw).avg_nll,
        retain_para_nll=avg_nll_many(
            model, tokenizer, rq, [[q["paraphrased_answer"]] for q in retain], **kw
        )[:, 0],
        retain_pert_nll=avg_nll_many(
            model, tokenizer, rq, [q["perturbed_answers"] for q in retain], **kw
        ),
        retain_answers=[q["answer"] for q in retain],
        retain_gen=generate(model, tokenizer, rq, **gen_kw),
        probe_nll=score_answers(model, tokenizer, pq, [p["answer"] for p in probes], **kw).avg_nll,
        probe_pert_nll=avg_nll_many(
            model, tokenizer, pq, [p["perturbed_answers"] for p in probes], **kw
        ),
        probe_answers=[p["answer"] for p in probes],
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
    bench = tofu.benchmark_data(data)
    model, tokenizer = models.load_model(model_spec.name, model_spec.dtype, model_spec.device)
    rows = (
        bench.forget,
        bench.multihop,
        retain_subset(bench.retain, evaluation.n_retain),
        bench.holdout,
        tofu.probes(model_spec, evaluation)[0],
    )
    timings, results = {}, {}
    for name, fn in (("naive", naive_collect), ("shared prompt", collect)):
        start = time.perf_counter()
        results[name] = fn(model, tokenizer, *rows, evaluation)
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
        )
    )
    metric_diff = max(
        abs(summarize(naive, naive)[k] - summarize(fast, fast)[k])
        for k in ("model_utility", "forget_rouge", "forget_truth", "mia_auc")
    )
    device = next(model.parameters()).device
    print(
        f"model {args.model} ({model.compute_dtype}, {device}, {torch.get_num_threads()} threads), "
        f"{len(bench.forget)} forget / {evaluation.n_retain} retain / {len(rows[4])} probes"
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
