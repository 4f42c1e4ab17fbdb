"""Real-world probes: facts a small instruct model already knows, for model utility.

TOFU measures utility also on real authors and world facts (answers the base model knows, each
with three wrong options). These probes play that role here: a fixed list of easy facts
(capitals, authors of famous books, basic science, colours, animals, geography) with a short
answer, accepted aliases and three perturbed (wrong) short answers of the same kind.

`filter_known` keeps only the probes the model under study actually answers correctly before
unlearning, so that the utility number measures knowledge that can be lost. A tiny random test
model knows nothing; then all probes are kept (and the flag says so) so that tests still get a
utility number.

`probes_dataset(probes)` gives the same probes as a `datasets.Dataset` with the fixed columns
`lib.data.schema.PROBE_FEATURES` (question, answer, perturbed_answers, aliases, category), the
form the hub loaders (TOFU's real authors / world facts) also return. The list is fixed, so it is
deterministic by construction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datasets import Dataset

from lib.data.schema import PROBE_FEATURES, rows_to_dataset

logger = logging.getLogger(__name__)

__all__ = [
    "Probe",
    "answer_is_correct",
    "filter_known",
    "probe_from_row",
    "probes_dataset",
    "real_world_probes",
]


@dataclass(frozen=True)
class Probe:
    """One real-world fact.

    Attributes:
        question: the question, e.g. "What is the capital of France?".
        answer: the short correct answer, e.g. "Paris".
        perturbed_answers: three short wrong answers of the same kind.
        aliases: other spellings accepted as correct when checking a generation (e.g. "USA").
        category: "capital", "author", "science", "colour", "animal", "geography" or "general".
    """

    question: str
    answer: str
    perturbed_answers: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    category: str = ""

    @property
    def accepted(self) -> tuple[str, ...]:
        """The answer and its aliases."""
        return (self.answer, *self.aliases)


# (question, answer, (3 wrong answers), (aliases))
_FACTS: dict[str, tuple[tuple[str, str, tuple[str, str, str], tuple[str, ...]], ...]] = {
    "capital": (
        ("What is the capital of France?", "Paris", ("Berlin", "Madrid", "Rome"), ()),
        ("What is the capital of Japan?", "Tokyo", ("Beijing", "Seoul", "Bangkok"), ()),
        ("What is the capital of Italy?", "Rome", ("Milan", "Venice", "Naples"), ()),
        ("What is the capital of Germany?", "Berlin", ("Munich", "Vienna", "Hamburg"), ()),
        ("What is the capital of Spain?", "Madrid", ("Barcelona", "Lisbon", "Seville"), ()),
        (
            "What is the capital of the United Kingdom?",
            "London",
            ("Paris", "Dublin", "Edinburgh"),
            (),
        ),
        ("What is the capital of Russia?", "Moscow", ("Saint Petersburg", "Kyiv", "Warsaw"), ()),
        (
            "What is the capital of China?",
            "Beijing",
            ("Shanghai", "Tokyo", "Hong Kong"),
            ("Peking",),
        ),
        ("What is the capital of Egypt?", "Cairo", ("Alexandria", "Nairobi", "Baghdad"), ()),
        ("What is the capital of Greece?", "Athens", ("Sparta", "Thessaloniki", "Rome"), ()),
        ("What is the capital of Ireland?", "Dublin", ("Belfast", "Cork", "London"), ()),
        ("What is the capital of Portugal?", "Lisbon", ("Porto", "Madrid", "Seville"), ()),
        ("What is the capital of Norway?", "Oslo", ("Stockholm", "Bergen", "Copenhagen"), ()),
        (
            "What is the capital of the United States?",
            "Washington, D.C.",
            ("New York City", "Los Angeles", "Chicago"),
            ("Washington", "Washington DC", "Washington D.C."),
        ),
        ("What is the capital of Australia?", "Canberra", ("Sydney", "Melbourne", "Perth"), ()),
        ("What is the capital of Canada?", "Ottawa", ("Toronto", "Vancouver", "Montreal"), ()),
    ),
    "author": (
        (
            "Who wrote Romeo and Juliet?",
            "William Shakespeare",
            ("Charles Dickens", "Jane Austen", "Mark Twain"),
            ("Shakespeare",),
        ),
        (
            "Who wrote the Harry Potter books?",
            "J.K. Rowling",
            ("Stephen King", "Roald Dahl", "J.R.R. Tolkien"),
            ("Rowling", "J. K. Rowling"),
        ),
        (
            "Who wrote the novel 1984?",
            "George Orwell",
            ("Aldous Huxley", "Ray Bradbury", "H.G. Wells"),
            ("Orwell",),
        ),
        (
            "Who wrote Pride and Prejudice?",
            "Jane Austen",
            ("Charlotte Bronte", "Virginia Woolf", "Mary Shelley"),
            ("Austen",),
        ),
        (
            "Who wrote Don Quixote?",
            "Miguel de Cervantes",
            ("Gabriel Garcia Marquez", "Lope de Vega", "Dante Alighieri"),
            ("Cervantes",),
        ),
        (
            "Who wrote War and Peace?",
            "Leo Tolstoy",
            ("Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev"),
            ("Tolstoy",),
        ),
        ("Who wrote the Odyssey?", "Homer", ("Virgil", "Sophocles", "Plato"), ()),
        (
            "Who wrote The Adventures of Tom Sawyer?",
            "Mark Twain",
            ("Jack London", "Herman Melville", "Ernest Hemingway"),
            ("Twain", "Samuel Clemens"),
        ),
        (
            "Who wrote A Christmas Carol?",
            "Charles Dickens",
            ("Oscar Wilde", "Thomas Hardy", "Lewis Carroll"),
            ("Dickens",),
        ),
        (
            "Who created the detective Sherlock Holmes?",
            "Arthur Conan Doyle",
            ("Agatha Christie", "Edgar Allan Poe", "Raymond Chandler"),
            ("Conan Doyle", "Doyle"),
        ),
        (
            "Who wrote The Lord of the Rings?",
            "J.R.R. Tolkien",
            ("C.S. Lewis", "George R.R. Martin", "Terry Pratchett"),
            ("Tolkien",),
        ),
        (
            "Who painted the Mona Lisa?",
            "Leonardo da Vinci",
            ("Michelangelo", "Pablo Picasso", "Vincent van Gogh"),
            ("da Vinci", "Leonardo"),
        ),
    ),
    "science": (
        (
            "What planet is known as the Red Planet?",
            "Mars",
            ("Venus", "Jupiter", "Saturn"),
            (),
        ),
        (
            "What is the largest planet in our solar system?",
            "Jupiter",
            ("Saturn", "Earth", "Neptune"),
            (),
        ),
        ("What is H2O commonly called?", "Water", ("Salt", "Oxygen", "Hydrogen"), ()),
        (
            "What gas do plants absorb from the air for photosynthesis?",
            "Carbon dioxide",
            ("Oxygen", "Nitrogen", "Helium"),
            ("CO2",),
        ),
        (
            "What gas do humans need to breathe to stay alive?",
            "Oxygen",
            ("Carbon dioxide", "Helium", "Nitrogen"),
            (),
        ),
        (
            "Which organ pumps blood through the human body?",
            "The heart",
            ("The liver", "The lungs", "The brain"),
            ("heart",),
        ),
        (
            "What is the natural satellite of the Earth called?",
            "The Moon",
            ("The Sun", "Mars", "Venus"),
            ("Moon",),
        ),
        (
            "What star is at the center of our solar system?",
            "The Sun",
            ("The Moon", "Sirius", "Polaris"),
            ("Sun",),
        ),
        (
            "At what temperature in degrees Celsius does water boil at sea level?",
            "100 degrees",
            ("50 degrees", "0 degrees", "212 degrees"),
            ("100",),
        ),
        (
            "What is the hardest natural substance on Earth?",
            "Diamond",
            ("Gold", "Iron", "Granite"),
            ("diamonds",),
        ),
        (
            "What force pulls objects toward the ground?",
            "Gravity",
            ("Magnetism", "Friction", "Electricity"),
            ("gravitational",),
        ),
        (
            "Who developed the theory of relativity?",
            "Albert Einstein",
            ("Isaac Newton", "Galileo Galilei", "Nikola Tesla"),
            ("Einstein",),
        ),
        (
            "Who was the first person to walk on the Moon?",
            "Neil Armstrong",
            ("Buzz Aldrin", "Yuri Gagarin", "John Glenn"),
            ("Armstrong",),
        ),
    ),
    "colour": (
        ("What color is the sky on a clear day?", "Blue", ("Green", "Red", "Yellow"), ()),
        ("What color is fresh grass?", "Green", ("Blue", "Purple", "Orange"), ()),
        ("What color is a ripe banana?", "Yellow", ("Blue", "Purple", "Black"), ()),
        ("What color is fresh snow?", "White", ("Black", "Green", "Red"), ()),
        (
            "What color do you get by mixing blue and yellow?",
            "Green",
            ("Purple", "Orange", "Red"),
            (),
        ),
        ("What color is a stop sign?", "Red", ("Blue", "Green", "Yellow"), ()),
    ),
    "animal": (
        (
            "What is the largest mammal in the world?",
            "The blue whale",
            ("The elephant", "The giraffe", "The hippopotamus"),
            ("blue whale", "whale"),
        ),
        (
            "Which animal is known as the king of the jungle?",
            "The lion",
            ("The tiger", "The elephant", "The gorilla"),
            ("lion",),
        ),
        ("Which animal says moo?", "A cow", ("A sheep", "A dog", "A cat"), ("cow", "cows")),
        (
            "Which animal has black and white stripes?",
            "The zebra",
            ("The giraffe", "The leopard", "The lion"),
            ("zebra", "zebras"),
        ),
        (
            "What is the fastest land animal?",
            "The cheetah",
            ("The horse", "The lion", "The gazelle"),
            ("cheetah",),
        ),
        (
            "Which animal has a very long neck?",
            "The giraffe",
            ("The zebra", "The camel", "The rhinoceros"),
            ("giraffe", "giraffes"),
        ),
        ("What do bees make?", "Honey", ("Milk", "Silk", "Wax paper"), ()),
        (
            "Which animal has a trunk?",
            "The elephant",
            ("The rhinoceros", "The hippopotamus", "The giraffe"),
            ("elephant", "elephants"),
        ),
        ("How many legs does a spider have?", "Eight", ("Six", "Four", "Ten"), ("8",)),
        (
            "Which flightless bird lives in Antarctica?",
            "The penguin",
            ("The ostrich", "The emu", "The kiwi"),
            ("penguin", "penguins"),
        ),
    ),
    "geography": (
        (
            "What is the longest river in Africa?",
            "The Nile",
            ("The Congo", "The Niger", "The Zambezi"),
            ("Nile",),
        ),
        (
            "What is the tallest mountain in the world?",
            "Mount Everest",
            ("K2", "Mont Blanc", "Kilimanjaro"),
            ("Everest",),
        ),
        ("What is the largest continent?", "Asia", ("Africa", "Europe", "South America"), ()),
        (
            "What is the largest ocean on Earth?",
            "The Pacific Ocean",
            ("The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean"),
            ("Pacific",),
        ),
        (
            "What is the largest hot desert in the world?",
            "The Sahara",
            ("The Gobi", "The Kalahari", "The Mojave"),
            ("Sahara",),
        ),
        ("Which country is shaped like a boot?", "Italy", ("Spain", "Greece", "France"), ()),
        (
            "In which country are the pyramids of Giza?",
            "Egypt",
            ("Mexico", "Peru", "Greece"),
            (),
        ),
        ("In which city is the Eiffel Tower?", "Paris", ("London", "Rome", "Berlin"), ()),
        (
            "In which city is the Statue of Liberty?",
            "New York",
            ("Boston", "Chicago", "Washington, D.C."),
            ("New York City", "NYC"),
        ),
        (
            "In which country is the Great Wall?",
            "China",
            ("Japan", "India", "Mongolia"),
            (),
        ),
        (
            "Which country are kangaroos native to?",
            "Australia",
            ("New Zealand", "South Africa", "Brazil"),
            (),
        ),
        (
            "In which country is the Taj Mahal?",
            "India",
            ("Pakistan", "Egypt", "Iran"),
            (),
        ),
    ),
    "general": (
        ("How many days are there in a week?", "Seven", ("Five", "Six", "Ten"), ("7",)),
        ("How many continents are there?", "Seven", ("Five", "Six", "Nine"), ("7",)),
        ("How many days are there in a normal year?", "365", ("360", "366", "300"), ()),
        ("How many hours are there in a day?", "24", ("12", "20", "48"), ("twenty-four",)),
        ("What is the opposite of hot?", "Cold", ("Warm", "Wet", "Bright"), ()),
    ),
}


def real_world_probes() -> list[Probe]:
    """The fixed list of real-world probes (~75), in a stable order; a fresh list each call."""
    return [
        Probe(question=q, answer=a, perturbed_answers=wrong, aliases=aliases, category=category)
        for category, facts in _FACTS.items()
        for q, a, wrong, aliases in facts
    ]


def probes_dataset(probes: Sequence[Probe] | None = None) -> Dataset:
    """`probes` (default: all `real_world_probes()`) as a Dataset with `PROBE_FEATURES`."""
    rows = [
        {
            "question": p.question,
            "answer": p.answer,
            "perturbed_answers": list(p.perturbed_answers),
            "aliases": list(p.aliases),
            "category": p.category,
        }
        for p in (real_world_probes() if probes is None else probes)
    ]
    return rows_to_dataset(rows, PROBE_FEATURES)


def probe_from_row(row: dict) -> Probe:
    """The `Probe` of one `probes_dataset` row (e.g. to reuse `answer_is_correct`)."""
    return Probe(
        question=row["question"],
        answer=row["answer"],
        perturbed_answers=tuple(row["perturbed_answers"]),
        aliases=tuple(row["aliases"]),
        category=row["category"],
    )


def answer_is_correct(probe: Probe, generation: str) -> bool:
    """Whether `generation` states the probe's answer: any accepted spelling occurs as a whole
    word or phrase, case-insensitively (so "Mars" does not match "Marshall")."""
    text = generation.lower()
    return any(
        re.search(rf"(?<!\w){re.escape(alias.lower())}(?!\w)", text) is not None
        for alias in probe.accepted
    )


def filter_known(
    probes: Sequence[Probe],
    answer_fn: Callable[[list[str]], list[str]],
    min_known: int = 5,
    quiet: bool = False,
) -> tuple[list[Probe], bool]:
    """Keep the probes the model answers correctly.

    Args:
        probes: probes to check (usually `real_world_probes()`).
        answer_fn: called once with all questions; returns one generation per question (greedy
            decoding, produced by the caller), in the same order.
        min_known: if fewer probes than this are answered correctly, filtering is abandoned.
        quiet: log the outcome at DEBUG (a caller that re-filters the same cached answers for
            every evaluated model logs it once itself).

    Returns:
        `(kept, filtered)`: the correctly answered probes and True; or, when fewer than
        `min_known` are known (e.g. a tiny random test model), all probes and False, with a
        warning, so that a utility number can still be computed.

    Raises:
        ValueError: `min_known` < 0, or `answer_fn` returned a different number of answers.
    """
    if min_known < 0:
        raise ValueError(f"min_known must be >= 0, got {min_known}")
    probes = list(probes)
    generations = list(answer_fn([p.question for p in probes]))
    if len(generations) != len(probes):
        raise ValueError(
            f"answer_fn returned {len(generations)} answers for {len(probes)} questions"
        )
    kept = [p for p, g in zip(probes, generations, strict=True) if answer_is_correct(p, g)]
    if len(kept) < min_known:
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "only %d of %d real-world probes answered correctly (< min_known=%d); "
            "keeping all probes unfiltered",
            len(kept),
            len(probes),
            min_known,
        )
        return probes, False
    logger.log(
        logging.DEBUG if quiet else logging.INFO,
        "%d of %d real-world probes answered correctly",
        len(kept),
        len(probes),
    )
    return kept, True
