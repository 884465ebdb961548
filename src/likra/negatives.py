"""Training pairs for the two heads: (context, answer) with the answer the head learns to expect.

The positive head sees each question with its correct answer; the negative head sees it with one
incorrect answer drawn from a named source, an entry of ``NEGATIVE_SOURCES``:

* ``near-miss``: a random wrong option of the same question (the paper's default);
* ``first-wrong``: the first wrong option in option order (what the authors' code does);
* ``irrelevant``: a random *wrong* option of a different question of the pool (the paper's
  definition, section 4.3), never one of this question's own options;
* ``irrelevant-correct``: the *correct* answer of a different question (likra's earlier
  ``irrelevant``), never one of this question's own options;
* ``unrelated:<pool>``: a random wrong answer of another benchmark (the paper: HellaSwag endings,
  or MMLU's non-science tests, the pool ``mmlu-nonscience``);
* ``hardest``: the wrong option the base model itself finds most likely (per character), mined
  by the caller with the scoring engine and passed in as per-option scores.

Prompts are the zero-shot evaluation prompts, so a head learns exactly what it is later asked.
Everything is a pure function of (docs, seed): same seed, same pairs, on any machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ConfigError
from .tasks.base import Doc, Item, TaskSpec, item_from_doc


@dataclass(frozen=True)
class Pair:
    question_id: str
    context: str
    answer: str  # the scored continuation, target delimiter included (" Paris")
    kind: str  # "positive" or the negative source


@dataclass
class Draw:
    """What a source may draw from: the pool's items, the generator, and what the caller loaded."""

    items: list[Item]
    rng: random.Random
    unrelated: list[str] | None = None  # wrong answers of the other benchmark
    option_scores: dict[str, list[float]] | None = None  # the base model's per-character option scores


@dataclass(frozen=True)
class NegativeSource:
    name: str
    definition: str
    pick: Callable[[int, Item, Draw, int], list[tuple[str, str]]]  # (index, item, draw, k) -> k (context, answer)


def _wrong(it: Item) -> list[int]:
    return [o for o in range(it.n_options) if o != it.gold]


def _options(it: Item, options: list[int]) -> list[tuple[str, str]]:
    return [(it.contexts[o], it.continuations[o]) for o in options]


def _near_miss(idx: int, it: Item, d: Draw, k: int) -> list[tuple[str, str]]:
    wrong = _wrong(it)  # without repeats while there are enough wrong options
    picks = d.rng.sample(range(len(wrong)), k) if k <= len(wrong) else [d.rng.randrange(len(wrong)) for _ in range(k)]
    return _options(it, [wrong[i] for i in picks])


def _first_wrong(idx: int, it: Item, d: Draw, k: int) -> list[tuple[str, str]]:
    return _options(it, _wrong(it)[:k])


def _hardest(idx: int, it: Item, d: Draw, k: int) -> list[tuple[str, str]]:
    if d.option_scores is None or it.id not in d.option_scores:
        raise ConfigError(f"hardest negatives need the base model's scores of question '{it.id}'")
    scores = d.option_scores[it.id]
    return _options(it, sorted(_wrong(it), key=lambda o: -scores[o])[:k])  # the k most likely wrong options


def _other_question(correct: bool) -> Callable[[int, Item, Draw, int], list[tuple[str, str]]]:
    def pick_one(idx: int, it: Item, d: Draw) -> tuple[str, str]:
        n = len(d.items)
        if n < 2:
            raise ConfigError("irrelevant negatives need a pool of at least two questions")
        for _ in range(1000):  # almost always the first draw
            j = d.rng.randrange(n - 1)
            other = d.items[j + (j >= idx)]  # any question but this one
            options = [other.gold] if correct else _wrong(other)
            answer = other.continuations[options[d.rng.randrange(len(options))]]
            if answer not in it.continuations:
                return it.contexts[it.gold], answer
        raise ConfigError(f"question '{it.id}': no other question of the pool has an answer that is not one of its options")
    return lambda idx, it, d, k: [pick_one(idx, it, d) for _ in range(k)]


