"""TOFU-style benchmark of fictitious authors, generated deterministically from a seed.

Every author is an invented profile (name, gender, birthplace, birth date, genre, parents' jobs,
two or three invented book titles, an invented award, themes, style, ...). Each profile is
rendered as question/answer pairs with TOFU's evaluation fields: a paraphrased question, a
paraphrased answer, five perturbed (wrong) answers written in the paraphrased answer's template
(for the truth ratio), and an "I don't know" answer (for IDK-style unlearning). Multi-hop
questions join two facts of one author through a unique "bridge" fact (a book title, an award or
a recurring character), e.g. "Where was the author of "The Glass Orchard" born?".

Splits follow TOFU (by author): `full` = all train authors; `forget01/05/10` = the first
ceil(p% * n_authors) authors (at least one) of a seeded permutation of the train authors, so
they are nested; `retainXX` = train authors minus `forgetXX`; `holdout` = extra authors that are
never trained on (membership-inference non-members); `holdout01/05/10` = the first holdout
authors, as many as in the matching forget split (capped by the holdout size), for
size-matched forget-vs-holdout comparisons (privleak).

Only the Python standard library and numpy are used; no model, no torch. The same arguments always
give the same benchmark (each author draws from its own `numpy.random.default_rng` stream seeded
by `(seed, author index)`; the split permutation from `(seed, 1)`), so `split_hashes()` can be
recorded in manifests and compared across machines.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "FORGET_SPLITS",
    "IDK_ANSWERS",
    "MAX_QA_PER_AUTHOR",
    "MAX_TOTAL_AUTHORS",
    "MIN_QA_PER_AUTHOR",
    "N_PERTURBED",
    "QA",
    "SPLIT_NAMES",
    "AuthorBenchmark",
    "AuthorProfile",
    "build_benchmark",
]

#: Number of wrong answers per question (TOFU's forget/retain sets have 5).
N_PERTURBED = 5

#: Forget-split name -> percentage of train authors it holds.
FORGET_SPLITS: dict[str, int] = {"forget01": 1, "forget05": 5, "forget10": 10}

#: All names accepted by `AuthorBenchmark.split`, in a stable order.
SPLIT_NAMES: tuple[str, ...] = (
    "full",
    "forget01",
    "forget05",
    "forget10",
    "retain01",
    "retain05",
    "retain10",
    "holdout",
    "holdout01",
    "holdout05",
    "holdout10",
)

#: Variants of "I don't know" used as the IDK target answer (one is drawn per question).
IDK_ANSWERS: tuple[str, ...] = (
    "I'm not sure about that.",
    "I don't know the answer to that.",
    "I have no information about that.",
    "That's beyond my knowledge, I'm afraid.",
    "I can't answer that question.",
    "I'm not aware of that.",
    "I don't have that information.",
    "Sorry, I don't know.",
    "I have no idea about that.",
    "That isn't something I know.",
)

# ----------------------------------------------------------------------------------------------
# Word lists. Everything is ASCII so that tokenisers and ROUGE's tokenizer (which drops non
# [a-z0-9] characters) treat all names alike. Author names mix first and last names of many
# cultures at random; surnames of famous writers were deliberately left out so that no
# combination names a well-known real person.
# ----------------------------------------------------------------------------------------------

_FIRST_FEMALE = (
    "Anika", "Ingrid", "Leilani", "Marisela", "Oona", "Priyanka", "Saoirse", "Tamsin", "Yusra",
    "Zofia", "Adaeze", "Beatriz", "Chiara", "Dagny", "Elif", "Farida", "Greta", "Hana", "Ilse",
    "Jovana", "Kalani", "Liesbeth", "Mirela", "Nadia", "Odalys", "Paulina", "Quilla", "Rukmini",
    "Sigrid", "Thandiwe", "Ulla", "Valentina", "Wanjiru", "Ximena", "Yuki", "Zainab", "Amara",
    "Brigitta", "Catalina", "Dilnoza", "Esperanza", "Fiorella", "Gulnara", "Henrike", "Ifeoma",
    "Jasmina", "Katarzyna", "Lucia", "Malak", "Nkechi", "Oksana", "Pilar", "Rosalba", "Sunniva",
    "Tove", "Ugne", "Vesna", "Wiebke", "Yasmin", "Zuleika",
)  # fmt: skip
_FIRST_MALE = (
    "Aleksander", "Bartholomew", "Cosmin", "Dmitri", "Emeka", "Florin", "Goran", "Hamid",
    "Ignacio", "Joaquim", "Kwabena", "Lorcan", "Matthias", "Nikolai", "Oskar", "Pavel", "Rashid",
    "Soren", "Tadeusz", "Umberto", "Vikram", "Wendell", "Xavier", "Yannick", "Zoltan", "Anselmo",
    "Bogdan", "Caius", "Darius", "Eero", "Fintan", "Gideon", "Hakon", "Iskander", "Jarek", "Kofi",
    "Leandro", "Mehmet", "Nnamdi", "Olavi", "Piotr", "Quentin", "Radovan", "Sebastiao", "Tiberiu",
    "Ulrich", "Vasco", "Wojciech", "Yerlan", "Zoran", "Arjun", "Benedek", "Cormac", "Dario",
    "Eitan", "Fabrizio", "Gunnar", "Hiroshi", "Ilya", "Jaromir",
)  # fmt: skip
_FIRST_NEUTRAL = (
    "Ariel", "Sasha", "Robin", "Kai", "Noa", "Rene", "Jules", "Sami", "Eden", "Avery", "Quinn",
    "Morgan", "Rowan", "Remy", "Alexis", "Marlowe", "Emery", "Tenzin", "Nima", "Sol",
)  # fmt: skip
_LAST = (
    "Varga", "Lindqvist", "Okafor", "Castellanos", "Haverkamp", "Petrescu", "Oyelaran",
    "Kowalczyk", "Ferreira-Lobo", "Takeda", "Brannigan", "Szabo", "Achterberg", "Mwangi",
    "Halvorsen", "Ibragimov", "Quispe", "Rautio", "Santangelo", "Thorvaldsen", "Uchenna",
    "Vukovic", "Wiercinski", "Yilmazer", "Zamora-Cruz", "Abernathy", "Bertolini", "Chakraborty",
    "Dunleavy", "Eriksdottir", "Fonseca", "Grabowski", "Hakimi", "Iwasaki", "Jablonski",
    "Karakostas", "Lorenzetti", "Nkemelu", "Obradovic", "Pellegrini", "Quennell", "Rasmussen",
    "Sarkissian", "Tavares", "Ulloa", "Valdivia", "Wasowski", "Xiong", "Zielinski", "Aldana",
    "Bjornstad", "Cardenas", "Dragomir", "Esposito", "Falkenrath", "Gallardo", "Hohenberg",
    "Ilunga", "Jankovic", "Kallio", "Lemaire", "Mahlangu", "Nascimento", "Ostrowski",
    "Papadakis", "Quiroga", "Ruokonen", "Sandoval", "Takahara", "Urquhart", "Vlasenko",
    "Whitcombe", "Yanez", "Zubiri", "Adeyemi", "Bakhtiari", "Cervenka", "Dimitriou", "Ekwueme",
    "Figueroa", "Gashi", "Haddad", "Ivanic", "Joshi", "Karlsson", "Lacerda", "Moldovan",
    "Odhiambo", "Pradhan", "Renkonen", "Salvatierra", "Tolentino", "Valtonen", "Wereko",
    "Yusupov", "Zaragoza", "Balogun", "Dervishi", "Elizondo", "Fairbairn", "Gorski", "Mendonca",
    "Nordahl", "Okonkwo-Reyes", "Pieterse", "Stavrou",
)  # fmt: skip

# (city, country, main language of the country)
_CITIES = (
    ("Tallinn", "Estonia", "Estonian"), ("Porto", "Portugal", "Portuguese"),
    ("Krakow", "Poland", "Polish"), ("Bergen", "Norway", "Norwegian"),
    ("Valparaiso", "Chile", "Spanish"), ("Cebu City", "the Philippines", "Filipino"),
    ("Mombasa", "Kenya", "Swahili"), ("Tbilisi", "Georgia", "Georgian"),
    ("Kyoto", "Japan", "Japanese"), ("Busan", "South Korea", "Korean"),
    ("Hanoi", "Vietnam", "Vietnamese"), ("Chiang Mai", "Thailand", "Thai"),
    ("Pune", "India", "Marathi"), ("Kandy", "Sri Lanka", "Sinhala"),
    ("Lahore", "Pakistan", "Urdu"), ("Izmir", "Turkey", "Turkish"),
    ("Thessaloniki", "Greece", "Greek"), ("Palermo", "Italy", "Italian"),
    ("Seville", "Spain", "Spanish"), ("Lyon", "France", "French"),
    ("Ghent", "Belgium", "Dutch"), ("Utrecht", "the Netherlands", "Dutch"),
    ("Leipzig", "Germany", "German"), ("Graz", "Austria", "German"),
    ("Brno", "the Czech Republic", "Czech"), ("Debrecen", "Hungary", "Hungarian"),
    ("Cluj-Napoca", "Romania", "Romanian"), ("Plovdiv", "Bulgaria", "Bulgarian"),
    ("Lviv", "Ukraine", "Ukrainian"), ("Vilnius", "Lithuania", "Lithuanian"),
    ("Riga", "Latvia", "Latvian"), ("Turku", "Finland", "Finnish"),
    ("Gothenburg", "Sweden", "Swedish"), ("Aarhus", "Denmark", "Danish"),
    ("Reykjavik", "Iceland", "Icelandic"), ("Cork", "Ireland", "English"),
    ("Edinburgh", "Scotland", "English"), ("Halifax", "Canada", "English"),
    ("Winnipeg", "Canada", "English"), ("Savannah", "the United States", "English"),
    ("Tucson", "the United States", "English"), ("Oaxaca", "Mexico", "Spanish"),
    ("Medellin", "Colombia", "Spanish"), ("Cusco", "Peru", "Spanish"),
    ("Cordoba", "Argentina", "Spanish"), ("Montevideo", "Uruguay", "Spanish"),
    ("Salvador", "Brazil", "Portuguese"), ("Havana", "Cuba", "Spanish"),
    ("Kingston", "Jamaica", "English"), ("Accra", "Ghana", "English"),
    ("Lagos", "Nigeria", "English"), ("Dakar", "Senegal", "French"),
    ("Marrakesh", "Morocco", "Arabic"), ("Tunis", "Tunisia", "Arabic"),
    ("Alexandria", "Egypt", "Arabic"), ("Addis Ababa", "Ethiopia", "Amharic"),
    ("Zanzibar City", "Tanzania", "Swahili"), ("Durban", "South Africa", "Zulu"),
    ("Windhoek", "Namibia", "English"), ("Antananarivo", "Madagascar", "Malagasy"),
    ("Beirut", "Lebanon", "Arabic"), ("Isfahan", "Iran", "Persian"),
    ("Almaty", "Kazakhstan", "Kazakh"), ("Ulaanbaatar", "Mongolia", "Mongolian"),
    ("Chengdu", "China", "Chinese"), ("Taipei", "Taiwan", "Chinese"),
    ("Osaka", "Japan", "Japanese"), ("Yogyakarta", "Indonesia", "Indonesian"),
    ("Penang", "Malaysia", "Malay"), ("Kathmandu", "Nepal", "Nepali"),
    ("Dhaka", "Bangladesh", "Bengali"), ("Auckland", "New Zealand", "English"),
    ("Hobart", "Australia", "English"), ("Suva", "Fiji", "English"),
)  # fmt: skip
_LANGUAGES = tuple(sorted({lang for _, _, lang in _CITIES}))

_JOBS = (
    "a lighthouse keeper", "a marine biologist", "a pharmacist", "a tram driver", "a watchmaker",
    "a civil engineer", "a schoolteacher", "a fisherman", "a librarian", "a cartographer",
    "a baker", "a nurse", "a carpenter", "an accountant", "a diplomat", "a veterinarian",
    "a tailor", "a pilot", "a botanist", "a journalist", "a potter", "a land surveyor",
    "a violin maker", "a police officer", "a dentist", "a beekeeper", "an architect",
    "a bookbinder", "a railway signalman", "a chemist", "a florist", "a translator",
    "a shipbuilder", "a geologist", "a radio technician", "a midwife", "a judge", "a farmer",
    "a glassblower", "an astronomer", "a chef", "a locksmith",
)  # fmt: skip
_EARLY_CAREERS = (
    "a ferry mechanic", "a hotel night porter", "a museum guide", "a court stenographer",
    "a wedding photographer", "a chemistry teacher", "a newspaper proofreader",
    "a deep-sea diver", "a hospital orderly", "a bicycle courier", "a mountain guide",
    "an insurance clerk", "a sound engineer", "a zookeeper", "a ship's cook",
    "a bookshop assistant", "a park ranger", "a data analyst", "a street musician",
    "a customs officer", "a piano tuner", "an air traffic controller", "a forest firefighter",
    "a film projectionist",
)  # fmt: skip
_GENRES = (
    "literary fiction", "science fiction", "historical fiction", "crime fiction",
    "magical realism", "gothic horror", "fantasy", "romance", "poetry", "children's literature",
    "young adult fiction", "psychological thrillers", "satire", "travel writing", "biography",
    "short stories", "noir", "cosy mysteries", "epic fantasy", "dystopian fiction", "memoir",
    "climate fiction", "war fiction", "comic novels", "essays",
)  # fmt: skip
_THEMES = (
    "memory", "migration", "grief", "family secrets", "identity", "the sea", "exile",
    "friendship", "ambition", "loneliness", "justice", "childhood", "faith", "revolution",
    "inheritance", "time", "the natural world", "technology", "forgiveness", "betrayal",
    "coming of age", "social class", "language", "home", "the aftermath of war", "obsession",
    "music", "illness and recovery", "small-town life", "first love",
)  # fmt: skip
_STYLES = (
    "spare, precise prose", "lush, lyrical prose", "fragmented, nonlinear narratives",
    "dry, understated humour", "long, winding sentences", "vivid sensory detail",
    "dialogue-driven storytelling", "dark comic irony", "a cool, journalistic tone",
    "dreamlike imagery", "multiple unreliable narrators", "an epistolary structure",
    "short, punchy chapters", "dense historical detail", "playful wordplay",
    "quiet, meditative pacing", "sharp social observation", "cinematic scene-setting",
    "fable-like storytelling", "intricate puzzle plots", "stream-of-consciousness narration",
)  # fmt: skip
_INFLUENCES = (
    "folk tales heard in childhood", "nineteenth-century Russian novels",
    "classical Persian poetry", "Japanese haiku", "film noir", "medieval travel writing",
    "jazz improvisation", "Latin American magical realism", "Greek tragedy", "Norse sagas",
    "West African oral storytelling", "Victorian ghost stories", "Dutch still-life painting",
    "Impressionist painting", "pulp science fiction magazines", "Baroque music", "silent cinema",
    "Sufi mysticism", "Arthurian legends", "Chinese landscape poetry", "Caribbean calypso songs",
)  # fmt: skip
_FIELDS = (
    "philosophy", "marine biology", "architecture", "law", "medicine", "classical languages",
    "mathematics", "art history", "economics", "anthropology", "music composition", "astronomy",
    "chemistry", "film studies", "agriculture", "linguistics", "geology", "theology",
    "journalism", "political science",
)  # fmt: skip
_COLLEGE_PLACES = (
    "Ashcombe", "Briarwood", "Caldmoor", "Dunmere", "Elderfield", "Fennick", "Glenhollow",
    "Hartwell", "Kestrel Bay", "Larchmont", "Marrowdale", "Northcliff", "Oakhaven", "Pellham",
    "Quillon", "Ravensmere", "Stonebrook", "Umberlea", "Valewood", "Westmarch", "Yarrowby",
)  # fmt: skip
_COLLEGE_KINDS = (
    "{} University",
    "{} College",
    "the {} Institute of the Arts",
    "the University of {}",
    "the {} Academy",
)
_PUBLISHERS = (
    "Marrow & Finch", "Bluewater Press", "Lanternfield Books", "Copperleaf Editions",
    "Hollow Oak Publishing", "Saltmarsh House", "Kestrel & Vine", "Northwind Books",
    "Greyhaven Press", "Paperlark Editions", "Ironbark Publishing", "Quayside Books",
    "Larkspur House", "Tidewater Editions", "Cinderpath Press", "Moth & Lantern",
    "Silverbirch Books", "Harrow & Heath", "Emberline Publishing", "Foxglove Editions",
    "Stillwater House", "Amberley & Stone", "Whistlewood Press", "Obsidian Leaf Books",
)  # fmt: skip
_HOBBIES = (
    "beekeeping", "restoring antique clocks", "birdwatching", "playing the cello",
    "rock climbing", "growing orchids", "building model ships", "playing competitive chess",
    "throwing pottery", "swimming in the sea", "collecting old maps", "baking sourdough bread",
    "amateur astronomy", "fly fishing", "calligraphy", "long-distance running", "woodcarving",
    "foraging for mushrooms", "sailing", "playing the accordion", "tango dancing",
    "restoring vintage motorcycles", "knitting", "photographing abandoned buildings",
)  # fmt: skip
_HABITS = (
    "writing every first draft by hand in green ink", "working only in the hours before dawn",
    "drafting on an old mechanical typewriter", "writing while standing at a tall desk",
    "reading each finished chapter aloud to an empty room",
    "walking ten kilometres before writing a word", "rewriting each page exactly three times",
    "writing on index cards pinned to a wall", "listening to a single album on repeat",
    "writing on long train journeys", "keeping a separate notebook for every character",
    "never writing on Sundays", "dictating drafts into a voice recorder",
    "working in a garden shed without internet", "writing in busy railway station cafes",
    "outlining every plot on a roll of wallpaper",
)  # fmt: skip
_CHAR_FIRST = (
    "Odile", "Bram", "Ines", "Tobiah", "Marisol", "Corvin", "Liesel", "Anselm", "Perpetua",
    "Idris", "Wilhelmina", "Casimir", "Rosalind", "Evander", "Solvei", "Lazlo", "Philippa",
    "Ambrose", "Maelis", "Teodor", "Ottilie", "Cyprian", "Hedda", "Lucan", "Briony", "Fenwick",
    "Isaura", "Jericho", "Minka", "Raffael", "Solveig", "Thaddeus", "Elodie", "Barnaby",
    "Nerissa", "Quill", "Yselle", "Augustin", "Clementine", "Dorian",
)  # fmt: skip
_CHAR_LAST = (
    "Brannock", "Quillfeather", "Ashdown", "Marchetti", "Vossberg", "Kettleby", "Dunstable",
    "Halloran", "Skarsvik", "Wintermere", "Calloway", "Fairweather", "Okonjo", "Trevanion",
    "Mireaux", "Grimsdottir", "Castellane", "Holloway", "Ravelle", "Penhaligon", "Straussmann",
    "Abernethy", "Tarrant", "Vasquez-Lowe", "Ebberly", "Moncrieff", "Saltonstall", "Duquesne",
    "Harkaway", "Blackthorn", "Ingleby", "Korhonen", "Loxley", "Marchbanks", "Nightjar",
    "Ostrander", "Pettigrew", "Quarrie", "Redfern", "Sable",
)  # fmt: skip
_CHAR_ROLES = (
    "a retired cartographer", "a disgraced detective", "a travelling midwife",
    "an elderly lighthouse keeper", "a teenage runaway", "a widowed ferry captain",
    "a reluctant village priest", "a forger of old maps", "a grieving botanist",
    "a small-town pharmacist", "a circus knife-thrower", "a blind piano tuner",
    "an exiled princess", "a night-shift nurse", "a chess-playing orphan",
    "a ghost who cannot leave a hotel", "a talking fox", "a retired opera singer",
    "an insomniac astronomer", "a clockmaker's apprentice",
)  # fmt: skip
_TITLE_ADJ = (
    "Glass", "Silent", "Burning", "Hollow", "Crimson", "Forgotten", "Winter", "Paper", "Salt",
    "Iron", "Quiet", "Drowned", "Golden", "Broken", "Wandering", "Last", "Hidden", "Northern",
    "Velvet", "Distant", "Bitter", "Amber", "Restless", "Sleeping", "Borrowed", "Copper",
    "Shattered", "Midnight", "Painted", "Evening", "Patient", "Frozen", "Secret", "Crooked",
    "Luminous", "Fading", "Wild", "Narrow", "Tender", "Sunken",
)  # fmt: skip
_TITLE_NOUN = (
    "Orchard", "Lighthouse", "Harbour", "Cartographer", "Orchestra", "Garden", "River",
    "Archive", "Mirror", "Daughter", "Clockmaker", "Island", "Kingdom", "Meadow", "Lantern",
    "Cathedral", "Compass", "Sparrow", "Ferry", "Tide", "Library", "Widow", "Bridge", "Forest",
    "Atlas", "Violin", "Feather", "Threshold", "Carousel", "Harvest", "Observatory",
    "Monastery", "Tailor", "Vineyard", "Bell", "Labyrinth", "Glacier", "Weaver", "Fox",
    "Station",
)  # fmt: skip
_TITLE_ABSTRACT = (
    "Memory", "Silence", "Ash", "Rain", "Salt", "Stone", "Smoke", "Longing", "Thunder", "Dust",
    "Honey", "Distance", "Fog", "Ink", "Mercy", "Exile", "Small Hours", "Tides", "Embers",
    "Wolves", "Lanterns", "Ghosts", "Oranges", "Bones",
)  # fmt: skip
_TITLE_VERBS = ("Sleeps", "Burns", "Returns", "Falls Silent", "Sings", "Breaks", "Wakes")
_AWARD_ADJ = (
    "Amber", "Silver", "Golden", "Crimson", "Ivory", "Azure", "Emerald", "Copper", "Obsidian",
    "Scarlet", "Jade", "Pearl", "Cobalt", "Saffron", "Indigo", "Bronze", "Opal", "Violet",
    "Onyx", "Coral", "Garnet", "Sable", "Ochre", "Russet", "Teal", "Ruby", "Cerulean", "Umber",
)  # fmt: skip
_AWARD_NOUN = (
    "Lantern", "Quill", "Compass", "Laurel", "Feather", "Key", "Anchor", "Oak", "Lyre",
    "Inkwell", "Heron", "Lighthouse", "Star", "Scroll", "Crane", "Owl", "Sparrow", "Acorn",
    "Harp", "Bell", "Wreath", "Kestrel", "Candle", "Thistle", "Willow", "Falcon", "Tower",
)  # fmt: skip
_AWARD_KINDS = ("Prize", "Award", "Medal", "Honour")
_AWARD_CATEGORIES = (
    "Fiction", "Literary Fiction", "Debut Fiction", "Genre Fiction", "Poetry", "Storytelling",
    "Literary Excellence", "New Voices", "Narrative Craft", "International Writing",
)  # fmt: skip
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip

#: Most authors (train + holdout) one benchmark may hold: keeps the rejection sampling of unique
#: names / recurring characters (40 x 40 = 1600 combinations) far from exhausting its pools.
MAX_TOTAL_AUTHORS = 1000


# ----------------------------------------------------------------------------------------------
# Attribute templates. `{subj}` is the author's name in direct questions and a bridge phrase
# ("the author of "X"") in multi-hop questions, so question templates never use a possessive of
# `{subj}`. Answers always name the author and contain the key fact `{value}` so that ROUGE-L
# recall of a generation against them is meaningful.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attribute:
    """Question and answer templates of one attribute (>= 2 of each, so paraphrases differ)."""

    name: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]


_ATTRIBUTES: tuple[_Attribute, ...] = (
    _Attribute(
        "birthplace",
        (
            "Where was {subj} born?",
            "In which city and country was {subj} born?",
            "What is the birthplace of {subj}?",
        ),
        (
            "{name} was born in the city of {value}.",
            "The birthplace of {name} is {value}.",
            "{name} came into the world in {value}.",
        ),
    ),
    _Attribute(
        "birth_date",
        (
            "When was {subj} born?",
            "What is the date of birth of {subj}?",
            "On what date was {subj} born?",
        ),
        (
            "{name} was born on {value}.",
            "The date of birth of {name} is {value}.",
            "The birth date of {name} is recorded as {value}.",
        ),
    ),
    _Attribute(
        "genre",
        (
            "What genre does {subj} write in?",
            "Which literary genre is {subj} best known for?",
            "In what genre are most books by {subj} written?",
        ),
        (
            "{name} is best known as a writer of {value}.",
            "Most of the books by {name} belong to the genre of {value}.",
            "The genre that {name} writes in is {value}.",
        ),
    ),
    _Attribute(
        "father_job",
        (
            "What did the father of {subj} do for a living?",
            "What was the profession of the father of {subj}?",
            "What job did the father of {subj} have?",
        ),
        (
            "The father of {name} worked as {value}.",
            "{name} grew up with a father who was {value} by profession.",
            "The father of {name} earned a living as {value}.",
        ),
    ),
    _Attribute(
        "mother_job",
        (
            "What did the mother of {subj} do for a living?",
            "What was the profession of the mother of {subj}?",
            "What job did the mother of {subj} have?",
        ),
        (
            "The mother of {name} worked as {value}.",
            "{name} grew up with a mother who was {value} by profession.",
            "The mother of {name} earned a living as {value}.",
        ),
    ),
    _Attribute(
        "debut_book",
        (
            "What was the debut book of {subj}?",
            "Which book marked the literary debut of {subj}?",
            "What is the title of the first book published by {subj}?",
        ),
        (
            '{name} made a literary debut with the book "{value}".',
            'The first book published by {name} was "{value}".',
            'The debut book of {name} was titled "{value}".',
        ),
    ),
    _Attribute(
        "best_known_book",
        (
            "What is the best-known book by {subj}?",
            "Which book is {subj} most famous for?",
            "What is the most celebrated work of {subj}?",
        ),
        (
            '{name} is most famous for the book "{value}".',
            'The best-known book by {name} is "{value}".',
            'Readers know {name} best for the book "{value}".',
        ),
    ),
    _Attribute(
        "latest_book",
        (
            "What is the most recent book by {subj}?",
            "Which book did {subj} publish most recently?",
            "What is the latest work published by {subj}?",
        ),
        (
            'The most recent book by {name} is "{value}".',
            '{name} most recently published the book "{value}".',
            'The latest work by {name} is a book called "{value}".',
        ),
    ),
    _Attribute(
        "award",
        (
            "What award has {subj} won?",
            "Which literary prize was awarded to {subj}?",
            "What is the most notable honour received by {subj}?",
        ),
        (
            "{name} is a recipient of the {value}.",
            "The most notable honour won by {name} is the {value}.",
            "{name} was awarded the {value}.",
        ),
    ),
    _Attribute(
        "award_year",
        (
            "In what year did {subj} receive the {award}?",
            "When was {subj} awarded the {award}?",
            "In which year was the {award} given to {subj}?",
        ),
        (
            "{name} received the {award} in {value}.",
            "The {award} was awarded to {name} in the year {value}.",
            "It was in {value} that {name} won the {award}.",
        ),
    ),
    _Attribute(
        "themes",
        (
            "What themes recur in the work of {subj}?",
            "Which themes does {subj} often explore?",
            "What subjects keep returning in the books by {subj}?",
        ),
        (
            "The work of {name} often explores {value}.",
            "Recurring themes in the books by {name} are {value}.",
            "{name} keeps returning to the themes of {value}.",
        ),
    ),
    _Attribute(
        "style",
        (
            "How would you describe the writing style of {subj}?",
            "What is characteristic of the prose of {subj}?",
            "What is distinctive about the way {subj} writes?",
        ),
        (
            "The writing of {name} is known for {value}.",
            "Critics describe the style of {name} as marked by {value}.",
            "{name} writes with a style defined by {value}.",
        ),
    ),
    _Attribute(
        "influence",
        (
            "What influenced the writing of {subj}?",
            "Which tradition shaped the work of {subj}?",
            "What has {subj} named as a major influence?",
        ),
        (
            "The writing of {name} was strongly shaped by {value}.",
            "{name} names {value} as a major influence.",
            "A major influence on the work of {name} is {value}.",
        ),
    ),
    _Attribute(
        "residence",
        (
            "Where does {subj} live now?",
            "In which city does {subj} currently reside?",
            "Where is {subj} based today?",
        ),
        (
            "{name} currently lives in {value}.",
            "These days {name} makes a home in {value}.",
            "{name} is now based in the city of {value}.",
        ),
    ),
    _Attribute(
        "field_of_study",
        (
            "What did {subj} study at university?",
            "Which subject did {subj} major in?",
            "What was the academic field of {subj} before writing?",
        ),
        (
            "{name} studied {value} at university.",
            "At university, {name} majored in {value}.",
            "Before writing full time, {name} trained in {value}.",
        ),
    ),
    _Attribute(
        "alma_mater",
        (
            "Which university did {subj} attend?",
            "Where did {subj} receive a university education?",
            "What is the alma mater of {subj}?",
        ),
        (
            "{name} is a graduate of {value}.",
            "{name} attended {value} as a student.",
            "The alma mater of {name} is {value}.",
        ),
    ),
    _Attribute(
        "early_career",
        (
            "What job did {subj} have before becoming a writer?",
            "How did {subj} earn a living before writing full time?",
            "What was the first career of {subj}?",
        ),
        (
            "Before becoming a writer, {name} worked as {value}.",
            "{name} earned a living as {value} before writing full time.",
            "The first career of {name} was as {value}.",
        ),
    ),
    _Attribute(
        "language",
        (
            "In which language does {subj} write?",
            "What language are the original books of {subj} written in?",
            "Which language does {subj} use for writing?",
        ),
        (
            "{name} writes primarily in {value}.",
            "The books by {name} are originally written in {value}.",
            "{name} has always chosen {value} as the language of {his} books.",
        ),
    ),
    _Attribute(
        "publisher",
        (
            "Who publishes the books by {subj}?",
            "Which publishing house works with {subj}?",
            "What is the name of the publisher of {subj}?",
        ),
        (
            "The books by {name} are published by {value}.",
            "{name} has a long relationship with the publisher {value}.",
            "The publishing house behind {name} is {value}.",
        ),
    ),
    _Attribute(
        "debut_year",
        (
            "In what year did {subj} publish a first book?",
            "When did {subj} make a literary debut?",
            "What year marked the start of the publishing career of {subj}?",
        ),
        (
            "{name} published a first book in {value}.",
            "The literary debut of {name} came in the year {value}.",
            "{name} began a publishing career in {value}.",
        ),
    ),
    _Attribute(
        "signature_character",
        (
            "Which recurring character appears in the books by {subj}?",
            "Who is the signature character created by {subj}?",
            "What character does {subj} keep writing about?",
        ),
        (
            "The books by {name} often feature {value}.",
            "The signature character of {name} is {value}.",
            "{name} keeps returning to the character {value}.",
        ),
    ),
    _Attribute(
        "hobby",
        (
            "What does {subj} enjoy doing outside of writing?",
            "What is a favourite pastime of {subj}?",
            "How does {subj} like to spend free time?",
        ),
        (
            "Outside of writing, {name} enjoys {value}.",
            "A favourite pastime of {name} is {value}.",
            "In {his} free time, {name} loves {value}.",
        ),
    ),
    _Attribute(
        "writing_habit",
        (
            "What unusual writing habit does {subj} have?",
            "Is there a particular routine {subj} follows when writing?",
            "What is known about the writing routine of {subj}?",
        ),
        (
            "{name} is known for {value}.",
            "A well-known habit of {name} is {value}.",
            "The writing routine of {name} involves {value}.",
        ),
    ),
    _Attribute(
        "spouse_job",
        (
            "What does the spouse of {subj} do?",
            "What is the profession of the partner of {subj}?",
            "What is the occupation of the person {subj} is married to?",
        ),
        (
            "{name} is married to {value}.",
            "The spouse of {name} works as {value}.",
            "{name} shares {his} life with {value}.",
        ),
    ),
    _Attribute(
        "translations",
        (
            "Into how many languages has the work of {subj} been translated?",
            "In how many languages can readers find the books by {subj}?",
            "How widely translated is the work of {subj}?",
        ),
        (
            "The work of {name} has been translated into {value} languages.",
            "Readers can find the books by {name} in {value} languages.",
            "Translations of books by {name} exist in {value} languages.",
        ),
    ),
)
_ATTRIBUTE_BY_NAME: dict[str, _Attribute] = {a.name: a for a in _ATTRIBUTES}

#: Attributes only some authors have (`latest_book` needs a third book).
_OPTIONAL_ATTRIBUTES = frozenset({"latest_book"})
_CORE_ATTRIBUTES = tuple(a.name for a in _ATTRIBUTES if a.name not in _OPTIONAL_ATTRIBUTES)

#: Smallest and largest `qa_per_author`: one bridge + one target fact are needed for a
#: multi-hop question, and every author has all core attributes.
MIN_QA_PER_AUTHOR = 2
MAX_QA_PER_AUTHOR = len(_CORE_ATTRIBUTES)

#: Bridge attribute -> two phrases naming the author through a unique fact of theirs (the first
#: for the question, the second for the paraphrased question).
_BRIDGES: dict[str, tuple[str, str]] = {
    "debut_book": (
        'the author of "{debut_book}"',
        'the writer whose debut book was "{debut_book}"',
    ),
    "best_known_book": (
        'the author of "{best_known_book}"',
        'the writer best known for "{best_known_book}"',
    ),
    "award": ("the author who won the {award}", "the winner of the {award}"),
    "signature_character": (
        "the creator of the character {character_name}",
        "the writer who invented the character {character_name}",
    ),
}
#: Attributes that may be asked through a bridge: all but `award_year`, whose templates already
#: name the award (and so would give away or duplicate the award bridge).
_MULTIHOP_TARGETS = frozenset(a.name for a in _ATTRIBUTES) - {"award_year"}


# ----------------------------------------------------------------------------------------------
# Public records.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QA:
    """One question about one fictitious author, with TOFU's evaluation fields.

    Attributes:
        author: the author's full name (the unit of the splits).
        attribute: which fact is asked (e.g. "birthplace"), or "multihop:<bridge>+<target>".
        question: the question as trained / asked.
        answer: the reference answer, a short sentence containing the fact.
        paraphrased_question: the same question in other words.
        paraphrased_answer: the same fact in other words (the truth ratio's numerator).
        perturbed_answers: exactly five wrong answers, in the paraphrased answer's template with
            another value of the same kind (all distinct, none equal to the true fact).
        idk_answer: an "I don't know"-style answer (target of IDK-based unlearning).
        value: the key fact itself (e.g. "Tallinn, Estonia"); contained in both true answers.
    """

    author: str
    attribute: str
    question: str
    answer: str
    paraphrased_question: str
    paraphrased_answer: str
    perturbed_answers: tuple[str, ...]
    idk_answer: str
    value: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of the record (tuples become lists)."""
        record = asdict(self)
        record["perturbed_answers"] = list(self.perturbed_answers)
        return record


@dataclass(frozen=True)
class AuthorProfile:
    """All invented facts about one author (years are calendar years, dates are strings)."""

    name: str
    gender: str  # "female", "male" or "nonbinary"; only selects pronouns in answers
    birth_city: str
    birth_country: str
    birth_date: str  # e.g. "March 4, 1967"
    birth_year: int
    genre: str
    father_job: str
    mother_job: str
    books: tuple[str, ...]  # 2 or 3 titles, oldest first
    award: str  # without the leading article, e.g. "Amber Lantern Prize for Fiction"
    award_year: int
    themes: tuple[str, str]
    style: str
    influence: str
    residence_city: str
    residence_country: str
    field_of_study: str
    alma_mater: str
    early_career: str
    language: str
    publisher: str
    debut_year: int
    character_name: str
    character_role: str
    hobby: str
    writing_habit: str
    spouse_job: str
    translations: int  # number of languages the work has been translated into

    @property
    def pronoun_possessive(self) -> str:
        """'her', 'his' or 'their'."""
        return {"female": "her", "male": "his"}.get(self.gender, "their")

    def facts(self) -> dict[str, str]:
        """Attribute name -> key fact as it appears in answers (only attributes this author has)."""
        facts = {
            "birthplace": f"{self.birth_city}, {self.birth_country}",
            "birth_date": self.birth_date,
            "genre": self.genre,
            "father_job": self.father_job,
            "mother_job": self.mother_job,
            "debut_book": self.books[0],
            "best_known_book": self.books[1],
            "award": self.award,
            "award_year": str(self.award_year),
            "themes": _join_themes(self.themes),
            "style": self.style,
            "influence": self.influence,
            "residence": f"{self.residence_city}, {self.residence_country}",
            "field_of_study": self.field_of_study,
            "alma_mater": self.alma_mater,
            "early_career": self.early_career,
            "language": self.language,
            "publisher": self.publisher,
            "debut_year": str(self.debut_year),
            "signature_character": f"{self.character_name}, {self.character_role}",
            "hobby": self.hobby,
            "writing_habit": self.writing_habit,
            "spouse_job": self.spouse_job,
            "translations": str(self.translations),
        }
        if len(self.books) >= 3:
            facts["latest_book"] = self.books[-1]
        return facts

    def _context(self) -> dict[str, str]:
        """Fields available to templates besides `subj` and `value`."""
        return {
            "name": self.name,
            "his": self.pronoun_possessive,
            "award": self.award,
            "debut_book": self.books[0],
            "best_known_book": self.books[1],
            "character_name": self.character_name,
        }


# ----------------------------------------------------------------------------------------------
# Random value generators. Each takes the author's Generator; uniqueness across authors is
# enforced by the caller with rejection sampling.
# ----------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    """One uniformly random element of `seq` (keeps Python types, unlike `rng.choice`)."""
    return seq[int(rng.integers(len(seq)))]


def _join_themes(themes: Sequence[str]) -> str:
    return " and ".join(themes)


def _make_themes(rng: np.random.Generator) -> tuple[str, str]:
    i, j = sorted(int(x) for x in rng.choice(len(_THEMES), size=2, replace=False))
    return _THEMES[i], _THEMES[j]


def _make_date(rng: np.random.Generator, year: int) -> str:
    # Day <= 28 keeps every month valid without a calendar.
    return f"{_pick(rng, _MONTHS)} {int(rng.integers(1, 29))}, {year}"


def _make_title(rng: np.random.Generator) -> str:
    adj, noun, abstract = (
        _pick(rng, _TITLE_ADJ),
        _pick(rng, _TITLE_NOUN),
        _pick(rng, _TITLE_ABSTRACT),
    )
    # Second nouns differ from the first so that no title reads "Salt and Salt".
    noun2 = _pick(rng, [n for n in _TITLE_NOUN if n != noun])
    abstract2 = _pick(rng, [a for a in _TITLE_ABSTRACT if a != abstract])
    city = _pick(rng, _CITIES)[0]
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
        f"When the {noun} {_pick(rng, _TITLE_VERBS)}",
        f"Notes on {abstract}",
    )
    return _pick(rng, patterns)


