"""Tests of lib.prompting: the QA prompt format and tokenisation into batches."""

from __future__ import annotations

import copy

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import PreTrainedTokenizerFast

from lib.batches import IGNORE, Batch, encode_pairs, encode_prompts_left
from lib.prompting import format_prompt, uses_chatml


@pytest.fixture(scope="module")
def plain_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer without ChatML tokens."""
    words = ["<unk>", "<eos>", "<pad>", "Question:", "Answer:", "who", "is", "she", "?"]
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", eos_token="<eos>", pad_token="<pad>"
    )


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------- format_prompt


def test_format_prompt_chatml(tiny_tokenizer):
    assert uses_chatml(tiny_tokenizer)
    prompt = format_prompt(tiny_tokenizer, "Who is she?")
    assert prompt == "<|im_start|>user\nWho is she?<|im_end|>\n<|im_start|>assistant\n"
    with_context = format_prompt(tiny_tokenizer, "Who is she?", context="Be brief.")
    assert with_context == "<|im_start|>system\nBe brief.<|im_end|>\n" + prompt
    # The ChatML markers are single special tokens, not spelled out.
    assert _ids(tiny_tokenizer, "<|im_start|>") == [tiny_tokenizer.bos_token_id]


def test_format_prompt_plain(plain_tokenizer):
    assert not uses_chatml(plain_tokenizer)
    assert format_prompt(plain_tokenizer, "who is she?") == "Question: who is she?\nAnswer: "
    assert (
        format_prompt(plain_tokenizer, "who is she?", context="Be brief.")
        == "Be brief.\n\nQuestion: who is she?\nAnswer: "
    )


def test_format_prompt_follows_uses_chatml(monkeypatch, tiny_tokenizer):
    import lib.prompting as prompting

    monkeypatch.setattr(prompting, "uses_chatml", lambda _tok: False)
    assert format_prompt(tiny_tokenizer, "Q?") == "Question: Q?\nAnswer: "


# --------------------------------------------------------------------------- encode_pairs


def test_encode_pairs_labels_exactly_the_answer_and_eos(tiny_tokenizer):
    tok = tiny_tokenizer
    prompts = [format_prompt(tok, "Where was she born?"), format_prompt(tok, "Hi?")]
    answers = ["She was born in Tallinn, Estonia.", "Hello"]
    batch = encode_pairs(tok, prompts, answers)
    assert batch.input_ids.shape == batch.labels.shape == batch.attention_mask.shape
    for row, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        p_ids, a_ids = _ids(tok, prompt), _ids(tok, answer) + [tok.eos_token_id]
        n = len(p_ids) + len(a_ids)
        assert batch.input_ids[row, :n].tolist() == p_ids + a_ids
        assert batch.labels[row, : len(p_ids)].eq(IGNORE).all()  # prompt
        assert batch.labels[row, len(p_ids) : n].tolist() == a_ids  # answer + EOS
        assert batch.labels[row, n:].eq(IGNORE).all()  # padding
        assert batch.input_ids[row, n:].eq(tok.pad_token_id).all()
        assert batch.attention_mask[row, :n].eq(1).all()
        assert batch.attention_mask[row, n:].eq(0).all()
        assert batch.labels[row, n - 1] == tok.eos_token_id
    assert batch.n_tokens == sum(
        len(_ids(tok, p)) + len(_ids(tok, a)) + 1 for p, a in zip(prompts, answers, strict=True)
    )
    assert torch.equal(batch.answer_mask, batch.labels != IGNORE)


def test_encode_pairs_without_eos(tiny_tokenizer):
    batch = encode_pairs(tiny_tokenizer, ["Q: "], ["yes"], add_eos=False)
    assert tiny_tokenizer.eos_token_id not in batch.input_ids[0].tolist()
    assert batch.labels[0, -1] == _ids(tiny_tokenizer, "yes")[-1]


def test_encode_pairs_mask_from_lengths_even_when_pad_is_eos(tiny_tokenizer):
    """A literal EOS inside an answer (and pad == EOS) must not be masked."""
    tok = copy.deepcopy(tiny_tokenizer)
    tok.pad_token = tok.eos_token
    eos = tok.eos_token_id
    prompts = ["Say it: ", "Say something much longer than the other prompt please: "]
    answers = [f"one {tok.eos_token} two", "ok"]
    batch = encode_pairs(tok, prompts, answers)
    lengths = [
        len(_ids(tok, p)) + len(_ids(tok, a)) + 1 for p, a in zip(prompts, answers, strict=True)
    ]
    assert batch.attention_mask.sum(dim=1).tolist() == lengths
    row0 = batch.input_ids[0, : lengths[0]].tolist()
    assert row0.count(eos) == 2  # the literal one inside the answer and the final EOS
    inner = row0.index(eos)
    assert inner < lengths[0] - 1
    assert batch.attention_mask[0, inner] == 1
    assert batch.labels[0, inner] == eos  # labelled like any answer token
    # Padding of the shorter row uses the EOS id but is masked and unlabelled.
    short = min(range(2), key=lambda i: lengths[i])
    pad_slice = slice(lengths[short], None)
    assert batch.input_ids[short, pad_slice].eq(eos).all()
    assert batch.attention_mask[short, pad_slice].eq(0).all()
    assert batch.labels[short, pad_slice].eq(IGNORE).all()


def test_encode_pairs_max_length_truncates_answer_end(tiny_tokenizer):
    tok = tiny_tokenizer
    prompt, answer = format_prompt(tok, "Tell me."), "a b c d e f g h i j k l m n o p"
    p_ids, a_ids = _ids(tok, prompt), _ids(tok, answer)
    max_length = len(p_ids) + 3
    batch = encode_pairs(tok, [prompt, "x"], [answer, "y"], max_length=max_length)
    assert batch.input_ids.shape[1] == max_length
    assert batch.labels[0].tolist() == [IGNORE] * len(p_ids) + a_ids[:3]
    assert tok.eos_token_id not in batch.labels[0].tolist()  # EOS was cut with the answer end
    assert batch.attention_mask[0].eq(1).all()


def test_encode_pairs_prompt_longer_than_max_length_has_no_labels(tiny_tokenizer):
    prompt = format_prompt(tiny_tokenizer, "a very long question " * 5)
    batch = encode_pairs(tiny_tokenizer, [prompt], ["yes"], max_length=8)
    assert batch.input_ids.shape == (1, 8)
    assert batch.labels.eq(IGNORE).all()


def test_encode_pairs_rejects_bad_input(tiny_tokenizer):
    with pytest.raises(ValueError, match="2 prompts but 1 continuations"):
        encode_pairs(tiny_tokenizer, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="empty"):
        encode_pairs(tiny_tokenizer, [], [])


def test_batch_to_keeps_every_tensor(tiny_tokenizer):
    batch = encode_pairs(tiny_tokenizer, ["a"], ["b"])
    moved = batch.to(torch.device("cpu"))
    assert isinstance(moved, Batch)
    for name in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(getattr(moved, name), getattr(batch, name))


# --------------------------------------------------------------------------- encode_prompts_left


def test_encode_prompts_left_pads_on_the_left(tiny_tokenizer):
    tok = tiny_tokenizer
    prompts = ["short", "a considerably longer prompt than the first one"]
    input_ids, attention = encode_prompts_left(tok, prompts)
    lengths = [len(_ids(tok, p)) for p in prompts]
    width = max(lengths)
    assert input_ids.shape == attention.shape == (2, width)
    for row, (prompt, n) in enumerate(zip(prompts, lengths, strict=True)):
        assert input_ids[row, width - n :].tolist() == _ids(tok, prompt)
        assert input_ids[row, : width - n].eq(tok.pad_token_id).all()
        assert attention[row, : width - n].eq(0).all()
        assert attention[row, width - n :].eq(1).all()
    assert attention[:, -1].eq(1).all()  # every prompt ends in the last column


def test_encode_prompts_left_plain_tokenizer(plain_tokenizer):
    input_ids, attention = encode_prompts_left(plain_tokenizer, ["who is she ?", "who"])
    pad = plain_tokenizer.pad_token_id
    assert input_ids[1].tolist() == [pad, pad, pad, plain_tokenizer.convert_tokens_to_ids("who")]
    assert attention[1].tolist() == [0, 0, 0, 1]
