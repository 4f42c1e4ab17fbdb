"""Tests of lib.data: the fictitious-author benchmark and the real-world probes (fast, no model)."""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterable
from typing import Any

import pytest
from datasets import Dataset

from lib.data import (
    QA,
    AuthorBenchmark,
    Probe,
    QABenchmark,
    build_benchmark,
    filter_known,
    probes_dataset,
    real_world_probes,
)
from lib.data.author_templates import ATTRIBUTE_BY_NAME, ATTRIBUTES, BRIDGES, is_heldout
from lib.data.authors import (
    IDK_ANSWERS,
    MAX_QA_PER_AUTHOR,
    MIN_QA_PER_AUTHOR,
    N_PERTURBED,
    POOLS,
    SPLIT_NAMES,
    _render,
    contains_phrase,
)
from lib.data.probes import answer_is_correct, probe_from_row
from lib.data.schema import (
    COMBINED_FEATURES,
    DOCUMENT_FEATURES,
    MULTIHOP_FEATURES,
    PROBE_FEATURES,
    QA_FEATURES,
)

SUFFIXES = ("01", "05", "10")


@pytest.fixture(scope="module")
def bench() -> AuthorBenchmark:
    return build_benchmark(n_authors=40, qa_per_author=10, seed=0)


def _rows(b: AuthorBenchmark, names: Iterable[str] = ("full", "holdout")) -> list[dict[str, Any]]:
    return [row for name in names for row in b.split(name).to_list()]


def _multihop_rows(b: AuthorBenchmark) -> list[dict[str, Any]]:
    return b.multihop("full").to_list() + b.multihop("holdout").to_list()


# ---------------------------------------------------------------------------------- determinism


def test_same_arguments_same_benchmark(bench: AuthorBenchmark) -> None:
    again = build_benchmark.__wrapped__(n_authors=40, qa_per_author=10, seed=0)  # uncached
    assert again is not bench
    assert again.split_hashes() == bench.split_hashes()
    assert again.fingerprint() == bench.fingerprint()
    assert again.split("full").to_list() == bench.split("full").to_list()
    assert again.documents("full").to_list() == bench.documents("full").to_list()


def test_different_seed_differs(bench: AuthorBenchmark) -> None:
    other = build_benchmark(n_authors=40, qa_per_author=10, seed=1)
    assert other.fingerprint() != bench.fingerprint()
    assert set(other.split_hashes().values()).isdisjoint(bench.split_hashes().values())
    assert other.train_authors != bench.train_authors


def test_hashes_cover_every_split(bench: AuthorBenchmark) -> None:
    hashes = bench.split_hashes()
    assert set(SPLIT_NAMES) <= set(hashes)
    for extra in (
        "multihop:full",
        "documents:holdout",
        "combined:forget10",
        "combined:forget05_val",
    ):
        assert extra in hashes
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in hashes.values())
    # Equal hashes only for equal contents (here holdout10 = all 4 holdout authors).
    assert hashes["holdout10"] == hashes["holdout"]
    assert len(set(hashes.values())) == len(hashes) - 1


def test_config_rebuilds(bench: AuthorBenchmark) -> None:
    assert build_benchmark(**bench.config()).fingerprint() == bench.fingerprint()


# ----------------------------------------------------------------------------------------- splits


def test_sizes(bench: AuthorBenchmark) -> None:
    assert bench.n_authors == 40 and bench.n_holdout_authors == 4
    expected = {"forget01": 1, "forget05": 2, "forget10": 4, "holdout": 4, "full": 40}
    expected |= {"forget01_val": 1, "forget05_val": 2, "forget10_val": 4}
    for name, n in expected.items():
        assert len(bench.authors(name)) == n, name
        assert len(bench.split(name)) == 10 * n, name
    for suffix, n in zip(SUFFIXES, (390, 380, 360), strict=True):
        assert len(bench.split(f"retain{suffix}")) == n
        assert len(bench.split(f"retain{suffix}_val")) == n
    assert [len(bench.authors(f"holdout{s}")) for s in SUFFIXES] == [1, 2, 4]
    assert bench.split_names == SPLIT_NAMES


def test_forget_count_uses_exact_integer_ceil() -> None:
    # 10% of 30 is exactly 3 authors (a float ceil would give 4).
    b = build_benchmark(n_authors=30, qa_per_author=4)
    assert [len(b.authors(f"forget{s}")) for s in SUFFIXES] == [1, 2, 3]
    big = build_benchmark(n_authors=200, qa_per_author=4, n_holdout_authors=0)
    assert len(big.authors("forget01")) == 2  # as TOFU: forget01 of 200 authors = 2 authors