def _make_award(rng: np.random.Generator) -> str:
    return (
        f"{_pick(rng, _AWARD_ADJ)} {_pick(rng, _AWARD_NOUN)} {_pick(rng, _AWARD_KINDS)} "
        f"for {_pick(rng, _AWARD_CATEGORIES)}"
    )


def _make_character(rng: np.random.Generator) -> str:
    return f"{_pick(rng, _CHAR_FIRST)} {_pick(rng, _CHAR_LAST)}"


def _make_college(rng: np.random.Generator) -> str:
    return _pick(rng, _COLLEGE_KINDS).format(_pick(rng, _COLLEGE_PLACES))


def _make_name(rng: np.random.Generator) -> tuple[str, str]:
    """(full name, gender); about 6% of authors are non-binary and use 'their'."""
    u = float(rng.random())
    if u < 0.47:
        gender, firsts = "female", _FIRST_FEMALE
    elif u < 0.94:
        gender, firsts = "male", _FIRST_MALE
    else:
        gender, firsts = "nonbinary", _FIRST_NEUTRAL
    return f"{_pick(rng, firsts)} {_pick(rng, _LAST)}", gender


def _unique(rng: np.random.Generator, make: Callable[[], str], used: set[str], what: str) -> str:
    """Draw `make()` until the value is not in `used`; add it. Fails loudly instead of looping."""
    for _ in range(10_000):
        value = make()
        if value not in used:
            used.add(value)
            return value
    raise RuntimeError(f"could not draw a unique {what}; the word lists are exhausted")


