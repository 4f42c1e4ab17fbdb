"""TOFU-style benchmark of fictitious authors, generated deterministically from a seed.

What it builds. Every author is an invented profile of 24-25 facts (birthplace, birth date,
genre, parents' and spouse's jobs, two or three book titles, an award and its year, central
theme, style, influence, residence, studies, first career, language, publisher, debut year, a
recurring character, hobby, writing habit, number of translations). Each author gets
`qa_per_author` question/answer pairs on distinct facts, up to `multihop_per_author` multi-hop
questions (the author is named only through a unique "bridge" fact, e.g. 'Where was the author
of "The Glass Orchard" born?'), and one multi-sentence biography document stating every fact.
Combined questions pair a forget author's fact with a retain author's fact in one prompt.
All of it is returned as `datasets.Dataset` objects with the fixed columns of
`lib.data.schema` (`split`, `multihop`, `combined`, `documents`).

Measurement design (issue 6):
- Each attribute has >= 10 answer and >= 6 question templates for trainable text and a
  DISJOINT held-out set (4 + 4) used only by `paraphrased_question`, `paraphrased_answer` and
  `perturbed_answers` (see `lib.data.author_templates`); every row records its template ids.
- Each row records its gold fact span `value` (e.g. "Tallinn" for "Tallinn, Estonia"). Value
  pools are large, and the test-forget and validation-forget authors (`forget10`,
  `forget10_val` and the splits nested in them) draw values that no other trained author holds
  for the same attribute while the pools allow it; rows whose value is still held by another
  trained author for that attribute (years and counts at large scales) have
  `value_shared=True` and are to be excluded from forget fact-accuracy scoring.

Splits (by author): `full` = all train authors; `forget01/05/10` = the first ceil(p% * n)
authors (at least one) of a seeded permutation, nested; `retainXX` = `full` minus `forgetXX`;
`holdout` = never-trained authors (membership-inference non-members) and `holdoutXX` = its first
`len(forgetXX)` authors; `forgetXX_val` = the next authors of the same permutation (disjoint from
every test forget split and part of `retain10`, hence trained by the target model), for
hyperparameter selection, with `retainXX_val` = `full` minus `forgetXX_val`. Validation splits
exist when n_authors >= 2 * len(forget10) + 1.

Determinism: only numpy's seeded generators are used. Profiles come from per-author streams
`default_rng([seed, 0, index])` (generated in a fixed order: ordinary train authors, holdout
authors, then forget/validation authors, so that the latter can avoid values already taken),
rendering from `[seed, 2, index]`, the split permutation from `[seed, 1]`, pool reservations
from `[seed, 5, kind]` and combined questions from `[seed, 4, split]`. The same arguments always
give the same rows; `split_hashes()` / `fingerprint()` record them (they include
`GENERATOR_VERSION`).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any

import numpy as np
from datasets import Dataset

from lib.data import author_words as W
from lib.data.author_templates import ATTRIBUTE_BY_NAME, ATTRIBUTES, BRIDGES
from lib.data.probes import probes_dataset
from lib.data.schema import (
    COMBINED_FEATURES,
    DOCUMENT_FEATURES,
    MULTIHOP_FEATURES,
    QA_FEATURES,
    canonical_hash,
    rows_to_dataset,
)
from lib.metrics.facts import contains_phrase

logger = logging.getLogger(__name__)

__all__ = [
    "FORGET_SPLITS",
    "GENERATOR_VERSION",
    "IDK_ANSWERS",
    "MAX_QA_PER_AUTHOR",
    "MAX_TOTAL_AUTHORS",
    "MIN_QA_PER_AUTHOR",
    "N_PERTURBED",
    "QA",
    "SPLIT_NAMES",
    "AuthorBenchmark",
    "AuthorProfile",
    "Fact",
    "build_benchmark",
]

#: Bumped whenever the same arguments would give different rows (part of `fingerprint`).
GENERATOR_VERSION = 2

#: Number of wrong answers per question (TOFU's forget/retain sets have 5).
N_PERTURBED = 5

#: Forget-split name -> percentage of train authors it holds.
FORGET_SPLITS: dict[str, int] = {"forget01": 1, "forget05": 5, "forget10": 10}
_SUFFIXES = tuple(name.removeprefix("forget") for name in FORGET_SPLITS)

#: Validation forget splits (hyperparameter selection), disjoint from the test forget splits.
VAL_FORGET_SPLITS: tuple[str, ...] = tuple(f"{name}_val" for name in FORGET_SPLITS)

#: All split names, in a stable order (validation splits only exist when there are enough
#: authors; see `AuthorBenchmark.split_names`).
SPLIT_NAMES: tuple[str, ...] = (
    "full",
    *FORGET_SPLITS,
    *(f"retain{s}" for s in _SUFFIXES),
    "holdout",
    *(f"holdout{s}" for s in _SUFFIXES),
    *VAL_FORGET_SPLITS,
    *(f"retain{s}_val" for s in _SUFFIXES),
)

IDK_ANSWERS: tuple[str, ...] = W.IDK_ANSWERS

#: Most authors (train + holdout) one benchmark may hold (keeps the rejection sampling of unique
#: names, titles, awards and characters far from exhausting its combinations).
MAX_TOTAL_AUTHORS = 1000

#: Attributes only some authors have (`latest_book` needs a third book).
_OPTIONAL_ATTRIBUTES = frozenset({"latest_book"})
_CORE_ATTRIBUTES = tuple(a.name for a in ATTRIBUTES if a.name not in _OPTIONAL_ATTRIBUTES)

#: Smallest and largest `qa_per_author`: a multi-hop question needs a bridge and a target fact;
#: every author has all core attributes.
MIN_QA_PER_AUTHOR = 2
MAX_QA_PER_AUTHOR = len(_CORE_ATTRIBUTES)

#: Attributes that may be asked through a bridge: all but `award_year`, whose templates already
#: name the award (and so would give away or duplicate the award bridge).
_MULTIHOP_TARGETS = frozenset(a.name for a in ATTRIBUTES) - {"award_year"}

#: Order of the facts in a biography document.
_DOCUMENT_ORDER = (
    "birthplace", "birth_date", "father_job", "mother_job", "field_of_study", "alma_mater",
    "early_career", "language", "genre", "debut_year", "debut_book", "best_known_book",
    "latest_book", "publisher", "award", "award_year", "theme", "style", "influence",
    "signature_character", "translations", "residence", "spouse_job", "hobby", "writing_habit",
)  # fmt: skip
assert set(_DOCUMENT_ORDER) == set(ATTRIBUTE_BY_NAME)


# ----------------------------------------------------------------------------------------------
# Records.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One fact: `value` is the gold span a fact metric looks for; `phrase` (which contains it)
    is what templates render, e.g. Fact("Tallinn", "Tallinn, Estonia")."""

    value: str
    phrase: str


