"""lib.evaluate on tiny-random: teacher-forced scores against a direct computation, raw text,
Min-K%++ moments, generation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from lib import evaluate
from lib.batches import encode_pairs
from lib.prompting import format_prompt


def test_vocab_moments_match_a_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7))
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    mu, sigma = evaluate.vocab_moments(torch.tensor(logp))
    p = np.exp(logp)
    ref_mu = (p * logp).sum(1)
    ref_sigma = np.sqrt((p * (logp - ref_mu[:, None]) ** 2).sum(1))
    np.testing.assert_allclose(mu.numpy(), ref_mu, rtol=1e-10)
    np.testing.assert_allclose(sigma.numpy(), ref_sigma, rtol=1e-10)
    # Zero-probability tokens (log p = -inf) contribute nothing and give no NaN; a one-point
    # distribution has variance 0, clamped to sigma = 1e-3.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        half = torch.tensor(
            [[math.log(0.5), math.log(0.5), -math.inf], [0.0, -math.inf, -math.inf]]
        )
        mu2, sigma2 = evaluate.vocab_moments(half)
    np.testing.assert_allclose(mu2.numpy(), [math.log(0.5), 0.0], atol=1e-12)
    np.testing.assert_allclose(sigma2.numpy(), [1e-3, 1e-3], atol=1e-12)


def test_score_answers_equal_a_direct_log_softmax(tiny_model, tiny_tokenizer):
    questions = ["Who wrote it?", "Where was she born in the end?"]
    answers = ["Nobody knows.", "In a small town by the sea."]
    scores = evaluate.score_answers(
        tiny_model, tiny_tokenizer, questions, answers, batch_size=1, vocab_stats=True
    )
    for i, (q, a) in enumerate(zip(questions, answers, strict=True)):
        batch = encode_pairs(tiny_tokenizer, [format_prompt(tiny_tokenizer, q)], [a])
        with torch.no_grad():
            logp = torch.log_softmax(tiny_model(input_ids=batch.input_ids).logits[0, :-1], -1)
        labels = batch.labels[0, 1:]
        keep = labels != -100
        expected = logp[keep].gather(-1, labels[keep][:, None]).squeeze(-1)
        np.testing.assert_allclose(scores.logprobs[i], expected.numpy(), rtol=1e-5, atol=1e-6)
        assert len(scores.logprobs[i]) == len(tiny_tokenizer(a)["input_ids"]) + 1  # + EOS
        mu, _ = evaluate.vocab_moments(logp[keep])
        np.testing.assert_allclose(scores.mu[i], mu.numpy(), rtol=1e-5, atol=1e-6)
    assert scores.avg_nll.shape == (2,) and (scores.avg_nll > 0).all()


def test_batching_does_not_change_the_scores(tiny_model, tiny_tokenizer):
    questions = [f"Question number {i}{'?' * i}" for i in range(5)]
    answers = [("word " * (i + 1)).strip() for i in range(5)]
    one = evaluate.score_answers(tiny_model, tiny_tokenizer, questions, answers, batch_size=1)
    many = evaluate.score_answers(tiny_model, tiny_tokenizer, questions, answers, batch_size=4)
    for a, b in zip(one.logprobs, many.logprobs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_score_texts_scores_every_token_after_the_first(tiny_model, tiny_tokenizer):
    texts = ["The quick brown fox jumps.", "Hello"]
    scores = evaluate.score_texts(tiny_model, tiny_tokenizer, texts)
    for text, lp in zip(texts, scores.logprobs, strict=True):
        assert len(lp) == len(tiny_tokenizer(text, add_special_tokens=False)["input_ids"]) - 1


def test_generate_stops_at_eos_and_counts_tokens(tiny_model, tiny_tokenizer):
    counter = evaluate.TokenCounter()
    answers = evaluate.generate(
        tiny_model,
        tiny_tokenizer,
        ["Hi?", "Longer question here?"],
        max_new_tokens=5,
        counter=counter,
    )
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    assert counter.tokens > 0
    with pytest.raises(ValueError, match="2 questions but 1 answers"):
        evaluate.score_answers(tiny_model, tiny_tokenizer, ["a", "b"], ["c"])


def _direct_logprob(model, tok, ids: list[int], continuation: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids + continuation])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    return float(sum(logp[len(ids) - 1 + i, c] for i, c in enumerate(continuation)))


@pytest.mark.parametrize("choices", [[" foo", " bar"], [" sunny day", " zap", " a b c"]])
@pytest.mark.parametrize("prefix", ["", "Classify.\n\nReview: good\nLabel: foo"])
def test_score_choices_equal_scoring_each_sequence_from_scratch(
    tiny_model, tiny_tokenizer, choices, prefix
):
    prompts = ["\n\nReview: fine film\nLabel:", "\n\nReview: an awful, long film\nLabel:", "x"]
    scores = evaluate.score_choices(tiny_model, tiny_tokenizer, prompts, choices, prefix, 2)
    ids = lambda text: tiny_tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert scores.shape == (3, len(choices))
    for i, prompt in enumerate(prompts):
        for j, choice in enumerate(choices):
            full = (ids(prefix) if prefix else []) + ids(prompt)
            expected = _direct_logprob(tiny_model, tiny_tokenizer, full, ids(choice))
            assert scores[i, j] == pytest.approx(expected, abs=1e-4)
    # batch size and order of prompts do not change a prompt's scores
    one = evaluate.score_choices(tiny_model, tiny_tokenizer, prompts[::-1], choices, prefix, 1)
    np.testing.assert_allclose(one[::-1], scores, atol=1e-5)


def test_score_choices_counts_the_prefix_once_and_rejects_bad_input(tiny_model, tiny_tokenizer):
    counter = evaluate.TokenCounter()
    prefix, prompts = "a b c d e f", ["g h", "i"]
    evaluate.score_choices(tiny_model, tiny_tokenizer, prompts, [" x", " y"], prefix, 8, counter)
    n = lambda t: len(tiny_tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    assert counter.tokens == n(prefix) + sum(n(p) for p in prompts)
    with pytest.raises(ValueError, match="choice"):
        evaluate.score_choices(tiny_model, tiny_tokenizer, ["a"], [" x", ""])
    with pytest.raises(ValueError, match="non-empty"):
        evaluate.score_choices(tiny_model, tiny_tokenizer, ["a", ""], [" x"], prefix="p")


def test_embed_texts_is_the_masked_mean_of_the_last_hidden_state(tiny_model, tiny_tokenizer):
    texts = ["a short one", "a somewhat longer text than the first one", "x"]
    emb = evaluate.embed_texts(tiny_model, tiny_tokenizer, texts, batch_size=2)
    assert emb.shape == (3, tiny_model.config.hidden_size) and emb.dtype == np.float32
    first = evaluate.embed_texts(tiny_model, tiny_tokenizer, texts, layer=0)
    for i, text in enumerate(texts):
        ids = torch.tensor([tiny_tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            out = tiny_model.model(input_ids=ids)
            assert not out.last_hidden_state.requires_grad
        np.testing.assert_allclose(emb[i], out.last_hidden_state[0].mean(0).numpy(), atol=1e-5)
        token_embeddings = tiny_model.get_input_embeddings()(ids)[0].mean(0).detach()
        np.testing.assert_allclose(first[i], token_embeddings.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="empty"):
        evaluate.embed_texts(tiny_model, tiny_tokenizer, ["a", ""])


def test_pad_sequences_left_and_right():
    from lib.batches import pad_sequences

    ids, mask = pad_sequences([[5, 6, 7], [8]], pad=0, side="left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = pad_sequences([[5, 6, 7], [8]], pad=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="'left' or 'right'"):
        pad_sequences([[1]], pad=0, side="middle")
