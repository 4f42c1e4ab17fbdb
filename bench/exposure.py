"""Exact exposure per canary: the pruned digit-tree walk against brute force over the same space.

    python bench/exposure.py [--model smollm2-135m] [--device cpu|cuda] [--n-digits 4]
                             [--n-canaries 3] [--memorise-steps 15] [--no-naive]

For each canary ("<name>'s account PIN is <secret>", |R| = 10^n) on the base model (nothing
memorised: little can be pruned) and after fine-tuning on the canaries for --memorise-steps
AdamW steps (memorised: most subtrees are pruned): rank and exposure from the walk, its node
count and forward passes, its time, and the time of two brute-force baselines over the whole
space: scoring every candidate over a shared prefix cache (`score_secrets`) and the naive one
(every full canary from scratch, `use_cache=False`). Each row checks that all three ranks agree.
Timings are single runs on this machine (rerun on an idle one); float32 by default.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lib.algorithms.per_sample import sequence_losses
from lib.algorithms.secret_rank import score_secrets, secret_format, secret_rank
from lib.metrics.exposure import rank_from_scores
from lib.models import load_model

NAMES = ("Ann Lee", "Marek Novak", "Lucia Ferreira", "Tomas Berg", "Ines Duarte", "Omar Haddad")


def memorise(model, tokenizer, texts: list[str], steps: int, lr: float) -> None:
    batch = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
    ids = batch["input_ids"].to(next(model.parameters()).device)
    labels = ids.masked_fill(batch["attention_mask"].to(ids.device) == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        sequence_losses(model(input_ids=ids).logits, labels).sum().backward()
        optimizer.step()
    model.eval()


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def measure(model, tokenizer, prefix: str, secret: str, phase: str, device, args) -> str:
    """One table row: the walk, the cached brute force and the naive brute force."""
    fmt = secret_format(tokenizer, prefix, len(secret))
    space = np.arange(fmt.space_size)
    t_walk, result = timed(
        lambda: secret_rank(
            model, fmt, secret, batch_size=args.batch_size, max_nodes=args.max_nodes
        ),
        device,
    )
    t_brute, scores = timed(
        lambda: score_secrets(model, fmt, space, batch_size=args.batch_size), device
    )
    brute_rank = rank_from_scores(scores, fmt.code(secret))
    naive_rank = None
    t_naive = float("nan")
    if not args.no_naive:
        t_naive, naive_scores = timed(
            lambda: score_secrets(model, fmt, space, batch_size=args.batch_size, use_cache=False),
            device,
        )
        naive_rank = rank_from_scores(naive_scores, fmt.code(secret))
    ok = result.rank == brute_rank and naive_rank in (None, brute_rank)
    suffix = "" if ok else f"  RANKS DIFFER (brute {brute_rank}, naive {naive_rank})"
    return (
        f"{phase:>9} {secret:>7} {result.rank!s:>6} {result.exposure:8.2f} "
        f"{result.nodes_expanded:>6} {result.forward_passes:>6} {t_walk:7.2f} "
        f"{t_brute:8.2f} {t_naive:8.2f} {t_brute / t_walk:10.1f} "
        f"{t_naive / t_walk:10.1f}{suffix}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--n-digits", type=int, default=4)
    parser.add_argument("--n-canaries", type=int, default=3)
    parser.add_argument("--memorise-steps", type=int, default=15)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-nodes", type=int, default=200_000)
    parser.add_argument("--no-naive", action="store_true", help="skip the from-scratch baseline")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer = load_model(args.model, dtype=args.dtype, device=args.device)
    device = next(model.parameters()).device
    rng = np.random.default_rng(0)
    n = args.n_digits
    secrets = [f"{int(x):0{n}d}" for x in rng.integers(0, 10**n, size=args.n_canaries)]
    prefixes = [f"{NAMES[i % len(NAMES)]}'s account PIN is " for i in range(args.n_canaries)]
    print(
        f"model={args.model} device={device} dtype={args.dtype} |R|=10^{n} "
        f"batch={args.batch_size} threads={torch.get_num_threads()}"
    )
    header = (
        f"{'phase':>9} {'secret':>7} {'rank':>6} {'exposure':>8} {'nodes':>6} {'passes':>6} "
        f"{'walk s':>7} {'brute s':>8} {'naive s':>8} {'brute/walk':>10} {'naive/walk':>10}"
    )
    print(header)
    print("-" * len(header))
    for phase in ("base", "memorised"):
        if phase == "memorised":
            texts = [p + s for p, s in zip(prefixes, secrets, strict=True)]
            memorise(model, tokenizer, texts, args.memorise_steps, args.lr)
        for prefix, secret in zip(prefixes, secrets, strict=True):
            print(measure(model, tokenizer, prefix, secret, phase, device, args), flush=True)


if __name__ == "__main__":
    main()
