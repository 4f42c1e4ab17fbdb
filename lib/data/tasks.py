"""Small text-classification tasks for in-context learning and fine-tuning, as `datasets`.

Generated tasks (`build_task`, names in `TASKS`): short English sentences whose class is obvious
to a reader from one cue word (review sentiment, an animal vs a vehicle, a sport vs a food, a
weekday vs a month), but whose *label names are arbitrary* (`foo`/`bar`, `blue`/`green`,
...). A model must therefore learn the mapping from demonstrations or fine-tuning: zero-shot
accuracy is near (or below) chance and k-shot accuracy rises with k. Semantic label names are
solved zero-shot by the embedded model (0.83-0.96), leaving nothing for demonstrations to do.
Measured accuracies of the embedded model: `bench/erase.py tasks`.

Every task is a `ClassificationTask`: a `datasets.DatasetDict` with `train` and `test` splits
(columns `text` (string) and `label` (`ClassLabel` whose names are the label words)), and a
`PromptTemplate`. The same arguments give the same data (numpy generator seeded by
`(seed, task index)`); texts are distinct within and across splits; classes are balanced (sizes
differ by at most one); `split_hashes()` gives content hashes to record.

Big-Bench (`load_bigbench_task`): multiple-choice tasks of BIG-bench from the hub dataset
`tasksource/bigbench` (one config per task; splits `train`/`validation`; columns `idx`, `inputs`,
`targets`, `multiple_choice_targets`, `multiple_choice_scores`), mapped to the same schema when
every example offers the same choices. Needs the network (GPU profile).

Label scoring is `lib.evaluate.score_choices` (the log-probability of each label word after the
prompt, with the shared demonstrations' key/value cache); accuracy with a fixed demonstration
set is `lib.benchmarks.icl.icl_accuracy`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "BIGBENCH_HUB",
    "TASKS",
    "ClassificationTask",
    "PromptTemplate",
    "bigbench_to_task",
    "build_task",
    "build_tasks",
    "load_bigbench_task",
    "random_demonstrations",
]

BIGBENCH_HUB = "tasksource/bigbench"


# -------------------------------------------------------------------------------------- prompts
@dataclass(frozen=True)
class PromptTemplate:
    """How examples become a prompt.

    A prompt is `instruction` + one block per demonstration + the query block without its label:
    `"{input_prefix} {text}\\n{label_prefix} {label}"`, blocks separated by a blank line. The
    scored continuation is `" " + label word`.
    """

    instruction: str
    input_prefix: str
    label_prefix: str = "Label:"

    def block(self, text: str, label: str | None = None) -> str:
        head = f"{self.input_prefix} {text}\n{self.label_prefix}"
        return head if label is None else f"{head} {label}"

    def prefix(self, demonstrations: Sequence[tuple[str, str]]) -> str:
        """Instruction and demonstration blocks joined by blank lines (no trailing separator:
        the tokenizer splits a final "\n\n" differently from one followed by text)."""
        parts = [self.instruction] if self.instruction else []
        parts += [self.block(text, label) for text, label in demonstrations]
        return "\n\n".join(parts)

    def query(self, text: str, after_prefix: bool) -> str:
        """The query block, preceded by the blank line when it follows a non-empty prefix."""
        return ("\n\n" if after_prefix else "") + self.block(text)

    def prompt(self, demonstrations: Sequence[tuple[str, str]], query: str) -> str:
        """The prompt for `query` after `(text, label word)` demonstrations (k = 0 allowed)."""
        prefix = self.prefix(demonstrations)
        return prefix + self.query(query, bool(prefix))


@dataclass
class ClassificationTask:
    """A classification task: data (`train`/`test`), label words and the prompt template."""

    name: str
    data: Any  # datasets.DatasetDict
    template: PromptTemplate
    description: str = ""

    @property
    def label_names(self) -> list[str]:
        return list(self.data["train"].features["label"].names)

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    def demonstrations(self, indices: Sequence[int]) -> list[tuple[str, str]]:
        """`(text, label word)` of the given train rows, in the given order."""
        train = self.data["train"]
        names = self.label_names
        return [(train[int(i)]["text"], names[train[int(i)]["label"]]) for i in indices]

    def split_hashes(self) -> dict[str, str]:
        """sha256 prefix (16 hex) of every split's rows (text, label) and the label names."""
        out = {}
        for split, ds in self.data.items():
            payload = json.dumps(
                {
                    "labels": self.label_names,
                    "rows": list(zip(ds["text"], ds["label"], strict=True)),
                }
            )
            out[split] = hashlib.sha256(payload.encode()).hexdigest()[:16]
        return out