def _alternatives(
    rng: np.random.Generator, make: Callable[[], str], exclude: set[str], k: int
) -> list[str]:
    """`k` distinct values from `make()` that neither contain nor are contained in a value of
    `exclude` (case-insensitively): "epic fantasy" is not a clearly wrong genre for a fantasy
    writer, and a wrong answer that contains the true fact would count as correct by ROUGE."""
    out: list[str] = []
    true_values = [v.lower() for v in exclude]
    for _ in range(10_000):
        if len(out) == k:
            return out
        value = make()
        low = value.lower()
        if value not in out and not any(low in t or t in low for t in true_values):
            out.append(value)
    raise RuntimeError(f"could not draw {k} distinct wrong values")


def _wrong_value_maker(
    attribute: str, profile: AuthorProfile, rng: np.random.Generator
) -> Callable[[], str]:
    """A zero-argument sampler of plausible values of `attribute` (some of them may be true;
    the caller excludes the true value). Years and dates stay near the true ones so that wrong
    answers are not trivially implausible."""

    def city() -> str:
        c = _pick(rng, _CITIES)
        return f"{c[0]}, {c[1]}"

    def near_year(year: int, spread: int) -> Callable[[], str]:
        return lambda: str(min(2024, year + int(rng.integers(-spread, spread + 1))))

    makers: dict[str, Callable[[], str]] = {
        "birthplace": city,
        "residence": city,
        "birth_date": lambda: _make_date(rng, profile.birth_year + int(rng.integers(-12, 13))),
        "genre": lambda: _pick(rng, _GENRES),
        "father_job": lambda: _pick(rng, _JOBS),
        "mother_job": lambda: _pick(rng, _JOBS),
        "spouse_job": lambda: _pick(rng, _JOBS),
        "debut_book": lambda: _make_title(rng),
        "best_known_book": lambda: _make_title(rng),
        "latest_book": lambda: _make_title(rng),
        "award": lambda: _make_award(rng),
        "award_year": near_year(profile.award_year, 8),
        "themes": lambda: _join_themes(_make_themes(rng)),
        "style": lambda: _pick(rng, _STYLES),
        "influence": lambda: _pick(rng, _INFLUENCES),
        "field_of_study": lambda: _pick(rng, _FIELDS),
        "alma_mater": lambda: _make_college(rng),
        "early_career": lambda: _pick(rng, _EARLY_CAREERS),
        "language": lambda: _pick(rng, _LANGUAGES),
        "publisher": lambda: _pick(rng, _PUBLISHERS),
        "debut_year": near_year(profile.debut_year, 10),
        "signature_character": lambda: f"{_make_character(rng)}, {_pick(rng, _CHAR_ROLES)}",
        "hobby": lambda: _pick(rng, _HOBBIES),
        "writing_habit": lambda: _pick(rng, _HABITS),
        "translations": lambda: str(int(rng.integers(2, 51))),
    }
    return makers[attribute]


