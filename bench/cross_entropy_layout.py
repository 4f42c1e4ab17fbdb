"""Token NLL of a causal LM: cross-entropy on the transposed (B, V, T) layout (the first
implementation of `lib.methods.losses.token_nll`) vs one row per position ((B*T, V), now).

    python bench/cross_entropy_layout.py                         # SmolLM2 vocabulary, CPU
    python bench/cross_entropy_layout.py --batch 1 --tokens 256 --repeats 5

Times forward + backward of the loss alone on random logits of the model's shape (the shifted
view, as the losses take it), and prints the largest difference between the two results.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from lib.methods.losses import token_nll


def transposed_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The baseline: `F.cross_entropy(logits.transpose(1, 2), ...)` on the shifted view."""
    logits, labels = logits[:, :-1, :], labels[:, 1:]
    mask = labels != -100
    nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
    return nll * mask


def timed(
    fn, logits: torch.Tensor, labels: torch.Tensor, repeats: int
) -> tuple[float, torch.Tensor]:
    best = float("inf")
    out = None
    for _ in range(repeats):
        x = logits.detach().clone().requires_grad_(True)
        start = time.perf_counter()
        out = fn(x, labels)
        out = out[0] if isinstance(out, tuple) else out
        out.sum().backward()
        best = min(best, time.perf_counter() - start)
    return best, out.detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=49152)  # SmolLM2
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(args.batch, args.tokens, args.vocab, generator=generator)
    labels = torch.randint(0, args.vocab, (args.batch, args.tokens), generator=generator)
    labels[:, 0] = -100
    naive, a = timed(transposed_nll, logits, labels, args.repeats)
    fast, b = timed(token_nll, logits, labels, args.repeats)
    shape = f"{args.batch} x {args.tokens} x {args.vocab}"
    print(f"{'implementation':<26}{'seconds (fwd+bwd)':>20}")
    print(f"{'transposed (B, V, T)':<26}{naive:>20.3f}")
    print(f"{'flat (B*T, V)':<26}{fast:>20.3f}")
    worst = float((a - b).abs().max())
    print(f"speed-up {naive / fast:.2f}x on logits {shape}; max |difference| {worst:.2e}")


if __name__ == "__main__":
    main()