# ---------------------------------------------------------------------------- generated tasks
# Each text is a short carrier sentence around one cue word or phrase that decides the class.
# Kept are the tasks on which 16 random demonstrations lift the embedded model well above chance
# (bench/erase.py tasks). Tried and dropped: long multi-clause reviews (near chance even with 16
# shots, while "The food was awful." reaches > 0.8), a country's continent with arbitrary labels
# (0.53-0.57 at 16 shots), and a 3-class topic task (sport/food/instrument: 0.31-0.38, chance
# 0.33). Cues are shared by train and test; the texts differ.
_POSITIVE = (
    "great", "wonderful", "excellent", "fantastic", "amazing", "superb", "delightful",
    "brilliant", "lovely", "perfect", "marvelous", "terrific", "outstanding", "enjoyable",
    "pleasant", "charming", "splendid", "awesome", "fabulous", "impressive", "gorgeous",
    "magnificent", "fine", "good",
)  # fmt: skip
_NEGATIVE = (
    "terrible", "awful", "horrible", "dreadful", "disappointing", "poor", "boring",
    "disgusting", "annoying", "bad", "miserable", "lousy", "pathetic", "unpleasant",
    "mediocre", "useless", "nasty", "painful", "appalling", "atrocious", "dull", "awkward",
    "rotten", "grim",
)  # fmt: skip
_REVIEW_CARRIERS = tuple(
    f"The {noun} was {{}}."
    for noun in (
        "food", "movie", "hotel", "service", "book", "concert", "room", "trip", "show", "meal",
        "game", "phone", "album", "flight", "museum", "coffee",
    )
)  # fmt: skip

_DAYS = tuple(
    f"on {day}"
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
)
_MONTHS = tuple(
    f"in {month}"
    for month in (
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    )
)  # fmt: skip
_WHEN_CARRIERS = (
    "The meeting is {}.", "We met {}.", "The shop opened {}.", "She arrived {}.",
    "The party is {}.", "He called {}.", "The exam was {}.", "They left {}.", "Rent is due {}.",
    "I cooked dinner {}.", "The match is {}.", "It rained {}.", "The parcel came {}.",
    "We rested {}.", "Class starts {}.", "The band played {}.", "My train goes {}.",
    "The post arrived {}.", "The game was {}.", "He was paid {}.", "The museum closes {}.",
    "Our guests come {}.", "The bridge opened {}.", "She painted the fence {}.",
    "The report is due {}.", "We moved house {}.", "The market was busy {}.",
    "The baby was born {}.", "They got married {}.", "The library shut early {}.",
)  # fmt: skip

_ANIMALS = (
    "a horse", "a rabbit", "a fox", "an owl", "a deer", "a goat", "a squirrel", "a cow",
    "a duck", "a wolf", "a hedgehog", "a sheep", "a swan", "a badger", "a donkey", "a frog",
    "a pig", "a cat", "a mouse", "an eagle",
)  # fmt: skip
_VEHICLES = (
    "a bus", "a tractor", "a motorbike", "a van", "a truck", "a taxi", "a scooter", "a tram",
    "a jeep", "a lorry", "a minibus", "a sports car", "a fire engine", "a bicycle",
    "a camper van", "a limousine", "a train", "a helicopter", "an ambulance", "a police car",
)  # fmt: skip
_SIGHT_CARRIERS = (
    "I saw {}.", "There was {} outside.", "Look at {}.", "We passed {}.", "She photographed {}.",
    "He pointed at {}.", "The child drew {}.", "Near the road stood {}.", "They watched {}.",
    "Behind the house was {}.",
)  # fmt: skip

