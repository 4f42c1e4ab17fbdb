"""Measurements behind the depth-aware RMU, the saliency mask and the quantization attack.

On the embedded model (SmolLM2-135M-Instruct, 30 blocks) and the forget split of the default
benchmark (40 authors x 10 QA: 4 authors, 40 QA):

1. hidden-state norms at several depths (mean L2 norm of block outputs over answer tokens,
   the quantity RMU's relative steering scales by), next to RMU's absolute default |c| = 2;
2. the SalUn saliency pass (forward+backward over the forget QA) and the global top-50% mask:
   exact sampled bracket (`lib.methods.localized.top_fraction_masks`) vs the naive baseline
   (concatenate all saliencies, stable sort), timed in one run, with the ratio and a check
   that both keep the same weights;
3. 8- and 4-bit RTN fake quantization (`lib.attacks.fake_quantize`): relative weight error of
   the quantized layers and the change of the mean answer NLL (nats/token) on the forget QA.

    python bench/methods_probes.py                 # embedded model, 1 thread (CPU: ~1-2 min)
    python bench/methods_probes.py --threads 8 --dtype auto

Prints one table per part. Timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lib import models
from lib.attacks import fake_quantize
from lib.batches import encode_rows
from lib.data import build_benchmark
from lib.methods.localized import saliency, top_fraction_masks
from lib.methods.losses import forward_logits, mean_nll
from lib.methods.representation import activation_norm, decoder_layers, layer_at_fraction
from lib.specs import TrainSpec


def naive_global_masks(scores: dict[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """Baseline: concatenate every saliency and stable-sort it (SalUn's reference approach)."""
    flat = torch.cat([s.flatten() for s in scores.values()])
    k = int(math.floor(fraction * flat.numel() + 0.5))
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    keep[torch.sort(-flat, stable=True).indices[:k]] = True
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start : start + s.numel()].view(s.shape)
        start += s.numel()
    return out


@torch.no_grad()
def answer_nll(model, tokenizer, rows, batch_size: int, max_length: int) -> float:
    """Mean over QA of the per-token answer NLL (nats/token)."""
    values = []
    for start in range(0, len(rows), batch_size):
        batch = encode_rows(tokenizer, rows[start : start + batch_size], max_length)
        with models.autocast(model):
            values.append(mean_nll(forward_logits(model, batch), batch.labels))
    return float(torch.cat(values).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=models.EMBEDDED)
    parser.add_argument("--dtype", default="auto", help="compute dtype of the saliency pass")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-authors", type=int, default=40)
    parser.add_argument("--qa-per-author", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, tokenizer = models.load_model(args.model, dtype=args.dtype, device="cpu")
    compute = model.compute_dtype
    bench = build_benchmark(n_authors=args.n_authors, qa_per_author=args.qa_per_author)
    rows = [q.to_dict() for q in bench.records("forget10")]
    spec = TrainSpec(batch_size=args.batch_size, max_length=args.max_length)
    n_layers = len(decoder_layers(model))
    width = model.config.hidden_size
    print(f"model {args.model}: {n_layers} blocks, width {width}, {len(rows)} forget QA")
    print(f"compute dtype {compute}, {args.threads} thread(s)\n")

    # 1. hidden-state norms (float32 compute: the quantity itself, not its bf16 rounding)
    model.compute_dtype = torch.float32
    wmdp = layer_at_fraction(7 / 32, n_layers)
    depths = sorted({0, 3, 7, wmdp, n_layers // 2, (3 * n_layers) // 4, n_layers - 1})
    print("1. mean L2 norm of block outputs on forget answer tokens (float32)")
    print(f"{'block':>5} {'depth':>6} {'norm':>9} {'norm/sqrt(d)':>13} {'|c|=2 / norm':>13}")
    for layer in depths:
        norm = activation_norm(model, tokenizer, rows, layer, spec, "answer")
        tag = "  <- layer_fraction 7/32 (WMDP)" if layer == wmdp else ""
        print(
            f"{layer:>5} {layer / n_layers:>6.3f} {norm:>9.2f} {norm / math.sqrt(width):>13.3f} "
            f"{2.0 / norm:>13.4f}{tag}"
        )

    # 2. saliency pass and mask
    model.compute_dtype = compute
    start = time.perf_counter()
    scores, tokens = saliency(model, tokenizer, rows, args.batch_size, args.max_length)
    pass_s = time.perf_counter() - start
    n = sum(s.numel() for s in scores.values())
    start = time.perf_counter()
    fast = top_fraction_masks(scores, 0.5)
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    naive = naive_global_masks(scores, 0.5)
    naive_s = time.perf_counter() - start
    same = all(torch.equal(fast[k], naive[k]) for k in scores)
    print(f"\n2. SalUn saliency on {len(rows)} QA ({tokens} tokens, {n / 1e6:.1f}M weights)")
    print(f"{'step':<38} {'seconds':>8}")
    print(f"{'saliency pass (fwd+bwd, ' + str(compute).split('.')[-1] + ')':<38} {pass_s:>8.2f}")
    print(f"{'mask top 50%, naive sort':<38} {naive_s:>8.2f}")
    print(f"{'mask top 50%, sampled bracket (ours)':<38} {fast_s:>8.2f}")
    print(f"ratio naive / ours {naive_s / fast_s:.2f}x; identical masks: {same}")
    zero = sum(int((s == 0).sum()) for s in scores.values())
    print(f"weights with zero saliency: {zero / n:.1%}")
    del scores, fast, naive

    # 3. quantization
    model.compute_dtype = torch.float32
    base_nll = answer_nll(model, tokenizer, rows, args.batch_size, args.max_length)
    print(f"\n3. RTN fake quantization (float32 compute); forget answer NLL {base_nll:.4f}")
    print(f"{'setting':<24} {'rel. weight err':>15} {'NLL':>8} {'dNLL':>8} {'seconds':>8}")
    for bits, group in ((8, None), (8, 128), (4, 128), (4, None)):
        start = time.perf_counter()
        quantized = fake_quantize(model, bits, group)
        seconds = time.perf_counter() - start
        nll = answer_nll(quantized, tokenizer, rows, args.batch_size, args.max_length)
        label = f"{bits}-bit, " + ("per channel" if group is None else f"group {group}")
        error = quantized.fake_quantization.relative_error
        print(f"{label:<24} {error:>15.4f} {nll:>8.4f} {nll - base_nll:>+8.4f} {seconds:>8.2f}")
        del quantized
    tied = model.lm_head.weight is model.get_input_embeddings().weight
    print(f"(embeddings and lm_head kept in float32; tied: {tied})")


if __name__ == "__main__":
    main()
