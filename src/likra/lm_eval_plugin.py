"""likra as a model of lm-evaluation-harness: the paper's protocol on any lm-eval multiple-choice
task, with no fork of lm-eval.

    from likra.lm_eval_plugin import LikraLM
    lm_eval.simple_evaluate(model=LikraLM(pretrained="smollm2-135m", positive="base",
                                          negative="runs/neg/n-001024"), tasks=["arc_challenge"])

or from the shell, with lm-eval's own arguments (``likra lm-eval`` registers the model type, then
hands its arguments to lm-eval's command line)::

    likra lm-eval --model likra --model_args pretrained=smollm2-135m,positive=base,negative=ADAPTER,weight=1.0 \\
        --tasks arc_challenge --num_fewshot 25

Every loglikelihood request gets ``L+ - w * L-``: the sum over the continuation's tokens under the
positive head (or the base model) minus w times the same under the negative head. lm-eval then
divides by the continuation's characters for ``acc_norm``, which is exactly the paper's per-character
Likra score. Requests are grouped by document, so the options of a question share one packed row
and their common prefix (likra's engine); both heads run on the same batches.
"""

from __future__ import annotations

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from .errors import ConfigError, LikraError
from .io import DTYPES
from .models import (
    BASE_HEAD,
    attach_adapters,
    check_adapter_folder,
    load_base,
    load_tokenizer,
)
from .rules import RULES
from .scoring.engine import Scorer
from .tasks.base import Item

LIKRA = RULES["likra"]
LM_EVAL_ARGS = frozenset({"batch_size", "max_batch_size", "device"})  # lm-eval passes these to every model

NOT_SUPPORTED = ("{task}{kind} is not supported by a likelihood-ratio model: likra scores the log-likelihoods of "
                 "given answer options only (lm-eval tasks with output_type multiple_choice, e.g. arc_challenge, "
                 "arc_easy, hellaswag, mmlu, truthfulqa_mc1, winogrande); run this task with another backend "
                 "(--model hf)")


class NotSupported(LikraError, NotImplementedError):
    """An lm-eval request type a likelihood ratio cannot answer (generation, perplexity)."""


def _refuse(kind: str, requests) -> NotSupported:
    names = sorted({getattr(r, "task_name", None) for r in requests or []} - {None})
    return NotSupported(NOT_SUPPORTED.format(task=f"task {', '.join(names)}: " if names else "", kind=kind))


@register_model("likra")
class LikraLM(LM):
    def __init__(self, pretrained: str = "smollm2-135m", positive: str = "base", negative: str | None = None,
                 weight: float = 1.0, dtype: str = "fp32", batch_tokens: int = 1024, chat_template: bool | str = False,
                 **kwargs):
        """``positive``: an adapter folder, or "base" (Base-Likra); ``negative``: an adapter folder, or
        None to score the positive head alone (SFT, or the base model); ``chat_template=true``: each
        context as the user turn of the model's template, as ``likra eval --chat-template`` (use it
        instead of lm-eval's --apply_chat_template). lm-eval's own keyword arguments (batch_size,
        device, ...) are accepted and ignored: likra batches by tokens."""
        unknown = sorted(set(kwargs) - LM_EVAL_ARGS)
        if unknown:
            raise ConfigError(f"--model_args: unknown key(s) {unknown}; likra knows pretrained, positive, negative, "
                              f"weight, dtype, batch_tokens, chat_template (and lm-eval's {', '.join(sorted(LM_EVAL_ARGS))})")
        if dtype not in DTYPES:
            raise ConfigError(f"--model_args dtype={dtype}: use one of {', '.join(DTYPES)}")
        super().__init__()
        adapters = {}
        if positive and positive != "base":
            adapters["positive"] = positive
        if negative and negative != "none":
            adapters["negative"] = negative
        for key, path in adapters.items():  # before the base model loads
            check_adapter_folder(path, f"--model_args {key}={path}")
        base = load_base(pretrained, dtype)
        model = attach_adapters(base, adapters) if adapters else base
        chat = str(chat_template).strip().lower()
        if chat not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"--model_args chat_template={chat_template}: give true or false")
        self.scorer = Scorer(model, load_tokenizer(pretrained), batch_tokens=int(batch_tokens),
                             chat_template=chat in ("true", "1", "yes"))
        self.positive = "positive" if "positive" in adapters else BASE_HEAD
        self.negative = "negative" if "negative" in adapters else None
        self.weight = float(weight)

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        groups: dict[tuple, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault((req.task_name, req.doc_id) if req.doc_id is not None else ("request", i), []).append(i)
        items, where = [], {}
        for k, (key, idxs) in enumerate(groups.items()):
            ctxs = tuple(requests[i].args[0] for i in idxs)
            conts = tuple(requests[i].args[1] for i in idxs)
            items.append(Item(id=str(k), contexts=ctxs, continuations=conts, gold=0, n_chars=tuple(len(c) for c in conts)))
            for j, i in enumerate(idxs):
                where[i] = (str(k), j)
        heads = [self.positive] + ([self.negative] if self.negative else [])
        table = self.scorer.score(items, heads, progress=not disable_tqdm)
        got = {(r["item_id"], r["option"], r["head"]): (r["loglik"], r["greedy"]) for r in table.rows()}
        out = []
        for i in range(len(requests)):
            item_id, j = where[i]
            ll, greedy = got[(item_id, j, self.positive)]
            if self.negative:  # Likra (Base-Likra when the positive head is the base model)
                ll = LIKRA.combine(self.weight, ll, got[(item_id, j, self.negative)][0])
            out.append((ll, bool(greedy)))
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise _refuse("rolling log-likelihood (loglikelihood_rolling, perplexity)", requests)

    def generate_until(self, requests, disable_tqdm: bool = False):
        raise _refuse("generation (generate_until)", requests)


def main(argv: list[str] | None = None) -> None:
    """lm-eval's command line with the ``likra`` model type registered (lm-eval 0.4 discovers model
    types only from its own package, so ``lm_eval --model likra`` needs this entry point). likra's own
    errors (a bad model argument, a request type it cannot score) end it in one line with exit code 2,
    as every likra command does; lm-eval's own failures keep their traceback."""
    import sys

    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = ["lm_eval", *argv]
    try:
        cli_evaluate()
    except LikraError as err:
        print(f"likra lm-eval: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
