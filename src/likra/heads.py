"""Training a Likra head from a pool, end to end: the function behind ``likra train``.

It sits above scoring because ``hardest`` negatives are mined by scoring the pool with the base
model first; the training loop itself (``likra.training``) knows nothing of tasks or scoring.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from .errors import ConfigError
from .models import load_base, load_tokenizer, weights_fingerprint
from .negatives import negative_pairs, pool_items, positive_pairs, shuffled, wrong_answers_of
from .tasks import load_pool, resolve_spec
from .training import RunInfo, TrainConfig, train_head


def train(
    model: str,
    pool: str,
    head: str,
    out: str | os.PathLike,
    negatives: str | None = None,
    n: int | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    config: TrainConfig | None = None,
    per_question: int = 1,
    skip_invalid: bool = False,
    progress: bool = True,
    method: str = "likra",
    stop_at: int | None = None,
) -> list[Path]:
    """Train the ``head`` ("positive" or "negative") of ``model`` on the first ``n`` questions of
    ``pool`` in the seed's order; returns the learning-curve adapter folders under ``out``.
    ``method`` "dpo", "kto" or "kto-rejected" trains that baseline instead, on the same questions
    with their near-miss negatives (``likra.baselines``). ``stop_at`` pauses a head's run at that
    curve point (``likra.training.train_head``)."""
    if method != "likra" and stop_at is not None:
        raise ConfigError(f"--stop-at pauses a Likra head's run; the {method} baseline trains in one go")
    if method != "likra":
        return _train_baseline(model, pool, method, out, n, seed, data_dir, config, skip_invalid, progress)
    if head not in ("positive", "negative"):
        raise ConfigError(f"head must be 'positive' or 'negative', not '{head}'")
    if head == "positive" and negatives:
        raise ConfigError("negatives apply to the negative head only")
    source = negatives or "near-miss"
    items = pool_order(pool, seed, n, data_dir, skip_invalid)
    base = load_base(model)
    tokenizer = load_tokenizer(model)
    if head == "positive":
        pairs = positive_pairs(items)
    else:
        unrelated = scores = None
        if source.startswith("unrelated:"):
            unrelated = unrelated_answers(source.split(":", 1)[1], data_dir, skip_invalid)
        elif source == "hardest":
            from .scoring.engine import Scorer
            from .scoring.table import option_matrix

            print(f"mining hardest negatives: scoring {len(items)} questions with the base model", file=sys.stderr)
            m = option_matrix(Scorer(base, tokenizer).score(items, ["base"], progress=progress), "base")
            scores = {i: list(ll / nc) for i, ll, nc in zip(m.item_ids, m.loglik, m.n_chars)}
        pairs = negative_pairs(items, source, seed, per_question, unrelated, scores)
    info = RunInfo(model=model, base_fingerprint=weights_fingerprint(base), pool=pool, head=head,
                   negatives=source if head == "negative" else None, seed=seed, n_total=len(pairs))
    torch.manual_seed(seed)
    return train_head(base, tokenizer, pairs, out, info, config, progress=progress, stop_at=stop_at)


def unrelated_answers(pool: str, data_dir, skip_invalid: bool = False) -> list[str]:
    """Every wrong answer of another benchmark's pool (a task stands for its non-evaluated splits,
    e.g. HellaSwag's train file; ``mmlu-nonscience`` for MMLU's humanities and social sciences)."""
    return wrong_answers_of([d for _, d in load_pool(pool, data_dir, skip_invalid)])


def pool_order(pool: str, seed: int, n: int | None, data_dir, skip_invalid: bool = False):
    """The pool's questions in the seed's order, the first ``n`` of them: what every head and baseline trains on."""
    items = shuffled(pool_items([(resolve_spec(t), d) for t, d in load_pool(pool, data_dir, skip_invalid)]), seed)
    if n is not None:
        if n > len(items):
            raise ConfigError(f"n={n} is more than the {len(items)} questions of pool '{pool}'")
        items = items[:n]
    return items


def _train_baseline(model, pool, method, out, n, seed, data_dir, config, skip_invalid, progress) -> list[Path]:
    from .baselines import METHODS, train_baseline

    if method not in METHODS:
        raise ConfigError(f"unknown --method '{method}' (choose from likra, {', '.join(METHODS)})")
    items = pool_order(pool, seed, n, data_dir, skip_invalid)
    base = load_base(model)
    info = RunInfo(model=model, base_fingerprint=weights_fingerprint(base), pool=pool, head=method,
                   negatives="near-miss", seed=seed, n_total=len(items))
    torch.manual_seed(seed)
    return train_baseline(base, load_tokenizer(model), items, method, out, info, config, progress)
