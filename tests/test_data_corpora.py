"""Tests of lib.data.corpora (stdlib code, pydoc prose, biographies) and lib.data.unlearn_hub
(the paper's `llmunlearn/unlearn_dataset`, offline on a parquet fixture the test writes)."""

from __future__ import annotations

import platform
import sysconfig
from pathlib import Path
from pydoc_data.topics import topics

import datasets
import pytest

from lib.data import corpora as corpora_module
from lib.data.corpora import GENERAL, PretrainCorpora, build_corpora, chunk_text
from lib.data.schema import CORPUS_FEATURES
from lib.data.unlearn_hub import load_unlearn_dataset

SIZES = {
    "n_forget": 3,
    "n_approximate": 3,
    "n_retain": 5,
    "n_general_retain": 6,
    "n_general_eval": 4,
    "max_chars": 2000,
    "min_chars": 400,
}


@pytest.fixture(scope="module")
def corpora() -> PretrainCorpora:
    return build_corpora(**SIZES)


def _unit(row: dict) -> tuple[str, str]:
    """The unit a document belongs to: stdlib top-level module, pydoc topic or author."""
    source = row["source_id"].split("#")[0]
    if row["domain"] == "code" or source.endswith(".py"):
        return ("code", source.split("/")[0].removesuffix(".py"))
    if source.startswith("pydoc:"):
        return ("prose", source)
    return ("bio", source.split("/")[0])


def test_chunk_text_by_hand() -> None:
    assert chunk_text("aaaa\n\nbbbb\n\ncc", 9, 0) == ["aaaa", "bbbb\n\ncc"]
    assert chunk_text("aaaa\n\nbbbb\n\ncc", 9, 5) == ["bbbb\n\ncc"]
    assert chunk_text("x" * 25, 10, 0) == ["x" * 10, "x" * 10, "x" * 5]
    assert chunk_text("l1\nl2\nl3", 5, 0, separator="\n") == ["l1\nl2", "l3"]
    assert chunk_text("abc\ndefgh\nij", 7, 0) == ["abc", "defgh", "ij"]


def test_sizes_schema_and_lengths(corpora: PretrainCorpora) -> None:
    assert corpora.domains == ("code", "prose", "bio")
    for domain in corpora.domains:
        for split, n in (("forget", 3), ("approximate", 3), ("retain", 5)):
            ds = corpora.split(domain, split)
            assert ds.features == CORPUS_FEATURES and len(ds) == n
            assert set(ds["domain"]) == {domain} and set(ds["split"]) == {split}
    general_retain = corpora.split(GENERAL, "retain").to_list()
    assert [r["domain"] for r in general_retain].count("code") == 2  # 6 over 3 domains
    assert len(corpora.split(GENERAL, "evaluation")) == 4  # 2 + 1 + 1
    ids = []
    for domain, split in corpora.split_names:
        for row in corpora.split(domain, split).to_list():
            assert row["n_chars"] == len(row["text"])
            assert 400 <= len(row["text"]) <= 2000
            ids.append(row["id"])
    assert len(set(ids)) == len(ids)


def test_units_never_shared_between_splits(corpora: PretrainCorpora) -> None:
    owner: dict[tuple[str, str], tuple[str, str]] = {}
    for domain, split in corpora.split_names:
        for row in corpora.split(domain, split).to_list():
            unit = _unit(row)
            assert owner.setdefault(unit, (domain, split)) == (domain, split), unit
    assert len({u for u in owner if u[0] == "code"}) >= 6  # at most 2 documents per module


def test_documents_come_from_their_sources(corpora: PretrainCorpora) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for row in corpora.split("code", "forget").to_list():
        path = stdlib / row["source_id"].split("#")[0]
        assert row["text"] in path.read_text(encoding="utf-8")
    units = corpora_module._code_units(2000, 400)
    assert "stringprep" not in units and "encodings" not in units and "test" not in units
    assert "json" in units and all("/test" not in sid for docs in units.values() for sid, _ in docs)
    for row in corpora.split("prose", "approximate").to_list():
        topic = row["source_id"].removeprefix("pydoc:").split("#")[0]
        assert row["text"] in topics[topic]
    for row in corpora.split("bio", "retain").to_list():
        assert " was " in row["text"] or " is " in row["text"]


def test_deterministic_and_hashed(corpora: PretrainCorpora, monkeypatch) -> None:
    again = build_corpora(**SIZES)
    assert again.split_hashes() == corpora.split_hashes()
    assert again.fingerprint() == corpora.fingerprint()
    other = build_corpora(**SIZES, seed=1)
    assert other.split_hashes()["code/forget"] != corpora.split_hashes()["code/forget"]
    meta = corpora.metadata()
    assert meta["python_version"] == platform.python_version()
    assert meta["sizes"]["prose/forget"]["documents"] == 3
    # The stdlib differs between Python versions, so the version is part of the fingerprint.
    monkeypatch.setattr(corpora_module.platform, "python_version", lambda: "3.99.0")
    assert build_corpora(**SIZES).fingerprint() != corpora.fingerprint()


