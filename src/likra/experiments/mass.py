"""``likra mass``: where each head moves likelihood (paper figures 2 and 6).

Config in: a model, an evaluation task and protocol, a positive and a negative run, and a second
benchmark for unrelated answers. What it scores: every test question with four continuations (its
correct answer, the incorrect option the base model finds most likely, another test question's
correct answer, an answer of the other benchmark) under the base model and both heads at every
curve point. What comes out: the mean change of per-character log-likelihood from the base model,
per head, category and n, and the negative head's change minus the positive's on the same
questions (``mass.json``), a figure, and the table printed.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..defaults import DEFAULT_MODEL
from ..command import Writes, command, option
from ..errors import ConfigError
from ..io import per_char, write_json
from ..scoring.table import ScoreTable, option_matrix
from . import figures
from .runs import Protocol, check_roles, curve_points, score_missing, scored_points, table_path

MASS_CATEGORIES = ("correct", "most-likely-incorrect", "irrelevant", "unrelated")
GAP = "negative - positive"  # what the Likra score subtracts: where the negative head puts more than the positive
SEPARATION = "most-likely-incorrect - correct"  # under GAP: > 0 when the negative head (against the positive) prefers the wrong answer
Changes = dict[str, dict[str, list[tuple[int, float, float]]]]  # head -> category -> [(n, mean change, 95% half-width)]


@dataclass
class MassOptions(Protocol, Writes):
    model: str = option(DEFAULT_MODEL, "embedded name, local folder or hub id")
    task: str = option("arc_challenge", "evaluation task whose questions are used")
    positive: str | None = option(None, "positive training run folder")
    negative: str | None = option(None, "negative training run folder")
    unrelated_task: str = option("hellaswag", "benchmark whose answers are the unrelated ones")
    data_dir: str | None = option(None, "folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")


def mass_items(test_items, base_scores: dict[str, list[float]], unrelated_answers: list[str], seed: int = 0):
    """Each test question with four continuations, option k of every item being category k."""
    from ..tasks.base import Item

    if len(test_items) < 2:
        raise ConfigError("the likelihood mass needs at least two test questions (one's answer is another's irrelevant answer)")
    rng = random.Random(f"mass:{seed}")
    out = []
    for it in test_items:
        s = base_scores[it.id]
        wrong = max((o for o in range(it.n_options) if o != it.gold), key=lambda o: s[o])
        irrelevant = None
        for _ in range(1000):
            other = test_items[rng.randrange(len(test_items))]
            cand = other.continuations[other.gold]
            if other.id != it.id and cand not in it.continuations:
                irrelevant = cand
                break
        unrelated = " " + unrelated_answers[rng.randrange(len(unrelated_answers))].strip()
        conts = (it.continuations[it.gold], it.continuations[wrong], irrelevant, unrelated)
        if irrelevant is None or len(set(conts)) < 4:
            continue  # a coincidence of texts would blur the categories
        out.append(Item(id=it.id, contexts=(it.contexts[it.gold],) * 4, continuations=conts, gold=0,
                        n_chars=tuple(len(c.strip()) for c in conts)))
    return out


def _mass_items(o: MassOptions, out: Path):
    """The four-continuation items, built once (they need the base model's scores) and kept in items.json."""
    from ..negatives import answers_of
    from ..tasks import load_docs, resolve_spec
    from ..tasks.base import Item, item_from_doc

    path = out / "items.json"
    if path.exists():
        return [Item(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}) for d in json.loads(path.read_text())]
    test = o.items(o.task, o.data_dir).items
    base_path = out / "test-base.parquet"
    score_missing(o.model, o.task, o, test, {base_path: ({"base": None}, {"n": 0})}, progress=not o.quiet)
    m = option_matrix(ScoreTable.load(base_path), "base")
    scores = {i: list(per_char(ll, nc)) for i, ll, nc in zip(m.item_ids, m.loglik, m.n_chars)}
    spec = resolve_spec(o.unrelated_task)
    other = answers_of([item_from_doc(d, spec) for d in load_docs(spec, spec.eval_split, o.data_dir)])
    items = mass_items(test, scores, other)
    write_json(path, [it.__dict__ for it in items])
    return items


def score_mass(o: MassOptions, out: Path) -> Path:
    """Score the mass items under the base and under both heads at every curve point (cached)."""
    check_roles(o.positive, o.negative)
    pos, neg = curve_points(o.positive), curve_points(o.negative)
    points = sorted(set(pos) & set(neg))
    runs = {"positive_run": str(o.positive), "negative_run": str(o.negative)}
    tables = {table_path(out, 0): ({"base": None}, {"n": 0, **runs})}
    tables.update({table_path(out, n): ({f"positive@{n}": pos[n], f"negative@{n}": neg[n]}, {"n": n, **runs}) for n in points})
    if any(not p.exists() for p in tables):
        score_missing(o.model, o.task, o, _mass_items(o, out), tables, progress=not o.quiet)
    return out


