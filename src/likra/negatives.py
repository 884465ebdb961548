"""Training pairs for the two heads: (context, answer) with the answer the head learns to expect.

The positive head sees each question with its correct answer; the negative head sees it with one
incorrect answer drawn from a named source:

* ``near-miss``: a random wrong option of the same question (the paper's default);
* ``irrelevant``: the correct answer of a different question of the same pool;
* ``unrelated:<task>``: an answer taken from another benchmark (e.g. HellaSwag endings);
* ``hardest``: the wrong option the base model itself finds most likely (per character), mined
  by the caller with the scoring engine and passed in as per-option scores.

Prompts are the zero-shot evaluation prompts, so a head learns exactly what it is later asked.
Everything is a pure function of (docs, seed): same seed, same pairs, on any machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .tasks.base import Doc, Item, TaskSpec, item_from_doc

NEGATIVE_SOURCES = ("near-miss", "irrelevant", "unrelated:<task>", "hardest")


@dataclass(frozen=True)
class Pair:
    question_id: str
    context: str
    answer: str  # the scored continuation, target delimiter included (" Paris")
    kind: str  # "positive" or the negative source


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
    rng = random.Random(f"negatives:{source}:{seed}")
    out: list[Pair] = []
    if source == "irrelevant" and len(items) < 2:
        raise ValueError("irrelevant negatives need a pool of at least two questions")
    for idx, it in enumerate(items):
        wrong = [o for o in range(it.n_options) if o != it.gold]
        if source == "near-miss":
            picks = [wrong[i] for i in _draw(rng, len(wrong), per_question)]
            out += [Pair(it.id, it.contexts[o], it.continuations[o], source) for o in picks]
        elif source == "hardest":
            if option_scores is None or it.id not in option_scores:
                raise ValueError(f"hardest negatives need the base model's scores of question '{it.id}'")
            scores = option_scores[it.id]
            ranked = sorted(wrong, key=lambda o: -scores[o])[:per_question]
            out += [Pair(it.id, it.contexts[o], it.continuations[o], source) for o in ranked]
        elif source == "irrelevant":
            for _ in range(per_question):
                # another question's correct answer that is not also an option here
                for _try in range(100):
                    other = rng.randrange(len(items) - 1)
                    other += other >= idx  # any question but this one
                    answer = items[other].continuations[items[other].gold]
                    if answer not in it.continuations:
                        break
                out.append(Pair(it.id, it.contexts[it.gold], answer, source))
        elif source.startswith("unrelated:"):
            if not unrelated_answers:
                raise ValueError(f"{source}: no answers were loaded from the other benchmark")
            for _ in range(per_question):
                text = unrelated_answers[rng.randrange(len(unrelated_answers))]
                out.append(Pair(it.id, it.contexts[it.gold], " " + text.strip(), source))
        else:
            raise ValueError(f"unknown negative source '{source}' (choose from {', '.join(NEGATIVE_SOURCES)})")
    return out


def _draw(rng: random.Random, n: int, k: int) -> list[int]:
    if k <= n:
        return rng.sample(range(n), k)
    return [rng.randrange(n) for _ in range(k)]  # more negatives than wrong options: repeat


def answers_of(items: list[Item]) -> list[str]:
    """Gold answers of a benchmark, stripped of the target delimiter: the 'unrelated' reservoir."""
    return [it.continuations[it.gold].strip() for it in items]
