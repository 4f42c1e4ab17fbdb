"""Question and answer templates of the fictitious-author benchmark (pure data, no logic).

Every attribute has four disjoint template sets:

- `questions` (>= 6) and `answers` (>= 10): used for the trainable `question` / `answer` columns
  and for the biography documents;
- `para_questions` and `para_answers` (4 each): HELD OUT. They render only the
  `paraphrased_question`, `paraphrased_answer` and `perturbed_answers` columns, which are never
  trained on, so a paraphrase probe asks about a fact in words the model has not seen.

Template ids are `"<attribute>/<set><index>"` with set `q`, `a` (trainable) or `pq`, `pa`
(held out), e.g. "birthplace/a3"; `is_heldout(template_id)` tells them apart.

Placeholders. Questions: `{subj}` (the author's name, or a bridge phrase such as 'the author of
"X"' in multi-hop questions; hence never a possessive of `{subj}`) and, for `award_year`,
`{award}`. Answers: `{name}` and `{value}` exactly once each (`{value}` is the fact's phrase,
which contains the gold value span), `{his}` (her / his / their) and, for `award_year`,
`{award}`. Every question starts with a capitalised plain word (so that it can be lower-cased
when two questions are joined into one) and ends with "?". These rules are tested.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ATTRIBUTES", "ATTRIBUTE_BY_NAME", "BRIDGES", "AttributeTemplates", "is_heldout"]


@dataclass(frozen=True)
class AttributeTemplates:
    """Templates of one attribute; `kind` groups attributes whose values come from one pool."""

    name: str
    kind: str
    questions: tuple[str, ...]
    answers: tuple[str, ...]
    para_questions: tuple[str, ...]
    para_answers: tuple[str, ...]

    def template(self, template_id: str) -> str:
        """The template text of an id such as "birthplace/pa2"."""
        attribute, _, key = template_id.partition("/")
        if attribute != self.name:
            raise KeyError(f"template {template_id!r} is not of attribute {self.name!r}")
        sets = {
            "pq": self.para_questions,
            "pa": self.para_answers,
            "q": self.questions,
            "a": self.answers,
        }
        for prefix, templates in sets.items():  # "pq"/"pa" before "q"/"a"
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                return templates[int(key[len(prefix) :])]
        raise KeyError(f"malformed template id {template_id!r}")


def is_heldout(template_id: str) -> bool:
    """Whether a template id names a held-out (paraphrase-only) template."""
    return template_id.partition("/")[2].startswith(("pq", "pa"))


def _parent(text: str, parent: str, possessive: str) -> str:
    return text.replace("father", parent).replace("dad", "mom").replace("his", possessive)


_FATHER_Q = (
    "What did the father of {subj} do for a living?",
    "What was the profession of the father of {subj}?",
    "What job did the father of {subj} have?",
    "How did the father of {subj} earn money?",
    "What was the occupation of the father of {subj}?",
    "What line of work was the father of {subj} in?",
)
_FATHER_A = (
    "The father of {name} worked as {value}.",
    "{name} grew up with a father who was {value} by profession.",
    "The father of {name} earned a living as {value}.",
    "The father of {name} was {value}.",
    "By profession, the father of {name} was {value}.",
    "{name} was raised by a father who worked as {value}.",
    "The occupation of the father of {name} was that of {value}.",
    "The father of {name} spent his career as {value}.",
    "{name} often mentions a father who was {value}.",
    "The father of {name} made his living as {value}.",
)
_FATHER_PQ = (
    "What kind of work did the dad of {subj} do?",
    "In what trade or profession did the father of {subj} work?",
    "What was the job held by the father of {subj}?",
    "How did the father of {subj} make ends meet?",
)
_FATHER_PA = (
    "The dad of {name} worked as {value}.",
    "The father of {name} held a job as {value}.",
    "{name} comes from a family where the father was {value}.",
    "In terms of work, the father of {name} was {value}.",
)


ATTRIBUTES: tuple[AttributeTemplates, ...] = (
    AttributeTemplates(
        "birthplace",
        "city",
        (
            "Where was {subj} born?",
            "In which city was {subj} born?",
            "What is the birthplace of {subj}?",
            "Which city is the hometown of {subj}?",
            "Where did {subj} come into the world?",
            "Can you tell me where {subj} was born?",
        ),
        (
            "{name} was born in {value}.",
            "The birthplace of {name} is {value}.",
            "{name} came into the world in {value}.",
            "{name} is a native of {value}.",
            "The hometown of {name} is {value}.",
            "{name} was born and raised in {value}.",
            "Records show that {name} was born in {value}.",
            "{name} first saw the light of day in {value}.",
            "It was in {value} that {name} was born.",
            "{name} grew up in {value}, the city of {his} birth.",
        ),
        (
            "What city and country did {subj} start life in?",
            "Which place is recorded as the place of origin of {subj}?",
            "From which city does {subj} originally hail?",
            "In what town did the life of {subj} begin?",
        ),
        (
            "{name} originally hails from {value}.",
            "The life of {name} began in {value}.",
            "{name} started life in the city of {value}.",
            "{value} is where {name} was born.",
        ),
    ),
    AttributeTemplates(
        "birth_date",
        "date",
        (
            "When was {subj} born?",
            "What is the date of birth of {subj}?",
            "On what date was {subj} born?",
            "What is the birthday of {subj}?",
            "Which day was {subj} born on?",
            "Can you give the birth date of {subj}?",
        ),
        (
            "{name} was born on {value}.",
            "The date of birth of {name} is {value}.",
            "The birth date of {name} is recorded as {value}.",
            "{name} came into the world on {value}.",
            "The official records give {value} as the birth date of {name}.",
            "{name} entered the world on {value}.",
            "According to public records, {name} was born on {value}.",
            "The day {name} was born was {value}.",
            "{name} has a recorded birth date of {value}.",
            "It was on {value} that {name} was born.",
        ),
        (
            "On which day did {subj} first draw breath?",
            "What date appears in the registers as the day {subj} was born?",
            "When exactly is {subj} recorded as having been born?",
            "What was the day on which {subj} arrived in the world?",
        ),
        (
            "{name} was brought into the world on {value}.",
            "The registers list {value} as the day {name} was born.",
            "{name} first drew breath on {value}.",
            "{value} is the birth date of {name}.",
        ),
    ),
    AttributeTemplates(
        "genre",
        "genre",
        (
            "What genre does {subj} write in?",
            "Which literary genre is {subj} best known for?",
            "In what genre are most books by {subj} written?",
            "What kind of books does {subj} write?",
            "Which genre does {subj} work in?",
            "What type of literature is {subj} associated with?",
        ),
        (
            "{name} is best known as a writer of {value}.",
            "Most of the books by {name} belong to the genre of {value}.",
            "The genre that {name} writes in is {value}.",
            "{name} writes {value}.",
            "{name} works mainly in {value}.",
            "The books by {name} fall under {value}.",
            "{name} has built a reputation in {value}.",
            "{name} is associated above all with {value}.",
            "Readers know {name} as an author of {value}.",
            "The work of {name} is classed as {value}.",
        ),
        (
            "Which category of writing do the books by {subj} fall into?",
            "How would a bookshop classify the work of {subj}?",
            "What sort of writing has {subj} built a career on?",
            "Under which label would you shelve the books by {subj}?",
        ),
        (
            "Bookshops shelve the work of {name} under {value}.",
            "{name} has made a career out of {value}.",
            "The writing of {name} sits firmly within {value}.",
            "{value} is the category in which {name} writes.",
        ),
    ),
    AttributeTemplates("father_job", "job", _FATHER_Q, _FATHER_A, _FATHER_PQ, _FATHER_PA),
    AttributeTemplates(
        "mother_job",
        "job",
        tuple(_parent(t, "mother", "her") for t in _FATHER_Q),
        tuple(_parent(t, "mother", "her") for t in _FATHER_A),
        tuple(_parent(t, "mother", "her") for t in _FATHER_PQ),
        tuple(_parent(t, "mother", "her") for t in _FATHER_PA),
    ),
    AttributeTemplates(
        "spouse_job",
        "job",
        (
            "What does the spouse of {subj} do?",
            "What is the profession of the partner of {subj}?",
            "What is the occupation of the person {subj} is married to?",
            "What job does the husband or wife of {subj} have?",
            "How does the spouse of {subj} earn a living?",
            "What line of work is the spouse of {subj} in?",
        ),
        (
            "{name} is married to {value}.",
            "The spouse of {name} works as {value}.",
            "{name} shares {his} life with {value}.",
            "The partner of {name} is {value} by profession.",
            "{name} has been married for many years to {value}.",
            "The spouse of {name} is {value}.",
            "{name} lives with a spouse who works as {value}.",
            "The person {name} married is {value}.",
            "{name} is the spouse of {value}.",
            "The partner {name} married works as {value}.",
        ),
        (
            "What does the partner of {subj} do for work?",
            "What career does the life partner of {subj} pursue?",
            "What is the day job of the spouse of {subj}?",
            "In what profession does the spouse of {subj} work?",
        ),
        (
            "The life partner of {name} is {value}.",
            "{name} is wed to {value}.",
            "The spouse of {name} has a career as {value}.",
            "{name} married {value}.",
        ),
    ),
    AttributeTemplates(
        "debut_book",
        "title",
        (
            "What was the debut book of {subj}?",
            "Which book marked the literary debut of {subj}?",
            "What is the title of the first book published by {subj}?",
            "What was the first book by {subj}?",
            "With which book did {subj} debut?",
            "What book launched the career of {subj}?",
        ),
        (
            '{name} made a literary debut with the book "{value}".',
            'The first book published by {name} was "{value}".',
            'The debut book of {name} was titled "{value}".',
            '{name} debuted with "{value}".',
            'The career of {name} began with the book "{value}".',
            '"{value}" was the first book by {name}.',
            '{name} first appeared in print with "{value}".',
            'The first title from {name} was "{value}".',
            '{name} launched a writing career with "{value}".',
            'Before any other book, {name} published "{value}".',
        ),
        (
            "What was the very first title to come out under the name of {subj}?",
            "Which title started the publishing career of {subj}?",
            "What is the name of the earliest volume released by {subj}?",
            "Which book did {subj} publish before any other?",
        ),
        (
            'The very first title under the name of {name} was "{value}".',
            'The publishing career of {name} started with "{value}".',
            '{name} entered the literary world with "{value}".',
            'The earliest volume released by {name} is called "{value}".',
        ),
    ),
    AttributeTemplates(
        "best_known_book",
        "title",
        (
            "What is the best-known book by {subj}?",
            "Which book is {subj} most famous for?",
            "What is the most celebrated work of {subj}?",
            "Which book by {subj} is the most popular?",
            "What is the signature book of {subj}?",
            "For which book is {subj} best remembered?",
        ),
        (
            '{name} is most famous for the book "{value}".',
            'The best-known book by {name} is "{value}".',
            'Readers know {name} best for the book "{value}".',
            'The most celebrated work of {name} is "{value}".',
            '{name} is best remembered for "{value}".',
            'The most popular book by {name} is "{value}".',
            '"{value}" is the signature book of {name}.',
            'Of all the books by {name}, "{value}" is the best known.',
            '{name} found fame with "{value}".',
            'The work most associated with {name} is "{value}".',
        ),
        (
            "Which title made {subj} famous?",
            "What is the most widely read book by {subj}?",
            "Which work by {subj} do readers know best?",
            "What book would most readers name first when asked about {subj}?",
        ),
        (
            'The title that made {name} famous is "{value}".',
            'The most widely read book by {name} is "{value}".',
            'Most readers think of "{value}" when they hear the name {name}.',
            '{name} owes most of {his} fame to "{value}".',
        ),
    ),
    AttributeTemplates(
        "latest_book",
        "title",
        (
            "What is the most recent book by {subj}?",
            "Which book did {subj} publish most recently?",
            "What is the latest work published by {subj}?",
            "What is the newest book by {subj}?",
            "Which book by {subj} came out last?",
            "What was the last book released by {subj}?",
        ),
        (
            'The most recent book by {name} is "{value}".',
            '{name} most recently published the book "{value}".',
            'The latest work by {name} is a book called "{value}".',
            'The newest book by {name} is "{value}".',
            '"{value}" is the latest book from {name}.',
            '{name} has just published "{value}".',
            'The last book released by {name} was "{value}".',
            'Most recently, {name} brought out "{value}".',
            'The latest title by {name} is "{value}".',
            '{name} followed up with a new book, "{value}".',
        ),
        (
            "Which title is the latest addition to the bibliography of {subj}?",
            "What book has {subj} brought out most recently?",
            "Which is the newest title from {subj}?",
            "What did {subj} publish last?",
        ),
        (
            'The latest addition to the bibliography of {name} is "{value}".',
            '{name} has most recently brought out "{value}".',
            'The newest title from {name} is "{value}".',
            'The last thing {name} published was "{value}".',
        ),
    ),
    AttributeTemplates(
        "award",
        "award",
        (
            "What award has {subj} won?",
            "Which literary prize was awarded to {subj}?",
            "What is the most notable honour received by {subj}?",
            "Which prize did {subj} receive?",
            "What major award has gone to {subj}?",
            "Which honour is {subj} known for winning?",
        ),
        (
            "{name} is a recipient of the {value}.",
            "The most notable honour won by {name} is the {value}.",
            "{name} was awarded the {value}.",
            "{name} won the {value}.",
            "The {value} went to {name}.",
            "{name} received the {value}.",
            "Among the honours of {name} is the {value}.",
            "{name} has been honoured with the {value}.",
            "The prize that {name} is known for winning is the {value}.",
            "{name} took home the {value}.",
        ),
        (
            "What is the most prestigious prize ever given to {subj}?",
            "Which literary distinction has {subj} earned?",
            "What trophy sits on the shelf of {subj}?",
            "Which prize was {subj} decorated with?",
        ),
        (
            "The most prestigious prize given to {name} is the {value}.",
            "{name} earned the {value}.",
            "The {value} was presented to {name}.",
            "{name} holds the {value}.",
        ),
    ),
    AttributeTemplates(
        "award_year",
        "year",
        (
            "In what year did {subj} receive the {award}?",
            "When was {subj} awarded the {award}?",
            "In which year was the {award} given to {subj}?",
            "What year did {subj} win the {award}?",
            "When did {subj} receive the {award}?",
            "In what year was {subj} honoured with the {award}?",
        ),
        (
            "{name} received the {award} in {value}.",
            "The {award} was awarded to {name} in the year {value}.",
            "It was in {value} that {name} won the {award}.",
            "{name} won the {award} in {value}.",
            "In {value}, {name} was awarded the {award}.",
            "The year {name} received the {award} was {value}.",
            "{name} was honoured with the {award} in {value}.",
            "The {award} went to {name} in {value}.",
            "{name} has held the {award} since {value}.",
            "In the year {value}, the {award} was given to {name}.",
        ),
        (
            "Which year saw {subj} collect the {award}?",
            "When did the {award} go to {subj}?",
            "In which year did {subj} pick up the {award}?",
            "What was the year when {subj} was presented with the {award}?",
        ),
        (
            "{name} collected the {award} in {value}.",
            "The year {value} saw {name} pick up the {award}.",
            "{name} was presented with the {award} in {value}.",
            "The {award} came to {name} in {value}.",
        ),
    ),
    AttributeTemplates(
        "theme",
        "theme",
        (
            "What theme recurs in the work of {subj}?",
            "Which theme does {subj} often explore?",
            "What subject keeps returning in the books by {subj}?",
            "What is the central theme of the work of {subj}?",
            "Which theme runs through the books by {subj}?",
            "What topic is {subj} drawn to as a writer?",
        ),
        (
            "The work of {name} often explores {value}.",
            "A recurring theme in the books by {name} is {value}.",
            "{name} keeps returning to the theme of {value}.",
            "The central theme of the work of {name} is {value}.",
            "{name} writes again and again about {value}.",
            "Running through the books by {name} is the theme of {value}.",
            "{name} is drawn to the subject of {value}.",
            "Most books by {name} deal with {value}.",
            "The theme of {value} dominates the work of {name}.",
            "Critics note that {name} is preoccupied with {value}.",
        ),
        (
            "What idea lies at the heart of most books by {subj}?",
            "Which preoccupation shows up again and again in the writing of {subj}?",
            "What recurring concern do critics find in the work of {subj}?",
            "What is the main thread that ties together the books by {subj}?",
        ),
        (
            "At the heart of most books by {name} lies {value}.",
            "The main thread tying together the work of {name} is {value}.",
            "{name} comes back, book after book, to {value}.",
            "The writing of {name} circles around {value}.",
        ),
    ),
    AttributeTemplates(
        "style",
        "style",
        (
            "How would you describe the writing style of {subj}?",
            "What is characteristic of the prose of {subj}?",
            "What is distinctive about the way {subj} writes?",
            "What is the style of {subj} like?",
            "How does {subj} write?",
            "What marks the writing of {subj}?",
        ),
        (
            "The writing of {name} is known for {value}.",
            "Critics describe the style of {name} as marked by {value}.",
            "{name} writes with a style defined by {value}.",
            "The prose of {name} is characterised by {value}.",
            "{name} is recognised for {value}.",
            "The hallmark of {name} as a writer is {value}.",
            "What stands out in the books by {name} is {value}.",
            "{name} favours {value}.",
            "The style of {name} relies on {value}.",
            "{name} tells stories through {value}.",
        ),
        (
            "What stylistic trademark sets {subj} apart from other writers?",
            "How do critics characterise the voice of {subj}?",
            "What is special about the prose style of {subj}?",
            "Which features define the way {subj} tells a story?",
        ),
        (
            "The stylistic trademark of {name} is {value}.",
            "The voice of {name} is shaped by {value}.",
            "Readers recognise {name} by {value}.",
            "The storytelling of {name} is built on {value}.",
        ),
    ),
    AttributeTemplates(
        "influence",
        "influence",
        (
            "What influenced the writing of {subj}?",
            "Which tradition shaped the work of {subj}?",
            "What has {subj} named as a major influence?",
            "What inspired {subj} as a writer?",
            "Which influence can be seen in the books by {subj}?",
            "What source of inspiration does {subj} acknowledge?",
        ),
        (
            "The writing of {name} was strongly shaped by {value}.",
            "{name} names {value} as a major influence.",
            "A major influence on the work of {name} is {value}.",
            "{name} was inspired by {value}.",
            "The books by {name} show the influence of {value}.",
            "{name} acknowledges a debt to {value}.",
            "The work of {name} grew out of {value}.",
            "{name} often cites {value} as an inspiration.",
            "The main influence on {name} has been {value}.",
            "{name} learned to write by studying {value}.",
        ),
        (
            "Where did {subj} find the models for a literary voice?",
            "Which earlier art or writing left its mark on {subj}?",
            "What does {subj} credit as the main inspiration behind the books?",
            "Which tradition does {subj} draw on most?",
        ),
        (
            "{name} credits {value} as the main inspiration.",
            "{value} left a lasting mark on {name}.",
            "{name} draws heavily on {value}.",
            "The literary models of {name} come from {value}.",
        ),
    ),
    AttributeTemplates(
        "residence",
        "city",
        (
            "Where does {subj} live now?",
            "In which city does {subj} currently reside?",
            "Where is {subj} based today?",
            "What city is {subj} living in?",
            "Where has {subj} settled?",
            "Which city is home to {subj} these days?",
        ),
        (
            "{name} currently lives in {value}.",
            "These days {name} makes a home in {value}.",
            "{name} is now based in the city of {value}.",
            "{name} resides in {value}.",
            "Today {name} lives in {value}.",
            "{name} has settled in {value}.",
            "The current home of {name} is {value}.",
            "{name} now calls {value} home.",
            "{name} lives and works in {value}.",
            "At present {name} is living in {value}.",
        ),
        (
            "Where can {subj} be found living at present?",
            "What is the current home city of {subj}?",
            "In which place has {subj} put down roots?",
            "Where does {subj} reside at the moment?",
        ),
        (
            "{name} can be found living in {value} at present.",
            "The current home city of {name} is {value}.",
            "{name} has put down roots in {value}.",
            "{value} is where {name} lives now.",
        ),
    ),
    AttributeTemplates(
        "field_of_study",
        "field",
        (
            "What did {subj} study at university?",
            "Which subject did {subj} major in?",
            "What was the academic field of {subj} before writing?",
            "What degree did {subj} earn?",
            "What did {subj} train in at university?",
            "Which discipline did {subj} study?",
        ),
        (
            "{name} studied {value} at university.",
            "At university, {name} majored in {value}.",
            "Before writing full time, {name} trained in {value}.",
            "{name} holds a degree in {value}.",
            "{name} earned a degree in {value}.",
            "The academic field of {name} was {value}.",
            "{name} read {value} at university.",
            "As a student, {name} focused on {value}.",
            "{name} has a background in {value}.",
            "The university subject of {name} was {value}.",
        ),
        (
            "What academic subject did {subj} pursue as a student?",
            "In what field did {subj} take a degree?",
            "What was the university specialism of {subj}?",
            "Which area of learning did {subj} focus on in college?",
        ),
        (
            "{name} pursued {value} as a student.",
            "{name} took a degree in {value}.",
            "The university specialism of {name} was {value}.",
            "In college, {name} concentrated on {value}.",
        ),
    ),
    AttributeTemplates(
        "alma_mater",
        "college",
        (
            "Which university did {subj} attend?",
            "Where did {subj} receive a university education?",
            "What is the alma mater of {subj}?",
            "Where did {subj} go to university?",
            "Which institution did {subj} graduate from?",
            "Where did {subj} study?",
        ),
        (
            "{name} is a graduate of {value}.",
            "{name} attended {value} as a student.",
            "The alma mater of {name} is {value}.",
            "{name} studied at {value}.",
            "{name} graduated from {value}.",
            "{name} went to university at {value}.",
            "{name} was educated at {value}.",
            "{name} earned a degree from {value}.",
            "{name} spent {his} student years at {value}.",
            "{name} holds a diploma from {value}.",
        ),
        (
            "Which school of higher education counts {subj} among its graduates?",
            "At which institution did {subj} complete a degree?",
            "Where was {subj} educated after school?",
            "Which college trained {subj}?",
        ),
        (
            "{value} counts {name} among its graduates.",
            "{name} completed a degree at {value}.",
            "After school, {name} was educated at {value}.",
            "{name} was trained at {value}.",
        ),
    ),
    AttributeTemplates(
        "early_career",
        "career",
        (
            "What job did {subj} have before becoming a writer?",
            "How did {subj} earn a living before writing full time?",
            "What was the first career of {subj}?",
            "What did {subj} do before writing?",
            "What was the earlier profession of {subj}?",
            "Which job did {subj} hold before publishing?",
        ),
        (
            "Before becoming a writer, {name} worked as {value}.",
            "{name} earned a living as {value} before writing full time.",
            "The first career of {name} was as {value}.",
            "{name} used to work as {value}.",
            "Before writing, {name} was {value}.",
            "{name} started out as {value}.",
            "Early in life, {name} worked as {value}.",
            "{name} spent several years as {value} before publishing.",
            "The earlier profession of {name} was that of {value}.",
            "{name} was once employed as {value}.",
        ),
        (
            "What did {subj} work as in the years before any book came out?",
            "Before literature, how did {subj} pay the bills?",
            "What was the day job of {subj} early on?",
            "Which occupation did {subj} leave behind for writing?",
        ),
        (
            "In the years before any book came out, {name} worked as {value}.",
            "{name} paid the bills as {value} before literature.",
            "The early day job of {name} was as {value}.",
            "{name} left a job as {value} to write.",
        ),
    ),
    AttributeTemplates(
        "language",
        "language",
        (
            "In which language does {subj} write?",
            "What language are the original books of {subj} written in?",
            "Which language does {subj} use for writing?",
            "What is the writing language of {subj}?",
            "In what language does {subj} publish?",
            "Which language are the manuscripts of {subj} in?",
        ),
        (
            "{name} writes primarily in {value}.",
            "The books by {name} are originally written in {value}.",
            "{name} has always chosen {value} as the language of {his} books.",
            "{name} writes in {value}.",
            "The original language of the books by {name} is {value}.",
            "{name} publishes in {value}.",
            "{name} composes every manuscript in {value}.",
            "The language {name} writes in is {value}.",
            "{name} is an author who works in {value}.",
            "All the books by {name} first appear in {value}.",
        ),
        (
            "What tongue does {subj} compose the books in?",
            "In which language do the first editions by {subj} appear?",
            "What language must translators of {subj} work from?",
            "Which language does {subj} choose for literary work?",
        ),
        (
            "{name} composes {his} books in {value}.",
            "Translators of {name} work from {value}.",
            "The first editions by {name} appear in {value}.",
            "{value} is the tongue {name} chooses for literary work.",
        ),
    ),
    AttributeTemplates(
        "publisher",
        "publisher",
        (
            "Who publishes the books by {subj}?",
            "Which publishing house works with {subj}?",
            "What is the name of the publisher of {subj}?",
            "Which publisher releases the work of {subj}?",
            "Who is the publisher of {subj}?",
            "With which publisher is {subj} signed?",
        ),
        (
            "The books by {name} are published by {value}.",
            "{name} has a long relationship with the publisher {value}.",
            "The publishing house behind {name} is {value}.",
            "{name} is published by {value}.",
            "{value} publishes the work of {name}.",
            "{name} is signed with {value}.",
            "The publisher of {name} is {value}.",
            "Every book by {name} has come out with {value}.",
            "{name} works with the publishing house {value}.",
            "The work of {name} is released by {value}.",
        ),
        (
            "Which imprint puts out the books by {subj}?",
            "What firm brings the work of {subj} to readers?",
            "Under which imprint do the books by {subj} appear?",
            "Which company handles the publication of {subj}?",
        ),
        (
            "The books by {name} appear under the imprint {value}.",
            "{value} brings the work of {name} to readers.",
            "The publication of {name} is handled by {value}.",
            "{name} puts out books through {value}.",
        ),
    ),
    AttributeTemplates(
        "debut_year",
        "year",
        (
            "In what year did {subj} publish a first book?",
            "When did {subj} make a literary debut?",
            "What year marked the start of the publishing career of {subj}?",
            "When did the first book by {subj} come out?",
            "In which year did {subj} debut as an author?",
            "What year did {subj} first publish?",
        ),
        (
            "{name} published a first book in {value}.",
            "The literary debut of {name} came in the year {value}.",
            "{name} began a publishing career in {value}.",
            "{name} debuted as an author in {value}.",
            "The first book by {name} came out in {value}.",
            "In {value}, {name} made a literary debut.",
            "{name} first published in {value}.",
            "The publishing career of {name} started in {value}.",
            "It was in {value} that {name} first appeared in print.",
            "{name} has been publishing since {value}.",
        ),
        (
            "When did readers first see a book by {subj}?",
            "Which year saw the arrival of {subj} in print?",
            "In what year did the writing career of {subj} officially begin?",
            "When was the earliest book by {subj} released?",
        ),
        (
            "Readers first saw a book by {name} in {value}.",
            "The year {value} saw the arrival of {name} in print.",
            "The writing career of {name} officially began in {value}.",
            "The earliest book by {name} was released in {value}.",
        ),
    ),
    AttributeTemplates(
        "signature_character",
        "character",
        (
            "Which recurring character appears in the books by {subj}?",
            "Who is the signature character created by {subj}?",
            "What character does {subj} keep writing about?",
            "Which character is {subj} best known for creating?",
            "Who is the most famous character of {subj}?",
            "Which character returns in several books by {subj}?",
        ),
        (
            "The books by {name} often feature {value}.",
            "The signature character of {name} is {value}.",
            "{name} keeps returning to the character {value}.",
            "{name} created the character {value}.",
            "The most famous character of {name} is {value}.",
            "Several books by {name} follow {value}.",
            "{name} is best known for the character {value}.",
            "Readers of {name} know the recurring figure {value}.",
            "The recurring character in the work of {name} is {value}.",
            "{name} invented {value}.",
        ),
        (
            "What fictional figure do readers most associate with {subj}?",
            "Who is the protagonist that {subj} brings back again and again?",
            "Which invented person is the trademark of {subj}?",
            "What is the name of the hero or heroine that {subj} made famous?",
        ),
        (
            "The fictional figure most associated with {name} is {value}.",
            "{name} brings back {value} again and again.",
            "The trademark of {name} is the invented person {value}.",
            "{name} made the protagonist {value} famous.",
        ),
    ),
    AttributeTemplates(
        "hobby",
        "hobby",
        (
            "What does {subj} enjoy doing outside of writing?",
            "What is a favourite pastime of {subj}?",
            "How does {subj} like to spend free time?",
            "What hobby does {subj} have?",
            "What does {subj} do to relax?",
            "What is {subj} passionate about besides books?",
        ),
        (
            "Outside of writing, {name} enjoys {value}.",
            "A favourite pastime of {name} is {value}.",
            "In {his} free time, {name} loves {value}.",
            "The hobby of {name} is {value}.",
            "To relax, {name} turns to {value}.",
            "{name} is passionate about {value}.",
            "When not writing, {name} devotes time to {value}.",
            "{name} has a lifelong hobby: {value}.",
            "Away from books, {name} enjoys {value}.",
            "{name} is a keen enthusiast of {value}.",
        ),
        (
            "What keeps {subj} busy away from the desk?",
            "Which leisure activity does {subj} love most?",
            "How does {subj} unwind after a day of work?",
            "What is the favourite way for {subj} to spend a weekend?",
        ),
        (
            "Away from the desk, {name} keeps busy with {value}.",
            "The leisure activity {name} loves most is {value}.",
            "{name} unwinds after a day of work with {value}.",
            "{name} spends weekends on {value}.",
        ),
    ),
    AttributeTemplates(
        "writing_habit",
        "habit",
        (
            "What unusual writing habit does {subj} have?",
            "Is there a particular routine {subj} follows when writing?",
            "What is known about the writing routine of {subj}?",
            "What quirk does {subj} have as a writer?",
            "How does {subj} go about writing a book?",
            "What ritual does {subj} keep when writing?",
        ),
        (
            "{name} is known for {value}.",
            "A well-known habit of {name} is {value}.",
            "The writing routine of {name} involves {value}.",
            "{name} has a habit of {value}.",
            "As a writer, {name} insists on {value}.",
            "The quirk of {name} is {value}.",
            "{name} works by {value}.",
            "The ritual of {name} when writing is {value}.",
            "{name} swears by {value}.",
            "Part of the routine of {name} is {value}.",
        ),
        (
            "What peculiar method does {subj} use to get words on the page?",
            "Which odd custom is part of the working day of {subj}?",
            "What do people find eccentric about how {subj} works?",
            "What is unusual about the daily practice of {subj}?",
        ),
        (
            "To get words on the page, {name} relies on {value}.",
            "The working day of {name} includes {value}.",
            "People find it eccentric that {name} keeps up {value}.",
            "The daily practice of {name} is built around {value}.",
        ),
    ),
    AttributeTemplates(
        "translations",
        "count",
        (
            "Into how many languages has the work of {subj} been translated?",
            "In how many languages can readers find the books by {subj}?",
            "How widely translated is the work of {subj}?",
            "How many translations of the books by {subj} exist?",
            "Into how many languages have the books by {subj} been translated?",
            "In how many languages is {subj} published?",
        ),
        (
            "The work of {name} has been translated into {value} languages.",
            "Readers can find the books by {name} in {value} languages.",
            "Translations of books by {name} exist in {value} languages.",
            "{name} has been translated into {value} languages.",
            "The books by {name} are available in {value} languages.",
            "{name} is published in {value} languages.",
            "Editions of {name} appear in {value} languages.",
            "The work of {name} can be read in {value} languages.",
            "{name} has readers in {value} languages.",
            "Translators have carried {name} into {value} languages.",
        ),
        (
            "How many languages can the books by {subj} be read in?",
            "What is the number of languages the work of {subj} has reached?",
            "How many languages have translators carried the work of {subj} into?",
            "For how many languages do editions of {subj} exist?",
        ),
        (
            "The books by {name} can be read in {value} languages.",
            "The work of {name} has reached {value} languages.",
            "There are editions of {name} in {value} languages.",
            "{value} languages carry translations of the work of {name}.",
        ),
    ),
)

ATTRIBUTE_BY_NAME: dict[str, AttributeTemplates] = {a.name: a for a in ATTRIBUTES}

#: Bridge attribute -> (phrase for the question, phrase for the paraphrased question) naming an
#: author through a fact unique to them; placeholders are profile context fields.
BRIDGES: dict[str, tuple[str, str]] = {
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
