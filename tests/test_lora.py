"""LoRA (peft) as a switch for fine-tuning and unlearning: adapters train, then merge away."""

from __future__ import annotations

import torch

from lib import runner
from lib.benchmarks import tofu
from lib.benchmarks.tofu_suite import EvalSpec
from lib.specs import LoraSpec, ModelSpec, TrainSpec


def test_lora_finetune_and_unlearn_merge_into_plain_weights() -> None:
    lora = LoraSpec(r=4, alpha=8)
    model = ModelSpec("tiny-random")
    data = tofu.DataSpec(n_authors=4, qa_per_author=4, forget_split="forget10")
    target = tofu.FinetuneSpec(
        model, data, "full", TrainSpec(epochs=1, lr=1e-2, batch_size=8, lora=lora)
    )
    base = tofu.load_base(model)
    tuned = tofu.load_finetuned(target)
    # merged checkpoint: plain Llama weights (no adapter modules), and they moved
    assert not any("lora" in name for name, _ in tuned.named_parameters())
    moved = [
        not torch.equal(a, b)
        for (name, a), (_, b) in zip(base.named_parameters(), tuned.named_parameters(), strict=True)
        if "proj" in name
    ]
    assert any(moved), "LoRA fine-tuning changed no projection weight"
    # embeddings are not LoRA targets: they must be untouched
    assert torch.equal(base.get_input_embeddings().weight, tuned.get_input_embeddings().weight)
    (spec,) = tofu.unlearn_specs(
        target,
        ["grad_diff"],
        TrainSpec(epochs=1, lr=1e-2, batch_size=4, lora=lora),
        EvalSpec(n_retain=4, n_probes=4, max_new_tokens=4),
        tofu.RelearnSpec(epochs=1),
    )
    result = runner.run(spec)
    assert result.cost["steps"] >= 1 and result.cost["flops"] > 0


def test_attach_lora_on_chosen_layers_only(tiny_model) -> None:
    import pytest

    from lib.train import attach_lora

    wrapped = attach_lora(tiny_model, LoraSpec(r=2, alpha=4), layers=[1])
    adapted = {
        n.split(".layers.")[1].split(".")[0] for n, _ in wrapped.named_parameters() if "lora_" in n
    }
    assert adapted == {"1"}
    trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".layers.1." in n for n in trainable)
    with pytest.raises(ValueError, match="layers"):
        attach_lora(tiny_model, LoraSpec(r=2, alpha=4), layers=[2])
