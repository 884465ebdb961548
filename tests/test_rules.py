"""Scoring rules and metrics against hand-computed values, on a hand-written score table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from likra.metrics import head_metrics, paired_difference
from likra.rules import auroc_wrong, fit_temperature, rule_accuracy, rule_scores, rule_summary, softmax_probs, weight_sweep
from likra.scoring.table import ScoreTable

# item q1: 2 options, gold 0, n_chars 2 and 4; item q2: 3 options, gold 2, n_chars 1, 1, 2
LL = {
    "base":     {"q1": [-4.0, -4.0], "q2": [-1.0, -2.0, -3.0]},
    "positive": {"q1": [-2.0, -6.0], "q2": [-2.0, -2.0, -2.0]},
    "negative": {"q1": [-6.0, -2.0], "q2": [-1.0, -3.0, -8.0]},
}
CHARS = {"q1": [2, 4], "q2": [1, 1, 2]}
GOLD = {"q1": 0, "q2": 2}


def table() -> ScoreTable:
    t = ScoreTable()
    for head, items in LL.items():
        for item, lls in items.items():
            for o, ll in enumerate(lls):
                t.append(item_id=item, option=o, head=head, loglik=ll, n_tokens=1, n_chars=CHARS[item][o],
                         gold=o == GOLD[item], greedy=False, truncated=False)
    return t


def test_acc_and_acc_norm():
    m = head_metrics(table())
    # base raw: q1 tie -> first option (gold) right; q2 argmax 0, wrong  -> 0.5
    # base per char: q1 [-2, -1] -> 1 wrong; q2 [-1, -2, -1.5] -> 0 wrong -> 0.0
    assert m["base"]["acc"] == 0.5 and m["base"]["acc_norm"] == 0.0
    assert m["base"]["acc_stderr"] == pytest.approx(np.std([1, 0], ddof=1) / math.sqrt(2))
    # positive raw: q1 right; q2 tie -> option 0, wrong -> 0.5; per char q1 [-1, -1.5] right, q2 [-2,-2,-1] right
    assert m["positive"]["acc"] == 0.5 and m["positive"]["acc_norm"] == 1.0


def test_likra_rules_by_hand():
    t = table()
    # likra per char, w=1: q1 pos [-1, -1.5] neg [-3, -0.5] -> [2, -1] right
    #                      q2 pos [-2, -2, -1] neg [-1, -3, -4] -> [-1, 1, 3] right
    scores, gold = rule_scores(t, "likra", 1.0, norm=True)
    assert np.allclose(scores[0], [2.0, -1.0]) and np.allclose(scores[1], [-1.0, 1.0, 3.0])
    assert rule_accuracy(t, "likra", 1.0) == (1.0, 0.0)
    # base-likra raw, w=0.5: q1 [-4+3, -4+1] = [-1, -3] right; q2 [-1+0.5, -2+1.5, -3+4] = [-0.5, -0.5, 1] right
    s, _ = rule_scores(t, "base-likra", 0.5, norm=False)
    assert np.allclose(s[0], [-1, -3]) and np.allclose(s[1], [-0.5, -0.5, 1.0])
    # dexperts per char, a=2: q1 base [-2, -1] + 2*([-1, -1.5] - [-3, -0.5]) = [2, -3]
    s, _ = rule_scores(t, "dexperts", 2.0, norm=True)
    assert np.allclose(s[0], [2.0, -3.0])
    # w = 0 gives back the positive head
    assert rule_accuracy(t, "likra", 0.0) == rule_accuracy(t, "sft", 0.0)


def test_weight_sweep_by_hand():
    # per char at weight w: q1 [-1 + 3w, -1.5 + 0.5w], gold 0 ahead for every w >= 0;
    # q2 [-2 + w, -2 + 3w, -1 + 4w], gold 2 ahead for every w >= 0; base-likra q1 [-2 + 3w, -1 + 0.5w]
    # has gold ahead only for w > 0.4, q2 [-1 + w, -2 + 3w, -1.5 + 4w] only for w > 1/6
    sweep = weight_sweep(table(), "likra", [0.0, 0.5, 1.0, 1.5])
    assert [(w, a) for w, a, _ in sweep] == [(0.0, 1.0), (0.5, 1.0), (1.0, 1.0), (1.5, 1.0)]
    sweep = weight_sweep(table(), "base-likra", [0.0, 0.3, 0.5])
    assert [(w, a) for w, a, _ in sweep] == [(0.0, 0.0), (0.3, 0.5), (0.5, 1.0)]


def test_auroc_wrong_answer_detector():
    # scores: gold options 3 and 1; wrong options 2, 0 -> wrong scores below gold except 2 > 1
    scores = [np.array([3.0, 2.0]), np.array([0.0, 1.0])]
    gold = np.array([0, 1])
    # pairs (wrong, gold): (2,3) ok, (2,1) not, (0,3) ok, (0,1) ok -> 3/4
    assert auroc_wrong(scores, gold) == pytest.approx(0.75)
    assert auroc_wrong([np.array([1.0, 1.0])], np.array([0])) == pytest.approx(0.5)  # a tie counts half


def test_temperature_fit_and_probabilities():
    rng = np.random.default_rng(0)
    true_t = 2.0
    scores, gold = [], []
    for _ in range(3000):
        s = rng.normal(size=4) * 3
        p = np.exp(s / true_t) / np.exp(s / true_t).sum()
        scores.append(s)
        gold.append(rng.choice(4, p=p))
    t = fit_temperature(scores, np.array(gold))
    assert abs(t - true_t) < 0.2
    probs = softmax_probs(scores[:2], t)
    assert all(abs(p.sum() - 1) < 1e-12 for p in probs)


def test_paired_difference_by_hand():
    gold = np.array([0, 1, 2, 0])
    a = np.array([0, 1, 0, 0])  # right, right, wrong, right
    b = np.array([0, 0, 2, 1])  # right, wrong, right, wrong
    diff, se = paired_difference(a, b, gold)  # per item: 0, +1, -1, +1 -> mean 0.25
    assert diff == pytest.approx(0.25)
    assert se == pytest.approx(np.std([0, 1, -1, 1], ddof=1) / 2.0)  # 0.9574 / 2
    assert paired_difference(a, a, gold) == (0.0, 0.0)  # a rule against itself differs nowhere


def test_rule_summary_by_hand():
    s = rule_summary(table())
    # per char (see test_acc_and_acc_norm and test_likra_rules_by_hand): base 0/2, sft 2/2, likra 2/2
    assert s["base"]["acc_norm"] == 0.0 and s["sft"]["acc_norm"] == 1.0 and s["likra"]["acc_norm"] == 1.0
    assert s["likra_minus_sft"] == {"diff": 0.0, "paired_stderr": 0.0}
    # base-likra per char, w=1: q1 [-2+3, -1+0.5] = [1, -0.5] right; q2 [-1+1, -2+3, -1.5+4] = [0, 1, 2.5] right
    assert s["base-likra"]["acc_norm"] == 1.0
    only_base = table().select("base")  # without both heads, only the rules they allow
    assert set(rule_summary(only_base)) == {"base"}


def test_table1_calibration_fits_on_even_items_and_reports_the_odd():
    """Table 1's temperature column: fitted on items 0, 2, ... and the NLL of the gold options of
    items 1, 3, ... at T = 1 and at the fitted T, by hand (two options each, gold first)."""
    import math

    from likra.experiments.table1 import _calibration

    scores = [np.array(s) for s in ([2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0])]
    cal = _calibration(scores, np.array([0, 0, 0, 0]))
    assert cal["temperature"] == pytest.approx(fit_temperature(scores[0::2], np.array([0, 0])))
    assert cal["heldout_nll_t1"] == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1))) / 2)
    t = cal["temperature"]
    assert cal["heldout_nll_fitted"] == pytest.approx((math.log(1 + math.exp(-1 / t)) + math.log(1 + math.exp(1 / t))) / 2)