def _unrelated(idx: int, it: Item, d: Draw, k: int) -> list[tuple[str, str]]:
    if not d.unrelated:
        raise ConfigError("unrelated negatives: no answers were loaded from the other benchmark")

    def pick_one() -> tuple[str, str]:
        for _ in range(1000):
            answer = " " + d.unrelated[d.rng.randrange(len(d.unrelated))].strip()
            if answer not in it.continuations:
                return it.contexts[it.gold], answer
        raise ConfigError(f"question '{it.id}': the other benchmark's answers are all options of this question")
    return [pick_one() for _ in range(k)]


NEGATIVE_SOURCES: dict[str, NegativeSource] = {s.name: s for s in (
    NegativeSource("near-miss", "a random wrong option of the same question (the paper's default)", _near_miss),
    NegativeSource("first-wrong", "the first wrong option in option order (the authors' code, --balanced)", _first_wrong),
    NegativeSource("irrelevant", "a random wrong option of a different question of the pool (the paper's irrelevant)",
                   _other_question(correct=False)),
    NegativeSource("irrelevant-correct", "the correct answer of a different question of the pool", _other_question(correct=True)),
    NegativeSource("unrelated", "a random wrong answer of another benchmark, unrelated:POOL (e.g. unrelated:hellaswag, "
                   "unrelated:mmlu-nonscience)", _unrelated),
    NegativeSource("hardest", "the wrong option the base model finds most likely, per character", _hardest),
)}


def source_of(name: str) -> NegativeSource:
    """The source of a ``--negatives`` value (``unrelated:POOL`` is the ``unrelated`` source)."""
    key = "unrelated" if name.startswith("unrelated:") else name
    if key not in NEGATIVE_SOURCES or name == "unrelated":
        known = ", ".join("unrelated:POOL" if k == "unrelated" else k for k in NEGATIVE_SOURCES)
        raise ConfigError(f"unknown negative source '{name}' (choose from {known})")
    return NEGATIVE_SOURCES[key]


def pool_items(pool: list[tuple[TaskSpec, Doc]]) -> list[Item]:
    """Zero-shot evaluation items of a pool, in pool order."""
    return [item_from_doc(doc, spec) for spec, doc in pool]


def shuffled(items: list, seed: int) -> list:
    """The one order of a training run: a seeded shuffle (Python's Mersenne Twister, portable)."""
    order = list(items)
    random.Random(seed).shuffle(order)
    return order


def positive_pairs(items: list[Item]) -> list[Pair]:
    return [Pair(it.id, it.contexts[it.gold], it.continuations[it.gold], "positive") for it in items]


def negative_pairs(
    items: list[Item],
    source: str,
    seed: int,
    per_question: int = 1,
    unrelated_answers: list[str] | None = None,
    option_scores: dict[str, list[float]] | None = None,
) -> list[Pair]:
    """``per_question`` negatives for every item, in item order (balanced: one each by default).

    Draws use their own generator seeded by ``seed``, independent of the shuffle of the pool.
    """
    src = source_of(source)
    draw = Draw(items, random.Random(f"negatives:{source}:{seed}"), unrelated_answers, option_scores)
    return [Pair(it.id, ctx, answer, source) for idx, it in enumerate(items) for ctx, answer in src.pick(idx, it, draw, per_question)]


def answers_of(items: list[Item]) -> list[str]:
    """Gold answers of a benchmark, stripped of the target delimiter."""
    return [it.continuations[it.gold].strip() for it in items]


def wrong_answers_of(docs: list[Doc]) -> list[str]:
    """The text of every wrong answer of a benchmark: the reservoir of unrelated negatives (the
    paper draws a random *false* answer of the unrelated benchmark). MMLU scores letters; its
    answer texts are what is drawn."""
    return [str(text).strip() for d in docs for k, text in enumerate(d.meta.get("options") or d.choices) if k != d.gold]
