"""General prompts for replay during fine-tuning: keep the base model's general behaviour while
it learns the fictitious authors.

Fine-tuning a small model on hundreds of templated biography answers teaches it more than the
facts: it starts answering real-world questions in the same template, with invented names
(measured on SmolLM2-135M: real-world probe accuracy fell from 0.97 to about 0.5 after one
epoch at lr 1e-4). Mixing in *general data* answered the way the base model answers it
(self-distillation: the targets are the base model's own greedy answers, generated once and
cached by the benchmark) counters that drift without teaching anything new.

`general_prompts(n, seed)` builds `n` prompts deterministically: real-world knowledge questions
of the kinds the utility probes ask (capitals, authors, places, science) about *other*
entities, then templated instructions (arithmetic, word play, short writing tasks). The
benchmark adds the real-world probes that are *not* evaluated; the evaluated probes are never
trained on.
"""

from __future__ import annotations

import numpy as np

_WORDS = (
    "apple", "river", "mountain", "garden", "window", "teacher", "bicycle", "candle", "forest",
    "ocean", "library", "pencil", "bridge", "summer", "winter", "kitchen", "music", "letter",
    "market", "island", "doctor", "planet", "harbor", "meadow", "lantern", "basket", "thunder",
)  # fmt: skip
_ADJECTIVES = (
    "hot", "tall", "happy", "fast", "bright", "heavy", "early", "strong", "quiet", "full",
    "young", "wide", "soft", "rich", "clean", "open", "cheap", "wet",
)  # fmt: skip
_THINGS_COLOURS = (
    ("the sky on a clear day", "blue"), ("fresh grass", "green"), ("a ripe banana", "yellow"),
    ("snow", "white"), ("coal", "black"), ("a ripe tomato", "red"), ("an orange", "orange"),
)  # fmt: skip
_TOPICS = (
    "the sea", "a rainy day", "breakfast", "a quiet library", "autumn leaves", "a busy market",
    "a mountain hike", "a good friend", "learning to swim", "the night sky",
)  # fmt: skip
_LETTERS = "ABCDEFGHLMPRST"
# Real-world entities for knowledge questions of the kinds the probes ask (capitals, authors,
# places, science): the replay answers are the base model's own, so these lists need no
# answers. Entities that the evaluated probes ask about are left out.
_COUNTRIES = (
    "Sweden", "Finland", "Denmark", "Poland", "Austria", "Switzerland", "Belgium", "Netherlands",
    "Hungary", "Romania", "Bulgaria", "Turkey", "Iran", "Iraq", "Saudi Arabia", "India",
    "Pakistan", "Thailand", "Vietnam", "Indonesia", "the Philippines", "South Korea", "Mexico",
    "Brazil", "Argentina", "Chile", "Peru", "Colombia", "Kenya", "Nigeria", "Morocco",
    "South Africa", "Ethiopia", "New Zealand", "Cuba", "Ukraine", "the Czech Republic", "Israel",
)  # fmt: skip
_BOOKS = (
    "Hamlet", "Macbeth", "The Great Gatsby", "Moby-Dick", "Jane Eyre", "Wuthering Heights",
    "Crime and Punishment", "Anna Karenina", "The Old Man and the Sea", "Frankenstein",
    "Dracula", "The Hobbit", "Les Miserables", "The Divine Comedy", "Great Expectations",
    "Oliver Twist", "Little Women", "The Catcher in the Rye", "To Kill a Mockingbird",
    "Brave New World", "Animal Farm", "The Little Prince", "One Hundred Years of Solitude",
)  # fmt: skip
_PLACES = (
    "the Colosseum", "Big Ben", "the Sydney Opera House", "Machu Picchu", "the Acropolis",
    "Mount Fuji", "the Kremlin", "Niagara Falls", "the Leaning Tower of Pisa", "Stonehenge",
    "the Golden Gate Bridge", "Angkor Wat", "the Alhambra", "Petra",
)  # fmt: skip
_ELEMENTS = (
    "gold", "silver", "iron", "oxygen", "hydrogen", "carbon", "sodium", "helium", "copper",
    "nitrogen", "calcium", "lead", "zinc", "uranium",
)  # fmt: skip
_PEOPLE = (
    "Isaac Newton", "Marie Curie", "Charles Darwin", "Galileo Galilei", "Ludwig van Beethoven",
    "Wolfgang Amadeus Mozart", "Pablo Picasso", "Vincent van Gogh", "Napoleon Bonaparte",
    "Cleopatra", "Nelson Mandela", "Abraham Lincoln", "Thomas Edison", "Nikola Tesla",
)  # fmt: skip


def knowledge_prompts() -> list[str]:
    """Real-world knowledge questions of the probes' kinds, about other entities."""
    return (
        [f"What is the capital of {c}?" for c in _COUNTRIES]
        + [f"Who wrote {b}?" for b in _BOOKS]
        + [f"In which country is {p}?" for p in _PLACES]
        + [f"What is the chemical symbol for {e}?" for e in _ELEMENTS]
        + [f"What is {who} famous for?" for who in _PEOPLE]
        + [f"What language is spoken in {c}?" for c in _COUNTRIES[::3]]
    )


def _arithmetic(rng: np.random.Generator) -> str:
    a, b = (int(x) for x in rng.integers(2, 60, size=2))
    op = rng.choice(["plus", "minus", "times"])
    if op == "minus" and b > a:
        a, b = b, a
    return f"What is {a} {op} {b}?"


def _make(kind: int, rng: np.random.Generator) -> str:
    word = str(rng.choice(_WORDS))
    if kind == 0:
        return _arithmetic(rng)
    if kind == 1:
        return f"What is the opposite of '{rng.choice(_ADJECTIVES)}'?"
    if kind == 2:
        return f"What is the plural of the word '{word}'?"
    if kind == 3:
        return f"Name an animal whose name starts with the letter {rng.choice(list(_LETTERS))}."
    if kind == 4:
        thing, _ = _THINGS_COLOURS[int(rng.integers(len(_THINGS_COLOURS)))]
        return f"What colour is {thing}?"
    if kind == 5:
        return f"Write one short sentence about {rng.choice(_TOPICS)}."
    if kind == 6:
        return f"How many letters are in the word '{word}'?"
    return f"Give a synonym of the word '{rng.choice(_ADJECTIVES)}'."


def general_prompts(n: int, seed: int = 0, exclude: tuple[str, ...] = ()) -> list[str]:
    """`n` distinct general prompts, deterministic from `seed`: knowledge questions first
    (in a seeded order), then templated instructions; `exclude` lists questions never used
    (e.g. the evaluated probes)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng([seed, 7])
    banned = set(exclude)
    knowledge = [q for q in knowledge_prompts() if q not in banned]
    order = rng.permutation(len(knowledge))
    seen: dict[str, None] = {knowledge[i]: None for i in order[:n]}
    attempts = 0
    while len(seen) < n:
        attempts += 1
        if attempts > 100 * max(1, n):
            raise ValueError(f"cannot build {n} distinct general prompts (got {len(seen)})")
        prompt = _make(len(seen) % 8, rng)
        if prompt not in banned:
            seen.setdefault(prompt, None)
    return list(seen)