def test_subset_of_domains() -> None:
    only = build_corpora(("bio",), n_forget=2, n_approximate=2, n_retain=2, n_general_retain=2,
                         n_general_eval=1)  # fmt: skip
    assert only.domains == ("bio",)
    assert len(only.split(GENERAL, "retain")) == 2
    with pytest.raises(KeyError, match="bio/forget"):
        only.split("code", "forget")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"domains": ("code", "poetry")}, "domains"),
        ({"domains": ("code", "code")}, "domains"),
        ({"domains": ()}, "domains"),
        ({"n_forget": 0}, "n_forget"),
        ({"n_general_eval": -1}, "n_general_eval"),
        ({"max_chars": 100}, "max_chars"),
        ({"min_chars": 5000, "max_chars": 3000}, "min_chars"),
        ({"max_docs_per_unit": 0}, "max_docs_per_unit"),
        ({"domains": ("prose",), "n_retain": 5000}, r"domain 'prose' has only \d+ documents"),
    ],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_corpora(**kwargs)


# ------------------------------------------------------------------------- llmunlearn hub data


def _write_hub_fixture(root: Path, github_column: str = "content") -> Path:
    """A miniature `llmunlearn/unlearn_dataset`: parquet files in the card's layout."""
    tables = {
        ("arxiv", "forget"): ("text", 3),
        ("arxiv", "approximate"): ("text", 5),
        ("arxiv", "retain"): ("text", 4),
        ("github", "forget"): (github_column, 2),
        ("github", "approximate"): (github_column, 3),
        ("github", "retain"): (github_column, 2),
        ("general", "retain"): ("content", 4),
        ("general", "evaluation"): ("content", 2),
    }
    lines = ["---", "configs:"]
    for config in ("arxiv", "general", "github"):
        lines += [f"- config_name: {config}", "  data_files:"]
        for (c, split), (column, n) in tables.items():
            if c != config:
                continue
            (root / config).mkdir(parents=True, exist_ok=True)
            texts = [f"{config} {split} document {i} " + "lorem ipsum " * 10 for i in range(n)]
            datasets.Dataset.from_dict({column: texts}).to_parquet(
                str(root / config / f"{split}-00000-of-00001.parquet")
            )
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (root / "README.md").write_text("\n".join([*lines, "---", "# mini unlearn_dataset", ""]))
    return root


def test_unlearn_hub_loader(tmp_path: Path) -> None:
    datasets.disable_progress_bars()
    root = _write_hub_fixture(tmp_path / "hub")
    corp = load_unlearn_dataset(
        path=str(root), n_approximate=2, max_chars=30, cache_dir=str(tmp_path / "cache")
    )
    assert corp.domains == ("arxiv", "github")
    assert len(corp.split("arxiv", "forget")) == 3  # None = all rows
    approx = corp.split("arxiv", "approximate").to_list()
    assert [r["source_id"] for r in approx] == ["arxiv/approximate/0", "arxiv/approximate/1"]
    assert approx[0]["text"] == ("arxiv approximate document 0 " + "lorem ipsum " * 10)[:30]
    assert approx[0]["n_chars"] == 30 and approx[0]["id"] == "arxiv/approximate/arxiv/approximate/0"
    github = corp.split("github", "retain").to_list()  # `content` column (older card revision)
    assert github[1]["text"].startswith("github retain document 1")
    general = corp.split(GENERAL, "evaluation")
    assert general.features == CORPUS_FEATURES and len(general) == 2
    assert set(general["domain"]) == {"general"}
    assert corp.metadata()["source"] == str(root)
    assert corp.metadata()["sizes"]["general/retain"]["documents"] == 4
    only = load_unlearn_dataset(("github",), path=str(root), n_forget=1,
                                cache_dir=str(tmp_path / "cache"))  # fmt: skip
    assert only.domains == ("github",) and len(only.split("github", "forget")) == 1


def test_unlearn_hub_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="domains"):
        load_unlearn_dataset(("books",), path=str(tmp_path))
    with pytest.raises(ValueError, match="n_forget"):
        load_unlearn_dataset(path=str(tmp_path), n_forget=-1)
    root = _write_hub_fixture(tmp_path / "hub", github_column="code")
    with pytest.raises(ValueError, match="no text column"):
        load_unlearn_dataset(("github",), path=str(root), cache_dir=str(tmp_path / "cache"))
