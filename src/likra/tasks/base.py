"""What a task yields: items (id, contexts, continuations, gold) built exactly as lm-eval builds them.

A task is described by a :class:`TaskSpec` (data: files, splits, prompt template, few-shot rule)
and a *reader* that turns one raw row of the original file (or of the hub dataset) into a
:class:`Doc`. Everything after that, prompts, few-shot contexts, items, is shared code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Literal

from ..errors import ConfigError, LikraError

FEWSHOT_SEED = 1234  # lm-eval's default --fewshot_random_seed


class DataError(LikraError, ValueError):
    """A bad row in a benchmark file: says which file, line and field, and what to do."""

    def __init__(self, source: str, line: int | None, field_name: str, problem: str):
        where = f"{source}, line {line}" if line is not None else source
        # without the advice: what a --skip-invalid run reports and records (it passed the flag already)
        self.where_what = f"{where}, field '{field_name}': {problem}"
        super().__init__(f"{self.where_what}. Fix the row, or pass --skip-invalid to skip bad rows.")
        self.source, self.line, self.field, self.problem = source, line, field_name, problem


@dataclass(frozen=True)
class Doc:
    """One question in a task's own terms, before any prompt is built."""

    id: str
    text: str  # the question part of the prompt (lm-eval's doc_to_text), without few-shot context
    choices: tuple[str, ...]  # the answer options as lm-eval's doc_to_choice gives them
    gold: int
    # For partial-evaluation tasks (WinoGrande): the shared continuation scored after each
    # option-specific context. None for ordinary shared-context tasks.
    partial_target: str | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Item:
    """What the scorer scores: option i is continuations[i] given contexts[i].

    ``choices`` are the option texts whose character counts normalise acc_norm (as lm-eval's
    ``completion_len``); for partial-evaluation tasks every option shares one continuation, so
    the scored continuation's length is used and acc_norm equals acc.
    """

    id: str
    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    gold: int
    n_chars: tuple[int, ...]

    @property
    def n_options(self) -> int:
        return len(self.continuations)


@dataclass(frozen=True)
class TaskSpec:
    """A benchmark as data. ``local`` maps split -> glob(s) under the data folder; ``hub`` maps
    split -> (dataset path, config name, hub split)."""

    name: str
    reader: str
    local: dict[str, tuple[str, ...]]
    hub: dict[str, tuple[str, str | None, str]]
    eval_split: str
    fewshot_split: str | None
    fewshot_sampler: Literal["random", "first_n"] = "random"
    description: str = ""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    subset: str | None = None  # e.g. the MMLU subject; readers may use it to filter
    template: str | None = None  # jsonl tasks: a user template for the question text
    # lm-eval draws k+1 examples and drops the eval doc when its config's few-shot split equals its
    # test split, which is also true when both are unset (HellaSwag, WinoGrande). The eval doc is
    # never in the pool then, but the extra draw moves the random stream, so it is part of parity.
    # None: only when the few-shot split is the evaluated split.
    draw_extra_example: bool | None = None


def fewshot_example(doc: Doc, spec: TaskSpec) -> str:
    """A labelled example as lm-eval writes it: question, delimiter, gold answer, separator."""
    if doc.partial_target is not None:
        return doc.choices[doc.gold] + spec.target_delimiter + doc.partial_target + spec.fewshot_delimiter
    return doc.text + spec.target_delimiter + doc.choices[doc.gold] + spec.fewshot_delimiter


class FewshotSampler:
    """Reproduces lm-eval's sampling: one Random(seed) for the whole run, advanced doc by doc.

    Because the generator is shared across documents, the k-shot examples of item i depend on
    every earlier item; that is why --limit must take the *first* N items, in file order.
    """

    def __init__(self, pool: list[Doc], rule: str, exclude_eval_doc: bool, seed: int = FEWSHOT_SEED):
        self.pool, self.rule, self.exclude_eval_doc = pool, rule, exclude_eval_doc
        self.rnd = random.Random(seed)

    def sample(self, k: int, doc: Doc) -> list[Doc]:
        if k == 0:
            return []
        if k > len(self.pool):
            raise ConfigError(f"asked for {k} few-shot examples but the few-shot split has only {len(self.pool)}")
        if self.rule == "first_n":
            pool = [d for d in self.pool if d != doc] if self.exclude_eval_doc else self.pool
            return pool[:k]
        if not self.exclude_eval_doc:
            return self.rnd.sample(self.pool, k)
        picked = [d for d in self.rnd.sample(self.pool, k + 1) if d != doc][:k]
        if len(picked) < k:  # duplicates of the eval doc were drawn: resample without them
            picked = self.rnd.sample([d for d in self.pool if d != doc], k)
        return picked


def build_items(
    docs: list[Doc],
    spec: TaskSpec,
    shots: int = 0,
    fewshot_pool: list[Doc] | None = None,
    seed: int = FEWSHOT_SEED,
) -> list[Item]:
    """Prompts for every doc, with k-shot contexts drawn in lm-eval's order."""
    sampler = None
    if shots > 0:
        if not fewshot_pool:
            raise ConfigError(f"task {spec.name}: --shots {shots} needs a few-shot split, and it has none")
        exclude = spec.draw_extra_example if spec.draw_extra_example is not None else spec.fewshot_split == spec.eval_split
        sampler = FewshotSampler(fewshot_pool, spec.fewshot_sampler, exclude, seed)
    items = []
    for doc in docs:
        prefix = spec.description
        if sampler is not None:
            prefix += "".join(fewshot_example(d, spec) for d in sampler.sample(shots, doc))
        items.append(item_from_doc(doc, spec, prefix))
    return items


def item_from_doc(doc: Doc, spec: TaskSpec, prefix: str = "") -> Item:
    d = spec.target_delimiter
    if doc.partial_target is not None:
        target = d + doc.partial_target
        return Item(
            id=doc.id,
            contexts=tuple(prefix + c for c in doc.choices),
            continuations=(target,) * len(doc.choices),
            gold=doc.gold,
            n_chars=(len(doc.partial_target),) * len(doc.choices),
        )
    return Item(
        id=doc.id,
        contexts=(prefix + doc.text,) * len(doc.choices),
        continuations=tuple(d + c for c in doc.choices),
        gold=doc.gold,
        n_chars=tuple(len(c) for c in doc.choices),
    )


def check_doc(doc: Doc, source: str, line: int | None) -> Doc:
    """The checks every reader's output must pass: never a silently wrong label."""
    if not doc.id:
        raise DataError(source, line, "id", "empty id")
    if len(doc.choices) < 2:
        raise DataError(source, line, "choices", f"needs at least 2 options, found {len(doc.choices)}")
    for i, c in enumerate(doc.choices):
        if not isinstance(c, str) or not c.strip():
            raise DataError(source, line, "choices", f"option {i} is empty")
    if len(set(doc.choices)) != len(doc.choices):
        dup = next(c for c in doc.choices if doc.choices.count(c) > 1)
        raise DataError(source, line, "choices", f"option '{dup}' appears twice")
    if not isinstance(doc.gold, int) or isinstance(doc.gold, bool) or not 0 <= doc.gold < len(doc.choices):
        raise DataError(source, line, "answer", f"gold index {doc.gold!r} is not in 0..{len(doc.choices) - 1}")
    return doc


Reader = Callable[[dict, TaskSpec, str, int | None], Doc]
