"""Speed of the study's hot spots against their naive baselines, in one run; prints a table.

    python bench/bench_speed.py [--model smollm2-135m|tiny-random] [--repeats 3]

Rows: rank-based AUC vs sklearn's roc_auc_score (inside a 200-sample bootstrap); RMU's
early-stopped forward (up to layer 7) vs a full forward with all hidden states; answer-only
log-softmax vs full-sequence log-softmax in scoring; float32 vs bf16-autocast forward+backward
(the dtype policy's evidence: which is faster depends on the CPU's native bf16 support).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from lib.batches import encode_pairs
from lib.data import build_benchmark
from lib.methods.representation import hidden_at
from lib.metrics.mia import bootstrap_ci, mia_auc
from lib.models import autocast, load_model
from lib.prompting import format_prompt


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []

    rng = np.random.default_rng(0)
    member, nonmember = rng.normal(0, 1, 400), rng.normal(0.5, 1, 400)

    def sklearn_auc(m, n):
        return roc_auc_score(np.r_[np.zeros(len(m)), np.ones(len(n))], np.r_[m, n])

    rows.append(
        (
            "bootstrap AUC (200 resamples)",
            best_of(lambda: bootstrap_ci(sklearn_auc, member, nonmember, n_boot=200), args.repeats),
            best_of(lambda: bootstrap_ci(mia_auc, member, nonmember, n_boot=200), args.repeats),
        )
    )

    model, tok = load_model(args.model, dtype="float32")
    qas = build_benchmark(n_authors=4, qa_per_author=8).records("full")[:16]
    batch = encode_pairs(
        tok, [format_prompt(tok, q.question) for q in qas], [q.answer for q in qas]
    )
    layer = min(7, model.config.num_hidden_layers - 1)
    with torch.no_grad():
        rows.append(
            (
                f"RMU hidden state at layer {layer} (16 QA)",
                best_of(
                    lambda: model(
                        input_ids=batch.input_ids,
                        attention_mask=batch.attention_mask,
                        output_hidden_states=True,
                    ),
                    args.repeats,
                ),
                best_of(lambda: hidden_at(model, batch, layer), args.repeats),
            )
        )
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        mask = batch.labels[:, 1:] != -100
        rows.append(
            (
                "log-softmax for scoring (16 QA)",
                best_of(lambda: F.log_softmax(logits[:, :-1], dim=-1), args.repeats),
                best_of(
                    lambda: [
                        F.log_softmax(logits[i, :-1][mask[i]], dim=-1) for i in range(len(qas))
                    ],
                    args.repeats,
                ),
            )
        )

    def step(m):
        with autocast(m):  # bf16 compute over float32 weights when m.compute_dtype is bf16
            out = m(
                input_ids=batch.input_ids[:8],
                attention_mask=batch.attention_mask[:8],
                labels=batch.input_ids[:8],
            )
        out.loss.backward()
        m.zero_grad(set_to_none=True)

    bf16 = load_model(args.model, dtype="bfloat16")[0].train()
    fp32 = model.train()
    rows.append(
        (
            "forward+backward 8 QA: bf16 autocast (baseline) vs fp32",
            best_of(lambda: step(bf16), 1),
            best_of(lambda: step(fp32), args.repeats),
        )
    )

    print(f"model: {args.model}, threads: {torch.get_num_threads()}, best of {args.repeats}")
    print(f"{'what':52s} {'baseline s':>11s} {'ours s':>9s} {'speed-up':>9s}")
    for name, base, ours in rows:
        print(f"{name:52s} {base:11.4f} {ours:9.4f} {base / ours:8.1f}x")


if __name__ == "__main__":
    main()