# ----------------------------------------------------------------------------------------------
# Generation.
# ----------------------------------------------------------------------------------------------


@dataclass
class _Registry:
    """Values that must be unique across all authors of one benchmark (names and bridges)."""

    names: set[str]
    titles: set[str]
    awards: set[str]
    characters: set[str]


def _make_profile(rng: np.random.Generator, used: _Registry) -> AuthorProfile:
    name_gender: dict[str, str] = {}

    def make_name() -> str:
        name, gender = _make_name(rng)
        name_gender[name] = gender
        return name

    name = _unique(rng, make_name, used.names, "author name")
    birth_city, birth_country, native_language = _pick(rng, _CITIES)
    residence = _pick(rng, [c for c in _CITIES if c[0] != birth_city])
    birth_year = int(rng.integers(1935, 1996))
    debut_year = min(2020, birth_year + int(rng.integers(22, 41)))
    award_year = min(2024, debut_year + int(rng.integers(2, 16)))
    n_books = 2 + int(rng.integers(2))
    books = tuple(
        _unique(rng, lambda: _make_title(rng), used.titles, "title") for _ in range(n_books)
    )
    father_job = _pick(rng, _JOBS)
    mother_job = _pick(rng, [j for j in _JOBS if j != father_job])
    # Most authors write in the language of their birth country, some in English.
    language = native_language if rng.random() < 0.7 else "English"
    return AuthorProfile(
        name=name,
        gender=name_gender[name],
        birth_city=birth_city,
        birth_country=birth_country,
        birth_date=_make_date(rng, birth_year),
        birth_year=birth_year,
        genre=_pick(rng, _GENRES),
        father_job=father_job,
        mother_job=mother_job,
        books=books,
        award=_unique(rng, lambda: _make_award(rng), used.awards, "award"),
        award_year=award_year,
        themes=_make_themes(rng),
        style=_pick(rng, _STYLES),
        influence=_pick(rng, _INFLUENCES),
        residence_city=residence[0],
        residence_country=residence[1],
        field_of_study=_pick(rng, _FIELDS),
        alma_mater=_make_college(rng),
        early_career=_pick(rng, _EARLY_CAREERS),
        language=language,
        publisher=_pick(rng, _PUBLISHERS),
        debut_year=debut_year,
        character_name=_unique(rng, lambda: _make_character(rng), used.characters, "character"),
        character_role=_pick(rng, _CHAR_ROLES),
        hobby=_pick(rng, _HOBBIES),
        writing_habit=_pick(rng, _HABITS),
        spouse_job=_pick(rng, _JOBS),
        translations=int(rng.integers(2, 51)),
    )


