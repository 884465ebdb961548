"""``likra negtypes``: which negatives teach most (paper figure 5), and baselines beside Likra.

Config in: a scored learning curve (one ``OUT/runK`` of ``likra curve``) and more negative runs
(irrelevant, unrelated, hardest, ...), each with a label; optionally baseline adapters (DPO, KTO)
to score by themselves. What it scores: each extra run at the curve's points, on the curve's own
items and protocol, so that each reads as Likra with the curve's positive head (which is never
scored again). What comes out: accuracy per rule, negative type and n (``negtypes.json``), a
figure and the table printed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from ..command import Writes, command, option
from ..errors import ConfigError
from ..io import write_json
from ..rules import Heads, rule_accuracy
from ..scoring.table import ScoreTable
from . import figures
from .curve import point_heads
from .runs import PROTOCOL_DEFAULTS, Protocol, check_meta, curve_points, score_missing, scored_points

Accuracies = dict[str, dict[str, list[tuple[int, float, float]]]]  # rule -> label -> [(n, acc, stderr)]
THE_CURVES = "(default: the curve's)"


@dataclass
class NegtypesOptions(Protocol, Writes):
    # the protocol is the curve's: given here, each option must agree with it (it is checked, not changed)
    split: str | None = option(None, f"split {THE_CURVES}", show_default=False)
    shots: int | None = option(None, f"few-shot examples {THE_CURVES}")
    limit: int | None = option(None, f"first N items {THE_CURVES}")
    dtype: str | None = option(None, f"precision {THE_CURVES}", choices=("fp32", "bf16"))
    batch_tokens: int | None = option(None, f"tokens per forward pass {THE_CURVES}")
    template: str | None = option(None, f"jsonl question template {THE_CURVES}")
    skip_invalid: bool | None = option(None, f"skip bad rows {THE_CURVES}")
    model: str = option(DEFAULT_MODEL, "embedded name, local folder or hub id (the curve's)")
    curve: str | None = option(None, "a scored learning curve (a likra curve OUT/runK folder)")
    type: list[str] = option([], "a negative training run and its label, LABEL=RUN (repeatable; --negative is its old spelling)",
                             flags=("--type", "--negative"), metavar="LABEL=RUN")
    baseline: list[str] = option([], "an adapter run scored by itself at the same points, e.g. dpo=runs/arc-s0/dpo (repeatable)",
                                 metavar="LABEL=RUN")
    curve_label: str = option("near-miss", "the label of the curve's own negative head")
    weight: float = option(1.0, "negative-head weight w")
    data_dir: str | None = option(None, "folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")

    def __post_init__(self) -> None:
        pass  # None means "the curve's"; checked against it in curve_protocol


def curve_protocol(o: NegtypesOptions, curve_meta: dict) -> Protocol:
    """The curve's protocol; any protocol option given must agree with it."""
    fields = [f.name for f in dataclasses.fields(Protocol)]
    found = {k: curve_meta.get(k, PROTOCOL_DEFAULTS[k]) for k in fields}
    found["shots"] = found["shots"] or 0
    check_meta(o.curve, found, {k: getattr(o, k) for k in fields if getattr(o, k) is not None})
    if curve_meta.get("model") not in (None, o.model):
        raise ConfigError(f"{o.curve} was scored with model '{curve_meta['model']}', not '{o.model}'")
    return Protocol(**found)


def labelled(specs: list[str], flag: str) -> dict[str, str]:
    runs = {}
    for spec in specs:
        label, sep, run = spec.partition("=")
        if not sep or not label:
            raise ConfigError(f"{flag} '{spec}': write LABEL=RUN_FOLDER, e.g. irrelevant=runs/arc-s0/neg-irrelevant")
        if not label.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{flag} '{spec}': use letters, digits, - and _ only in the label")
        if label in runs:
            raise ConfigError(f"{flag}: label '{label}' is given twice")
        runs[label] = run
    return runs


def score_negative_types(o: NegtypesOptions, runs: dict[str, str], out: Path) -> Path:
    """Score each run at the curve's points; tables cached under ``out/LABEL/n-XXXXXX.parquet`` (head ``LABEL@n``)."""
    curve_tables = scored_points(o.curve)
    meta = ScoreTable.load(curve_tables[0]).meta
    protocol = curve_protocol(o, meta)
    tables = {}
    for label, run in runs.items():
        pts = curve_points(run)
        for n in sorted(set(pts) & set(curve_tables) - {0}):
            tables[out / label / f"n-{n:06d}.parquet"] = ({f"{label}@{n}": pts[n]},
                                                          {**meta, "n": n, "negative_type": label, "negative_run": str(run)})
    for path in tables:
        if path.exists():
            check_meta(path, ScoreTable.load(path).meta, {**protocol.protocol(), "negative_run": tables[path][1]["negative_run"]})
    if any(not p.exists() for p in tables):
        items = protocol.items(meta["task"], o.data_dir).items
        score_missing(o.model, meta["task"], protocol, items, tables, progress=not o.quiet)
    return out


