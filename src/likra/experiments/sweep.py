"""``likra sweep``: accuracy against the negative-head weight w (paper figure 4), from a scored
curve's tables only: table arithmetic, no model call. Where another w beats the paper's w = 1, the
gap is paired on the same questions (bootstrap interval, exact McNemar, Holm over every run and n),
so that "peaks at w = 1.1" is read with its noise."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..command import Common, command, option
from ..errors import ConfigError, ResultMissing
from ..io import write_json
from ..rules import RULES, parse_weights, rule_correct, weight_sweep
from ..scoring.table import ScoreTable
from ..stats import BOOTSTRAP_SAMPLES, holm, paired
from . import figures
from .curve import point_heads
from .runs import scored_points

SweepPoints = list[tuple[float, float, float]]  # (w, accuracy, stderr)


@dataclass
class SweepOptions(Common):
    curve_dir: str | None = option(None, "a likra curve output folder (its runK/ subfolders)", positional=True)
    weights: str = option("0:1.5:0.1", "START:STOP:STEP (inclusive) or a comma list")
    rule: str = option("likra", "the rule whose weight is swept", choices=tuple(r for r in RULES if "negative" in RULES[r].roles))


def sweep_from_curve(out: str | os.PathLike, weights: list[float], rule: str = "likra", norm: bool = True) -> dict[int, SweepPoints]:
    """n -> [(w, accuracy, stderr)] for every cached curve point."""
    tables = scored_points(out)
    base = ScoreTable.load(tables.pop(0))
    return {n: weight_sweep(base.concat(ScoreTable.load(p)), rule, weights, norm, point_heads(n)) for n, p in tables.items()}


def best_weight(points: SweepPoints) -> tuple[float, float]:
    w, a, _ = max(points, key=lambda p: p[1])
    return w, a


def best_against_one(run_dir: str | os.PathLike, sweeps: dict[int, SweepPoints], rule: str = "likra") -> list[dict]:
    """Per n: the best w's accuracy minus w = 1's, paired on the same questions (before Holm). The
    best w is picked on these questions, which favours it: a gap within noise here is within noise."""
    tables = scored_points(run_dir)
    base = ScoreTable.load(tables.pop(0))
    rows = []
    for n, pts in sweeps.items():
        w = best_weight(pts)[0]
        t = base.concat(ScoreTable.load(tables[n]))
        gap = paired(rule_correct(t, rule, w, True, point_heads(n)), rule_correct(t, rule, 1.0, True, point_heads(n)))
        rows.append({"n": n, "best_w": w, **gap.as_dict()})
    return rows


def plot_sweep(sweeps: dict[int, SweepPoints], path: str | os.PathLike, title: str) -> Path:
    """Accuracy against w, one line per n with its 95% binomial interval; w = 0 is SFT, w = 1 the paper's Likra."""
    fig, ax = figures.axes()
    for n, pts in sweeps.items():
        drawn = ax.plot([w for w, _, _ in pts], [a for _, a, _ in pts], "-o", markersize=3, label=f"n = {n}")[0]
        ax.fill_between([w for w, _, _ in pts], [a - figures.Z95 * se for _, a, se in pts], [a + figures.Z95 * se for _, a, se in pts],
                        alpha=0.15, color=drawn.get_color(), linewidth=0)
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle=":", label="w = 1 (the paper)")
    ax.set_xlabel("negative-head weight w (w = 0: SFT)")
    ax.set_ylabel("accuracy (acc_norm)")
    return figures.finish(fig, ax, path, title, "Bands: 95% binomial interval of each accuracy (the same questions at every w).")


def run(o: SweepOptions) -> dict[str, dict[str, SweepPoints]]:
    if not o.curve_dir:
        raise ConfigError("likra sweep needs a curve folder (as its argument or curve_dir: in --config)")
    folder = Path(o.curve_dir)
    runs = sorted(p.parent for p in folder.glob("run*/tables"))
    if not runs:
        raise ResultMissing(f"{folder}: no runK/tables folders (make them with likra curve)")
    weights = parse_weights(o.weights)
    result, best = {}, {}
    for r in runs:
        sweeps = sweep_from_curve(r, weights, o.rule)
        result[r.name] = {str(n): pts for n, pts in sweeps.items()}
        if any(abs(w - 1.0) < 1e-9 for w in weights):
            best[r.name] = best_against_one(r, sweeps, o.rule)
        plot_sweep(sweeps, folder / f"sweep-{o.rule}-{r.name}.png", f"{o.rule}: accuracy vs w ({r.name})")
    write_json(folder / f"sweep-{o.rule}.json", result)
    cells = [row for rows in best.values() for row in rows]
    for row, p in zip(cells, holm([row["p"] for row in cells])):
        row["p_holm"] = p
    write_json(folder / f"sweep-{o.rule}-best.json", {
        "runs": best, "holm_over": len(cells),
        "note": f"the best w minus w = 1 at each run and n, paired on the same questions: 95% bootstrap interval "
                f"({BOOTSTRAP_SAMPLES} resamples of questions), exact McNemar p, Holm over every run and n; the best w is "
                f"chosen on the same questions, which favours it"})
    return result


@command("sweep", "accuracy against the negative-head weight w, from a curve's cached tables (no model call)", SweepOptions)
def main(o: SweepOptions, argv: list[str] | None = None) -> dict:
    result = run(o)
    for run_name, per_n in result.items():
        print(f"{run_name} ({o.rule}): " + "  ".join(f"n={n}: best w={best_weight(p)[0]:g} ({best_weight(p)[1]:.4f})"
                                                     for n, p in per_n.items()))
    print(f"figures: {Path(o.curve_dir)}/sweep-{o.rule}-run*.png")
    return result