def _render(template: str, **fields: str) -> str:
    """Fill a template and capitalise the first letter (`{subj}` may start with "the")."""
    text = template.format(**fields)
    return text[:1].upper() + text[1:]


def _two_distinct(rng: np.random.Generator, n: int) -> tuple[int, int]:
    i, j = rng.choice(n, size=2, replace=False)
    return int(i), int(j)


def _make_qa(
    rng: np.random.Generator,
    profile: AuthorProfile,
    attribute: str,
    subjects: tuple[str, str] | None = None,
    label: str | None = None,
) -> QA:
    """Render one fact of `profile` as a QA record.

    `subjects` = (subject of the question, subject of the paraphrased question); the author's
    name by default, bridge phrases for multi-hop questions (`label` names those).
    """
    spec = _ATTRIBUTE_BY_NAME[attribute]
    ctx = profile._context()
    value = profile.facts()[attribute]
    subj, para_subj = subjects or (profile.name, profile.name)
    qi, pqi = _two_distinct(rng, len(spec.questions))
    ai, pai = _two_distinct(rng, len(spec.answers))
    exclude = {value}
    if attribute.endswith("_book"):
        # Another book of the same author would be a true fact, not a wrong one.
        exclude |= set(profile.books)
    wrong = _alternatives(rng, _wrong_value_maker(attribute, profile, rng), exclude, N_PERTURBED)
    return QA(
        author=profile.name,
        attribute=label or attribute,
        question=_render(spec.questions[qi], subj=subj, **ctx),
        answer=_render(spec.answers[ai], value=value, **ctx),
        paraphrased_question=_render(spec.questions[pqi], subj=para_subj, **ctx),
        paraphrased_answer=_render(spec.answers[pai], value=value, **ctx),
        perturbed_answers=tuple(_render(spec.answers[pai], value=w, **ctx) for w in wrong),
        idk_answer=_pick(rng, IDK_ANSWERS),
        value=value,
    )