def test_splits_disjoint_and_nested(bench: AuthorBenchmark) -> None:
    holdout = set(bench.authors("holdout"))
    train = set(bench.authors("full"))
    assert not holdout & train
    test_forget = set(bench.authors("forget10"))
    previous: set[str] = set()
    previous_val: set[str] = set()
    for suffix in SUFFIXES:
        forget = set(bench.authors(f"forget{suffix}"))
        retain = set(bench.authors(f"retain{suffix}"))
        val = set(bench.authors(f"forget{suffix}_val"))
        val_retain = set(bench.authors(f"retain{suffix}_val"))
        assert previous <= forget and previous_val <= val  # nested
        assert not forget & retain and forget | retain == train
        assert not val & val_retain and val | val_retain == train
        # Validation authors are never test-forget authors, and the target trains on them.
        assert not val & test_forget and val <= set(bench.authors("retain10"))
        assert set(bench.authors(f"holdout{suffix}")) <= holdout
        assert bench.retain_name(f"forget{suffix}_val") == f"retain{suffix}_val"
        forget_q = set(bench.split(f"forget{suffix}")["question"])
        retain_q = set(bench.retain_for(f"forget{suffix}")["question"])
        holdout_q = set(bench.split("holdout")["question"])
        assert not forget_q & retain_q and not forget_q & holdout_q and not retain_q & holdout_q
        assert set(bench.split(f"forget{suffix}")["author"]) == forget
        previous, previous_val = forget, val


def test_validation_splits_need_enough_authors() -> None:
    small = build_benchmark(n_authors=2, qa_per_author=4, n_holdout_authors=1)
    assert "forget10_val" not in small.split_names
    assert "validation" not in small.capabilities
    with pytest.raises(KeyError, match="n_authors >= 2"):
        small.split("forget10_val")
    ok = build_benchmark(n_authors=3, qa_per_author=4, n_holdout_authors=1)
    assert ok.authors("forget10_val") and "validation" in ok.capabilities


def test_unknown_split_names_allowed(bench: AuthorBenchmark) -> None:
    with pytest.raises(KeyError, match="forget10"):
        bench.split("forget20")
    with pytest.raises(KeyError, match="forget05_val"):
        bench.retain_for("retain05")
    with pytest.raises(KeyError, match="holdout"):
        bench.multihop("nope")
    with pytest.raises(KeyError, match="forget10"):
        bench.combined("full")


def test_schemas_are_fixed(bench: AuthorBenchmark) -> None:
    assert isinstance(bench, QABenchmark)
    cases = [
        (bench.split("forget10"), QA_FEATURES),
        (bench.multihop("forget10"), MULTIHOP_FEATURES),
        (bench.combined("forget10"), COMBINED_FEATURES),
        (bench.documents("forget10"), DOCUMENT_FEATURES),
        (bench.probes(), PROBE_FEATURES),
        (bench.split("holdout10").select([]), QA_FEATURES),
    ]
    for ds, features in cases:
        assert isinstance(ds, Dataset)
        assert ds.features == features and ds.column_names == list(features)


def test_records_match_rows(bench: AuthorBenchmark) -> None:
    records = bench.records("forget10")
    assert all(isinstance(r, QA) for r in records)
    assert [r.to_dict() for r in records] == bench.split("forget10").to_list()
    # Fresh datasets: formatting one does not affect the next call.
    ds = bench.split("forget10")
    ds.set_format("pandas")
    assert isinstance(bench.split("forget10")[0], dict)


# ------------------------------------------------------------------------------------ templates


_PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def test_template_sets() -> None:
    for spec in ATTRIBUTES:
        assert len(spec.answers) >= 10 and len(spec.questions) >= 6, spec.name
        assert len(spec.para_answers) >= 2 and len(spec.para_questions) >= 2, spec.name
        everything = spec.questions + spec.answers + spec.para_questions + spec.para_answers
        assert len(set(everything)) == len(everything), spec.name
        extra = {"award"} if spec.name == "award_year" else set()
        for q in spec.questions + spec.para_questions:
            assert _fields(q).count("subj") == 1 and set(_fields(q)) <= {"subj"} | extra, q
            assert "{subj}'s" not in q and q.endswith("?"), q
            # Starts with a capitalised plain word, so it can be lower-cased when joined.
            assert re.match(r"[A-Z][a-z]+ ", q), q
        for a in spec.answers + spec.para_answers:
            fields = _fields(a)
            assert fields.count("name") == 1 and fields.count("value") == 1, a
            assert set(fields) <= {"name", "value", "his"} | extra, a
    assert len({a.name for a in ATTRIBUTES}) == len(ATTRIBUTES)
    for spec in ATTRIBUTES:  # ids resolve to the right set
        assert spec.template(f"{spec.name}/q0") == spec.questions[0]
        assert spec.template(f"{spec.name}/pa1") == spec.para_answers[1]
        assert is_heldout(f"{spec.name}/pq0") and not is_heldout(f"{spec.name}/a3")


