"""The object a practitioner uses to check candidate answers with a Likra model.

    from likra.api import LikraModel
    lm = LikraModel.from_pretrained("smollm2-135m", positive="runs/pos/n-001024",
                                    negative="runs/neg/n-001024", weight=1.0)
    lm.score("Which gas do plants take in?", ["oxygen", "carbon dioxide"])
    lm.score_batch(questions, options_lists)  # many questions, one engine call

``positive="base"`` makes it Base-Likra (negatives only). Scores are per-character
``L+ - w * L-``; probabilities are their softmax over the options at ``temperature``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, InputRefused
from .models import BASE_HEAD, attach_adapters, load_base, load_tokenizer
from .rules import Heads, rule_scores, softmax_probs
from .scoring.engine import Scorer
from .tasks.base import Doc, Item, item_from_doc
from .tasks.registry import jsonl_spec

DEFAULT_TEMPLATE = "Question: {question}\nAnswer:"


@dataclass
class LikraResult:
    options: list[str]
    scores: list[float]  # per-character L+ - w * L-
    probabilities: list[float]
    choice: int
    loglik: dict[str, list[float]]  # per head, summed over the option's tokens

    @property
    def answer(self) -> str:
        return self.options[self.choice]


def check_question(question: str, options: list[str]) -> None:
    """Refuse what cannot be compared, naming it: scores of such input would be NaN or meaningless."""
    if not isinstance(question, str) or not question.strip():
        raise InputRefused(f"question: give a non-empty string, not {question!r}")
    if isinstance(options, str) or not isinstance(options, (list, tuple)):
        raise InputRefused(f"options: give a list of strings, not a {type(options).__name__}")
    if len(options) < 2:
        raise InputRefused("options: give at least two options to compare")
    for k, o in enumerate(options):
        if not isinstance(o, str) or not o.strip():
            raise InputRefused(f"options[{k}]: {o!r} is not a non-empty string")
    seen = {}
    for k, o in enumerate(options):
        if o.strip() in seen:
            raise InputRefused(f"options[{k}] repeats options[{seen[o.strip()]}] ({o!r}): give distinct options")
        seen[o.strip()] = k


_FREE_FORM = jsonl_spec("question")  # a question of one's own: delimiter " ", no description


def question_item(item_id: str, question: str, candidates: list[str], template: str = DEFAULT_TEMPLATE,
                  gold: int = 0) -> Item:
    """The item ``LikraModel.score`` scores: the template's prompt, each candidate after a space,
    per-character normalisation by the candidate's length (built by the tasks' shared code). ``likra serve`` builds its items here too."""
    return item_from_doc(Doc(id=item_id, text=template.format(question=question), choices=tuple(candidates), gold=gold),
                         _FREE_FORM)


class LikraModel:
    def __init__(self, model, tokenizer, weight: float = 1.0, temperature: float = 1.0,
                 positive_head: str = "positive", template: str = DEFAULT_TEMPLATE, chat_template: bool = False):
        self.scorer = Scorer(model, tokenizer, chat_template=chat_template)  # chat: heads trained with --chat-template
        self.weight, self.temperature, self.template = weight, temperature, template
        self.heads = Heads(base=BASE_HEAD, positive=positive_head, negative="negative")

    @classmethod
    def from_pretrained(cls, base: str, positive: str = "base", negative: str | None = None, weight: float = 1.0,
                        temperature: float = 1.0, template: str = DEFAULT_TEMPLATE, dtype: str = "fp32",
                        chat_template: bool = False) -> "LikraModel":
        if negative is None:
            raise ConfigError("a Likra model needs a negative head: negative=ADAPTER_DIR")
        adapters = {"negative": negative}
        if positive != "base":
            adapters["positive"] = positive
        lm = load_base(base, dtype)
        model = attach_adapters(lm, adapters)
        return cls(model, load_tokenizer(base), weight, temperature,
                   positive_head="positive" if positive != "base" else BASE_HEAD, template=template, chat_template=chat_template)

    def score(self, question: str, options: list[str]) -> LikraResult:
        """Per-character Likra scores of ``options`` as answers to ``question``, their softmax, the choice."""
        return self.score_batch([question], [options])[0]

    def score_batch(self, questions: list[str], options_lists: list[list[str]]) -> list[LikraResult]:
        """``score`` for many questions in one engine call: the engine packs and batches every
        question's options together (shared prefixes once), which is much faster than a loop."""
        if isinstance(questions, str) or len(questions) != len(options_lists):
            raise InputRefused(f"give one list of options per question: {len(questions)} questions, "
                               f"{len(options_lists)} lists of options")
        for k, (q, opts) in enumerate(zip(questions, options_lists)):
            try:
                check_question(q, opts)
            except InputRefused as err:
                raise InputRefused(f"question {k}: {err}" if len(questions) > 1 else str(err)) from None
        items = [question_item(f"q{k}", q, list(opts), self.template) for k, (q, opts) in enumerate(zip(questions, options_lists))]
        if not items:
            return []
        heads = list(dict.fromkeys([self.heads.positive, self.heads.negative]))
        table = self.scorer.score(items, heads, progress=False)
        scores, _ = rule_scores(table, "likra", self.weight, norm=True, heads=self.heads)
        probs = softmax_probs(scores, self.temperature)
        ll: dict[str, dict[str, list[float]]] = {h: {} for h in heads}
        for r in table.rows():
            ll[r["head"]].setdefault(r["item_id"], []).append(r["loglik"])
        return [LikraResult(list(opts), [float(x) for x in s], [float(x) for x in p], int(np.argmax(s)),
                            {h: ll[h][it.id] for h in heads})
                for it, opts, s, p in zip(items, options_lists, scores, probs)]