def negative_type_accuracies(curve_dir: str | os.PathLike, types_dir: str | os.PathLike, curve_label: str = "near-miss",
                             weight: float = 1.0, norm: bool = True, baselines: tuple[str, ...] = ()) -> Accuracies:
    """rule ("likra", "base-likra") -> negative type -> [(n, accuracy, stderr)], plus "sft" -> {"positive": ...}:
    every type paired with the curve's positive head at the same n; labels in ``baselines`` appear
    under "alone" only, each scored by itself. Tables only."""
    types_dir = Path(types_dir)
    curve_tables = scored_points(curve_dir)
    base = ScoreTable.load(curve_tables.pop(0))
    b_acc = rule_accuracy(base, "base", norm=norm, heads=Heads())
    result: Accuracies = {"likra": {}, "base-likra": {}, "sft": {"positive": [(0, *b_acc)]}, "alone": {}}
    sources: dict[str, Path | None] = {curve_label: None}
    if types_dir.exists():
        sources.update({d.name: d for d in sorted(types_dir.iterdir()) if d.is_dir()})
    for label in sources:
        for r in (("alone",) if label in baselines else ("likra", "base-likra")):
            result[r][label] = [(0, *b_acc)]
    for n, path in curve_tables.items():
        curve_t = base.concat(ScoreTable.load(path))
        result["sft"]["positive"].append((n, *rule_accuracy(curve_t, "sft", weight, norm, point_heads(n))))
        for label, d in sources.items():
            if d is None:
                t, neg = curve_t, f"negative@{n}"
            elif (d / f"n-{n:06d}.parquet").exists():
                t, neg = curve_t.concat(ScoreTable.load(d / f"n-{n:06d}.parquet")), f"{label}@{n}"
            else:
                continue
            if label in baselines:
                result["alone"][label].append((n, *rule_accuracy(t, "sft", weight, norm, Heads(positive=neg))))
                continue
            heads = Heads(base="base", positive=f"positive@{n}", negative=neg)
            for r in ("likra", "base-likra"):
                result[r][label].append((n, *rule_accuracy(t, r, weight, norm, heads)))
    return result


def plot_negative_types(acc: Accuracies, path: str | os.PathLike, title: str) -> Path:
    """Likra with each negative type (solid, 95% binomial band) and Base-Likra (dashed), against n;
    SFT in grey; the base model across."""
    import matplotlib.pyplot as plt

    fig, ax = figures.axes(6.8, 4.6)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sft = acc["sft"]["positive"]
    ns = sorted({n for group in acc.values() for pts in group.values() for n, _, _ in pts})
    if sft and sft[0][0] == 0:
        figures.base_line(ax, sft[0][1], figures.Z95 * sft[0][2], ns, "base model (95% binomial interval)")
    for k, (label, pts) in enumerate(acc["likra"].items()):
        c = colors[k % len(colors)]
        figures.line(ax, [n for n, _, _ in pts], [a for _, a, _ in pts], [figures.Z95 * se for _, _, se in pts],
                     f"Likra, {label}", "-o", c, ns)
        bl = acc["base-likra"][label]
        figures.line(ax, [n for n, _, _ in bl], [a for _, a, _ in bl], None, f"Base-Likra, {label}", "--", c, ns)
    figures.line(ax, [n for n, _, _ in sft], [a for _, a, _ in sft], None, "SFT (positive head)", "-", "grey", ns)
    for label, pts in acc.get("alone", {}).items():
        figures.line(ax, [n for n, _, _ in pts], [a for _, a, _ in pts], None, f"{label} (alone)", ":^", None, ns)
    figures.n_axis(ax, ns)
    ax.set_ylabel("accuracy (acc_norm)")
    return figures.finish(fig, ax, path, title, "Bands: 95% binomial interval of each Likra accuracy (dashed and grey lines: same intervals, not drawn).")


def table_rows(acc: Accuracies) -> tuple[list[int], list[tuple[str, dict[int, float]]]]:
    ns = [n for n, _, _ in acc["sft"]["positive"]]
    rows = [("sft", acc["sft"]["positive"])] + [(f"{r}, {label}", pts) for r in ("likra", "base-likra", "alone")
                                                for label, pts in acc.get(r, {}).items()]
    return ns, [(name, {n: a for n, a, _ in pts}) for name, pts in rows]


def run(o: NegtypesOptions) -> Accuracies:
    out = o.require_out("negtypes")
    types, baselines = labelled(o.type, "--type"), labelled(o.baseline, "--baseline")
    if not o.curve or not (types or baselines):
        raise ConfigError("likra negtypes needs --curve and at least one --type (or --baseline) LABEL=RUN")
    if set(types) & set(baselines) or o.curve_label in {**types, **baselines}:
        raise ConfigError(f"labels must differ from each other and from the curve's own ('{o.curve_label}')")
    score_negative_types(o, {**types, **baselines}, out)
    acc = negative_type_accuracies(o.curve, out, o.curve_label, o.weight, baselines=tuple(baselines))
    write_json(out / "negtypes.json", acc)
    what = "negative types" if types else "Likra and " + ", ".join(baselines)
    plot_negative_types(acc, out / "negative-types.png", f"{o.model}: {what} (w={o.weight:g})")
    return acc


@command("negtypes", "negative types: Likra with other negative heads against a scored curve's positive head", NegtypesOptions)
def main(o: NegtypesOptions, argv: list[str] | None = None) -> Accuracies:
    acc = run(o)
    ns, rows = table_rows(acc)
    print(f"{'rule':<28}" + "".join(f"{n:>8}" for n in ns))
    for name, by_n in rows:
        print(f"{name:<28}" + "".join(f"{by_n[n]:>8.4f}" if n in by_n else f"{'-':>8}" for n in ns))
    print(f"figure: {Path(o.out) / 'negative-types.png'}")
    return acc
