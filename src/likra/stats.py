"""Statistics that say what the data support: pure functions of per-question outcomes.

Every comparison likra quotes is paired (the same questions under two rules or two heads): the
difference of accuracies with a 95% bootstrap interval that resamples questions, and an exact
McNemar test on the discordant questions. A table or figure that makes several comparisons
corrects their p-values together (Holm). Across seeds: mean and sample standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0  # fixed: the same tables give the same intervals


@dataclass(frozen=True)
class Paired:
    """A minus B on the same questions."""

    diff: float
    lo: float  # 95% bootstrap interval (percentile, questions resampled)
    hi: float
    p: float  # exact McNemar, two-sided
    questions: int
    a_only: int  # questions A gets right and B wrong
    b_only: int

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self, p_adjusted: float | None = None) -> str:
        p = self.p if p_adjusted is None else p_adjusted
        return f"{self.diff:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}], p={p:.2g}" + (" (Holm)" if p_adjusted is not None else "")


def _correct(x) -> np.ndarray:
    arr = np.asarray(x, dtype=bool)
    if arr.ndim != 1:
        raise ValueError("give one right/wrong value per question")
    return arr


def bootstrap_interval(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (one per question), questions resampled."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 1000):  # in blocks: n x 1000 indices at a time
        k = min(1000, samples - start)
        means[start:start + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant questions as a fair coin."""
    m = a_only + b_only
    if m == 0:
        return 1.0
    k = min(a_only, b_only)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m
    return min(1.0, 2 * tail)


def paired(correct_a, correct_b, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED) -> Paired:
    """Accuracy of A minus accuracy of B on the same questions, with interval and test."""
    a, b = _correct(correct_a), _correct(correct_b)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"paired comparison needs the same questions on both sides ({len(a)} and {len(b)})")
    d = a.astype(float) - b.astype(float)
    lo, hi = bootstrap_interval(d, samples, seed)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    return Paired(float(d.mean()), lo, hi, mcnemar_exact(a_only, b_only), len(a), a_only, b_only)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of the p-values of one table's comparisons (same order back)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def seed_mean_sd(values: list[float]) -> tuple[float, float, int]:
    """Mean and sample standard deviation over seeds (sd is 0 for one seed: say so where quoted)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, len(arr)


@dataclass(frozen=True)
class PooledPaired:
    """A minus B averaged over runs (seeds) scored on the same questions: does a difference repeat?"""

    diff: float  # mean over runs of each run's paired difference
    lo: float  # 95% bootstrap interval: questions resampled, the same draw for every run
    hi: float
    p: float  # randomisation test: A and B swapped independently per run and question
    runs: int
    questions: int
    per_run: tuple[float, ...]  # each run's own difference
    sd: float  # sample sd of per_run over the runs
    at_floor: bool = False  # no sign flip was as extreme: p is the test's smallest value, an upper bound

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self, p_adjusted: float | None = None) -> str:
        p = self.p if p_adjusted is None else p_adjusted
        runs = ", ".join(f"{d:+.3f}" for d in self.per_run)
        return (f"{self.diff:+.3f} [{self.lo:+.3f}, {self.hi:+.3f}] over {self.runs} runs (each {runs}; sd {self.sd:.3f}), "
                f"p{'<=' if self.at_floor else '='}{p:.2g}" + (" (Holm)" if p_adjusted is not None else ""))


def pooled_paired(correct_a: list, correct_b: list, samples: int = BOOTSTRAP_SAMPLES,
                  seed: int = BOOTSTRAP_SEED) -> PooledPaired:
    """``correct_a[r]``, ``correct_b[r]``: right/wrong per question of run r, the same questions in the same
    order in every run. The seeds' answers to one question are correlated (one model, one question), so
    the interval resamples whole questions, keeping each question's runs together; the test flips the sign
    of each (run, question) difference, the null being that A and B are exchangeable on every item."""
    if len(correct_a) != len(correct_b) or not correct_a:
        raise ValueError("give one (A, B) pair of right/wrong vectors per run")
    d = np.stack([_correct(a).astype(float) - _correct(b).astype(float) for a, b in zip(correct_a, correct_b)])
    runs, n_q = d.shape
    per_q = d.mean(axis=0)
    lo, hi = bootstrap_interval(per_q, samples, seed)
    observed = float(per_q.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, samples, 500):
        k = min(500, samples - start)
        signs = rng.integers(0, 2, size=(k, runs, n_q)) * 2 - 1
        extreme += int((np.abs((signs * d).mean(axis=(1, 2))) >= abs(observed) - 1e-12).sum())
    per_run = tuple(float(x) for x in d.mean(axis=1))
    sd = float(np.std(per_run, ddof=1)) if runs > 1 else 0.0
    return PooledPaired(observed, lo, hi, (extreme + 1) / (samples + 1), runs, n_q, per_run, sd, extreme == 0)


@dataclass(frozen=True)
class StepTest:
    """Is a learning curve's rise concentrated in one jump between consecutive curve points?"""

    ns: tuple[int, ...]
    jump_from: int  # the largest gain is from ns[k] to ns[k + 1]
    jump_to: int
    jump: Paired | PooledPaired  # that gain, paired on the same questions (pooled over runs for pooled_step_test)
    jump_p_holm: float  # its p-value after Holm over all consecutive gains
    share: float | None  # the jump's share of the whole rise (last point minus first); None when nothing rose
    share_lo: float | None  # 95% bootstrap interval of that share (resamples where the curve rose)
    share_hi: float | None
    step_like: bool  # the jump is significant after Holm and its share's interval lies above one half

    def text(self) -> str:
        verdict = "step-like" if self.step_like else "not shown to be step-like"
        share = ("no rise from the first point to the last" if self.share is None else
                 f"share of the rise {self.share:.2f} [{self.share_lo:.2f}, {self.share_hi:.2f}]")
        return f"largest gain n={self.jump_from}->{self.jump_to}: {self.jump.text(self.jump_p_holm)}; {share}: {verdict}"


