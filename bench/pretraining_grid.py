"""Notebook 02's grid and KL runs: the naive way vs what `lib.benchmarks.pretraining` does, in
one run.

1. Learning-rate x epochs grid: one run per (lr, epochs) cell (naive) vs one run per lr scored
   after each epoch through the method's epoch hook (`UnlearnContext.on_epoch`; constant
   learning rate, so the model after e epochs is the e-epoch run's model).
2. GA+KL: the frozen original model's outputs recomputed at every step (naive, memory budget 0)
   vs memoised per chunk across epochs and runs (`MemoizedReference`).

    python bench/pretraining_grid.py                          # tiny-random model, seconds
    python bench/pretraining_grid.py --model smollm2-135m     # the embedded model (CPU: minutes)

Prints wall time of each, the ratio, and the largest relative difference between their numbers.
Runs in a temporary cache (nothing is read from or written to data/cache).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--chunk-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["STUDY_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-pretraining-")

    from lib.benchmarks import pretraining as pt
    from lib.specs import ModelSpec, TrainSpec

    corpus = pt.CorpusSpec(
        domains=("prose",),
        n_forget=4,
        n_approximate=4,
        n_retain=4,
        n_general_retain=2,
        n_general_eval=3,
        max_chars=600,
        min_chars=300,
        chunk_tokens=args.chunk_tokens,
    )
    phase = TrainSpec(epochs=1.0, lr=1e-4, batch_size=4, max_length=args.chunk_tokens)
    spec = pt.PretrainSpec(ModelSpec(args.model), corpus, phase, phase)
    pt.final_checkpoint(spec, True)  # the target, trained once (not timed)
    evaluation = pt.EvalSpec(batch_size=8, n_retain=2, n_general=4, n_probes=0)
    grid_train = TrainSpec(
        epochs=args.epochs,
        lr=1e-4,
        batch_size=1,
        grad_accum=1,
        max_length=args.chunk_tokens,
        warmup_ratio=0.0,
        schedule="constant",
        weight_decay=0.0,
    )
    base = pt.UnlearnRunSpec(
        spec, "prose", "pt_ga_gd_in", grid_train, evaluation, sets=("forget", "general")
    )

    rows = []
    start = time.perf_counter()
    naive = {
        e: pt.run_unlearning(replace(base, train=replace(grid_train, epochs=e))).metrics
        for e in range(1, args.epochs + 1)
    }
    naive_s = time.perf_counter() - start
    start = time.perf_counter()
    prefix = pt.run_unlearning(replace(base, eval_epochs=tuple(range(1, args.epochs + 1))))
    prefix_s = time.perf_counter() - start
    worst = max(abs(p["forget_ppl"] / naive[p["epoch"]]["forget_ppl"] - 1) for p in prefix.points)
    rows.append(("grid: one run per cell", "one run per lr, hook", naive_s, prefix_s, worst))

    kl = replace(base, method="pt_ga_kl_in", train=replace(grid_train, epochs=2))
    saved = pt.REFERENCE_MEMORY_BYTES
    try:
        pt.REFERENCE_MEMORY_BYTES = 0  # nothing fits: every step recomputes the reference
        pt.REFERENCE_STORE.clear()
        start = time.perf_counter()
        recomputed = pt.run_unlearning(kl).metrics
        recompute_s = time.perf_counter() - start
    finally:
        pt.REFERENCE_MEMORY_BYTES = saved
    pt.REFERENCE_STORE.clear()
    start = time.perf_counter()
    memoised = pt.run_unlearning(kl).metrics
    memo_s = time.perf_counter() - start
    worst = abs(memoised["forget_ppl"] / recomputed["forget_ppl"] - 1)
    rows.append(("KL: reference recomputed", "reference memoised", recompute_s, memo_s, worst))

    print(f"model {args.model}, {args.epochs} epochs, chunks of {args.chunk_tokens} tokens")
    print(f"{'naive':<26}{'ours':<24}{'naive s':>9}{'ours s':>9}{'ratio':>7}{'max rel diff':>14}")
    for naive_name, ours_name, a, b, diff in rows:
        print(f"{naive_name:<26}{ours_name:<24}{a:>9.1f}{b:>9.1f}{a / b:>7.2f}{diff:>14.1e}")


if __name__ == "__main__":
    main()
