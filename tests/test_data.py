"""Tests of lib.data: the fictitious-author benchmark and the real-world probes (fast, no model)."""

from __future__ import annotations

import logging
import re

import pytest

from lib.data import (
    QA,
    SPLIT_NAMES,
    AuthorBenchmark,
    Probe,
    build_benchmark,
    filter_known,
    real_world_probes,
)
from lib.data.authors import (
    _ATTRIBUTES,
    _BRIDGES,
    IDK_ANSWERS,
    MAX_QA_PER_AUTHOR,
    MIN_QA_PER_AUTHOR,
    N_PERTURBED,
)
from lib.data.probes import answer_is_correct


@pytest.fixture(scope="module")
def bench() -> AuthorBenchmark:
    return build_benchmark(n_authors=40, qa_per_author=10, seed=0)


def _all_records(b: AuthorBenchmark) -> list[QA]:
    return b.split("full") + b.split("holdout") + b.multihop("full") + b.multihop("holdout")


# ---------------------------------------------------------------------------------- determinism


def test_same_arguments_same_benchmark(bench: AuthorBenchmark) -> None:
    again = build_benchmark(n_authors=40, qa_per_author=10, seed=0)
    assert again.split_hashes() == bench.split_hashes()
    assert again.fingerprint() == bench.fingerprint()
    assert again.split("full") == bench.split("full")


def test_different_seed_differs(bench: AuthorBenchmark) -> None:
    other = build_benchmark(n_authors=40, qa_per_author=10, seed=1)
    assert other.fingerprint() != bench.fingerprint()
    assert set(other.split_hashes().values()).isdisjoint(bench.split_hashes().values())
    assert other.train_authors != bench.train_authors


def test_hashes_cover_every_split(bench: AuthorBenchmark) -> None:
    hashes = bench.split_hashes()
    assert set(SPLIT_NAMES) <= set(hashes)
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in hashes.values())


def test_config_rebuilds(bench: AuthorBenchmark) -> None:
    assert build_benchmark(**bench.config()).fingerprint() == bench.fingerprint()


# ----------------------------------------------------------------------------------------- splits


def test_sizes(bench: AuthorBenchmark) -> None:
    assert bench.n_authors == 40 and bench.n_holdout_authors == 4
    expected_authors = {"forget01": 1, "forget05": 2, "forget10": 4, "holdout": 4, "full": 40}
    for name, n in expected_authors.items():
        assert len(bench.authors(name)) == n, name
        assert len(bench.split(name)) == 10 * n, name
    assert len(bench.split("retain10")) == 360
    assert len(bench.split("retain05")) == 380
    assert len(bench.split("retain01")) == 390
    assert [len(bench.authors(f"holdout{s}")) for s in ("01", "05", "10")] == [1, 2, 4]


def test_forget_count_uses_exact_integer_ceil() -> None:
    # 10% of 30 is exactly 3 authors (a float ceil would give 4).
    b = build_benchmark(n_authors=30, qa_per_author=4)
    assert [len(b.authors(f"forget{s}")) for s in ("01", "05", "10")] == [1, 2, 3]
    big = build_benchmark(n_authors=200, qa_per_author=4, n_holdout_authors=0)
    assert len(big.authors("forget01")) == 2  # as TOFU: forget01 of 200 authors = 2 authors


def test_splits_disjoint_and_nested(bench: AuthorBenchmark) -> None:
    holdout = set(bench.authors("holdout"))
    train = set(bench.authors("full"))
    assert not holdout & train
    previous: set[str] = set()
    for suffix in ("01", "05", "10"):
        forget = set(bench.authors(f"forget{suffix}"))
        retain = set(bench.authors(f"retain{suffix}"))
        assert previous <= forget  # nested
        assert not forget & retain and forget | retain == train
        assert set(bench.authors(f"holdout{suffix}")) <= holdout
        forget_q = {qa.question for qa in bench.split(f"forget{suffix}")}
        retain_q = {qa.question for qa in bench.retain_for(f"forget{suffix}")}
        holdout_q = {qa.question for qa in bench.split("holdout")}
        assert not forget_q & retain_q and not forget_q & holdout_q and not retain_q & holdout_q
        assert {qa.author for qa in bench.split(f"forget{suffix}")} == forget
        previous = forget


def test_unknown_split_names_allowed(bench: AuthorBenchmark) -> None:
    with pytest.raises(KeyError, match="forget10"):
        bench.split("forget20")
    with pytest.raises(KeyError, match="forget05"):
        bench.retain_for("retain05")
    with pytest.raises(KeyError, match="holdout"):
        bench.multihop("nope")