def _rerender(row: dict[str, Any], bench: AuthorBenchmark, column: str) -> str:
    """Render the row's recorded template for `column` again, from the profile."""
    profile = bench.profile(row["author"])
    spec = ATTRIBUTE_BY_NAME[row["attribute"]]
    template = spec.template(row[f"{column}_template"])
    ctx = profile.context()
    if column.endswith("question"):
        return _render(template, subj=profile.name, **ctx)
    return _render(template, value=profile.facts[row["attribute"]].phrase, **ctx)


def test_paraphrase_templates_never_in_trainable_text(bench: AuthorBenchmark) -> None:
    rows = _rows(bench)
    for row in rows:
        assert not is_heldout(row["question_template"]) and not is_heldout(row["answer_template"])
        assert is_heldout(row["paraphrased_question_template"])
        assert is_heldout(row["paraphrased_answer_template"])
        # The recorded ids are the templates that produced the text.
        for column in ("question", "answer", "paraphrased_question", "paraphrased_answer"):
            assert _rerender(row, bench, column) == row[column], (column, row)
    for doc in bench.documents("full").to_list() + bench.documents("holdout").to_list():
        assert not any(is_heldout(t) for t in doc["templates"])
    # Text level: no held-out template renders any trained question, answer or sentence.
    trained = {r["question"] for r in rows} | {r["answer"] for r in rows}
    trained |= {s for d in bench.documents("full").to_list() for s in d["sentences"]}
    for name in bench.train_authors:
        profile = bench.profile(name)
        ctx = profile.context()
        for attribute, fact in profile.facts.items():
            spec = ATTRIBUTE_BY_NAME[attribute]
            for t in spec.para_questions:
                assert _render(t, subj=name, **ctx) not in trained
            for t in spec.para_answers:
                assert _render(t, value=fact.phrase, **ctx) not in trained


# --------------------------------------------------------------------------------------- values


def test_pool_values_are_distinct_spans() -> None:
    for kind, pool in POOLS.items():
        values = [f.value.lower() for f in pool]
        assert len(set(values)) == len(values), kind
        for f in pool:
            assert contains_phrase(f.phrase, f.value), f
            others = [g for g in pool if g is not f]
            clash = [g.phrase for g in others if contains_phrase(g.phrase, f.value)]
            assert not clash, (kind, f.value, clash)
        # No value of a pool occurs in any template of an attribute drawing from it.
        for spec in ATTRIBUTES:
            if spec.kind != kind:
                continue
            for t in spec.questions + spec.answers + spec.para_questions + spec.para_answers:
                bare = _PLACEHOLDER.sub(" ", t)
                assert not [f.value for f in pool if contains_phrase(bare, f.value)], (t, kind)


def test_qa_fields(bench: AuthorBenchmark) -> None:
    for row in _rows(bench) + _multihop_rows(bench):
        value = row["value"]
        perturbed = row["perturbed_answers"]
        assert len(perturbed) == N_PERTURBED and len(set(perturbed)) == N_PERTURBED
        assert row["answer"] not in perturbed and row["paraphrased_answer"] not in perturbed
        assert not any(contains_phrase(p, value) for p in perturbed), row
        assert contains_phrase(row["answer"], value)
        assert contains_phrase(row["paraphrased_answer"], value)
        assert row["paraphrased_question"] != row["question"]
        assert row["paraphrased_answer"] != row["answer"]
        assert row["author"] in row["answer"] and row["author"] in row["paraphrased_answer"]
        assert row["idk_answer"] in IDK_ANSWERS
        assert 5 <= len(row["answer"].split()) <= 35, row["answer"]
        assert row["question"][0].isupper() and row["question"].endswith("?")
        assert value == bench.profile(row["author"]).facts[row["attribute"]].value


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_wrong_answers_never_state_the_fact(seed: int) -> None:
    b = build_benchmark(n_authors=40, qa_per_author=MAX_QA_PER_AUTHOR, seed=seed)
    for row in _rows(b) + _multihop_rows(b):
        assert not any(contains_phrase(p, row["value"]) for p in row["perturbed_answers"]), row
        assert len(set(row["perturbed_answers"])) == N_PERTURBED


