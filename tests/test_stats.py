"""likra.stats against values computed by hand and by brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from likra.stats import (bootstrap_interval, holm, mcnemar_exact, paired, pooled_paired, pooled_step_test, seed_mean_sd,
                         size_trend, step_test)


def test_mcnemar_exact_by_hand():
    # 8 discordant questions split 1 / 7: P(X <= 1) = (1 + 8) / 256, two-sided doubles it
    assert mcnemar_exact(1, 7) == pytest.approx(2 * 9 / 256)
    assert mcnemar_exact(7, 1) == mcnemar_exact(1, 7)
    assert mcnemar_exact(4, 4) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 -> x3, x2, x1 -> 0.03, 0.04, 0.04 (kept monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_paired_difference_interval_and_counts():
    a = np.array([1, 1, 1, 0, 1, 0, 1, 1, 0, 1] * 10, bool)
    b = np.array([1, 0, 1, 0, 0, 0, 1, 1, 0, 0] * 10, bool)
    r = paired(a, b)
    assert r.diff == pytest.approx(0.3) and (r.a_only, r.b_only, r.questions) == (30, 0, 100)
    assert r.lo < 0.3 < r.hi and r.lo > 0.15 and r.hi < 0.45
    assert r.p == pytest.approx(2 / 2 ** 30)
    assert paired(a, b) == r  # fixed seed: the same tables give the same interval
    with pytest.raises(ValueError, match="same questions"):
        paired(a, b[:5])


def test_bootstrap_interval_matches_the_normal_approximation_on_a_large_sample():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, 2000).astype(float)
    lo, hi = bootstrap_interval(x)
    se = x.std(ddof=1) / math.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - 1.96 * se, abs=0.006) and hi == pytest.approx(x.mean() + 1.96 * se, abs=0.006)


def test_seed_mean_sd():
    assert seed_mean_sd([0.2, 0.4, 0.6]) == pytest.approx((0.4, 0.2, 3))
    assert seed_mean_sd([0.3]) == (0.3, 0.0, 1)


def test_pooled_paired_averages_the_runs_and_keeps_each_question_together():
    rng = np.random.default_rng(2)
    n_q = 300
    base = [rng.random(n_q) < 0.3 for _ in range(3)]
    # one run gains 0.10, one 0.06, one nothing: the mean is their mean, the sd theirs
    gained = [b | (rng.random(n_q) < g) for b, g in zip(base, (0.14, 0.085, 0.0))]
    r = pooled_paired(gained, base, samples=4000)
    per_run = [paired(g, b).diff for g, b in zip(gained, base)]
    assert r.per_run == pytest.approx(per_run) and r.diff == pytest.approx(np.mean(per_run))
    assert r.sd == pytest.approx(np.std(per_run, ddof=1)) and (r.runs, r.questions) == (3, n_q)
    assert r.lo < r.diff < r.hi and r.lo > 0 and r.p < 0.001
    # one run alone: its own paired difference, and an interval close to paired()'s
    one = pooled_paired(gained[:1], base[:1], samples=4000)
    ref = paired(gained[0], base[0], samples=4000)
    assert one.diff == ref.diff and one.lo == pytest.approx(ref.lo, abs=0.01) and one.hi == pytest.approx(ref.hi, abs=0.01)
    # no difference anywhere: p = 1 and an interval of zero width; noise alone: not significant
    same = pooled_paired(base, base, samples=500)
    assert same.diff == 0 and same.p == 1 and same.lo == same.hi == 0
    noise = pooled_paired([rng.random(n_q) < 0.3 for _ in range(3)], base, samples=2000)
    assert noise.lo < 0 < noise.hi and noise.p > 0.05
    assert "over 3 runs" in r.text() and "(Holm)" in r.text(0.01)
    # no sign flip as extreme as the real gain: p is the test's floor, shown as a bound
    assert r.at_floor and r.p == pytest.approx(1 / 4001) and "p<=" in r.text()
    assert not noise.at_floor and "p=" in noise.text()
    with pytest.raises(ValueError, match="one \\(A, B\\) pair"):
        pooled_paired([], [])


def test_step_test_finds_a_step_and_refuses_a_ramp():
    n_q = 400
    rng = np.random.default_rng(0)
    base = rng.random(n_q)
    step = {16: base < 0.25, 32: base < 0.26, 64: base < 0.27, 128: base < 0.55, 256: base < 0.56}
    t = step_test(step)
    assert (t.jump_from, t.jump_to) == (64, 128) and t.step_like and t.share > 0.8
    ramp = {16: base < 0.25, 32: base < 0.32, 64: base < 0.39, 128: base < 0.46, 256: base < 0.53}
    r = step_test(ramp)
    assert not r.step_like and r.share_hi < 0.5  # four equal steps: the largest (picked after the fact) is near a quarter
    assert "not shown to be step-like" in r.text()
    flat = step_test({16: base < 0.3, 32: base < 0.2, 64: base < 0.3})
    assert flat.share is None and not flat.step_like and "no rise" in flat.text()


def test_pooled_step_test_finds_the_step_the_seeds_share_and_not_one_seeds_jump():
    n_q = 300
    rng = np.random.default_rng(1)
    ns = (16, 32, 64, 128, 256)

    def curve(levels):
        u = rng.random(n_q)
        return {n: u < lv for n, lv in zip(ns, levels)}

    # every seed jumps from 64 to 128: the seeds' mean curve has the step, with a Holm-significant gain
    shared = [curve((0.25, 0.26, 0.27, 0.50, 0.51)) for _ in range(3)]
    t = pooled_step_test(shared)
    assert (t.jump_from, t.jump_to) == (64, 128) and t.step_like and t.share > 0.8
    assert t.jump.runs == 3 and "over 3 runs" in t.text()
    # the pooled curve is the runs' mean: its jump equals the mean of the runs' own jumps
    assert t.jump.diff == pytest.approx(np.mean([c[128].mean() - c[64].mean() for c in shared]))
    # each seed jumps at another place: the mean curve is a ramp, no step
    apart = [curve((0.25, 0.45, 0.46, 0.47, 0.48)), curve((0.25, 0.26, 0.27, 0.47, 0.48)), curve((0.25, 0.26, 0.27, 0.28, 0.48))]
    assert not pooled_step_test(apart).step_like
    with pytest.raises(ValueError, match="one curve"):
        pooled_step_test([])
    with pytest.raises(ValueError, match="same points"):
        pooled_step_test([shared[0], {16: shared[1][16], 32: shared[1][32], 64: shared[1][64]}])


def test_size_trend_finds_growth_and_not_noise():
    rng = np.random.default_rng(0)
    n_q = 600
    sizes = [1e8, 1e9, 1e10]  # log10: 8, 9, 10
    noise = [rng.choice([-1, 0, 1], n_q, p=[0.15, 0.7, 0.15]) for _ in sizes]
    flat = size_trend(sizes, noise, samples=2000)
    assert flat.lo < 0 < flat.hi and flat.p > 0.05
    # the same difference (0.1 per decade on top of the noise): a slope of about 0.1, far from 0
    grown = [v + (rng.random(n_q) < 0.1 * k) for k, v in enumerate(noise)]
    g = size_trend(sizes, grown, samples=2000)
    assert 0.05 < g.slope < 0.15 and g.lo > 0 and g.p < 0.001
    # two models: the slope is their difference over the gap in log10 size; equal models give p = 1
    two = size_trend([1e8, 1e10], [np.array([1, 0, 0, 0]), np.array([1, 1, 1, 0])], samples=500)
    assert two.slope == pytest.approx((0.75 - 0.25) / 2)
    same = size_trend([1e8, 1e9], [noise[0], noise[0]], samples=500)
    assert same.slope == 0 and same.p == 1
    with pytest.raises(ValueError, match="two models of different sizes"):
        size_trend([1e8, 1e8], noise[:2])
