"""Scoring rules: how the heads' log-likelihoods combine into one score per option.

Pure functions of score tables; a weight sweep or a new rule never calls a model. Each rule is
computed on per-character log-likelihoods when ``norm`` is true (acc_norm, the paper's choice) and
on raw sums otherwise (acc).

    base        L_base
    sft         L+
    likra       L+ - w * L-
    base-likra  L_base - w * L-
    dexperts    L_base + w * (L+ - L-)      (beyond the paper)

The rules are entries of ``RULES`` (their roles and their combination), read by every caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .io import per_char
from .metrics import accuracy, choose, paired_difference
from .scoring.table import ScoreTable, option_matrix


@dataclass(frozen=True)
class Heads:
    """Which table head plays which part."""

    base: str = "base"
    positive: str = "positive"
    negative: str = "negative"

    def of(self, role: str) -> str:
        return getattr(self, role)


@dataclass(frozen=True)
class Rule:
    """A scoring rule: the roles it reads (base, positive, negative) and how it combines their
    scores with the weight w. This is the one home of ``L+ - w L-``: the API, the lm-eval model
    and every experiment read it from here."""

    name: str
    roles: tuple[str, ...]
    combine: Callable[..., Any]  # combine(w, *scores in the order of roles)
    formula: str


RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("base", ("base",), lambda w, b: b, "L_base"),
    Rule("sft", ("positive",), lambda w, p: p, "L+"),
    Rule("likra", ("positive", "negative"), lambda w, p, n: p - w * n, "L+ - w L-"),
    Rule("base-likra", ("base", "negative"), lambda w, b, n: b - w * n, "L_base - w L-"),
    Rule("dexperts", ("base", "positive", "negative"), lambda w, b, p, n: b + w * (p - n), "L_base + w (L+ - L-)"),
)}


def get_rule(name: str) -> Rule:
    if name not in RULES:
        raise ConfigError(f"unknown rule '{name}' (choose from {', '.join(RULES)})")
    return RULES[name]


def _per_option(table: ScoreTable, head: str, norm: bool) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    m = option_matrix(table, head)
    scores = [per_char(ll, nc) for ll, nc in zip(m.loglik, m.n_chars)] if norm else m.loglik
    return m.item_ids, scores, m.gold


def rule_heads(rule: str, heads: Heads = Heads()) -> list[str]:
    """The table heads a rule reads."""
    return [heads.of(role) for role in get_rule(rule).roles]


def rule_scores(table: ScoreTable, rule: str, weight: float = 1.0, norm: bool = True,
                heads: Heads = Heads()) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-item arrays of option scores under ``rule``, and the gold indices."""
    r = get_rule(rule)
    parts, ids0, gold = [], None, None
    for role in r.roles:
        h = heads.of(role)
        ids, s, gold = _per_option(table, h, norm)
        if ids0 is not None and ids != ids0:
            raise ValueError(f"heads '{heads.of(r.roles[0])}' and '{h}' were scored on different items")
        ids0 = ids
        parts.append(s)
    return [r.combine(weight, *xs) for xs in zip(*parts)], gold


def rule_correct(table: ScoreTable, rule: str, weight: float = 1.0, norm: bool = True, heads: Heads = Heads()) -> np.ndarray:
    """Per question: does ``rule`` choose the gold option? (what paired comparisons read)"""
    scores, gold = rule_scores(table, rule, weight, norm, heads)
    return choose(scores) == np.asarray(gold)


def rule_accuracy(table: ScoreTable, rule: str, weight: float = 1.0, norm: bool = True,
                  heads: Heads = Heads()) -> tuple[float, float]:
    scores, gold = rule_scores(table, rule, weight, norm, heads)
    return accuracy(choose(scores), gold)


def rule_summary(table: ScoreTable, weight: float = 1.0, heads: Heads = Heads()) -> dict:
    """acc_norm (with stderr) of every rule the table's heads allow, and Likra minus SFT question by
    question: what one asks of an eval with a positive and a negative head, read off its table so
    that nobody has to recombine the heads by hand."""
    have = set(table.heads())
    out: dict = {}
    preds = {}
    gold = None
    for rule in RULES:
        if set(rule_heads(rule, heads)) <= have:
            scores, gold = rule_scores(table, rule, weight, True, heads)
            preds[rule] = choose(scores)
            a, se = accuracy(preds[rule], gold)
            out[rule] = {"acc_norm": a, "stderr": se}
    if "likra" in preds:
        d, se = paired_difference(preds["likra"], preds["sft"], gold)
        out["likra_minus_sft"] = {"diff": d, "paired_stderr": se}
    return out


def weight_sweep(table: ScoreTable, rule: str, weights, norm: bool = True, heads: Heads = Heads()) -> list[tuple[float, float, float]]:
    """(w, accuracy, stderr) for every weight: table arithmetic only."""
    return [(float(w), *rule_accuracy(table, rule, float(w), norm, heads)) for w in weights]


def auroc_wrong(scores: list[np.ndarray], gold: np.ndarray) -> float:
    """AUROC of ``-score`` as a detector of wrong options (option level): the probability that a
    random wrong option scores below a random correct one (ties count half)."""
    pos, neg = [], []  # pos: wrong options, neg: gold options
    for s, g in zip(scores, gold):
        for o, v in enumerate(s):
            (neg if o == g else pos).append(-float(v))
    pos_a, neg_a = np.array(pos), np.array(neg)
    if len(pos_a) == 0 or len(neg_a) == 0:
        return float("nan")
    allv = np.concatenate([pos_a, neg_a])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: len(pos_a)].sum()
    return float((r_pos - len(pos_a) * (len(pos_a) + 1) / 2) / (len(pos_a) * len(neg_a)))


def softmax_probs(scores: list[np.ndarray], temperature: float) -> list[np.ndarray]:
    out = []
    for s in scores:
        z = s / temperature
        z = z - z.max()
        e = np.exp(z)
        out.append(e / e.sum())
    return out


def fit_temperature(scores: list[np.ndarray], gold: np.ndarray) -> float:
    """The temperature minimising the gold options' negative log-likelihood (a dev split's), by
    golden-section search on log T: one parameter, no gradient needed."""
    def nll(log_t: float) -> float:
        t = math.exp(log_t)
        total = 0.0
        for s, g in zip(scores, gold):
            z = s / t
            total -= z[g] - (z.max() + math.log(np.exp(z - z.max()).sum()))
        return total / len(gold)

    lo, hi = math.log(1e-3), math.log(1e3)
    phi = (math.sqrt(5) - 1) / 2
    a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - phi * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + phi * (hi - lo)
            fb = nll(b)
    return math.exp((lo + hi) / 2)


def parse_weights(text: str) -> list[float]:
    """``"0:1.5:0.1"`` (start:stop:step, stop included) or ``"0,0.5,1"``."""
    if ":" in text:
        start, stop, step = (float(x) for x in text.split(":"))
        n = int(round((stop - start) / step))
        return [round(start + i * step, 10) for i in range(n + 1)]
    return [float(x) for x in text.split(",")]