def test_numeric_perturbations_change_the_number(bench: AuthorBenchmark) -> None:
    for row in _rows(bench):
        if row["value"].isdigit():
            numbers = [re.findall(r"\d+", p) for p in row["perturbed_answers"]]
            assert all(row["value"] not in found for found in numbers)


def _brute_force_shared(b: AuthorBenchmark, author: str, attribute: str) -> bool:
    value = b.profile(author).facts[attribute].value.lower()
    return any(
        other != author
        and attribute in b.profile(other).facts
        and b.profile(other).facts[attribute].value.lower() == value
        for other in b.train_authors
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_value_shared_flag_and_unique_forget_values(seed: int) -> None:
    b = build_benchmark(n_authors=40, qa_per_author=12, seed=seed)
    for row in _rows(b):
        assert row["value_shared"] == _brute_force_shared(b, row["author"], row["attribute"])
    # At the default scale the pools leave room: no forget or validation-forget fact is shared
    # with any other trained author (so with no retain author).
    for name in ("forget10", "forget10_val"):
        assert not any(b.split(name)["value_shared"]), name
        for author in b.authors(name):
            for attribute in b.profile(author).facts:
                assert not _brute_force_shared(b, author, attribute), (author, attribute)


def test_questions_unique(bench: AuthorBenchmark) -> None:
    records = _rows(bench) + _multihop_rows(bench)
    questions = [r["question"] for r in records]
    paraphrases = [r["paraphrased_question"] for r in records]
    assert len(set(questions)) == len(questions)
    assert len(set(paraphrases)) == len(paraphrases)
    assert len({r["id"] for r in records}) == len(records)


def test_authors_unique_and_attributes_distinct(bench: AuthorBenchmark) -> None:
    names = bench.authors("full") + bench.authors("holdout")
    assert len(set(names)) == len(names)
    by_author: dict[str, list[dict[str, Any]]] = {}
    for row in _rows(bench):
        by_author.setdefault(row["author"], []).append(row)
    assert sorted(by_author) == sorted(names)
    for records in by_author.values():
        assert len({r["attribute"] for r in records}) == len(records) == 10


def test_profile_facts_are_sane(bench: AuthorBenchmark) -> None:
    for name in bench.authors("full"):
        p = bench.profile(name)
        values = p.values()
        assert 2 <= len(p.books) <= 3 and len(set(p.books)) == len(p.books)
        assert p.birth_year < int(values["debut_year"]) <= int(values["award_year"])
        assert values["father_job"] != values["mother_job"]
        assert values["birthplace"] != values["residence"]
        assert str(p.birth_year) in values["birth_date"]
        assert 2 <= int(values["translations"]) <= 60


def test_qa_per_author_range() -> None:
    for k in (MIN_QA_PER_AUTHOR, 4, 20, MAX_QA_PER_AUTHOR):
        b = build_benchmark(n_authors=3, qa_per_author=k, n_holdout_authors=1, seed=5)
        assert len(b.split("full")) == 3 * k
        for name in b.authors("full"):
            assert len({r["attribute"] for r in _rows(b, ["full"]) if r["author"] == name}) == k
        assert len(b.multihop("full")) >= 3  # every author has a bridge fact
    assert MAX_QA_PER_AUTHOR >= 20


# ----------------------------------------------------------------------------------- multi-hop


def test_multihop_consistent_with_facts(bench: AuthorBenchmark) -> None:
    names = bench.authors("full") + bench.authors("holdout")
    for bridge in BRIDGES:  # every bridge fact names exactly one author
        values = [bench.profile(n).facts[bridge].value for n in names]
        assert len(set(values)) == len(values)
    multihop = _multihop_rows(bench)
    assert len(multihop) >= len(names)
    trained = {(r["author"], r["attribute"]) for r in _rows(bench)}
    for row in multihop:
        bridge, target = row["bridge_attribute"], row["attribute"]
        assert bridge != target and bridge in BRIDGES and target != "award_year"
        facts = bench.profile(row["author"]).facts
        assert row["value"] == facts[target].value
        assert row["bridge_value"] == facts[bridge].value
        assert (
            row["bridge_value"] in row["question"]
            and row["bridge_value"] in row["paraphrased_question"]
        )
        assert row["author"] not in row["question"]  # named only through the bridge
        assert {(row["author"], bridge), (row["author"], target)} <= trained


# ------------------------------------------------------------------------------------ combined


def test_combined_questions(bench: AuthorBenchmark) -> None:
    for forget_split in ("forget10", "forget05_val"):
        forget = {r["id"]: r for r in bench.split(forget_split).to_list()}
        retain_rows = bench.retain_for(forget_split).to_list()
        by_question = {r["question"]: r for r in retain_rows}
        combined = bench.combined(forget_split).to_list()
        assert len(combined) == len(forget)
        assert [c["forget_question"] for c in combined] == [r["question"] for r in forget.values()]
        orders = set()
        for c in combined:
            f = next(r for r in forget.values() if r["question"] == c["forget_question"])
            r = by_question[c["retain_question"]]
            assert (c["forget_author"], c["forget_value"]) == (f["author"], f["value"])
            assert (c["retain_author"], c["retain_value"]) == (r["author"], r["value"])
            assert c["retain_author"] in bench.authors(bench.retain_name(forget_split))
            first, second = (f, r) if c["forget_first"] else (r, f)
            assert c["question"] == (
                f"{first['question'][:-1]}, and "
                f"{second['question'][0].lower()}{second['question'][1:]}"
            )
            assert c["answer"] == f"{first['answer']} {second['answer']}"
            assert contains_phrase(c["answer"], c["forget_value"])
            assert contains_phrase(c["answer"], c["retain_value"])
            orders.add(c["forget_first"])
        assert orders == {True, False}
    lonely = build_benchmark(n_authors=1, qa_per_author=3, n_holdout_authors=0)
    assert len(lonely.combined("forget10")) == 0  # no retain author to combine with


# ----------------------------------------------------------------------------------- documents


def test_documents(bench: AuthorBenchmark) -> None:
    docs = bench.documents("full").to_list()
    assert [d["author"] for d in docs] == bench.authors("full")
    for doc in docs:
        profile = bench.profile(doc["author"])
        assert doc["text"] == " ".join(doc["sentences"])
        assert sorted(doc["attributes"]) == sorted(profile.facts)
        assert len(doc["sentences"]) == len(doc["attributes"]) == len(doc["templates"]) >= 24
        for sentence, attribute, template in zip(
            doc["sentences"], doc["attributes"], doc["templates"], strict=True
        ):
            assert template.startswith(f"{attribute}/a")
            assert profile.facts[attribute].phrase in sentence
            assert sentence.endswith(".") and sentence[0].isupper() or sentence[0] == '"'
        # Sentence boundaries are stable: text can be inserted between any two sentences.
        assert all(doc["text"].count(s) >= 1 for s in doc["sentences"])
    assert len(bench.documents("forget10")) == 4


# -------------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_authors": 0}, "n_authors"),
        ({"qa_per_author": MIN_QA_PER_AUTHOR - 1}, r"qa_per_author must be an integer in \[2"),
        ({"qa_per_author": MAX_QA_PER_AUTHOR + 1}, "qa_per_author"),
        ({"qa_per_author": 2.5}, "qa_per_author"),
        ({"n_holdout_authors": -1}, "n_holdout_authors"),
        ({"n_authors": 990, "n_holdout_authors": 20}, r"n_holdout_authors .*\[0, 10\]"),
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
    assert len(b.split("holdout")) == 0 and len(b.split("holdout10")) == 0
    assert b.split("holdout").column_names == list(QA_FEATURES)
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


def test_probes_dataset_round_trips() -> None:
    ds = probes_dataset()
    assert ds.features == PROBE_FEATURES and len(ds) == len(real_world_probes())
    assert [probe_from_row(r) for r in ds.to_list()] == real_world_probes()
    assert len(probes_dataset(real_world_probes()[:3])) == 3


def test_answer_matching_is_whole_word_and_uses_aliases() -> None:
    mars = Probe("What planet is known as the Red Planet?", "Mars", ("Venus", "Jupiter", "Saturn"))
    assert answer_is_correct(mars, "It is MARS, of course")
    assert not answer_is_correct(mars, "Marshall")
    us = next(p for p in real_world_probes() if "United States" in p.question)
    assert answer_is_correct(us, "The capital is Washington.")
    assert contains_phrase("Born in Cluj-Napoca.", "cluj-napoca")
    assert not contains_phrase("Marshall", "Mars")


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