@dataclass(frozen=True)
class QA:
    """One QA row as a typed record; fields = the columns of `lib.data.schema.QA_FEATURES`."""

    id: str
    author: str
    attribute: str
    question: str
    answer: str
    value: str
    paraphrased_question: str
    paraphrased_answer: str
    perturbed_answers: tuple[str, ...]
    idk_answer: str
    question_template: str
    answer_template: str
    paraphrased_question_template: str
    paraphrased_answer_template: str
    value_shared: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QA:
        """The record of one dataset row (extra columns, e.g. multi-hop bridges, are ignored)."""
        kwargs = {name: row[name] for name in QA_FEATURES}
        kwargs["perturbed_answers"] = tuple(kwargs["perturbed_answers"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of the record (tuples become lists)."""
        record = asdict(self)
        record["perturbed_answers"] = list(self.perturbed_answers)
        return record


@dataclass(frozen=True)
class AuthorProfile:
    """All invented facts about one author; `facts` maps attribute name -> Fact."""

    name: str
    gender: str  # "female", "male" or "nonbinary"; only selects pronouns
    birth_year: int
    facts: Mapping[str, Fact] = field(hash=False)

    @property
    def pronoun_possessive(self) -> str:
        """'her', 'his' or 'their'."""
        return {"female": "her", "male": "his"}.get(self.gender, "their")

    @property
    def books(self) -> tuple[str, ...]:
        """Titles, oldest first (2 or 3)."""
        keys = ("debut_book", "best_known_book", "latest_book")
        return tuple(self.facts[k].value for k in keys if k in self.facts)

    def values(self) -> dict[str, str]:
        """Attribute name -> gold value (only attributes this author has)."""
        return {name: fact.value for name, fact in self.facts.items()}

    def context(self) -> dict[str, str]:
        """Fields available to templates and bridge phrases besides `subj` and `value`."""
        return {
            "name": self.name,
            "his": self.pronoun_possessive,
            "award": self.facts["award"].phrase,
            "debut_book": self.facts["debut_book"].value,
            "best_known_book": self.facts["best_known_book"].value,
            "character_name": self.facts["signature_character"].value,
        }


# ----------------------------------------------------------------------------------------------
# Value pools and drawing.
# ----------------------------------------------------------------------------------------------


def _same(text: str) -> Fact:
    return Fact(text, text)


def _strip_article(phrase: str) -> str:
    return re.sub(r"^(a|an) ", "", phrase)


def _build_pools() -> dict[str, tuple[Fact, ...]]:
    return {
        "city": tuple(Fact(city, f"{city}, {country}") for city, country in W.CITIES),
        "job": tuple(Fact(_strip_article(j), j) for j in W.JOBS),
        "career": tuple(Fact(_strip_article(j), j) for j in W.EARLY_CAREERS),
        "genre": tuple(map(_same, W.GENRES)),
        "theme": tuple(map(_same, W.THEMES)),
        "style": tuple(map(_same, W.STYLES)),
        "influence": tuple(map(_same, W.INFLUENCES)),
        "field": tuple(map(_same, W.FIELDS)),
        "language": tuple(map(_same, W.LANGUAGES)),
        "hobby": tuple(map(_same, W.HOBBIES)),
        "habit": tuple(Fact(value, phrase) for phrase, value in W.HABITS),
        "college": tuple(
            Fact(value.format(place), phrase.format(place))
            for place in W.COLLEGE_PLACES
            for phrase, value in W.COLLEGE_KINDS
        ),
        "publisher": tuple(
            Fact(f"{stem} {suffix}", f"{stem} {suffix}")
            for stem in W.PUBLISHER_STEMS
            for suffix in W.PUBLISHER_SUFFIXES
        ),
    }


#: Kind -> every possible fact of a finite pool.
POOLS: dict[str, tuple[Fact, ...]] = _build_pools()


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    """One uniformly random element of `seq` (keeps Python types, unlike `rng.choice`)."""
    return seq[int(rng.integers(len(seq)))]


def _norm(value: str) -> str:
    return value.lower()


class _Draws:
    """Draws pool values so that forget / validation-forget ("special") authors get values no
    other trained author holds for the same attribute. Per finite pool, a seeded random part
    (room for one value per special author, leaving at least a quarter of the pool) is reserved
    for special authors; ordinary and holdout authors draw from the rest, special authors prefer
    reserved values nobody holds for that attribute, then any such free value, and only then any
    value (such facts end up with `value_shared=True`). Numbers and dates of special authors
    likewise avoid values already held, within their allowed range."""

    def __init__(self, seed: int, n_special: int) -> None:
        self.reserved: dict[str, tuple[Fact, ...]] = {}
        self.ordinary: dict[str, tuple[Fact, ...]] = {}
        for i, kind in enumerate(sorted(POOLS)):
            pool = POOLS[kind]
            perm = np.random.default_rng([seed, 5, i]).permutation(len(pool))
            n_reserved = min(n_special, len(pool) - max(10, len(pool) // 4))
            self.reserved[kind] = tuple(pool[j] for j in sorted(perm[:n_reserved]))
            self.ordinary[kind] = tuple(pool[j] for j in sorted(perm[n_reserved:]))
        #: attribute -> normalised values held by trained authors generated so far.
        self.used: dict[str, set[str]] = defaultdict(set)

    def fact(
        self, rng: np.random.Generator, attribute: str, special: bool, exclude: set[str]
    ) -> Fact:
        """A fact for `attribute` (from its kind's pool) whose value is not in `exclude`."""
        kind = ATTRIBUTE_BY_NAME[attribute].kind
        if not special:
            return _pick(rng, [f for f in self.ordinary[kind] if _norm(f.value) not in exclude])
        taken = self.used[attribute] | exclude
        for candidates in (self.reserved[kind], self.ordinary[kind]):
            free = [f for f in candidates if _norm(f.value) not in taken]
            if free:
                return _pick(rng, free)
        return _pick(rng, [f for f in POOLS[kind] if _norm(f.value) not in exclude])

    def number(
        self, rng: np.random.Generator, attribute: str, special: bool, low: int, high: int
    ) -> int:
        """An integer in [low, high]; special authors avoid numbers already held if they can."""
        if special:
            free = [v for v in range(low, high + 1) if str(v) not in self.used[attribute]]
            if free:
                return _pick(rng, free)
        return int(rng.integers(low, high + 1))

    def free_years(self, birth_year: int) -> list[tuple[int, int]]:
        """(debut, award) pairs allowed for `birth_year` that no trained author holds."""
        used_debut, used_award = self.used["debut_year"], self.used["award_year"]
        return [
            (d, a)
            for d in range(birth_year + 22, min(2020, birth_year + 40) + 1)
            if str(d) not in used_debut
            for a in range(d + 2, min(2024, d + 15) + 1)
            if str(a) not in used_award
        ]

    def years(self, rng: np.random.Generator, special: bool, birth_year: int) -> tuple[int, int]:
        """(debut year, award year): debut 22-40 years after birth (<= 2020), award 2-15 years
        after the debut (<= 2024). Special authors pick, jointly, a pair of years nobody holds
        for these attributes if one exists (drawing them one at a time can corner the award year
        of a young author)."""
        debut_range = range(birth_year + 22, min(2020, birth_year + 40) + 1)

        def award_range(debut: int) -> range:
            return range(debut + 2, min(2024, debut + 15) + 1)

        if special:
            free = self.free_years(birth_year)
            if free:
                return _pick(rng, free)
        debut = self.number(rng, "debut_year", special, debut_range[0], debut_range[-1])
        return debut, self.number(rng, "award_year", special, debut + 2, award_range(debut)[-1])

    def mark(self, profile: AuthorProfile) -> None:
        """Record the values of a trained author."""
        for attribute, fact in profile.facts.items():
            self.used[attribute].add(_norm(fact.value))


@dataclass
class _Registry:
    """Values that must be unique across all authors of one benchmark (names and bridges)."""

    names: set[str] = field(default_factory=set)
    titles: set[str] = field(default_factory=set)
    awards: set[str] = field(default_factory=set)
    characters: set[str] = field(default_factory=set)


def _unique(make: Callable[[], Any], key: Callable[[Any], str], used: set[str], what: str) -> Any:
    """Draw `make()` until `key(value)` is not in `used`; add it. Fails loudly, never loops."""
    for _ in range(10_000):
        value = make()
        if key(value) not in used:
            used.add(key(value))
            return value
    raise RuntimeError(f"could not draw a unique {what}; the word lists are exhausted")


def _make_date(rng: np.random.Generator, year: int) -> str:
    # Day <= 28 keeps every month valid without a calendar.
    return f"{_pick(rng, W.MONTHS)} {int(rng.integers(1, 29))}, {year}"


def _make_title(rng: np.random.Generator) -> str:
    adj, noun, abstract = (
        _pick(rng, W.TITLE_ADJ),
        _pick(rng, W.TITLE_NOUN),
        _pick(rng, W.TITLE_ABSTRACT),
    )
    # Second nouns differ from the first so that no title reads "Salt and Salt".
    noun2 = _pick(rng, [n for n in W.TITLE_NOUN if n != noun])
    abstract2 = _pick(rng, [a for a in W.TITLE_ABSTRACT if a != abstract])
    city = _pick(rng, W.CITIES)[0]
    patterns = (
        f"The {adj} {noun}",
        f"The {noun} of {abstract}",
        f"A {noun} Made of {abstract}",
        f"{abstract} and {abstract2}",
        f"The {noun}'s {noun2}",
        f"Beneath the {adj} {noun}",
        f"Letters from the {adj} {noun}",
        f"{abstract} in {city}",
        f"The Last {noun} of {city}",
        f"When the {noun} {_pick(rng, W.TITLE_VERBS)}",
        f"Notes on {abstract}",
    )
    return _pick(rng, patterns)


def _make_award(rng: np.random.Generator) -> Fact:
    name = f"{_pick(rng, W.AWARD_ADJ)} {_pick(rng, W.AWARD_NOUN)} {_pick(rng, W.AWARD_KINDS)}"
    return Fact(name, f"{name} for {_pick(rng, W.AWARD_CATEGORIES)}")


def _make_character(rng: np.random.Generator) -> Fact:
    name = f"{_pick(rng, W.CHAR_FIRST)} {_pick(rng, W.CHAR_LAST)}"
    return Fact(name, f"{name}, {_pick(rng, W.CHAR_ROLES)}")


def _make_name(rng: np.random.Generator) -> tuple[str, str]:
    """(full name, gender); about 6% of authors are non-binary and use 'their'."""
    u = float(rng.random())
    if u < 0.47:
        gender, firsts = "female", W.FIRST_FEMALE
    elif u < 0.94:
        gender, firsts = "male", W.FIRST_MALE
    else:
        gender, firsts = "nonbinary", W.FIRST_NEUTRAL
    return f"{_pick(rng, firsts)} {_pick(rng, W.LAST)}", gender


def _make_profile(
    rng: np.random.Generator, registry: _Registry, draws: _Draws, special: bool
) -> AuthorProfile:
    name, gender = _unique(lambda: _make_name(rng), lambda x: x[0], registry.names, "author name")
    birth_year = int(rng.integers(1935, 1996))
    for _ in range(100):
        # Special authors of recent birth years can find every nearby year taken.
        if not special or draws.free_years(birth_year):
            break
        birth_year = int(rng.integers(1935, 1996))
    facts: dict[str, Fact] = {}

    def pool(attribute: str, exclude: Sequence[str] = ()) -> None:
        facts[attribute] = draws.fact(
            rng, attribute, special, {_norm(facts[a].value) for a in exclude}
        )

    pool("birthplace")
    pool("residence", ["birthplace"])
    if special:
        date = _unique(
            lambda: _make_date(rng, birth_year), _norm, set(draws.used["birth_date"]), "birth date"
        )
    else:
        date = _make_date(rng, birth_year)
    facts["birth_date"] = _same(date)
    pool("genre")
    pool("father_job")
    pool("mother_job", ["father_job"])
    pool("spouse_job", ["father_job", "mother_job"])
    n_books = 2 + int(rng.integers(2))
    books = [
        _unique(lambda: _make_title(rng), _norm, registry.titles, "title") for _ in range(n_books)
    ]
    for attribute, title in zip(
        ("debut_book", "best_known_book", "latest_book"), books, strict=False
    ):
        facts[attribute] = _same(title)
    facts["award"] = _unique(
        lambda: _make_award(rng), lambda f: _norm(f.value), registry.awards, "award"
    )
    debut, award = draws.years(rng, special, birth_year)
    facts["debut_year"] = _same(str(debut))
    facts["award_year"] = _same(str(award))
    for attribute in (
        "theme", "style", "influence", "field_of_study", "alma_mater", "early_career",
        "language", "publisher", "hobby", "writing_habit",
    ):  # fmt: skip
        pool(attribute)
    facts["signature_character"] = _unique(
        lambda: _make_character(rng), lambda f: _norm(f.value), registry.characters, "character"
    )
    translations = draws.number(rng, "translations", special, 2, 60)
    facts["translations"] = _same(str(translations))
    return AuthorProfile(
        name=name, gender=gender, birth_year=birth_year, facts=MappingProxyType(facts)
    )


# ----------------------------------------------------------------------------------------------
# Rendering.
# ----------------------------------------------------------------------------------------------


def _wrong_maker(kind: str, profile: AuthorProfile, rng: np.random.Generator) -> Callable[[], Fact]:
    """A sampler of plausible facts of `kind` (the caller excludes true ones). Years and dates
    stay near the true ones so that wrong answers are not trivially implausible."""

    def near(year: int, spread: int) -> Callable[[], Fact]:
        def make() -> Fact:
            return _same(str(min(2024, year + int(rng.integers(-spread, spread + 1)))))

        return make

    if kind in POOLS:
        return lambda: _pick(rng, POOLS[kind])
    if kind == "title":
        return lambda: _same(_make_title(rng))
    if kind == "award":
        return lambda: _make_award(rng)
    if kind == "character":
        return lambda: _make_character(rng)
    if kind == "date":
        return lambda: _same(_make_date(rng, profile.birth_year + int(rng.integers(-12, 13))))
    if kind == "year":
        return near(int(profile.facts["debut_year"].value), 10)
    if kind == "count":
        return lambda: _same(str(int(rng.integers(2, 61))))
    raise KeyError(f"no wrong-value sampler for kind {kind!r}")


def _alternatives(
    rng: np.random.Generator, make: Callable[[], Fact], true: Sequence[Fact], k: int
) -> list[Fact]:
    """`k` distinct wrong facts: no true value occurs in a wrong phrase and no wrong value in a
    true phrase (as whole words): "epic fantasy" is not clearly wrong for a fantasy writer, and
    a wrong answer that contains the true value would count as correct."""
    out: list[Fact] = []
    for _ in range(10_000):
        if len(out) == k:
            return out
        fact = make()
        clash = any(
            contains_phrase(fact.phrase, t.value) or contains_phrase(t.phrase, fact.value)
            for t in true
        )
        if not clash and all(_norm(fact.value) != _norm(o.value) for o in out):
            out.append(fact)
    raise RuntimeError(f"could not draw {k} distinct wrong values")


def _render(template: str, **fields: str) -> str:
    """Fill a template and capitalise the first letter (`{subj}` may start with "the")."""
    text = template.format(**fields)
    return text[:1].upper() + text[1:]


def _make_qa(
    rng: np.random.Generator,
    profile: AuthorProfile,
    attribute: str,
    row_id: str,
    shared: bool,
    subjects: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """One QA row. `subjects` = (subject of the question, of the paraphrased question): the
    author's name by default, bridge phrases for multi-hop questions."""
    spec = ATTRIBUTE_BY_NAME[attribute]
    ctx = profile.context()
    fact = profile.facts[attribute]
    subj, para_subj = subjects or (profile.name, profile.name)
    qi = int(rng.integers(len(spec.questions)))
    ai = int(rng.integers(len(spec.answers)))
    pqi = int(rng.integers(len(spec.para_questions)))
    pai = int(rng.integers(len(spec.para_answers)))
    # Other facts of the same kind (another book, the other parent's job) are true, not wrong.
    true = [f for a, f in profile.facts.items() if ATTRIBUTE_BY_NAME[a].kind == spec.kind]
    wrong = _alternatives(rng, _wrong_maker(spec.kind, profile, rng), true, N_PERTURBED)
    para_answer = spec.para_answers[pai]
    return {
        "id": row_id,
        "author": profile.name,
        "attribute": attribute,
        "question": _render(spec.questions[qi], subj=subj, **ctx),
        "answer": _render(spec.answers[ai], value=fact.phrase, **ctx),
        "value": fact.value,
        "paraphrased_question": _render(spec.para_questions[pqi], subj=para_subj, **ctx),
        "paraphrased_answer": _render(para_answer, value=fact.phrase, **ctx),
        "perturbed_answers": [_render(para_answer, value=w.phrase, **ctx) for w in wrong],
        "idk_answer": _pick(rng, IDK_ANSWERS),
        "question_template": f"{attribute}/q{qi}",
        "answer_template": f"{attribute}/a{ai}",
        "paraphrased_question_template": f"{attribute}/pq{pqi}",
        "paraphrased_answer_template": f"{attribute}/pa{pai}",
        "value_shared": shared,
    }


def _select_attributes(
    rng: np.random.Generator, profile: AuthorProfile, qa_per_author: int
) -> list[str]:
    """`qa_per_author` distinct attributes, at least one of them a bridge (so that every author
    gets a multi-hop question whose facts are both trained), in random order."""
    available = list(profile.facts)
    first = _pick(rng, [a for a in available if a in BRIDGES])
    rest = [a for a in available if a != first]
    chosen = [first] + [rest[int(i)] for i in rng.choice(len(rest), qa_per_author - 1, False)]
    return [chosen[int(i)] for i in rng.permutation(len(chosen))]


def _make_multihop(
    rng: np.random.Generator,
    profile: AuthorProfile,
    attributes: list[str],
    k: int,
    id_prefix: str,
    shared: Mapping[str, bool],
) -> list[dict[str, Any]]:
    """Up to `k` multi-hop rows: a bridge fact of the author (unique across authors) names them,
    and another of their trained facts is asked."""
    ctx = profile.context()
    out: list[dict[str, Any]] = []
    for bridge in [a for a in attributes if a in BRIDGES][:k]:
        targets = [a for a in attributes if a in _MULTIHOP_TARGETS and a != bridge]
        if not targets:
            continue
        target = _pick(rng, targets)
        subjects = (BRIDGES[bridge][0].format(**ctx), BRIDGES[bridge][1].format(**ctx))
        row = _make_qa(
            rng, profile, target, f"{id_prefix}/mh:{bridge}>{target}", shared[target], subjects
        )
        row["bridge_attribute"] = bridge
        row["bridge_value"] = profile.facts[bridge].value
        out.append(row)
    return out


def _make_document(rng: np.random.Generator, profile: AuthorProfile, doc_id: str) -> dict[str, Any]:
    """A biography: one sentence per fact, each from a random TRAINABLE answer template."""
    ctx = profile.context()
    sentences, attributes, templates = [], [], []
    for attribute in _DOCUMENT_ORDER:
        if attribute not in profile.facts:
            continue
        spec = ATTRIBUTE_BY_NAME[attribute]
        ai = int(rng.integers(len(spec.answers)))
        sentences.append(_render(spec.answers[ai], value=profile.facts[attribute].phrase, **ctx))
        attributes.append(attribute)
        templates.append(f"{attribute}/a{ai}")
    return {
        "id": doc_id,
        "author": profile.name,
        "text": " ".join(sentences),
        "sentences": sentences,
        "attributes": attributes,
        "templates": templates,
    }


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _combine(first: Mapping[str, Any], second: Mapping[str, Any]) -> tuple[str, str]:
    """One question asking both rows' questions; the answer states both answers."""
    question = f"{first['question'].rstrip('?')}, and {_lower_first(second['question'])}"
    return question, f"{first['answer']} {second['answer']}"


# ----------------------------------------------------------------------------------------------
# The benchmark.
# ----------------------------------------------------------------------------------------------


def _forget_count(percent: int, n_authors: int) -> int:
    # Integer ceil: float ceil(0.1 * 30) would give 4 because 0.1 * 30 = 3.0000000000000004.
    return max(1, -(-percent * n_authors // 100))


class AuthorBenchmark:
    """A generated fictitious-author benchmark with TOFU-style splits (build with
    `build_benchmark`). Every accessor returns a fresh `datasets.Dataset` with the fixed schema
    of `lib.data.schema`; implements `lib.data.schema.QABenchmark`."""

    def __init__(
        self,
        *,
        config: Mapping[str, int],
        profiles: Sequence[AuthorProfile],
        n_train: int,
        qa: Mapping[str, Sequence[dict[str, Any]]],
        multihop: Mapping[str, Sequence[dict[str, Any]]],
        documents: Mapping[str, dict[str, Any]],
        authors: Mapping[str, tuple[str, ...]],
    ) -> None:
        self._config = dict(config)
        self.seed = int(config["seed"])
        self.qa_per_author = int(config["qa_per_author"])
        self.multihop_per_author = int(config["multihop_per_author"])
        self._profiles = {p.name: p for p in profiles}
        #: Names of the authors that may be trained on, in generation-index order.
        self.train_authors: tuple[str, ...] = tuple(p.name for p in profiles[:n_train])
        #: Names of the never-trained authors (membership-inference non-members).
        self.holdout_authors: tuple[str, ...] = tuple(p.name for p in profiles[n_train:])
        self._qa = qa
        self._multihop = multihop
        self._documents = documents
        self._authors = dict(authors)
        has_val = all(name in self._authors for name in VAL_FORGET_SPLITS)
        caps = {"values", "templates", "multihop", "combined", "documents"}
        #: Optional parts this benchmark provides (see `lib.data.schema.QABenchmark`).
        self.capabilities: frozenset[str] = frozenset(caps | ({"validation"} if has_val else set()))

    # -- identity ---------------------------------------------------------------------------

    @property
    def n_authors(self) -> int:
        """Number of train authors."""
        return len(self.train_authors)

    @property
    def n_holdout_authors(self) -> int:
        """Number of holdout (never trained) authors."""
        return len(self.holdout_authors)

    @property
    def split_names(self) -> tuple[str, ...]:
        """The split names this benchmark has (validation splits need enough authors)."""
        return tuple(name for name in SPLIT_NAMES if name in self._authors)

    def __repr__(self) -> str:
        return (
            f"AuthorBenchmark(n_authors={self.n_authors}, qa_per_author={self.qa_per_author}, "
            f"n_holdout_authors={self.n_holdout_authors}, seed={self.seed})"
        )

    def config(self) -> dict[str, int]:
        """The arguments that rebuild this benchmark with `build_benchmark(**config)`."""
        return dict(self._config)

    # -- splits -----------------------------------------------------------------------------

    def _check(self, name: str) -> None:
        if name not in self._authors:
            if name in SPLIT_NAMES:
                raise KeyError(
                    f"split {name!r} needs n_authors >= 2 * len(forget10) + 1 (has "
                    f"{self.n_authors}); available: {', '.join(self.split_names)}"
                )
            raise KeyError(f"unknown split {name!r}; allowed: {', '.join(self.split_names)}")

    def authors(self, name: str) -> list[str]:
        """Author names of split `name`, in generation-index order."""
        self._check(name)
        return list(self._authors[name])

    def profile(self, author: str) -> AuthorProfile:
        """The full invented profile of one author (train or holdout)."""
        if author not in self._profiles:
            raise KeyError(f"unknown author {author!r}")
        return self._profiles[author]

    def _rows(self, name: str) -> list[dict[str, Any]]:
        self._check(name)
        return [row for author in self._authors[name] for row in self._qa[author]]

    def split(self, name: str) -> Dataset:
        """QA rows of split `name` (columns `QA_FEATURES`), grouped by author.

        Raises:
            KeyError: unknown split (the message lists the available ones).
        """
        return rows_to_dataset(self._rows(name), QA_FEATURES)

    def records(self, name: str) -> list[QA]:
        """Split `name` as typed `QA` records (same rows as `split`)."""
        return [QA.from_row(row) for row in self._rows(name)]

    def retain_name(self, forget_split: str) -> str:
        """The retain split matching a forget split: "forget05" -> "retain05",
        "forget10_val" -> "retain10_val"."""
        if forget_split not in FORGET_SPLITS and forget_split not in VAL_FORGET_SPLITS:
            allowed = ", ".join((*FORGET_SPLITS, *VAL_FORGET_SPLITS))
            raise KeyError(f"unknown forget split {forget_split!r}; allowed: {allowed}")
        retain = forget_split.replace("forget", "retain")
        self._check(retain)
        return retain

    def retain_for(self, forget_split: str) -> Dataset:
        """The retain split matching a forget split (see `retain_name`)."""
        return self.split(self.retain_name(forget_split))

    def multihop(self, name: str) -> Dataset:
        """Multi-hop rows (`MULTIHOP_FEATURES`) about the authors of split `name`."""
        self._check(name)
        rows = [row for author in self._authors[name] for row in self._multihop[author]]
        return rows_to_dataset(rows, MULTIHOP_FEATURES)

    def documents(self, name: str) -> Dataset:
        """One biography per author of split `name` (`DOCUMENT_FEATURES`)."""
        self._check(name)
        return rows_to_dataset([self._documents[a] for a in self._authors[name]], DOCUMENT_FEATURES)

    def _combined_rows(self, forget_split: str) -> list[dict[str, Any]]:
        retain_rows = self._rows(self.retain_name(forget_split))
        forget_rows = self._rows(forget_split)
        if not retain_rows:
            return []
        rng = np.random.default_rng([self.seed, 4, SPLIT_NAMES.index(forget_split)])
        out = []
        for k, forget in enumerate(forget_rows):
            retain = retain_rows[int(rng.integers(len(retain_rows)))]
            forget_first = bool(rng.random() < 0.5)
            pair = (forget, retain) if forget_first else (retain, forget)
            question, answer = _combine(*pair)
            row = {"id": f"{forget_split}/combined{k:05d}", "question": question}
            row.update(answer=answer, forget_first=forget_first)
            for part, src in (("forget", forget), ("retain", retain)):
                row[f"{part}_author"] = src["author"]
                row[f"{part}_attribute"] = src["attribute"]
                row[f"{part}_question"] = src["question"]
                row[f"{part}_answer"] = src["answer"]
                row[f"{part}_value"] = src["value"]
                row[f"{part}_value_shared"] = src["value_shared"]
            out.append(row)
        return out

    def combined(self, forget_split: str) -> Dataset:
        """One combined question per row of a forget split (`COMBINED_FEATURES`): its question
        joined with a trained question about a random author of the matching retain split, in
        random order. Score each part on its own value: the forget part should be gone, the
        retain part kept. Empty when the retain split is empty."""
        return rows_to_dataset(self._combined_rows(forget_split), COMBINED_FEATURES)

    def probes(self) -> Dataset:
        """The real-world probes (`PROBE_FEATURES`), facts the base model already knows."""
        return probes_dataset()

    # -- hashes -----------------------------------------------------------------------------

    def split_hashes(self) -> dict[str, str]:
        """Name -> 16-hex-char content hash: every QA split, "multihop:<s>" and "documents:<s>"
        for s in (full, holdout), and "combined:<forget split>", for run manifests."""
        hashes = {name: canonical_hash(self._rows(name)) for name in self.split_names}
        for name in ("full", "holdout"):
            multihop = [r for a in self._authors[name] for r in self._multihop[a]]
            hashes[f"multihop:{name}"] = canonical_hash(multihop)
            hashes[f"documents:{name}"] = canonical_hash(
                [self._documents[a] for a in self._authors[name]]
            )
        for name in (*FORGET_SPLITS, *VAL_FORGET_SPLITS):
            if name in self._authors:
                hashes[f"combined:{name}"] = canonical_hash(self._combined_rows(name))
        return hashes

    def fingerprint(self) -> str:
        """One 16-hex-char hash of the generator version, configuration and every split hash."""
        return canonical_hash(
            {"version": GENERATOR_VERSION, "config": self.config(), "splits": self.split_hashes()}
        )


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def _split_authors(
    order: Sequence[int], n_train: int, n_holdout: int
) -> dict[str, tuple[int, ...]]:
    """Split name -> author indices (train authors 0..n_train-1, holdout after them)."""
    train = tuple(range(n_train))
    holdout = tuple(range(n_train, n_train + n_holdout))
    out: dict[str, tuple[int, ...]] = {"full": train, "holdout": holdout}
    counts = {s: _forget_count(FORGET_SPLITS[f"forget{s}"], n_train) for s in _SUFFIXES}
    n_test = counts["10"]
    for s, k in counts.items():
        forget = set(order[:k])
        out[f"forget{s}"] = tuple(i for i in train if i in forget)
        out[f"retain{s}"] = tuple(i for i in train if i not in forget)
        out[f"holdout{s}"] = holdout[:k]
    if n_train >= 2 * n_test + 1:
        for s, k in counts.items():
            forget = set(order[n_test : n_test + k])
            out[f"forget{s}_val"] = tuple(i for i in train if i in forget)
            out[f"retain{s}_val"] = tuple(i for i in train if i not in forget)
    return out


@lru_cache(maxsize=8)
def build_benchmark(
    n_authors: int = 40,
    qa_per_author: int = 10,
    n_holdout_authors: int | None = None,
    seed: int = 0,
    multihop_per_author: int = 2,
) -> AuthorBenchmark:
    """Generate the fictitious-author benchmark deterministically (cached per arguments; the
    returned object is read-only: every accessor builds fresh datasets).

    Args:
        n_authors: number of train authors (forget + retain), in [1, 1000].
        qa_per_author: QA pairs per author, each on a different attribute, in
            [MIN_QA_PER_AUTHOR, MAX_QA_PER_AUTHOR] = [2, 24].
        n_holdout_authors: never-trained authors for membership inference;
            default max(1, round(0.1 * n_authors)). May be 0.
        seed: non-negative integer; the same arguments always give the same benchmark.
        multihop_per_author: at most this many multi-hop questions per author (one per bridge
            attribute among the author's QA), in [0, 4].

    Raises:
        ValueError: an argument is out of range (the message states the allowed range).
    """
    n_authors = _check_int("n_authors", n_authors, 1, MAX_TOTAL_AUTHORS)
    qa_per_author = _check_int("qa_per_author", qa_per_author, MIN_QA_PER_AUTHOR, MAX_QA_PER_AUTHOR)
    if n_holdout_authors is None:
        n_holdout_authors = max(1, round(0.1 * n_authors))
    n_holdout_authors = _check_int(
        "n_holdout_authors", n_holdout_authors, 0, MAX_TOTAL_AUTHORS - n_authors
    )
    seed = _check_int("seed", seed, 0)
    multihop_per_author = _check_int("multihop_per_author", multihop_per_author, 0, len(BRIDGES))
    total = n_authors + n_holdout_authors

    order = [int(i) for i in np.random.default_rng([seed, 1]).permutation(n_authors)]
    split_idx = _split_authors(order, n_authors, n_holdout_authors)
    special = set(split_idx["forget10"]) | set(split_idx.get("forget10_val", ()))

    # Ordinary train authors first, then holdout, then the special ones, so that these can
    # avoid every value a trained author already holds.
    draws = _Draws(seed, len(special))
    registry = _Registry()
    profiles: dict[int, AuthorProfile] = {}
    ordinary = [i for i in range(n_authors) if i not in special]
    for index in [*ordinary, *range(n_authors, total), *sorted(special)]:
        rng = np.random.default_rng([seed, 0, index])
        profile = _make_profile(rng, registry, draws, index in special)
        profiles[index] = profile
        if index < n_authors:
            draws.mark(profile)

    shared = _shared_flags([profiles[i] for i in range(total)], n_authors)
    qa: dict[str, list[dict[str, Any]]] = {}
    multihop: dict[str, list[dict[str, Any]]] = {}
    documents: dict[str, dict[str, Any]] = {}
    for index in range(total):
        profile = profiles[index]
        rng = np.random.default_rng([seed, 2, index])
        prefix = f"author{index:04d}"
        attributes = _select_attributes(rng, profile, qa_per_author)
        flags = shared[profile.name]
        qa[profile.name] = [
            _make_qa(rng, profile, a, f"{prefix}/{a}", flags[a]) for a in attributes
        ]
        multihop[profile.name] = _make_multihop(
            rng, profile, attributes, multihop_per_author, prefix, flags
        )
        documents[profile.name] = _make_document(rng, profile, f"{prefix}/bio")

    names = {i: profiles[i].name for i in range(total)}
    bench = AuthorBenchmark(
        config={
            "n_authors": n_authors,
            "qa_per_author": qa_per_author,
            "n_holdout_authors": n_holdout_authors,
            "seed": seed,
            "multihop_per_author": multihop_per_author,
        },
        profiles=[profiles[i] for i in range(total)],
        n_train=n_authors,
        qa=qa,
        multihop=multihop,
        documents=documents,
        authors={name: tuple(names[i] for i in idx) for name, idx in split_idx.items()},
    )
    logger.debug("built %r", bench)
    return bench


def _shared_flags(profiles: Sequence[AuthorProfile], n_train: int) -> dict[str, dict[str, bool]]:
    """Author -> attribute -> whether another TRAINED author holds the same (normalised) value
    for the same attribute."""
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)
    for index, profile in enumerate(profiles[:n_train]):
        for attribute, fact in profile.facts.items():
            holders[(attribute, _norm(fact.value))].add(index)
    return {
        profile.name: {
            attribute: bool(holders[(attribute, _norm(fact.value))] - {index})
            for attribute, fact in profile.facts.items()
        }
        for index, profile in enumerate(profiles)
    }