_SPORTS = (
    "football", "tennis", "golf", "rugby", "cricket", "hockey", "basketball", "baseball",
    "volleyball", "swimming", "cycling", "boxing", "skiing", "rowing", "surfing", "wrestling",
    "badminton", "fencing", "archery", "sailing",
)  # fmt: skip
_FOOD = (
    "pasta", "bread", "cheese", "soup", "rice", "salad", "pizza", "curry", "sushi", "noodles",
    "pancakes", "bananas", "yogurt", "sausages", "dumplings", "tomatoes", "carrots",
    "chocolate", "porridge", "omelettes",
)  # fmt: skip
_TOPIC_CARRIERS = (
    "We talked about {}.", "He loves {}.", "The magazine is about {}.",
    "She is an expert on {}.", "My brother hates {}.", "The podcast covers {}.",
    "I read a book about {}.", "They argued about {}.", "Everyone here likes {}.",
    "The lesson was about {}.",
)  # fmt: skip


@dataclass(frozen=True)
class _TaskSpec:
    cues: tuple[tuple[str, ...], ...]  # per class
    carriers: tuple[str, ...]  # sentence templates with one "{}" slot
    label_names: tuple[str, ...]
    template: PromptTemplate
    description: str

    def pools(self) -> list[list[str]]:
        """Distinct texts per class (carrier x cue, in a fixed order)."""
        return [
            list(dict.fromkeys(c.format(cue) for c in self.carriers for cue in cues))
            for cues in self.cues
        ]


def _template(what: str, labels: Sequence[str], prefix: str) -> PromptTemplate:
    return PromptTemplate(
        f"Classify each {what} with one of the labels: {', '.join(labels)}.", prefix
    )


#: Generated task name -> specification. Label words are single tokens of the SmolLM2 tokenizer
#: and unrelated to the classes (the mapping must come from demonstrations or training).
TASKS: dict[str, _TaskSpec] = {
    "review_foo_bar": _TaskSpec(
        (_POSITIVE, _NEGATIVE),
        _REVIEW_CARRIERS,
        ("foo", "bar"),
        _template("review", ("foo", "bar"), "Review:"),
        "review sentiment: positive -> foo, negative -> bar",
    ),
    "sighting_left_right": _TaskSpec(
        (_ANIMALS, _VEHICLES),
        _SIGHT_CARRIERS,
        ("left", "right"),
        _template("sentence", ("left", "right"), "Sentence:"),
        "what was seen: an animal -> left, a vehicle -> right",
    ),
    "topic_blue_green": _TaskSpec(
        (_SPORTS, _FOOD),
        _TOPIC_CARRIERS,
        ("blue", "green"),
        _template("sentence", ("blue", "green"), "Sentence:"),
        "topic: a sport -> blue, a food -> green",
    ),
    "when_up_down": _TaskSpec(
        (_DAYS, _MONTHS),
        _WHEN_CARRIERS,
        ("up", "down"),
        _template("sentence", ("up", "down"), "Sentence:"),
        "when: on a weekday -> up, in a month -> down",
    ),
}


def build_task(
    name: str, n_train: int = 200, n_test: int = 200, seed: int = 0
) -> ClassificationTask:
    """Generate a task of `TASKS` with balanced, distinct train and test texts.

    Raises:
        KeyError: unknown task name (the message lists `TASKS`).
        ValueError: sizes < 1 or larger than the task's pool of distinct texts.
    """
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; available: {sorted(TASKS)}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    spec = TASKS[name]
    pools = spec.pools()
    n_classes = len(pools)
    rng = np.random.default_rng([int(seed), list(TASKS).index(name)])
    per_class = [
        _class_counts(n_train, n_classes, c) + _class_counts(n_test, n_classes, c)
        for c in range(n_classes)
    ]
    capacity = min(len(p) for p in pools)
    if max(per_class) > capacity:
        raise ValueError(
            f"task {name!r} has {capacity} distinct texts per class; n_train + n_test must be "
            f"<= {capacity * n_classes} (got {n_train} + {n_test})"
        )
    rows: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for label, pool in enumerate(pools):
        chosen = [pool[i] for i in rng.permutation(len(pool))[: per_class[label]]]
        n_tr = _class_counts(n_train, n_classes, label)
        rows["train"] += [(t, label) for t in chosen[:n_tr]]
        rows["test"] += [(t, label) for t in chosen[n_tr:]]
    return ClassificationTask(
        name, _to_dataset_dict(rows, list(spec.label_names), rng), spec.template, spec.description
    )


