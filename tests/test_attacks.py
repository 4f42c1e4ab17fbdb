"""Quantization attack: RTN fake quantization lies on its grid, within half a step, 8-bit closer
than 4-bit, idempotent; on tiny-random only the decoder's linear layers change."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from lib.attacks import QuantizationReport, fake_quantize, quantize_weight


def _weight(out: int = 24, inp: int = 300, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=generator) * 0.05
    w[3, 7] = 0.9  # an outlier: its group gets a coarse grid
    w[5, :] = 0.0  # an all-zero row
    return w


def _groups(w: torch.Tensor, size: int) -> list[slice]:
    return [slice(start, min(start + size, w.shape[1])) for start in range(0, w.shape[1], size)]


def test_hand_example_rounds_half_to_even_on_the_symmetric_grid():
    w = torch.tensor([[7.0, 2.5, -3.5, 0.2], [0.0, 0.0, 0.0, 0.0]])
    q, scale = quantize_weight(w, bits=4, group_size=None)  # qmax = 7: scale = max|w| / 7 = 1
    assert scale.tolist() == [[1.0], [0.0]]
    assert q.tolist() == [[7.0, 2.0, -4.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    q, scale = quantize_weight(w, bits=4, group_size=2)  # groups (7, 2.5) and (-3.5, 0.2)
    assert scale[0].tolist() == pytest.approx([1.0, 0.5])
    assert q[0].tolist() == pytest.approx([7.0, 2.0, -3.5, 0.0])


@pytest.mark.parametrize("bits", [8, 4, 3])
@pytest.mark.parametrize("group_size", [128, 64, None])
def test_values_lie_on_the_grid_within_half_a_step(bits, group_size):
    w = _weight()
    q, scale = quantize_weight(w, bits, group_size)
    assert q.shape == w.shape and q.dtype == w.dtype
    qmax = 2 ** (bits - 1) - 1
    size = w.shape[1] if group_size is None else group_size
    groups = _groups(w, size)  # 300 columns: 128 + 128 + 44 (a shorter last group)
    assert scale.shape == (w.shape[0], len(groups))
    for g, cols in enumerate(groups):
        s = scale[:, g : g + 1]
        assert torch.allclose(s.squeeze(1), w[:, cols].abs().amax(dim=1) / qmax)
        nonzero = s.squeeze(1) > 0
        levels = q[nonzero][:, cols] / s[nonzero]
        assert torch.allclose(levels, levels.round(), atol=1e-4)  # integers ...
        assert levels.abs().max() <= qmax + 1e-4  # ... in [-qmax, qmax]
        error = (q[:, cols] - w[:, cols]).abs()
        assert (error <= s / 2 * (1 + 1e-5) + 1e-12).all()  # half a step
    assert q[5].eq(0).all() and not q.isnan().any()  # the zero row: scale 0, no NaN


def test_eight_bits_are_closer_than_four_and_per_group_closer_than_per_channel():
    w = _weight()

    def error(bits, group_size):
        return float((quantize_weight(w, bits, group_size)[0] - w).norm() / w.norm())

    assert error(8, 128) < error(4, 128) / 8  # 127 vs 7 levels per side: ~18x finer steps
    assert error(4, 128) < error(4, None)  # the outlier coarsens only its own group


@pytest.mark.parametrize(("bits", "group_size"), [(4, 128), (8, None)])
def test_quantization_is_idempotent(bits, group_size):
    q, scale = quantize_weight(_weight(seed=1), bits, group_size)
    q2, scale2 = quantize_weight(q, bits, group_size)
    assert torch.allclose(q2, q, rtol=1e-6, atol=0)  # (equal up to rounding of the scale)
    assert torch.allclose(scale2, scale, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("bits", "group_size", "match"),
    [(1, 128, "bits"), (16, 128, "bits"), (4.0, 128, "bits"), (4, 0, "group_size")],
)
def test_bad_arguments(bits, group_size, match):
    with pytest.raises(ValueError, match=match):
        quantize_weight(_weight(), bits, group_size)
    with pytest.raises(ValueError, match="2-D"):
        quantize_weight(torch.ones(3), 4)


def test_fake_quantize_changes_only_decoder_linears(tiny_model):
    before = {n: p.detach().clone() for n, p in tiny_model.named_parameters()}
    tiny_model.compute_dtype = torch.bfloat16
    quantized = fake_quantize(tiny_model, bits=4)
    assert quantized is not tiny_model and quantized.compute_dtype == torch.bfloat16
    assert all(torch.equal(p, before[n]) for n, p in tiny_model.named_parameters())  # a copy
    report = quantized.fake_quantization
    assert isinstance(report, QuantizationReport) and report.bits == 4
    linear = {
        f"{name}.weight"
        for name, m in quantized.named_modules()
        if isinstance(m, nn.Linear) and name != "lm_head"
    }
    assert len(linear) == 14  # 2 blocks x (q, k, v, o, gate, up, down)
    assert {f"{layer.name}.weight" for layer in report.layers} == linear
    for name, p in quantized.named_parameters():
        assert torch.equal(p, before[name]) != (name in linear), name  # embeddings, norms kept
    # The tied output layer shares the (unquantized) embedding matrix.
    assert quantized.lm_head.weight is quantized.model.embed_tokens.weight
    assert 0 < report.relative_error < 0.2
    assert all(0 < layer.relative_error < 0.2 for layer in report.layers)


def test_fake_quantize_in_place_and_untied_output_layer():
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    head = model.lm_head.weight.detach().clone()
    q_proj = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
    out = fake_quantize(model, bits=8, group_size=None, inplace=True)
    assert out is model
    assert torch.equal(model.lm_head.weight, head)  # the untied output layer stays float
    assert not torch.equal(model.model.layers[0].self_attn.q_proj.weight, q_proj)
    assert len(model.fake_quantization.layers) == 7
    with pytest.raises(ValueError, match="no nn.Linear"):
        fake_quantize(nn.Sequential(nn.ReLU()), bits=4)


def test_eight_bit_model_stays_closer_to_the_original(tiny_model):
    original = copy.deepcopy(tiny_model)
    ids = torch.randint(0, 1000, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = original(input_ids=ids).logits
        drift = {
            bits: float(
                (fake_quantize(tiny_model, bits)(input_ids=ids).logits - reference).abs().max()
            )
            for bits in (8, 4)
        }
    assert 0 < drift[8] < drift[4]
