"""Secret-sharer canaries: generation (seeded, distinct, balanced) and insertion into documents."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from datasets import Dataset

from lib.algorithms.secret_rank import secret_format
from lib.data.canaries import content_hash, insert_canaries, make_canaries

FORGET = ["Ann Lee", "Marek Novak", "Lucia Ferreira"]
RETAIN = ["Tomas Berg", "Ines Duarte", "Omar Haddad", "Ruth Okafor"]


def _documents() -> Dataset:
    rows = []
    for owner in FORGET + RETAIN:
        for d in range(2):
            rows.append(
                {
                    "author": owner,
                    "doc": d,
                    "text": f"{owner} was born in Lisbon. {owner} writes novels. "
                    f"Her book {d} won a prize. She lives by the sea.",
                }
            )
    rows.append({"author": "Solo Writer", "doc": 0, "text": "Solo Writer has one sentence"})
    return Dataset.from_list(rows)


def test_canaries_are_seeded_distinct_and_balanced():
    canaries = make_canaries(FORGET, RETAIN, n_digits=6, seed=3)
    assert len(canaries) == 7
    assert content_hash(canaries) == content_hash(make_canaries(FORGET, RETAIN, seed=3))
    assert content_hash(canaries) != content_hash(make_canaries(FORGET, RETAIN, seed=4))
    secrets = canaries["secret"]
    assert len(set(secrets)) == 7 and all(re.fullmatch(r"\d{6}", s) for s in secrets)
    assert canaries["group"] == ["forget"] * 3 + ["retain"] * 4
    for group, size in (("forget", 3), ("retain", 4)):
        reps = Counter(c["repetitions"] for c in canaries if c["group"] == group)
        assert set(reps) <= {1, 4, 16} and sum(reps.values()) == size
        assert max(reps.values()) - min(reps.values()) <= 1 and len(reps) == 3
    first = canaries[0]
    assert first["text"] == f"Ann Lee's account PIN is {first['secret']}"
    assert first["prefix"] == "Ann Lee's account PIN is "
    assert first["scoring_prefix"] == " " + first["prefix"]


def test_bad_canary_arguments_are_refused():
    with pytest.raises(ValueError, match="template"):
        make_canaries(FORGET, RETAIN, template="{name} has PIN {pin}")
    with pytest.raises(ValueError, match="twice"):
        make_canaries(FORGET, FORGET[:1])
    with pytest.raises(ValueError, match="repetitions"):
        make_canaries(FORGET, RETAIN, repetitions=(0, 2))
    with pytest.raises(ValueError, match="fit"):
        make_canaries([f"a{i}" for i in range(11)], [], n_digits=1)


def test_spread_insertion_counts_positions_and_determinism():
    docs = _documents()
    canaries = make_canaries(FORGET, RETAIN, seed=0)
    out = insert_canaries(docs, canaries, seed=0)
    assert out.column_names == [*docs.column_names, "canary_ids"]
    assert len(out) == len(docs)
    assert content_hash(out) == content_hash(insert_canaries(docs, canaries, seed=0))
    assert content_hash(out) != content_hash(insert_canaries(docs, canaries, seed=1))
    for canary in canaries:
        piece = " " + canary["text"] + "."
        hits = [(row["author"], row["text"].count(piece)) for row in out]
        assert sum(n for _, n in hits) == canary["repetitions"]
        assert all(author == canary["owner"] for author, n in hits if n)
        assert (
            sum(ids.count(canary["canary_id"]) for ids in out["canary_ids"])
            == (canary["repetitions"])
        )
        # Spread over the owner's documents (2 each): 4 or 16 occurrences use both.
        if canary["repetitions"] > 1:
            assert sum(1 for _, n in hits if n) == 2
    for before, after in zip(docs, out, strict=True):
        text = after["text"]
        for canary in canaries:
            # Every occurrence follows a sentence-ending '.' and is followed by ' ' or the end.
            piece = " " + canary["text"] + "."
            for match in re.finditer(re.escape(piece), text):
                assert text[match.start() - 1] == "."
                assert text[match.end() : match.end() + 1] in ("", " ")
            text = text.replace(piece, "")
        assert text == before["text"]  # removing the canaries gives back the original


def test_copies_mode_appends_documents():
    docs = _documents()
    canaries = make_canaries(FORGET, RETAIN, repetitions=(1, 4), seed=0)
    out = insert_canaries(docs, canaries, mode="copies", seed=0)
    total = sum(canaries["repetitions"])
    assert len(out) == len(docs) + total
    assert out["is_copy"] == [False] * len(docs) + [True] * total
    assert out["text"][: len(docs)] == docs["text"]  # originals untouched
    for row in out.select(range(len(docs), len(out))):
        (cid,) = row["canary_ids"]
        canary = canaries.filter(lambda c, cid=cid: c["canary_id"] == cid)[0]
        assert row["author"] == canary["owner"] and canary["text"] in row["text"]


def test_insertion_errors_and_end_of_text_boundary():
    docs = _documents()
    with pytest.raises(KeyError, match="without documents"):
        insert_canaries(docs, make_canaries(["Nobody"], []))
    with pytest.raises(ValueError, match="mode"):
        insert_canaries(docs, make_canaries(FORGET, []), mode="random")
    with pytest.raises(KeyError, match="column"):
        insert_canaries(docs, make_canaries(FORGET, []), owner_column="owner")
    # A text without any '.' still gets its canary (at the end, after a space).
    out = insert_canaries(docs, make_canaries(["Solo Writer"], [], repetitions=(1,)))
    solo = out.filter(lambda r: r["author"] == "Solo Writer")[0]["text"]
    assert solo.startswith("Solo Writer has one sentence Solo Writer's account PIN is ")


def test_inserted_secret_tokens_match_the_scoring_prefix(tiny_tokenizer):
    canaries = make_canaries(FORGET, [], n_digits=6, seed=0)
    out = insert_canaries(_documents(), canaries, seed=0)
    canary = canaries[0]
    fmt = secret_format(tiny_tokenizer, canary["scoring_prefix"], 6)
    expected = list(fmt.prefix_ids) + [fmt.digit_ids[int(c)] for c in canary["secret"]]
    text = next(t for t in out["text"] if canary["text"] in t)
    ids = tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    # The in-document token sequence of the canary is exactly the scored one.
    assert any(ids[i : i + len(expected)] == expected for i in range(len(ids)))
