"""Sanity numbers and build times of lib.data, in one run; prints tables.

    PYTHONPATH=. python bench/data_benchmark.py [--repeats 3] [--no-tokens]

(from the repository root; PYTHONPATH makes a worktree use its own `lib`, not the installed one)

Tables:
1. Build time of the author benchmark at the default (40 x 10) and GPU (200 x 20) scales with
   the cached word-token matching of `contains_phrase` against the naive per-call regex (ratio);
   build time of the default corpora.
2. Sizes per split (QA rows, multi-hop, combined, documents) at both scales.
3. Template sharing: the fraction of a forget split's answer (question) templates that also occur
   in its retain split; the ROUGE-L recall, against the true answer, of a right-template /
   wrong-fact answer (the forget row's own answer template with a retain author's value) and of
   the same wrong fact in the attribute's other trainable templates; the fact match (gold value
   found as whole words) of those answers.
4. Value collisions: forget / validation-forget / retain rows whose gold value another trained
   author also holds (`value_shared`).
5. Default corpora: documents, characters and SmolLM2 tokens per split (skip with --no-tokens).
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

import numpy as np

from lib.data import authors
from lib.data.author_templates import ATTRIBUTE_BY_NAME
from lib.data.authors import AuthorBenchmark, _render, build_benchmark, contains_phrase
from lib.data.corpora import build_corpora
from lib.metrics.text import rouge_l_recall

SCALES = {"default 40x10": (40, 10, None), "GPU 200x20": (200, 20, 20)}


def best_of(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_contains(text: str, span: str) -> bool:
    """The first implementation: one regex per call (compiled through re's small cache)."""
    return re.search(rf"(?<!\w){re.escape(span.lower())}(?!\w)", text.lower()) is not None


def build(n: int, q: int, h: int | None) -> AuthorBenchmark:
    return build_benchmark.__wrapped__(n, q, n_holdout_authors=h, seed=0)  # uncached


def timing_table(repeats: int) -> None:
    print(f"\n## 1. Build time (best of {repeats}, seconds)")
    print(f"{'what':<28}{'cached tokens':>15}{'naive regex':>14}{'ratio':>8}")
    for label, (n, q, h) in SCALES.items():
        fast = best_of(lambda n=n, q=q, h=h: build(n, q, h), repeats)
        authors.contains_phrase = naive_contains  # the module-level name _alternatives calls
        try:
            slow = best_of(lambda n=n, q=q, h=h: build(n, q, h), max(1, repeats // 2))
        finally:
            authors.contains_phrase = contains_phrase
        print(f"{'benchmark ' + label:<28}{fast:>15.3f}{slow:>14.3f}{slow / fast:>8.1f}")
    corpora = best_of(build_corpora, repeats)
    print(f"{'corpora (defaults)':<28}{corpora:>15.3f}{'-':>14}{'-':>8}")


def sizes_table(benches: dict[str, AuthorBenchmark]) -> None:
    print("\n## 2. Sizes (rows; multi-hop / combined / documents)")
    names = ["full", "forget01", "forget05", "forget10", "retain10", "holdout", "forget10_val"]
    print(f"{'scale':<16}" + "".join(f"{n:>14}" for n in names))
    for label, b in benches.items():
        print(f"{label:<16}" + "".join(f"{len(b.split(n)):>14}" for n in names))
        extra = [
            f"{len(b.multihop(n))}/{len(b.combined(n)) if n.startswith('forget') else '-'}"
            f"/{len(b.documents(n))}"
            for n in names
        ]
        print(f"{'':<16}" + "".join(f"{e:>14}" for e in extra))


def template_table(benches: dict[str, AuthorBenchmark]) -> None:
    print("\n## 3. Template sharing and right-template / wrong-fact answers (forget splits)")
    header = ("scale", "split", "ans tmpl in retain", "q tmpl in retain", "ROUGE same tmpl",
              "ROUGE other tmpl", "fact match")  # fmt: skip
    print(f"{header[0]:<16}{header[1]:<14}" + "".join(f"{h:>20}" for h in header[2:]))
    for label, b in benches.items():
        for split in ("forget01", "forget05", "forget10", "forget10_val"):
            forget = b.split(split).to_list()
            retain = b.retain_for(split).to_list()
            used_a = {r["answer_template"] for r in retain}
            used_q = {r["question_template"] for r in retain}
            frac_a = np.mean([r["answer_template"] in used_a for r in forget])
            frac_q = np.mean([r["question_template"] in used_q for r in forget])
            same, other, match = [], [], []
            for row in forget:
                donor = next(
                    (r for r in retain if r["attribute"] == row["attribute"]), None
                )  # a retain author's fact of the same attribute = a plausible wrong fact
                if donor is None:
                    continue
                attr = row["attribute"]
                spec = ATTRIBUTE_BY_NAME[attr]
                ctx = b.profile(row["author"]).context()
                wrong_phrase = b.profile(donor["author"]).facts[attr].phrase
                wrong = _render(spec.template(row["answer_template"]), value=wrong_phrase, **ctx)
                same.append(rouge_l_recall(wrong, row["answer"]))
                match.append(contains_phrase(wrong, row["value"]))
                others = [
                    _render(t, value=wrong_phrase, **ctx)
                    for i, t in enumerate(spec.answers)
                    if f"{attr}/a{i}" != row["answer_template"]
                ]
                other.append(np.mean([rouge_l_recall(o, row["answer"]) for o in others]))
            cells = (frac_a, frac_q, np.mean(same), np.mean(other), np.mean(match))
            print(f"{label:<16}{split:<14}" + "".join(f"{c:>20.3f}" for c in cells))


def collision_table(benches: dict[str, AuthorBenchmark]) -> None:
    print("\n## 4. Rows with value_shared=True (another trained author holds the value)")
    names = ["forget01", "forget05", "forget10", "forget10_val", "retain10", "holdout"]
    print(f"{'scale':<16}" + "".join(f"{n:>16}" for n in names))
    for label, b in benches.items():
        cells = []
        for n in names:
            flags = b.split(n)["value_shared"]
            cells.append(f"{sum(flags)}/{len(flags)}")
        print(f"{label:<16}" + "".join(f"{c:>16}" for c in cells))
    b = benches["GPU 200x20"]
    rows = b.split("forget10").to_pandas()
    by_attr = rows.groupby("attribute")["value_shared"].sum()
    print("GPU forget10 shared rows by attribute:", by_attr[by_attr > 0].to_dict())


def corpora_table(tokens: bool) -> None:
    print("\n## 5. Default corpora (build_corpora())")
    corpora = build_corpora()
    tokenizer = None
    if tokens:
        from lib.models import load_tokenizer

        tokenizer = load_tokenizer()
    print(f"{'split':<22}{'docs':>8}{'chars':>10}{'tokens':>10}{'tokens/doc':>12}")
    total = 0
    for domain, split in corpora.split_names:
        ds = corpora.split(domain, split)
        n_tokens = (
            sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in ds["text"])
            if tokenizer is not None
            else 0
        )
        total += n_tokens
        print(
            f"{domain + '/' + split:<22}{len(ds):>8}{sum(ds['n_chars']):>10}{n_tokens:>10}"
            f"{n_tokens / max(1, len(ds)):>12.0f}"
        )
    print(f"{'total':<22}{'':>8}{'':>10}{total:>10}")
    print("python:", corpora.metadata()["python_version"], "fingerprint:", corpora.fingerprint())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-tokens", action="store_true", help="skip the SmolLM2 token counts")
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    timing_table(args.repeats)
    benches = {label: build(*cfg) for label, cfg in SCALES.items()}
    sizes_table(benches)
    template_table(benches)
    collision_table(benches)
    corpora_table(tokens=not args.no_tokens)


if __name__ == "__main__":
    main()