def step_test(curve: dict[int, np.ndarray], samples: int = 2000, seed: int = BOOTSTRAP_SEED) -> StepTest:
    """``curve``: n -> right/wrong per question (the same questions at every n). The operational test
    of "step-like": the largest gain between consecutive points is significant after Holm over all
    consecutive gains, and carries more than half of the whole rise (its bootstrap interval above 0.5)."""
    ns = tuple(sorted(curve))
    if len(ns) < 3:
        raise ValueError("a step needs at least three curve points")
    m = np.stack([_correct(curve[n]) for n in ns]).astype(float)  # points x questions
    return _step(ns, m, [paired(m[k + 1], m[k]) for k in range(len(ns) - 1)], samples, seed)


def pooled_step_test(curves: list[dict[int, np.ndarray]], samples: int = 2000, seed: int = BOOTSTRAP_SEED) -> StepTest:
    """The step test over seeds: ``curves`` holds one curve per run, all scored at the same n on the same
    questions. One run's curve is noisy at 300 questions; averaged over seeds, a jump that every seed
    shares stands out, one seed's wobble does not. Each consecutive gain is pooled (``pooled_paired``:
    randomisation p), and the share's interval resamples questions with all runs of a question together."""
    if not curves:
        raise ValueError("give one curve (n -> right/wrong per question) per run")
    ns = tuple(sorted(curves[0]))
    if any(tuple(sorted(c)) != ns for c in curves):
        raise ValueError("pool curves scored at the same points only")
    if len(ns) < 3:
        raise ValueError("a step needs at least three curve points")
    m = np.stack([np.stack([_correct(c[n]) for n in ns]).astype(float) for c in curves]).mean(axis=0)
    gains = [pooled_paired([c[ns[k + 1]] for c in curves], [c[ns[k]] for c in curves]) for k in range(len(ns) - 1)]
    return _step(ns, m, gains, samples, seed)


def _step(ns: tuple[int, ...], m: np.ndarray, gains: list, samples: int, seed: int) -> StepTest:
    """``m``: points x questions, the fraction of runs right; ``gains``: the consecutive paired gains."""
    k = max(range(len(gains)), key=lambda i: gains[i].diff)
    p_holm = holm([g.p for g in gains])[k]
    rng = np.random.default_rng(seed)
    n_q = m.shape[1]
    shares = []
    for _ in range(samples):
        acc = m[:, rng.integers(0, n_q, n_q)].mean(axis=1)
        rise = acc[-1] - acc[0]
        jumps = np.diff(acc)
        if rise > 0:
            shares.append(jumps[k] / rise)
    acc = m.mean(axis=1)
    rise = acc[-1] - acc[0]
    if rise <= 0 or not shares:
        return StepTest(ns, ns[k], ns[k + 1], gains[k], p_holm, None, None, None, False)
    lo, hi = float(np.quantile(shares, 0.025)), float(np.quantile(shares, 0.975))
    return StepTest(ns, ns[k], ns[k + 1], gains[k], p_holm, float((acc[k + 1] - acc[k]) / rise), lo, hi,
                    bool(p_holm < 0.05 and lo > 0.5))


@dataclass(frozen=True)
class SizeTrend:
    """Does a paired difference grow or shrink with model size? The slope of the difference against
    log10(parameters), models scored on the same questions."""

    models: int
    slope: float  # change of the difference per tenfold parameters (least squares over the models)
    lo: float  # 95% bootstrap interval (questions resampled, the same ones for every model)
    hi: float
    p: float  # permutation test: models' labels shuffled within each question

    def as_dict(self) -> dict:
        return asdict(self)


def size_trend(parameters: list[float], diffs: list[np.ndarray], samples: int = BOOTSTRAP_SAMPLES,
               seed: int = BOOTSTRAP_SEED) -> SizeTrend:
    """``diffs``: per model, A minus B per question (-1, 0 or 1), the same questions in the same order
    for every model. The slope is that of the mean difference against log10(parameters). Its interval
    resamples questions; its p-value is a randomisation test of the null that a question's difference
    does not depend on which model answered it (each question's differences shuffled among the
    models), so it needs no assumption about how the differences are distributed."""
    x = np.log10(np.asarray(parameters, dtype=float))
    if len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("a trend with size needs at least two models of different sizes")
    d = np.stack([np.asarray(v, dtype=float) for v in diffs])  # models x questions
    xc = (x - x.mean()) / ((x - x.mean()) ** 2).sum()
    slope = float(xc @ d.mean(axis=1))
    rng = np.random.default_rng(seed)
    n_q = d.shape[1]
    boots, extreme, done = [], 0, 0
    while done < samples:
        k = min(500, samples - done)
        for _ in range(k):
            boots.append(float(xc @ d[:, rng.integers(0, n_q, n_q)].mean(axis=1)))
        order = np.argsort(rng.random((k, *d.shape)), axis=1)  # a shuffle of the models per question
        shuffled = np.take_along_axis(np.broadcast_to(d, (k, *d.shape)), order, axis=1).mean(axis=2) @ xc
        extreme += int((np.abs(shuffled) >= abs(slope) - 1e-12).sum())
        done += k
    lo, hi = float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))
    return SizeTrend(len(x), slope, lo, hi, (extreme + 1) / (samples + 1))
