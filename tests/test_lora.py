"""LoRA (peft) as a switch for fine-tuning and unlearning: adapters train, then merge away."""

from __future__ import annotations

import torch

from lib.runner import RelearnSpec, Study
from lib.specs import DataSpec, LoraSpec, ModelSpec, TrainSpec
from lib.suite import EvalSpec


def test_lora_finetune_and_unlearn_merge_into_plain_weights() -> None:
    lora = LoraSpec(r=4, alpha=8)
    study = Study(
        ModelSpec("tiny-random"),
        DataSpec(n_authors=4, qa_per_author=4, forget_split="forget10"),
        TrainSpec(epochs=1, lr=1e-2, batch_size=8, lora=lora),
        TrainSpec(epochs=1, lr=1e-2, batch_size=4, lora=lora),
        EvalSpec(n_retain=4, n_probes=4, max_new_tokens=4),
        RelearnSpec(epochs=1),
    )
    base = study.load_base()
    target = study.load_checkpoint(study.target_spec)
    # merged checkpoint: plain Llama weights (no adapter modules), and they moved
    assert not any("lora" in name for name, _ in target.named_parameters())
    moved = [
        not torch.equal(a, b)
        for (name, a), (_, b) in zip(
            base.named_parameters(), target.named_parameters(), strict=True
        )
        if "proj" in name
    ]
    assert any(moved), "LoRA fine-tuning changed no projection weight"
    # embeddings are not LoRA targets: they must be untouched
    assert torch.equal(base.get_input_embeddings().weight, target.get_input_embeddings().weight)
    frame = study.sweep(["grad_diff"])
    assert frame.loc["grad_diff", "steps"] >= 1
    assert frame.loc["grad_diff", "flops"] > 0