def build_tasks(
    names: Sequence[str] | None = None, n_train: int = 200, n_test: int = 200, seed: int = 0
) -> dict[str, ClassificationTask]:
    """Several generated tasks (default: all of `TASKS`)."""
    return {n: build_task(n, n_train, n_test, seed) for n in (names or list(TASKS))}


def _class_counts(total: int, n_classes: int, label: int) -> int:
    """Size of class `label` when `total` rows are balanced over `n_classes`."""
    return total // n_classes + (1 if label < total % n_classes else 0)


def _to_dataset_dict(
    rows: dict[str, list[tuple[str, int]]], label_names: list[str], rng: np.random.Generator
) -> Any:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=label_names)})
    splits = {}
    for split, items in rows.items():
        order = rng.permutation(len(items))
        splits[split] = Dataset.from_dict(
            {"text": [items[i][0] for i in order], "label": [items[i][1] for i in order]},
            features=features,
        )
    return DatasetDict(splits)


# ------------------------------------------------------------------------------------ Big-Bench
def load_bigbench_task(
    task: str,
    path: str = BIGBENCH_HUB,
    revision: str | None = None,
    instruction: str = "",
    **load_kwargs: Any,
) -> ClassificationTask:
    """Load a BIG-bench multiple-choice task with `datasets.load_dataset(path, task)`.

    `path` may also be a local folder in the hub dataset's layout (used by the tests). The
    hub's `validation` split becomes `test`. See `bigbench_to_task` for the mapping.
    """
    from datasets import load_dataset

    raw = load_dataset(path, task, revision=revision, **load_kwargs)
    return bigbench_to_task(task, raw, instruction=instruction)


def bigbench_to_task(task: str, raw: Any, instruction: str = "") -> ClassificationTask:
    """Map a BIG-bench `DatasetDict` (columns `inputs`, `multiple_choice_targets`,
    `multiple_choice_scores`) to a `ClassificationTask`.

    The label of an example is the choice with the highest score (the first on ties); the label
    names are the choices, which must be the same set for every example (a fixed-label
    classification task); examples listing them in another order are re-indexed. The input text
    is kept verbatim (BIG-bench inputs usually carry their own question and "A:" cue), and the
    prompt uses an empty input prefix and the label prefix "Answer:".

    Raises:
        ValueError: no `train` split, or choices that differ between examples.
    """
    if "train" not in raw:
        raise ValueError(f"BIG-bench task {task!r} has no train split: {list(raw)}")
    names: list[str] | None = None
    rows: dict[str, list[tuple[str, int]]] = {}
    for split, ds in raw.items():
        target = "test" if split == "validation" else split
        items = []
        for ex in ds:
            choices = [c.strip() for c in ex["multiple_choice_targets"]]
            if names is None:
                names = choices
            if sorted(choices) != sorted(names) or len(set(choices)) != len(choices):
                raise ValueError(
                    f"BIG-bench task {task!r} is not a fixed-label task: choices {choices} "
                    f"differ from {names}"
                )
            best = int(np.argmax(ex["multiple_choice_scores"]))
            items.append((ex["inputs"], names.index(choices[best])))
        rows[target] = items
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    data = DatasetDict(
        {
            split: Dataset.from_dict(
                {"text": [t for t, _ in items], "label": [y for _, y in items]}, features=features
            )
            for split, items in rows.items()
        }
    )
    template = PromptTemplate(instruction, input_prefix="", label_prefix="Answer:")
    return ClassificationTask(task, data, template, f"BIG-bench {task} ({BIGBENCH_HUB})")


def random_demonstrations(task: ClassificationTask, k: int, seed: int = 0) -> list[int]:
    """k distinct train rows drawn uniformly (`numpy.random.default_rng([seed, k])`), in order."""
    n_train = len(task.data["train"])
    if not 0 <= k <= n_train:
        raise ValueError(f"k must be in [0, {n_train}], got {k}")
    return [int(i) for i in np.random.default_rng([seed, k]).choice(n_train, k, replace=False)]