def test_records_are_plain_json(bench: AuthorBenchmark) -> None:
    records = bench.to_records("forget10")
    assert len(records) == 40
    assert isinstance(records[0]["perturbed_answers"], list)
    assert set(records[0]) >= {"question", "answer", "paraphrased_answer", "idk_answer"}


# ------------------------------------------------------------------------------------ QA content


def test_qa_fields(bench: AuthorBenchmark) -> None:
    records = _all_records(bench)
    for qa in records:
        assert len(qa.perturbed_answers) == N_PERTURBED
        assert len(set(qa.perturbed_answers)) == N_PERTURBED
        assert qa.answer not in qa.perturbed_answers
        assert qa.paraphrased_answer not in qa.perturbed_answers
        assert all(qa.value.lower() not in p.lower() for p in qa.perturbed_answers)
        assert qa.paraphrased_question != qa.question
        assert qa.paraphrased_answer != qa.answer
        assert qa.value in qa.answer and qa.value in qa.paraphrased_answer
        assert qa.author in qa.answer and qa.author in qa.paraphrased_answer
        assert qa.idk_answer in IDK_ANSWERS
        assert 5 <= len(qa.answer.split()) <= 30, qa.answer
        assert qa.question[0].isupper() and qa.question.endswith("?")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wrong_answers_never_state_the_fact(seed: int) -> None:
    b = build_benchmark(n_authors=40, qa_per_author=MAX_QA_PER_AUTHOR, seed=seed)
    for qa in _all_records(b):
        assert all(qa.value.lower() not in p.lower() for p in qa.perturbed_answers), qa
        assert len(set(qa.perturbed_answers)) == N_PERTURBED


def test_numeric_perturbations_change_the_number(bench: AuthorBenchmark) -> None:
    for qa in _all_records(bench):
        if qa.value.isdigit():
            numbers = [re.findall(r"\d+", p) for p in qa.perturbed_answers]
            assert all(qa.value not in found for found in numbers)


def test_questions_unique(bench: AuthorBenchmark) -> None:
    records = _all_records(bench)
    questions = [qa.question for qa in records]
    paraphrases = [qa.paraphrased_question for qa in records]
    assert len(set(questions)) == len(questions)
    assert len(set(paraphrases)) == len(paraphrases)
    templates = [t for a in _ATTRIBUTES for t in a.questions]
    assert len(set(templates)) == len(templates)


def test_authors_unique_and_attributes_distinct(bench: AuthorBenchmark) -> None:
    names = bench.authors("full") + bench.authors("holdout")
    assert len(set(names)) == len(names)
    by_author: dict[str, list[QA]] = {}
    for qa in bench.split("full") + bench.split("holdout"):
        by_author.setdefault(qa.author, []).append(qa)
    assert sorted(by_author) == sorted(names)
    for name, records in by_author.items():
        assert len({qa.attribute for qa in records}) == len(records) == 10
        facts = bench.profile(name).facts()
        assert all(qa.value == facts[qa.attribute] for qa in records)


def test_profile_facts_are_sane(bench: AuthorBenchmark) -> None:
    for name in bench.authors("full"):
        p = bench.profile(name)
        assert 2 <= len(p.books) <= 3 and len(set(p.books)) == len(p.books)
        assert p.birth_year < p.debut_year <= p.award_year
        assert p.father_job != p.mother_job
        assert p.birth_city != p.residence_city
        assert str(p.birth_year) in p.birth_date


def test_qa_per_author_range() -> None:
    for k in (MIN_QA_PER_AUTHOR, 4, 20, MAX_QA_PER_AUTHOR):
        b = build_benchmark(n_authors=3, qa_per_author=k, n_holdout_authors=1, seed=5)
        assert len(b.split("full")) == 3 * k
        for name in b.authors("full"):
            assert len({qa.attribute for qa in b.split("full") if qa.author == name}) == k
        assert b.multihop("full")  # every author has a bridge fact, hence >= 1 multi-hop
    assert MAX_QA_PER_AUTHOR >= 20


# ----------------------------------------------------------------------------------- multi-hop


