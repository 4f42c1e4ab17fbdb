"""Cost of building the empirical Fisher F on P and applying F^p, against one gradient-ascent step.

    python bench/fisher.py [--model smollm2-135m] [--device cpu|cuda] [--dtype float32|bfloat16]
                           [--k 1] [--m 16 64 256] [--seq-len 64] [--chunk-size 8]

For each m: the baseline is ONE gradient-ascent step on the same m sequences (forward + backward
of all parameters in micro-batches of --chunk-size, then an AdamW update: what a first-order
unlearning method pays per step); building F = per-example gradients on P (vmap) + the m x m
Gram matrix + its eigh; then one product F^-1 v and F^(-1/4) v (Gram form) and, for m <= 64,
F^-1 v through the streaming WoodFisher recursion. The ratio build/GA is the issue's goal
(<= 5 at m = 64). Sequences are random token ids of --seq-len tokens (the cost does not depend
on the content). Timings are single runs after a warm-up on this machine; rerun on an idle one.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from lib.algorithms.fisher import EmpiricalFisher, WoodFisher
from lib.algorithms.per_sample import per_sample_gradients, select_parameters, sequence_losses
from lib.models import load_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, object]:
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def ga_step(model, optimizer, ids: torch.Tensor, chunk: int) -> None:
    """One gradient-ascent step on all of `ids`: accumulate -loss over micro-batches, AdamW."""
    optimizer.zero_grad(set_to_none=True)
    for start in range(0, ids.shape[0], chunk):
        batch = ids[start : start + chunk]
        loss = sequence_losses(model(input_ids=batch, use_cache=False).logits, batch).sum()
        (-loss / ids.shape[0]).backward()
    optimizer.step()


def measure(m, model, trainable, optimizer, names, vocab, gen, device, args) -> str:
    """One table row: GA step, building F, products, for m sequences."""
    ids = torch.randint(3, vocab, (m, args.seq_len), generator=gen).to(device)
    t_ga, _ = timed(lambda: ga_step(trainable, optimizer, ids, args.chunk_size), device)
    t_ps, (G, _) = timed(
        lambda: per_sample_gradients(model, ids, params=names, chunk_size=args.chunk_size),
        device,
    )
    fisher = EmpiricalFisher(G, damping=1e-4)
    t_fact, _ = timed(fisher.factorize, device)
    v = torch.randn(G.shape[1], generator=gen).to(device)
    t_inv, _ = timed(lambda: fisher.power(v, -1.0), device)
    t_q, _ = timed(lambda: fisher.power(v, -0.25), device)
    if m <= args.woodfisher_max_m:

        def wood():
            w = WoodFisher(1e-4, G.shape[0])
            for row in G:
                w.add(row)
            return w.inverse(v)

        t_wood = f"{timed(wood, device)[0]:10.2f}"
    else:
        t_wood = f"{'-':>10}"
    build = t_ps + t_fact
    return (
        f"{m:>5} {t_ga:10.2f} {t_ps:12.2f} {t_fact:11.2f} {build:10.2f} "
        f"{build / t_ga:9.2f} {t_inv:9.3f} {t_q:10.3f} {t_wood} "
        f"{G.numel() * 4 / 2**30:6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--scope", default="last_k", choices=["last_k", "all"])
    parser.add_argument("--k", type=int, default=1, help="last k decoder blocks (+ final norm)")
    parser.add_argument("--m", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--woodfisher-max-m", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    device = next(model.parameters()).device
    names = select_parameters(model, args.scope, k=args.k)
    trainable = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(trainable.parameters(), lr=1e-5)
    gen = torch.Generator().manual_seed(0)
    vocab = len(tokenizer)

    # Warm-up (first-call allocations, vmap tracing) outside the timings.
    warm = torch.randint(3, vocab, (2, args.seq_len), generator=gen).to(device)
    ga_step(trainable, optimizer, warm, args.chunk_size)
    per_sample_gradients(model, warm, params=names, chunk_size=args.chunk_size)

    n_p = sum(p.numel() for n, p in model.named_parameters() if n in set(names))
    print(
        f"model={args.model} device={device} dtype={args.dtype} P={args.scope}"
        f"{'' if args.scope == 'all' else f' k={args.k}'} |P|={n_p:,} seq_len={args.seq_len} "
        f"chunk={args.chunk_size} threads={torch.get_num_threads()}"
    )
    header = (
        f"{'m':>5} {'GA step s':>10} {'per-sample s':>12} {'gram+eigh s':>11} "
        f"{'build F s':>10} {'build/GA':>9} {'F^-1 v s':>9} {'F^-1/4 v s':>10} "
        f"{'WoodF^-1 s':>10} {'G GiB':>6}"
    )
    print(header)
    print("-" * len(header))
    for m in args.m:
        print(measure(m, model, trainable, optimizer, names, vocab, gen, device, args), flush=True)


if __name__ == "__main__":
    main()