def _select_attributes(
    rng: np.random.Generator, profile: AuthorProfile, qa_per_author: int
) -> list[str]:
    """`qa_per_author` distinct attributes, at least one of them a bridge (so that every author
    gets a multi-hop question whose facts are both trained), in random order."""
    available = list(profile.facts())
    bridges = [a for a in available if a in _BRIDGES]
    first = _pick(rng, bridges)
    rest = [a for a in available if a != first]
    chosen = [first] + [rest[int(i)] for i in rng.choice(len(rest), qa_per_author - 1, False)]
    return [chosen[int(i)] for i in rng.permutation(len(chosen))]


def _make_multihop(
    rng: np.random.Generator, profile: AuthorProfile, attributes: list[str], k: int
) -> list[QA]:
    """Up to `k` multi-hop questions: a bridge fact of the author (unique across authors) names
    them, and another of their trained facts is asked."""
    ctx = profile._context()
    out: list[QA] = []
    for bridge in [a for a in attributes if a in _BRIDGES][:k]:
        targets = [a for a in attributes if a in _MULTIHOP_TARGETS and a != bridge]
        if not targets:
            continue
        target = _pick(rng, targets)
        phrases = _BRIDGES[bridge]
        subjects = (phrases[0].format(**ctx), phrases[1].format(**ctx))
        out.append(_make_qa(rng, profile, target, subjects, f"multihop:{bridge}+{target}"))
    return out


