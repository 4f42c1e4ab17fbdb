"""Tests of lib.data.tofu: real TOFU through `datasets`, offline, on a small fixture in TOFU's
hub layout (a README with the `configs:` list and one JSON-lines file per config, split "train")
that the test writes into a temporary folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import datasets
import pytest

from lib.data import QABenchmark
from lib.data.author_words import IDK_ANSWERS
from lib.data.schema import (
    COMBINED_FEATURES,
    DOCUMENT_FEATURES,
    MULTIHOP_FEATURES,
    PROBE_FEATURES,
    QA_FEATURES,
)
from lib.data.tofu import TofuBenchmark, load_tofu

N_AUTHORS, QA = 20, 2  # TOFU: 200 authors x 20 QA


def _qa(author: int, k: int) -> dict[str, str]:
    return {
        "question": f"What is fact {k} about writer {author}?",
        "answer": f"Fact {k} about writer {author} is v{author}x{k}.",
    }


def _perturbed(author: int, k: int, with_question: bool) -> dict[str, object]:
    row: dict[str, object] = dict(_qa(author, k))
    row["paraphrased_answer"] = f"Writer {author} has fact {k}: v{author}x{k}."
    row["perturbed_answer"] = [f"Writer {author} has fact {k}: w{j}." for j in range(5)]
    if with_question:
        row["paraphrased_question"] = f"Which is fact {k} of writer {author}?"
    return row


def _write_tofu(root: Path, *, holdout: bool = True) -> Path:
    """A miniature TOFU: 20 authors x 2 QA; forget10 = last 2 authors, forget05 = forget01 =
    the last one; retain_perturbed covers authors 0-3; holdout = 2 new authors."""
    files: dict[str, list[dict[str, object]]] = {}
    authors = {
        "full": range(N_AUTHORS),
        "forget01": [19],
        "forget05": [19],
        "forget10": [18, 19],
        "retain99": range(19),
        "retain95": range(19),
        "retain90": range(18),
    }
    for config, members in authors.items():
        files[config] = [_qa(a, k) for a in members for k in range(QA)]
    for config in ("forget01", "forget05", "forget10"):
        files[f"{config}_perturbed"] = [
            _perturbed(a, k, True) for a in authors[config] for k in range(QA)
        ]
    files["retain_perturbed"] = [_perturbed(a, k, False) for a in range(4) for k in range(QA)]
    if holdout:
        files["holdout10"] = [_qa(100 + a, k) for a in range(2) for k in range(QA)]
        files["holdout05"] = files["holdout10"][:QA]
        files["holdout01"] = files["holdout10"][:QA]
    files["real_authors"] = [
        {"question": "Who wrote Hamlet?", "option1": "Shakespeare", "option2": "Marlowe",
         "option3": "Jonson", "option4": "Kyd", "answer": "Shakespeare"},
        {"question": "Who wrote Emma?", "option1": "Eliot", "option2": "Austen",
         "option3": "Bronte", "option4": "Gaskell", "answer": "Austen"},
    ]  # fmt: skip
    files["real_authors_perturbed"] = [
        {"question": "Who wrote Hamlet?", "answer": "Shakespeare",
         "paraphrased_answer": "It was Shakespeare.", "perturbed_answer": ["Marlowe", "Kyd"]},
    ]  # fmt: skip
    files["world_facts"] = [
        {"question": "Capital of Peru?", "option1": "Lima", "option2": "Quito",
         "option3": "Cusco", "option4": "Bogota", "answer": "Lima"},
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    configs = []
    for config, rows in files.items():
        (root / f"{config}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
        configs.append(f"- config_name: {config}\n  data_files: {config}.json\n")
    (root / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n# mini TOFU\n")
    return root


@pytest.fixture(scope="module")
def tofu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tofu(tmp_path_factory.mktemp("tofu"))


@pytest.fixture(scope="module")
def tofu(tofu_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TofuBenchmark:
    datasets.disable_progress_bars()
    cache = tmp_path_factory.mktemp("hf-cache")
    return load_tofu("forget10", str(tofu_dir), qa_per_author=QA, cache_dir=str(cache))


def test_forget_split_maps_fields(tofu: TofuBenchmark) -> None:
    assert isinstance(tofu, QABenchmark)
    ds = tofu.split("forget10")
    assert ds.features == QA_FEATURES and len(ds) == 2 * QA
    rows = ds.to_list()
    assert [r["author"] for r in rows] == ["tofu_author_018"] * QA + ["tofu_author_019"] * QA
    first = rows[0]
    assert first["question"] == _qa(18, 0)["question"] and first["answer"] == _qa(18, 0)["answer"]
    assert first["paraphrased_question"] == "Which is fact 0 of writer 18?"
    assert first["paraphrased_answer"] == "Writer 18 has fact 0: v18x0."
    assert first["perturbed_answers"] == [f"Writer 18 has fact 0: w{j}." for j in range(5)]
    assert first["value"] == "" and first["attribute"] == "" and first["value_shared"] is False
    assert first["idk_answer"] in IDK_ANSWERS
    assert first["id"] == "tofu/forget10/0000"
    assert tofu.authors("forget01") == ["tofu_author_019"]


def test_retain_splits_and_coverage(tofu: TofuBenchmark) -> None:
    retain = tofu.retain_for("forget10").to_list()
    assert tofu.retain_name("forget10") == "retain10" and len(retain) == 18 * QA
    covered = [r for r in retain if r["perturbed_answers"]]
    assert {r["author"] for r in covered} == {f"tofu_author_{a:03d}" for a in range(4)}
    # retain_perturbed has no paraphrased_question: filled with "" (documented).
    assert all(r["paraphrased_question"] == "" and r["paraphrased_answer"] for r in covered)
    assert all(r["paraphrased_answer"] == "" for r in retain if not r["perturbed_answers"])
    assert len(tofu.split("retain_perturbed")) == 4 * QA
    assert len(tofu.split("retain05")) == len(tofu.split("retain01")) == 19 * QA
    full = tofu.split("full").to_list()
    assert len(full) == N_AUTHORS * QA
    assert sum(bool(r["perturbed_answers"]) for r in full) == 6 * QA  # forget10 + retain cover


def test_holdout_authors_are_new(tofu: TofuBenchmark) -> None:
    assert tofu.authors("holdout") == ["tofu_holdout_000", "tofu_holdout_001"]
    assert tofu.authors("holdout01") == ["tofu_holdout_000"]
    assert not set(tofu.authors("holdout")) & set(tofu.authors("full"))


def test_validation_splits(tofu: TofuBenchmark, tofu_dir: Path, tmp_path: Path) -> None:
    assert "validation" in tofu.capabilities
    val = tofu.authors("forget10_val")
    assert len(val) == 2 and set(val) <= {f"tofu_author_{a:03d}" for a in range(4)}
    assert not set(val) & set(tofu.authors("forget10"))
    assert len(tofu.authors("forget01_val")) == 1 and set(tofu.authors("forget01_val")) <= set(val)
    assert len(tofu.split("retain10_val")) == (N_AUTHORS - 2) * QA
    assert not set(val) & set(tofu.authors("retain10_val"))
    # Validation rows carry the paraphrased and perturbed answers of retain_perturbed.
    assert all(r["perturbed_answers"] for r in tofu.split("forget10_val").to_list())
    again = load_tofu("forget10", str(tofu_dir), qa_per_author=QA, cache_dir=str(tmp_path))
    assert again.authors("forget10_val") == val
    assert again.split_hashes() == tofu.split_hashes()


def test_missing_parts_are_empty_with_schema(tofu: TofuBenchmark) -> None:
    assert tofu.multihop("forget10").features == MULTIHOP_FEATURES
    assert len(tofu.multihop("forget10")) == 0
    assert len(tofu.combined("forget10")) == 0
    assert tofu.combined("forget10").features == COMBINED_FEATURES
    assert len(tofu.documents("full")) == 0
    assert tofu.documents("full").features == DOCUMENT_FEATURES
    assert not {"values", "multihop", "combined", "documents"} & tofu.capabilities


def test_probes(tofu: TofuBenchmark) -> None:
    probes = tofu.probes()
    assert probes.features == PROBE_FEATURES
    rows = {r["question"]: r for r in probes.to_list()}
    assert rows["Who wrote Hamlet?"]["perturbed_answers"] == ["Marlowe", "Kyd"]  # *_perturbed
    assert rows["Who wrote Emma?"]["perturbed_answers"] == ["Eliot", "Bronte", "Gaskell"]
    assert rows["Capital of Peru?"]["category"] == "world_facts"


def test_bad_arguments_fail_before_loading(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="forget01, forget05, forget10"):
        load_tofu("forget20", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="qa_per_author"):
        load_tofu("forget10", str(tmp_path / "nowhere"), qa_per_author=0)
    with pytest.raises(KeyError, match="retain_perturbed"):
        load_tofu("forget10", str(tmp_path / "nowhere")).split("holdout20")


def test_missing_optional_holdout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _write_tofu(tmp_path / "tofu", holdout=False)
    bench = load_tofu("forget05", str(root), qa_per_author=QA, cache_dir=str(tmp_path / "c"))
    with caplog.at_level(logging.WARNING, logger="lib.data.tofu"):
        assert len(bench.split("holdout")) == 0
    assert "holdout10" in caplog.text
    assert bench.forget_split == "forget05" and len(bench.split("forget05")) == QA