def test_multihop_consistent_with_facts(bench: AuthorBenchmark) -> None:
    names = bench.authors("full") + bench.authors("holdout")
    bridge_values: dict[str, list[str]] = {b: [] for b in _BRIDGES}
    for name in names:
        ctx = bench.profile(name)._context()
        for bridge in _BRIDGES:
            key = "character_name" if bridge == "signature_character" else bridge
            bridge_values[bridge].append(ctx[key])
    for values in bridge_values.values():  # every bridge fact names exactly one author
        assert len(set(values)) == len(values)

    multihop = bench.multihop("full") + bench.multihop("holdout")
    assert len(multihop) >= len(names)
    for qa in multihop:
        m = re.fullmatch(r"multihop:(\w+)\+(\w+)", qa.attribute)
        assert m is not None
        bridge, target = m.groups()
        assert bridge != target and bridge in _BRIDGES
        profile = bench.profile(qa.author)
        facts, ctx = profile.facts(), profile._context()
        assert qa.value == facts[target]
        key = "character_name" if bridge == "signature_character" else bridge
        assert ctx[key] in qa.question and ctx[key] in qa.paraphrased_question
        assert qa.author not in qa.question  # the author is only named through the bridge
        trained = {x.attribute for x in bench.split("full") + bench.split("holdout")
                   if x.author == qa.author}  # fmt: skip
        assert {bridge, target} <= trained  # both hops are facts the model is trained on


# -------------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_authors": 0}, "n_authors"),
        ({"qa_per_author": MIN_QA_PER_AUTHOR - 1}, r"qa_per_author must be an integer in \[2"),
        ({"qa_per_author": MAX_QA_PER_AUTHOR + 1}, "qa_per_author"),
        ({"qa_per_author": 2.5}, "qa_per_author"),
        ({"n_holdout_authors": -1}, "n_holdout_authors"),
        ({"seed": -3}, "seed"),
        ({"seed": True}, "seed"),
        ({"multihop_per_author": 9}, "multihop_per_author"),
        ({"n_authors": 5000}, "n_authors"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_benchmark(**kwargs)  # type: ignore[arg-type]


def test_zero_holdout_and_unknown_author() -> None:
    b = build_benchmark(n_authors=2, qa_per_author=4, n_holdout_authors=0)
    assert b.split("holdout") == [] and b.split("holdout10") == []
    with pytest.raises(KeyError):
        b.profile("Nobody Atall")


# ------------------------------------------------------------------------------------------ probes


def test_probes_well_formed() -> None:
    probes = real_world_probes()
    assert 50 <= len(probes) <= 100
    questions = [p.question for p in probes]
    assert len(set(questions)) == len(questions)
    for p in probes:
        assert len(p.perturbed_answers) == 3 and len(set(p.perturbed_answers)) == 3
        assert p.answer not in p.perturbed_answers
        assert answer_is_correct(p, f"The answer is {p.answer}.")
        assert not any(answer_is_correct(p, wrong) for wrong in p.perturbed_answers), p
    assert real_world_probes() == probes  # fixed and fresh


def test_answer_matching_is_whole_word_and_uses_aliases() -> None:
    mars = Probe("What planet is known as the Red Planet?", "Mars", ("Venus", "Jupiter", "Saturn"))
    assert answer_is_correct(mars, "It is MARS, of course")
    assert not answer_is_correct(mars, "Marshall")
    us = next(p for p in real_world_probes() if "United States" in p.question)
    assert answer_is_correct(us, "The capital is Washington.")


def test_filter_known_keeps_known_probes() -> None:
    probes = real_world_probes()
    calls: list[list[str]] = []

    def answer_fn(questions: list[str]) -> list[str]:
        calls.append(questions)
        # Knows the first 10 facts, babbles on the rest.
        return [p.answer.upper() if i < 10 else "hmm" for i, p in enumerate(probes)]

    kept, filtered = filter_known(probes, answer_fn, min_known=5)
    assert filtered is True and kept == probes[:10]
    assert len(calls) == 1 and calls[0] == [p.question for p in probes]


def test_filter_known_falls_back_when_model_knows_little(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probes = real_world_probes()
    with caplog.at_level(logging.WARNING, logger="lib.data.probes"):
        kept, filtered = filter_known(probes, lambda qs: ["zzz"] * len(qs), min_known=5)
    assert filtered is False and kept == probes
    assert "min_known" in caplog.text


def test_filter_known_bad_input() -> None:
    probes = real_world_probes()
    with pytest.raises(ValueError, match="answers"):
        filter_known(probes, lambda qs: ["Paris"])
    with pytest.raises(ValueError, match="min_known"):
        filter_known(probes, lambda qs: [""] * len(qs), min_known=-1)
