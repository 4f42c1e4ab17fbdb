"""Tests of lib.models: device/dtype policy, tokenizer padding, tiny-random, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import PreTrainedTokenizerFast

from lib import cache, models, paths
from lib.evaluate import generate

# --------------------------------------------------------------------------- device and dtype


def test_resolve_device_explicit_names():
    assert models.resolve_device("cpu") == torch.device("cpu")
    # CUDA names are accepted as given (availability is checked when a tensor moves there).
    assert models.resolve_device("cuda") == torch.device("cuda")
    assert models.resolve_device("cuda:1") == torch.device("cuda", 1)


def test_resolve_device_auto_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("bad", ["gpu", "mps", "CPU", "", "tpu:0"])
def test_resolve_device_rejects_unknown_names(bad):
    with pytest.raises(ValueError, match="device must be"):
        models.resolve_device(bad)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16)],
)
def test_compute_dtype_explicit_names_taken_as_given(name, expected):
    assert models.compute_dtype(name, torch.device("cpu")) is expected
    assert models.compute_dtype(name, torch.device("cuda")) is expected


@pytest.mark.parametrize("bad", ["fp32", "bf16", "float64", "Float32", ""])
def test_compute_dtype_rejects_unknown_names(bad):
    with pytest.raises(ValueError, match="dtype must be one of"):
        models.compute_dtype(bad, torch.device("cpu"))


@pytest.mark.parametrize(("native", "expected"), [(False, torch.float32), (True, torch.bfloat16)])
def test_compute_dtype_auto_on_cpu_needs_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: native)
    assert models.compute_dtype("auto", torch.device("cpu")) is expected


@pytest.mark.parametrize(("bf16", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_compute_dtype_auto_on_cuda(monkeypatch, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert models.compute_dtype("auto", torch.device("cuda")) is expected


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("flags\t\t: fpu sse2 avx2 avx512f", False),
        ("flags\t\t: fpu avx2 avx512_bf16", True),
        ("flags\t\t: fpu avx2 amx_bf16 amx_tile", True),
        (None, False),  # /proc/cpuinfo unreadable
    ],
)
def test_cpu_has_native_bf16_reads_cpu_flags(monkeypatch, tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"processor\t: 0\n{flags}\n")
    monkeypatch.setattr(models, "Path", lambda _path: cpuinfo)
    assert models.cpu_has_native_bf16() is expected


# --------------------------------------------------------------------------- tokenizer


def _toy_tokenizer(special: dict[str, str]) -> PreTrainedTokenizerFast:
    words = ["<unk>", "<eos>", "hello", "world"]
    vocab = {w: i for i, w in enumerate(words)}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def test_prepare_tokenizer_smollm2_pad_differs_from_eos(tiny_tokenizer):
    tok = tiny_tokenizer
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token is not None
    assert tok.pad_token_id != tok.eos_token_id
    assert tok.padding_side == "right"


def test_prepare_tokenizer_replaces_pad_equal_to_eos(tiny_tokenizer):
    tok = models.load_tokenizer(models.TINY)
    tok.pad_token = tok.eos_token
    assert tok.pad_token_id == tok.eos_token_id
    models.prepare_tokenizer(tok)
    assert tok.pad_token_id != tok.eos_token_id


def test_prepare_tokenizer_prefers_unk_as_pad():
    tok = models.prepare_tokenizer(_toy_tokenizer({"unk_token": "<unk>", "eos_token": "<eos>"}))
    assert tok.pad_token == "<unk>"
    assert tok.padding_side == "right"


def test_prepare_tokenizer_falls_back_to_eos_without_candidates():
    # No unk token and none of the candidate pad tokens in the vocabulary.
    tok = models.prepare_tokenizer(_toy_tokenizer({"eos_token": "<eos>"}))
    assert tok.pad_token == "<eos>"


def test_prepare_tokenizer_requires_eos():
    with pytest.raises(ValueError, match="no EOS"):
        models.prepare_tokenizer(_toy_tokenizer({"unk_token": "<unk>"}))


# --------------------------------------------------------------------------- tiny-random


def test_tiny_random_loads(tiny_model, tiny_tokenizer):
    model = tiny_model
    assert models.n_layers(models.TINY) == 2
    assert model.config.num_hidden_layers == 2
    assert model.config.vocab_size == len(tiny_tokenizer)
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert next(model.parameters()).device.type == "cpu"
    assert model.config.pad_token_id == tiny_tokenizer.pad_token_id
    assert model.generation_config.pad_token_id == tiny_tokenizer.pad_token_id
    # ~1.6M parameters, the tied embedding counted once.
    n = models.n_parameters(model)
    assert 1_500_000 < n < 2_000_000
    assert n == sum(p.numel() for p in model.parameters())  # parameters() deduplicates ties
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_tiny_random_model_is_seeded_and_keeps_the_global_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = models.tiny_random_model(100, seed=0)
    after = torch.rand(3)
    assert torch.equal(after, expected_next), "building the model consumed the global RNG"
    b = models.tiny_random_model(100, seed=0)
    c = models.tiny_random_model(100, seed=1)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(
        a.model.layers[0].mlp.down_proj.weight, c.model.layers[0].mlp.down_proj.weight
    )


def test_n_parameters_trainable_only(tiny_model):
    total = models.n_parameters(tiny_model)
    embed = tiny_model.model.embed_tokens.weight
    embed.requires_grad_(False)
    assert models.n_parameters(tiny_model, trainable_only=True) == total - embed.numel()


def test_save_checkpoint_round_trip(tiny_model, tiny_tokenizer, tmp_path):
    model = tiny_model
    with torch.no_grad():  # make the weights distinguishable from a fresh tiny-random
        model.model.layers[1].mlp.down_proj.weight.add_(0.5)
    target = tmp_path / "ckpt"
    with cache.atomic_dir(target) as tmp:
        models.save_checkpoint(model, tiny_tokenizer, tmp)
    assert (target / "config.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"], "temporary folders left behind"

    loaded, tok = models.load_model(str(target), dtype="float32", device="cpu")
    assert next(loaded.parameters()).dtype == torch.float32
    assert models.n_layers(str(target)) == 2
    assert tok.pad_token_id == tiny_tokenizer.pad_token_id
    assert tok.eos_token_id == tiny_tokenizer.eos_token_id
    text = "Question: who wrote it?"
    assert tok(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]
    ids = torch.tensor([tiny_tokenizer(text)["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        got = loaded(input_ids=ids).logits
    assert torch.equal(expected, got)


def test_weights_stay_float32_whatever_the_compute_dtype(tiny_tokenizer):
    model, _ = models.load_model(models.TINY, dtype="bfloat16", device="cpu")
    assert next(model.parameters()).dtype == torch.float32
    assert model.compute_dtype is torch.bfloat16
    ids = torch.tensor([tiny_tokenizer("who is she?")["input_ids"]])
    with torch.no_grad(), models.autocast(model):
        logits = model(input_ids=ids).logits
    assert logits.dtype == torch.bfloat16
    fp32, _ = models.load_model(models.TINY, dtype="float32", device="cpu")
    with torch.no_grad(), models.autocast(fp32):
        assert fp32(input_ids=ids).logits.dtype == torch.float32


@pytest.mark.parametrize(
    ("name", "error", "match"),
    [
        ("./no/such/folder", FileNotFoundError, "not found"),
        ("not a model name", KeyError, "registry name"),
    ],
)
def test_bad_model_names_fail_clearly(name, error, match):
    with pytest.raises(error, match=match):
        models.load_model(name)


def test_hub_id_without_network_says_how_to_run_offline(monkeypatch):
    monkeypatch.setattr(models, "hub_reachable", lambda: False)  # as on this machine
    with pytest.raises(OSError, match="hub unreachable.*smollm2-135m.*HF_HUB_OFFLINE"):
        models.load_tokenizer("no-such-org/no-such-model-xyz")
    with pytest.raises(OSError, match="hub unreachable"):
        models.load_model("no-such-org/no-such-model-xyz")


def test_load_model_rejects_bad_device_and_dtype():
    with pytest.raises(ValueError, match="device must be"):
        models.load_model(models.TINY, device="gpu")
    with pytest.raises(ValueError, match="dtype must be"):
        models.load_model(models.TINY, dtype="fp16")


def test_a_corrupt_embedded_cache_is_detected_and_rebuilt(tiny_tokenizer, study_cache_dir):
    folder = models._tokenizer_dir()
    assert (folder / "checksums.json").exists()
    victim = folder / "tokenizer_config.json"
    victim.write_text(victim.read_text() + " ")  # one byte more: the checksum no longer matches
    cache._VERIFIED.clear()
    rebuilt = models._tokenizer_dir()
    assert rebuilt == folder and cache.is_sealed(folder)
    assert models.load_tokenizer(models.TINY).eos_token_id == tiny_tokenizer.eos_token_id


def test_tokenizer_is_built_under_the_test_cache(tiny_tokenizer, study_cache_dir):
    assert paths.cache_dir() == Path(study_cache_dir)
    assert (study_cache_dir / "models" / "smollm2-tokenizer" / "tokenizer_config.json").exists()


# --------------------------------------------------------------------------- embedded model


@pytest.mark.slow
def test_embedded_smollm2_knows_the_capital_of_france():
    """The dequantised embedded model answers a QA prompt and completes raw text (~30 s once)."""
    model, tok = models.load_model(models.EMBEDDED, device="cpu")
    assert models.n_layers(models.EMBEDDED) == model.config.num_hidden_layers == 30
    assert tok.pad_token_id != tok.eos_token_id

    (answer,) = generate(model, tok, ["What is the capital of France?"], max_new_tokens=16)
    assert "Paris" in answer, answer

    encoded = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(
            **encoded, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id
        )
    completion = tok.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in completion, completion
