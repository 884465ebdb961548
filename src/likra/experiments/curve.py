"""``likra curve``: the learning curve (paper figures 1 and 3).

Config in: a model, an evaluation task and protocol, and one (positive run, negative run) pair per
seed. What it scores: the base model once (n = 0) and both heads at every curve point the two runs
share, one cached table per point under ``OUT/runK/tables``. What comes out: SFT / Likra /
Base-Likra accuracy at every n, read off the tables (``curve_accuracies.json``), a figure, and the
summary printed. A curve whose adapters are gone re-plots from its tables alone.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..defaults import DEFAULT_MODEL
from ..command import Writes, command, option
from ..errors import ConfigError, ResultMissing
from ..io import write_json
from ..rules import Heads, rule_accuracy, rule_correct
from ..stats import StepTest, holm, paired, pooled_paired, pooled_step_test, step_test
from ..scoring.table import ScoreTable
from . import figures
from .runs import Protocol, check_meta, check_roles, curve_points, has_adapters, score_missing, scored_points, table_path

CURVE_RULES = ("base", "sft", "likra", "base-likra")
Points = list[tuple[int, float, float]]  # (n, accuracy, stderr)


@dataclass
class CurveOptions(Protocol, Writes):
    model: str = option(DEFAULT_MODEL, "embedded name, local folder or hub id")
    task: str = option("arc_challenge", "evaluation task")
    positive: list[str] = option([], "positive training run folder, one per seed (repeatable)")
    negative: list[str] = option([], "negative training run folder, in the same order (repeatable)")
    weight: float = option(1.0, "negative-head weight w of Likra and Base-Likra")
    points: list[int] = option([], "score only these n (repeatable; default: every n both runs saved); a later call adds points",
                               metavar="N")
    data_dir: str | None = option(None, "folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")


COMPARE = ("model", "task", "split", "shots", "limit", "dtype", "batch_tokens", "template", "skip_invalid")


def score_curve(o: CurveOptions, positive_run: str, negative_run: str, out: str | os.PathLike) -> Path:
    """Score the base once and both heads at every common curve point; tables cached under ``out``."""
    out = Path(out)
    wanted = {"model": o.model, "task": o.task, **o.protocol()}
    runs = {"positive_run": str(positive_run), "negative_run": str(negative_run)}
    for n, path in scored_points(out).items():
        check_meta(path, ScoreTable.load(path).meta, wanted if n == 0 else {**wanted, **runs})
    if not (has_adapters(positive_run) and has_adapters(negative_run)):
        return _from_tables(out, runs)
    check_roles(positive_run, negative_run)
    pos, neg = curve_points(positive_run), curve_points(negative_run)
    points = sorted(set(pos) & set(neg))
    if o.points:
        missing = sorted(set(o.points) - set(points) - {0})
        if missing:
            raise ConfigError(f"--points {missing}: not saved by both {positive_run} and {negative_run} "
                              f"(both have n = {', '.join(map(str, points))})")
        points = sorted(set(o.points) - {0})
    _base_from_sibling(out, wanted, runs)
    tables = {table_path(out, 0): ({"base": None}, {"n": 0, **runs})}
    tables.update({table_path(out, n): ({f"positive@{n}": pos[n], f"negative@{n}": neg[n]}, {"n": n, **runs}) for n in points})
    items = None
    if any(not p.exists() for p in tables):
        items = o.items(o.task, o.data_dir).items
    score_missing(o.model, o.task, o, items, tables, progress=not o.quiet)
    _keep_train_logs(out, {"positive": positive_run, "negative": negative_run})
    write_json(out / "curve.json", {**wanted, **runs, "points": sorted(set(scored_points(out)) | {0, *points})})
    return out


def _base_from_sibling(out: Path, wanted: dict, runs: dict) -> None:
    """The base model's table depends on the model and protocol only, not on the seed: a new run of a
    curve takes it from a sibling run (run0, ...) scored the same way instead of scoring it again."""
    if table_path(out, 0).exists():
        return
    for sibling in sorted(out.parent.glob("run*/tables/n-000000.parquet")):
        table = ScoreTable.load(sibling)
        try:
            check_meta(sibling, table.meta, wanted)
        except ConfigError:
            continue
        table.meta = {**table.meta, **runs, "base_table_from": sibling.parent.parent.name}
        table.save(table_path(out, 0))
        return


def _keep_train_logs(out: Path, runs: dict[str, str]) -> None:
    """A copy of each head's training log beside the curve (adapters are not kept; the logs are small)."""
    from ..io import atomic_write
    from ..training import read_train_log

    for role, run in runs.items():
        rows = read_train_log(run)
        if rows:
            atomic_write(out / f"train_log-{role}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))


def _from_tables(out: Path, runs: dict) -> Path:
    """A finished curve whose adapters are gone (they are large and not kept): its tables decide."""
    done = out / "curve.json"
    if done.exists():
        points = json.loads(done.read_text())["points"]
    elif scored_points(out):  # curves scored before curve.json was written
        points = list(scored_points(out))
    else:
        raise ResultMissing(f"{runs['positive_run']} or {runs['negative_run']} has no adapters and {out} no tables: "
                            f"train the heads first (likra train)")
    missing = [n for n in points if not table_path(out, n).exists()]
    if missing:
        raise ResultMissing(f"{out}/tables lacks n={missing} and {runs['positive_run']} or {runs['negative_run']} is gone: "
                            f"retrain the heads (the same command and seed give the same adapters) to score them")
    print(f"{out}: all {len(points)} points cached and the adapters are not on disk; using the tables", file=sys.stderr)
    return out


def point_heads(n: int) -> Heads:
    return Heads(base="base", positive=f"positive@{n}", negative=f"negative@{n}")


def curve_accuracies(out: str | os.PathLike, weight: float = 1.0, norm: bool = True) -> dict[str, Points]:
    """rule -> [(n, accuracy, stderr)] from the cached tables only."""
    tables = scored_points(out)
    if 0 not in tables:
        raise ResultMissing(f"{out}: no base table (tables/n-000000.parquet); score the curve with likra curve")
    base = ScoreTable.load(tables.pop(0))
    b_acc = rule_accuracy(base, "base", norm=norm, heads=Heads())
    result: dict[str, Points] = {r: [(0, *b_acc)] for r in CURVE_RULES}  # at n = 0 every head is the base model
    for n, path in tables.items():
        t = base.concat(ScoreTable.load(path))
        for r in CURVE_RULES:
            result[r].append((n, *rule_accuracy(t, r, weight, norm, point_heads(n))))
    return result


COMPARISONS = (("likra", "sft"), ("sft", "base"), ("likra", "base"), ("base-likra", "base"))


def curve_correct(out: str | os.PathLike, weight: float = 1.0) -> dict[int, dict[str, np.ndarray]]:
    """n -> rule -> right/wrong per question, from the cached tables (n = 0: the base model)."""
    tables = scored_points(out)
    base = ScoreTable.load(tables.pop(0))
    b = rule_correct(base, "base", heads=Heads())
    result = {0: {r: b for r in CURVE_RULES}}
    for n, path in tables.items():
        t = base.concat(ScoreTable.load(path))
        result[n] = {r: rule_correct(t, r, weight, True, point_heads(n)) for r in CURVE_RULES}
    return result


def curve_comparisons(out: str | os.PathLike, weight: float = 1.0) -> dict:
    """The paired comparisons of one curve run at every n > 0 (bootstrap 95% interval, exact McNemar,
    Holm over every comparison of the table), and the step test of the SFT and Likra curves."""
    correct = curve_correct(out, weight)
    rows = [(a, b, n, paired(by_rule[a], by_rule[b])) for a, b in COMPARISONS for n, by_rule in correct.items() if n > 0]
    adjusted = holm([r.p for *_, r in rows])
    comparisons: dict[str, list[dict]] = {}
    for (a, b, n, r), p in zip(rows, adjusted):
        comparisons.setdefault(f"{a} - {b}", []).append({"n": n, **r.as_dict(), "p_holm": p})
    steps = {}
    for rule in ("sft", "likra"):
        if len(correct) >= 3:
            steps[rule] = _step_dict(step_test({n: by_rule[rule] for n, by_rule in correct.items()}))
    return {"comparisons": comparisons, "holm_over": len(rows), "step": steps,
            "note": "paired on the same questions: 95% bootstrap interval (10000 resamples of questions), exact McNemar p, "
                    "Holm over every comparison of this table"}


def _step_dict(t: StepTest) -> dict:
    return {**{k: v for k, v in t.__dict__.items() if k != "jump"}, "jump": t.jump.as_dict(), "text": t.text()}


GAIN_RULES = ("sft", "likra", "base-likra")


def across_runs(outs: list[Path], weight: float = 1.0) -> dict | None:
    """Do the runs (seeds) agree? At every n that all of them scored: the COMPARISONS, and each rule's
    gain between consecutive such n, averaged over the runs with pooled_paired; Holm over every row of
    this table. None when fewer than two runs share two points."""
    correct = [curve_correct(o, weight) for o in outs]
    shared = sorted(set.intersection(*(set(c) for c in correct)))
    if len(correct) < 2 or len(shared) < 2:
        return None
    rows = [("comparisons", f"{a} - {b}", {"n": n}, pooled_paired([c[n][a] for c in correct], [c[n][b] for c in correct]))
            for a, b in COMPARISONS for n in shared if n > 0]
    rows += [("gains", rule, {"from": lo, "to": hi}, pooled_paired([c[hi][rule] for c in correct], [c[lo][rule] for c in correct]))
             for rule in GAIN_RULES for lo, hi in zip(shared, shared[1:])]
    out: dict = {"runs": [o.name for o in outs], "points": shared, "comparisons": {}, "gains": {}, "holm_over": len(rows),
                 "note": "mean over the runs of each run's paired difference on the same questions; 95% bootstrap interval "
                         "resampling questions (each question's runs together); randomisation p (A and B swapped per run "
                         "and question; its floor is 1/10001); Holm over every row of this file. Gains are between consecutive points that "
                         "every run scored, so they may span several points of a single run's curve"}
    for (kind, name, where, r), p in zip(rows, holm([r.p for *_, r in rows])):
        out[kind].setdefault(name, []).append({**where, **r.as_dict(), "p_holm": p, "text": r.text(p)})
    if len(shared) >= 3:  # the step test on the seeds' mean curve (its own Holm, over that rule's consecutive gains)
        out["step"] = {}
        for rule in ("sft", "likra"):
            out["step"][rule] = _step_dict(pooled_step_test([{n: c[n][rule] for n in shared} for c in correct]))
    return out


def seed_summary(curves: dict[str, dict[str, Points]], rule: str) -> list[tuple[int, float, float, int]]:
    """(n, mean, spread, runs) per n: the spread is the sample sd over runs, or one run's binomial stderr."""
    ns = sorted({n for c in curves.values() for n, _, _ in c[rule]})
    out = []
    for n in ns:
        pts = [(a, se) for c in curves.values() for m, a, se in c[rule] if m == n]
        accs = [a for a, _ in pts]
        spread = float(np.std(accs, ddof=1)) if len(accs) > 1 else (pts[0][1] or 0.0)
        out.append((n, float(np.mean(accs)), spread, len(accs)))
    return out


CURVE_LABELS = {"sft": "SFT (positive head)", "likra": "Likra  L+ - w L-", "base-likra": "Base-Likra  L_base - w L-"}


def plot_curve(curves: dict[str, dict[str, Points]], path: str | os.PathLike, title: str, caption: str = "") -> Path:
    """The mean over runs as a line with a band: mean ± sd over the runs (seeds), or for one run its
    95% binomial interval; the base model across as a dashed line with its 95% binomial interval."""
    fig, ax = figures.axes()
    several = len(curves) > 1
    band = f"mean ± sd over {len(curves)} seeds" if several else "95% binomial interval"
    if several and any(k < len(curves) for *_, k in seed_summary(curves, "sft")):
        band = "mean ± sd over the seeds scored at that n;\none seed: its 95% binomial interval"
    first = next(iter(curves.values()))
    _, base_acc, base_se = first["base"][0]
    ns = [n for n, *_ in seed_summary(curves, "sft")]
    figures.base_line(ax, base_acc, figures.Z95 * base_se, ns, f"base model {base_acc:.3f} (95% binomial interval)")
    for rule, style in (("sft", "-o"), ("likra", "-s"), ("base-likra", "-^")):
        rows = seed_summary(curves, rule)
        half = [s if k > 1 else figures.Z95 * s for _, _, s, k in rows]
        label = CURVE_LABELS[rule] + ("" if "\n" in band else f" ({band})")  # a long band is told by the caption
        figures.line(ax, [n for n, *_ in rows], [m for _, m, _, _ in rows], half, label, style)
    figures.n_axis(ax, ns)
    ax.set_ylabel("accuracy (acc_norm)")
    return figures.finish(fig, ax, path, title, "\n".join(x for x in (f"Bands: {band}.", caption) if x))


def summary_lines(curves: dict[str, dict[str, Points]]) -> list[str]:
    several = len(curves) > 1
    what = f"mean ± sd over {len(curves)} runs" if several else "± binomial standard error"
    cols = {r: seed_summary(curves, r) for r in CURVE_RULES}
    mixed = several and any(k < len(curves) for *_, k in cols["sft"])
    if mixed:
        what += " scored at that n (runs column; one run: its binomial standard error)"
    lines = [f"acc_norm, {what}", f"{'n':>6}" + "".join(f"{r:>18}" for r in CURVE_RULES) + ("  runs" if mixed else "")]
    for i, (n, _, _, k) in enumerate(cols["sft"]):
        lines.append(f"{n:>6}" + "".join(f"{cols[r][i][1]:>10.4f} ±{cols[r][i][2]:.4f}" for r in CURVE_RULES)
                     + (f"  {k:>4}" if mixed else ""))
    return lines


def run(o: CurveOptions) -> dict[str, dict[str, Points]]:
    """Score (what is missing) and read the curve of every run pair; write the JSON and figure."""
    out = o.require_out("curve")
    if not o.positive or not o.negative:
        raise ConfigError("likra curve needs --positive and --negative (on the command line or in --config)")
    if len(o.positive) != len(o.negative):
        raise ConfigError("give as many --negative runs as --positive runs (one pair per seed)")
    curves = {}
    for k, (pos, neg) in enumerate(zip(o.positive, o.negative)):
        score_curve(o, pos, neg, out / f"run{k}")
        curves[f"run{k}"] = curve_accuracies(out / f"run{k}", o.weight)
    write_json(out / "curve_accuracies.json", curves)
    write_json(out / "curve_stats.json", {f"run{k}": curve_comparisons(out / f"run{k}", o.weight) for k in range(len(curves))})
    seeds = across_runs([out / f"run{k}" for k in range(len(curves))], o.weight)
    if seeds:
        write_json(out / "curve_seeds.json", seeds)
    plot_curve(curves, out / "curve.png", f"{o.model} on {o.task} ({o.shots}-shot)", figures.paper_caption(o.task, o.shots))
    return curves


def curve_summary(out: str | os.PathLike) -> list[str]:
    """What a person runs a curve for, read off its folder: SFT / Likra / Base-Likra at each n, and per
    run the paired Likra - SFT gap at the last n and the step tests."""
    out = Path(out)
    lines = summary_lines(json.loads((out / "curve_accuracies.json").read_text()))
    for run_name, st in json.loads((out / "curve_stats.json").read_text()).items():
        last = st["comparisons"]["likra - sft"][-1]
        lines.append(f"{run_name}: Likra - SFT at n={last['n']}: {last['diff']:+.3f} [{last['lo']:+.3f}, {last['hi']:+.3f}] "
                     f"(paired, 95% bootstrap), McNemar p={last['p']:.2g}, Holm over {st['holm_over']}: {last['p_holm']:.2g}")
        lines += [f"{run_name}: {rule} curve (n = {', '.join(map(str, step['ns']))}): {step['text']}"
                  for rule, step in st["step"].items()]
    if (out / "curve_seeds.json").exists():
        seeds = json.loads((out / "curve_seeds.json").read_text())
        lines.append(f"over {', '.join(seeds['runs'])} (points all scored: {seeds['points']}; Holm over {seeds['holm_over']}):")
        lines += [f"  Likra gain n={g['from']}->{g['to']}: {g['text']}" for g in seeds["gains"]["likra"]]
        lines += [f"  Likra - SFT at n={c['n']}: {c['text']}" for c in seeds["comparisons"]["likra - sft"]]
        lines += [f"  {rule} step test on the seeds' mean curve: {step['text']}" for rule, step in seeds.get("step", {}).items()]
    return lines + [f"figure: {out / 'curve.png'}"]


@command("curve", "learning curve: score every curve point of a positive and a negative run (one pair per seed)",
         CurveOptions, compare=COMPARE)
def main(o: CurveOptions, argv: list[str] | None = None) -> dict:
    curves = run(o)
    print("\n".join(curve_summary(o.out)))
    return curves
