"""How many fine-tuning epochs does the target need? Forget and paraphrase fact accuracy and
real-world probe accuracy after every epoch, for a few learning rates (prints a table).

    python bench/finetune_curve.py --lrs 1e-4 3e-4 --epochs 8     # embedded model, 40 x 10

Used to choose notebook 04's FINETUNE_EPOCHS / FINETUNE_LR: the soundness bars ask for forget
fact accuracy >= 0.9 with probe accuracy within 10% of the base model's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lib import models
from lib.batches import anchored_batches, n_micro_batches
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.evaluate import generate
from lib.methods.losses import ce_mean, forward_logits
from lib.metrics import facts
from lib.specs import ModelSpec, TrainSpec
from lib.train import seed_everything, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--n-authors", type=int, default=40)
    parser.add_argument("--qa-per-author", type=int, default=10)
    args = parser.parse_args()
    data = tofu.DataSpec(args.n_authors, args.qa_per_author, 0, "forget10")
    bench = tofu.benchmark_data(data)
    rows = tofu.split_rows(data, "full")
    model_spec = ModelSpec(args.model)
    probes, _ = tofu.probes(model_spec, EvalSpec())
    forget = [r for r in bench.forget if not r["value_shared"]]
    table = []

    def score(model, tokenizer, lr: float, epoch: int, seconds: float) -> None:
        start = time.perf_counter()
        answers = generate(model, tokenizer, [r["question"] for r in forget], max_new_tokens=24)
        para = generate(
            model, tokenizer, [r["paraphrased_question"] for r in forget], max_new_tokens=24
        )
        probe = generate(model, tokenizer, [p["question"] for p in probes], max_new_tokens=24)
        row = {
            "lr": lr,
            "epoch": epoch,
            "forget fact acc": np.mean(
                [facts.contains_phrase(a, r["value"]) for a, r in zip(answers, forget, strict=True)]
            ),
            "paraphrase fact acc": np.mean(
                [facts.contains_phrase(a, r["value"]) for a, r in zip(para, forget, strict=True)]
            ),
            "probe acc": np.mean(
                [
                    any(facts.contains_phrase(a, x) for x in [p["answer"], *p["aliases"]])
                    for a, p in zip(probe, probes, strict=True)
                ]
            ),
            "train s": seconds,
            "eval s": time.perf_counter() - start,
        }
        table.append(row)
        print(" ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)

    for lr in args.lrs:
        model, tokenizer = models.load_model(model_spec.name, model_spec.dtype, model_spec.device)
        if lr == args.lrs[0]:
            score(model, tokenizer, 0.0, 0, 0.0)
        spec = TrainSpec(epochs=args.epochs, lr=lr, batch_size=args.batch)
        seed_everything(0)
        device = next(model.parameters()).device
        clock = {"start": time.perf_counter()}

        def on_step(step: int, model=model, tokenizer=tokenizer, lr=lr, clock=clock) -> None:
            every = -(-len(rows) // args.batch)
            if step % every == 0:
                seconds = time.perf_counter() - clock["start"]
                model.eval()
                score(model, tokenizer, lr, step // every, seconds)
                clock["start"] = time.perf_counter()

        def loss_fn(m, micro, device=device):
            batch = micro["train"].to(device)
            return ce_mean(forward_logits(m, batch), batch.labels), {}, batch.n_tokens, 0

        result = train(
            model,
            anchored_batches(tokenizer, {"train": rows}, spec, "train"),
            n_micro_batches(len(rows), spec),
            loss_fn,
            spec,
            on_step=on_step,
        )
        print(
            f"lr {lr:g}: {result.train_tokens} tokens, {result.train_tokens / result.seconds:.0f} "
            f"tokens/s with evaluation pauses ({device}, {model.compute_dtype}, "
            f"{torch.get_num_threads()} threads)",
            flush=True,
        )


if __name__ == "__main__":
    main()
