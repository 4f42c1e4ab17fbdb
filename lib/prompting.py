"""The one QA prompt format of the study (tokenisation into batches is `lib.batches`).

Format: a ChatML user turn (`<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`)
when the tokenizer knows the ChatML tokens (SmolLM2, Qwen), else the plain
`Question: {question}\\nAnswer: `. The answer follows the prompt directly and ends with the
tokenizer's EOS token. No system prompt is added: it would cost ~25 tokens per example. An
optional *context* (used by input-based unlearning) becomes a system turn (ChatML) or a
paragraph before the question (plain).
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

CHATML_USER = "<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
CHATML_SYSTEM = "<|im_start|>system\n{context}<|im_end|>\n"
PLAIN_USER = "Question: {question}\nAnswer: "


def uses_chatml(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when `<|im_start|>` is a single token of the vocabulary."""
    # convert_tokens_to_ids is O(1); get_vocab() copies the whole vocabulary (~35 ms).
    token_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    return token_id is not None and token_id != tokenizer.unk_token_id


def format_prompt(tokenizer: PreTrainedTokenizerBase, question: str, context: str = "") -> str:
    """The prompt text that precedes an answer."""
    if uses_chatml(tokenizer):
        system = CHATML_SYSTEM.format(context=context) if context else ""
        return system + CHATML_USER.format(question=question)
    head = f"{context}\n\n" if context else ""
    return head + PLAIN_USER.format(question=question)
