"""Metrics as pure functions of score tables: no model is ever called here."""

from __future__ import annotations

import math

import numpy as np

from .scoring.table import OptionMatrix, ScoreTable, option_matrix


def choose(scores: list[np.ndarray]) -> np.ndarray:
    """Argmax per item; ties go to the first option, as numpy's (and lm-eval's) argmax does."""
    return np.array([int(np.argmax(s)) for s in scores])


def accuracy(pred: np.ndarray, gold: np.ndarray) -> tuple[float, float | None]:
    """Mean accuracy and its standard error (sample std / sqrt(n), as lm-eval reports it; None for
    one item, where it is undefined: JSON has no NaN)."""
    correct = (pred == gold).astype(np.float64)
    n = len(correct)
    if n == 0:
        raise ValueError("accuracy of no items")
    se = float(np.std(correct, ddof=1) / math.sqrt(n)) if n > 1 else None
    return float(correct.mean()), se


def paired_difference(pred_a: np.ndarray, pred_b: np.ndarray, gold: np.ndarray) -> tuple[float, float | None]:
    """Accuracy of rule a minus rule b on the same items, with the standard error of the per-item
    differences. Two rules scored on the same questions are correlated: the paired error is what
    says whether a gap of 0.01-0.03 is real, where the two unpaired errors would overstate it."""
    diff = (pred_a == gold).astype(np.float64) - (pred_b == gold).astype(np.float64)
    n = len(diff)
    if n == 0:
        raise ValueError("paired difference of no items")
    se = float(np.std(diff, ddof=1) / math.sqrt(n)) if n > 1 else None
    return float(diff.mean()), se


def acc(m: OptionMatrix) -> tuple[float, float]:
    return accuracy(choose(m.loglik), m.gold)


def acc_norm(m: OptionMatrix) -> tuple[float, float]:
    """lm-eval's acc_norm: log-likelihood divided by the option's length in characters."""
    return accuracy(choose([ll / nc for ll, nc in zip(m.loglik, m.n_chars)]), m.gold)


def mean_loglik_per_char(m: OptionMatrix) -> tuple[float, float]:
    """Mean per-character log-likelihood of the gold options and of the wrong ones: how a head
    moves probability mass towards (positive head) or away from (negative head) correct answers."""
    gold, wrong = [], []
    for ll, nc, g in zip(m.loglik, m.n_chars, m.gold):
        per_char = ll / nc
        gold.append(per_char[g])
        wrong.extend(np.delete(per_char, g))
    return float(np.mean(gold)), float(np.mean(wrong))


def head_metrics(table: ScoreTable) -> dict[str, dict[str, float]]:
    out = {}
    for head in table.heads():
        m = option_matrix(table, head)
        a, a_se = acc(m)
        n, n_se = acc_norm(m)
        g, w = mean_loglik_per_char(m)
        out[head] = {"acc": a, "acc_stderr": a_se, "acc_norm": n, "acc_norm_stderr": n_se, "n_items": len(m.item_ids),
                     "gold_loglik_per_char": g, "wrong_loglik_per_char": w}
    return out