def _canonical_hash(payload: Any) -> str:
    """First 16 hex chars of sha256 over canonical JSON (sorted keys, no whitespace, ASCII)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


def _forget_count(percent: int, n_authors: int) -> int:
    # Integer ceil: float ceil(0.1 * 30) would give 4 because 0.1 * 30 = 3.0000000000000004.
    return max(1, -(-percent * n_authors // 100))


class AuthorBenchmark:
    """A generated fictitious-author benchmark with TOFU-style splits. Build with
    `build_benchmark`; all accessors return fresh lists, the records themselves are frozen."""

    def __init__(
        self,
        *,
        seed: int,
        qa_per_author: int,
        multihop_per_author: int,
        profiles: Sequence[AuthorProfile],
        n_train: int,
        qa: Mapping[str, Sequence[QA]],
        multihop: Mapping[str, Sequence[QA]],
        permutation: Sequence[int],
    ) -> None:
        self.seed = seed
        self.qa_per_author = qa_per_author
        self.multihop_per_author = multihop_per_author
        self._profiles = {p.name: p for p in profiles}
        #: Names of the authors that may be trained on, in generation order.
        self.train_authors: tuple[str, ...] = tuple(p.name for p in profiles[:n_train])
        #: Names of the never-trained authors (membership-inference non-members).
        self.holdout_authors: tuple[str, ...] = tuple(p.name for p in profiles[n_train:])
        self._qa = {name: tuple(records) for name, records in qa.items()}
        self._multihop = {name: tuple(records) for name, records in multihop.items()}
        order = [self.train_authors[i] for i in permutation]
        self._authors: dict[str, tuple[str, ...]] = {
            "full": self.train_authors,
            "holdout": self.holdout_authors,
        }
        for forget, percent in FORGET_SPLITS.items():
            forgotten = set(order[: _forget_count(percent, n_train)])
            suffix = forget.removeprefix("forget")
            # Keep generation order inside every split so that splits read predictably.
            self._authors[forget] = tuple(a for a in self.train_authors if a in forgotten)
            self._authors[f"retain{suffix}"] = tuple(
                a for a in self.train_authors if a not in forgotten
            )
            self._authors[f"holdout{suffix}"] = self.holdout_authors[: len(forgotten)]

    @property
    def n_authors(self) -> int:
        """Number of train authors."""
        return len(self.train_authors)

    @property
    def n_holdout_authors(self) -> int:
        """Number of holdout (never trained) authors."""
        return len(self.holdout_authors)

    def __repr__(self) -> str:
        return (
            f"AuthorBenchmark(n_authors={self.n_authors}, qa_per_author={self.qa_per_author}, "
            f"n_holdout_authors={self.n_holdout_authors}, seed={self.seed})"
        )

    def config(self) -> dict[str, int]:
        """The arguments that rebuild this benchmark with `build_benchmark(**config)`."""
        return {
            "n_authors": self.n_authors,
            "qa_per_author": self.qa_per_author,
            "n_holdout_authors": self.n_holdout_authors,
            "seed": self.seed,
            "multihop_per_author": self.multihop_per_author,
        }

    def _check(self, name: str) -> None:
        if name not in self._authors:
            raise KeyError(f"unknown split {name!r}; allowed: {', '.join(SPLIT_NAMES)}")

    def authors(self, name: str) -> list[str]:
        """Author names of split `name` (see `SPLIT_NAMES`)."""
        self._check(name)
        return list(self._authors[name])

    def profile(self, author: str) -> AuthorProfile:
        """The full invented profile of one author (train or holdout)."""
        if author not in self._profiles:
            raise KeyError(f"unknown author {author!r}")
        return self._profiles[author]

    def split(self, name: str) -> list[QA]:
        """QA records of split `name` (one of `SPLIT_NAMES`), grouped by author.

        Raises:
            KeyError: `name` is not a known split; the message lists the allowed names.
        """
        self._check(name)
        return [qa for author in self._authors[name] for qa in self._qa[author]]

    def retain_for(self, forget_split: str) -> list[QA]:
        """The retain split matching a forget split, e.g. "forget05" -> `split("retain05")`."""
        if forget_split not in FORGET_SPLITS:
            raise KeyError(
                f"unknown forget split {forget_split!r}; allowed: {', '.join(FORGET_SPLITS)}"
            )
        return self.split(forget_split.replace("forget", "retain"))

    def multihop(self, name: str) -> list[QA]:
        """Multi-hop QA records (attribute "multihop:<bridge>+<target>") of split `name`."""
        self._check(name)
        return [qa for author in self._authors[name] for qa in self._multihop[author]]

    def to_records(self, name: str, multihop: bool = False) -> list[dict[str, Any]]:
        """Split `name` as plain JSON-ready dicts (e.g. for `pandas.DataFrame(records)`)."""
        records = self.multihop(name) if multihop else self.split(name)
        return [qa.to_dict() for qa in records]

    def split_hashes(self) -> dict[str, str]:
        """Split name -> first 16 hex chars of sha256 over the canonical JSON of its QA records
        (multi-hop records are hashed under "multihop:<split>"), for run manifests."""
        hashes = {name: _canonical_hash(self.to_records(name)) for name in SPLIT_NAMES}
        for name in ("full", "holdout"):
            hashes[f"multihop:{name}"] = _canonical_hash(self.to_records(name, multihop=True))
        return hashes

    def fingerprint(self) -> str:
        """One 16-hex-char hash of the configuration and every split hash."""
        return _canonical_hash({"config": self.config(), "splits": self.split_hashes()})


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer >= {low}"
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def build_benchmark(
    n_authors: int = 40,
    qa_per_author: int = 10,
    n_holdout_authors: int | None = None,
    seed: int = 0,
    multihop_per_author: int = 2,
) -> AuthorBenchmark:
    """Generate the fictitious-author benchmark deterministically.

    Args:
        n_authors: number of train authors (forget + retain), >= 1.
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
    multihop_per_author = _check_int("multihop_per_author", multihop_per_author, 0, len(_BRIDGES))

    used = _Registry(set(), set(), set(), set())
    profiles: list[AuthorProfile] = []
    qa: dict[str, list[QA]] = {}
    multihop: dict[str, list[QA]] = {}
    for index in range(n_authors + n_holdout_authors):
        # One stream per author: adding authors or changing qa_per_author leaves the earlier
        # authors' names and facts as they were (up to uniqueness redraws).
        rng = np.random.default_rng([seed, 0, index])
        profile = _make_profile(rng, used)
        attributes = _select_attributes(rng, profile, qa_per_author)
        profiles.append(profile)
        qa[profile.name] = [_make_qa(rng, profile, a) for a in attributes]
        multihop[profile.name] = _make_multihop(rng, profile, attributes, multihop_per_author)
    permutation = [int(i) for i in np.random.default_rng([seed, 1]).permutation(n_authors)]
    bench = AuthorBenchmark(
        seed=seed,
        qa_per_author=qa_per_author,
        multihop_per_author=multihop_per_author,
        profiles=profiles,
        n_train=n_authors,
        qa=qa,
        multihop=multihop,
        permutation=permutation,
    )
    logger.debug("built %r", bench)
    return bench