def _mean(d: np.ndarray, n: int) -> tuple[int, float, float]:
    return n, float(d.mean()), float(figures.Z95 * d.std(ddof=1) / np.sqrt(len(d)))


def mass_changes(out: str | os.PathLike) -> Changes:
    """head -> category -> [(n, mean change of per-character log-likelihood from the base, half-width of
    its 95% interval over questions)]; and ``GAP``: the negative head's change minus the positive
    head's on the same question (what the Likra score subtracts), with ``SEPARATION``, that gap on
    the most likely wrong answer minus the gap on the correct one (question by question)."""
    tables = scored_points(out)
    base = option_matrix(ScoreTable.load(tables.pop(0)), "base")
    base_pc = np.array([per_char(ll, nc) for ll, nc in zip(base.loglik, base.n_chars)])
    result: Changes = {h: {c: [(0, 0.0, 0.0)] for c in MASS_CATEGORIES} for h in ("positive", "negative", GAP)}
    result[GAP][SEPARATION] = [(0, 0.0, 0.0)]
    for n, path in tables.items():
        t = ScoreTable.load(path)
        delta = {}
        for h in ("positive", "negative"):
            m = option_matrix(t, f"{h}@{n}")
            delta[h] = np.array([per_char(ll, nc) for ll, nc in zip(m.loglik, m.n_chars)]) - base_pc
        delta[GAP] = delta["negative"] - delta["positive"]
        for h, d in delta.items():
            for k, c in enumerate(MASS_CATEGORIES):
                result[h][c].append(_mean(d[:, k], n))
        result[GAP][SEPARATION].append(_mean(delta[GAP][:, 1] - delta[GAP][:, 0], n))
    return result


def plot_mass(changes: Changes, path: str | os.PathLike, title: str) -> Path:
    """One panel per head: the mean change of each category from the base model (0 at n = 0), with
    its 95% interval over questions as a band."""
    heads = [h for h in ("positive", "negative", GAP) if h in changes]  # mass.json files older than GAP have two
    fig, axes = figures.axes(4.8 * len(heads), 4.2, ncols=len(heads))
    if len(heads) > 2:
        axes[1].sharey(axes[0])
    for ax, head in zip(axes, heads):
        ns = [n for n, *_ in next(iter(changes[head].values()))]
        for cat, pts in changes[head].items():
            half = [p[2] if len(p) > 2 else 0.0 for p in pts]
            figures.line(ax, [p[0] for p in pts], [p[1] for p in pts], half, cat, "-o")
        ax.axhline(0, color="black", lw=0.8, linestyle="--", label="base model")
        figures.n_axis(ax, ns)
        ax.set_title(f"{head} head" if head != GAP else f"{GAP} (what Likra subtracts)", fontsize=10)
    axes[0].set_ylabel("change of log-likelihood per character")
    fig.suptitle(title, fontsize=10)
    return figures.finish(fig, axes[-1], path, "", "Bands: 95% interval of the mean over the test questions (the last panel: "
                          "paired, question by question).", legend_axes=axes)


def summary_lines(changes: Changes) -> list[str]:
    lines = []
    for head, cats in changes.items():
        lines.append(f"{head} head: change of mean log-likelihood per character from the base model (± 95% half-width)"
                     if head != GAP else f"{GAP}, question by question (± 95% half-width)")
        ns = [p[0] for p in next(iter(cats.values()))]
        lines.append(f"{'category':<32}" + "".join(f"{n:>16}" for n in ns))
        lines += [f"{c:<32}" + "".join(f"{p[1]:>9.3f} ±{p[2] if len(p) > 2 else 0:.3f}" for p in pts) for c, pts in cats.items()]
    return lines


def run(o: MassOptions) -> Changes:
    out = o.require_out("mass")
    if not o.positive or not o.negative:
        raise ConfigError("likra mass needs --positive and --negative (on the command line or in --config)")
    score_mass(o, out)
    changes = mass_changes(out)
    write_json(out / "mass.json", changes)
    plot_mass(changes, out / "mass.png", f"Likelihood mass ({o.model}, {o.task})")
    return changes


@command("mass", "likelihood mass: how each head moves correct / most-likely-incorrect / irrelevant / unrelated answers",
         MassOptions)
def main(o: MassOptions, argv: list[str] | None = None) -> Changes:
    changes = run(o)
    print("\n".join(summary_lines(changes)))
    print(f"figure: {Path(o.out) / 'mass.png'}")
    return changes
