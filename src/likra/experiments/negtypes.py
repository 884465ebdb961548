"""``likra negtypes``: which negatives teach most (paper figure 5), recipe variants, and baselines beside Likra.

Config in: a scored learning curve (one ``OUT/runK`` of ``likra curve``) and more runs, each with a
label: negative runs of other kinds (irrelevant, unrelated, hardest, ...; ``--type``), whole recipe
variants (a positive and a negative run trained another way, e.g. batch 32; ``--pair``), and
baseline adapters (DPO, KTO) scored by themselves (``--baseline``). What it scores: each extra run
at the curve's points, on the curve's own items and protocol, so that a negative type reads as
Likra with the curve's positive head (which is never scored again). What comes out: accuracy per
rule, label and n, and every label paired against the curve's own heads on the same questions
(bootstrap interval, exact McNemar, Holm over the table) in ``negtypes.json``; a figure; the
tables printed.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from ..command import Writes, command, option
from ..errors import ConfigError
from ..io import DTYPES, write_json
from ..rules import Heads, rule_accuracy, rule_correct
from ..scoring.table import ScoreTable
from ..stats import BOOTSTRAP_SAMPLES, holm, paired
from . import figures
from .curve import point_heads
from .runs import PROTOCOL_DEFAULTS, Protocol, check_meta, check_roles, curve_points, score_missing, scored_points

Accuracies = dict[str, dict[str, list[tuple[int, float, float]]]]  # rule -> label -> [(n, acc, stderr)]
# negtypes.json: the Accuracies, plus "comparisons", "holm_over", "note", and where they were read from
GROUPS = ("sft", "likra", "base-likra", "alone")  # the accuracy groups of negtypes.json (beside its comparisons)
THE_CURVES = "(default: the curve's)"


@dataclass
class NegtypesOptions(Protocol, Writes):
    # the protocol is the curve's: given here, each option must agree with it (it is checked, not changed)
    split: str | None = option(None, f"split {THE_CURVES}", show_default=False)
    shots: int | None = option(None, f"few-shot examples {THE_CURVES}")
    limit: int | None = option(None, f"first N items {THE_CURVES}")
    dtype: str | None = option(None, f"precision {THE_CURVES}", choices=DTYPES)
    batch_tokens: int | None = option(None, f"tokens per forward pass {THE_CURVES}")
    template: str | None = option(None, f"jsonl question template {THE_CURVES}")
    skip_invalid: bool | None = option(None, f"skip bad rows {THE_CURVES}")
    model: str = option(DEFAULT_MODEL, "embedded name, local folder or hub id (the curve's)")
    curve: str | None = option(None, "a scored learning curve (a likra curve OUT/runK folder)")
    type: list[str] = option([], "a negative training run and its label, LABEL=RUN (repeatable; --negative is its old spelling)",
                             flags=("--type", "--negative"), metavar="LABEL=RUN", grows=True)
    baseline: list[str] = option([], "an adapter run scored by itself at the same points, e.g. dpo=runs/arc-s0/dpo (repeatable)",
                                 metavar="LABEL=RUN", grows=True)
    pair: list[str] = option([], "a recipe variant: its own positive and negative run, both scored, "
                             "e.g. batch32=runs/b32/positive,runs/b32/negative (repeatable)", metavar="LABEL=POSITIVE,NEGATIVE",
                             grows=True)
    points: list[int] = option([], "score only these n (repeatable; default: every n the curve and the run share)", metavar="N")
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


RESERVED = ("base", "positive", "negative")  # the curve's own head names: a label may not take them


def labelled(specs: list[str], flag: str) -> dict[str, str]:
    runs = {}
    for spec in specs:
        label, sep, run = spec.partition("=")
        if not sep or not label:
            raise ConfigError(f"{flag} '{spec}': write LABEL=RUN_FOLDER, e.g. irrelevant=runs/arc-s0/neg-irrelevant")
        if not label.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{flag} '{spec}': use letters, digits, - and _ only in the label")
        if label in RESERVED:
            raise ConfigError(f"{flag} '{spec}': '{label}' names one of the curve's own heads; choose another label")
        if label in runs:
            raise ConfigError(f"{flag}: label '{label}' is given twice")
        runs[label] = run
    return runs


def score_negative_types(o: NegtypesOptions, runs: dict[str, tuple[str, dict[str, str]]], out: Path) -> Path:
    """Score each label's runs (label -> (kind, role -> run); kind "negative", "alone" or "pair") at the
    curve's points (those of ``o.points`` only, if given); tables cached under ``out/LABEL/n-XXXXXX.parquet``
    with head ``LABEL@n`` (the negative run, or the baseline) and, for a pair, ``LABEL:positive@n``."""
    curve_tables = scored_points(o.curve)
    meta = {k: v for k, v in ScoreTable.load(curve_tables[0]).meta.items() if k not in ("positive_run", "negative_run")}
    protocol = curve_protocol(o, meta)
    scored = set(curve_tables) - {0}
    if set(o.points) - scored:
        raise ConfigError(f"--points {sorted(set(o.points) - scored)}: not a scored point of {o.curve} (it has n = "
                          f"{sorted(scored)}); score them first with likra curve --points")
    wanted = set(o.points) or scored
    tables = {}
    for label, (kind, roles) in runs.items():
        if kind == "pair":
            try:
                check_roles(roles["positive"], roles["negative"])
            except ConfigError as e:
                raise ConfigError(f"--pair {label}: {e} (write LABEL=POSITIVE_RUN,NEGATIVE_RUN)") from None
        points = {role: curve_points(r) for role, r in roles.items()}
        common = sorted(wanted.intersection(*points.values()))
        if not common:
            raise ConfigError(f"{label}: its runs saved n = {sorted(set.intersection(*map(set, points.values())))}, none of them "
                              f"among the n to score ({sorted(wanted)}); train it to those n or pick other --points")
        main_role = "negative" if "negative" in roles else "positive"
        for n in common:
            heads = {f"{label}@{n}": points[main_role][n]}
            extra = {"n": n, "negative_type": label, "negative_run": str(roles[main_role]), "kind": kind}
            if kind == "pair":
                heads[f"{label}:positive@{n}"] = points["positive"][n]
                extra["positive_run"] = str(roles["positive"])
            tables[out / label / f"n-{n:06d}.parquet"] = (heads, {**meta, **extra})
    for path, (_, extra) in tables.items():
        if path.exists():
            found = ScoreTable.load(path).meta
            older = "negative" if extra["kind"] == "pair" else extra["kind"]  # tables older than kinds: types or baselines
            check_meta(path, {"kind": older, **found},
                       {**protocol.protocol(), **{k: extra[k] for k in ("negative_run", "positive_run", "kind") if k in extra}})
    if any(not p.exists() for p in tables):
        items = protocol.items(meta["task"], o.data_dir).items
        score_missing(o.model, meta["task"], protocol, items, tables, progress=not o.quiet)
    return out


Cell = tuple[str, ScoreTable, Heads]  # (kind, table, heads to read) of one label at one n


def _cells(curve_dir, types_dir, curve_label: str, baselines: tuple[str, ...]):
    """The base table, then per curve point n > 0: (n, {label: (kind, table, heads)}), the curve's own
    heads first as ``curve_label``; and every label in order. A label's kind is read off its tables
    (tables older than kinds: "alone" if listed in ``baselines``, else "negative"); a baseline's
    adapter is read as the positive head, alone."""
    types_dir = Path(types_dir)
    curve_tables = scored_points(curve_dir)
    base = ScoreTable.load(curve_tables.pop(0))
    sources = {d.name: d for d in sorted(types_dir.iterdir()) if d.is_dir()} if types_dir.exists() else {}
    cells = []
    for n, path in curve_tables.items():
        curve_t = base.concat(ScoreTable.load(path))
        by_label: dict[str, Cell] = {curve_label: ("curve", curve_t, point_heads(n))}
        for label, d in sources.items():
            f = d / f"n-{n:06d}.parquet"
            if not f.exists():
                continue
            extra = ScoreTable.load(f)
            kind = extra.meta.get("kind") or ("alone" if label in baselines else "negative")
            heads = {"alone": Heads(positive=f"{label}@{n}"),
                     "pair": Heads(base="base", positive=f"{label}:positive@{n}", negative=f"{label}@{n}")
                     }.get(kind, Heads(base="base", positive=f"positive@{n}", negative=f"{label}@{n}"))
            by_label[label] = (kind, curve_t.concat(extra), heads)
        cells.append((n, by_label))
    return base, cells, [curve_label, *sources]


def _accuracies(base: ScoreTable, cells, labels: list[str], weight: float, norm: bool = True) -> Accuracies:
    b_acc = rule_accuracy(base, "base", norm=norm, heads=Heads())
    result: Accuracies = {"likra": {}, "base-likra": {}, "sft": {}, "alone": {}}
    for n, by_label in cells:
        for label, (kind, t, heads) in by_label.items():
            if kind == "alone":
                result["alone"].setdefault(label, [(0, *b_acc)]).append((n, *rule_accuracy(t, "sft", weight, norm, heads)))
                continue
            for r in ("sft", "likra", "base-likra") if kind in ("curve", "pair") else ("likra", "base-likra"):
                key = "positive" if r == "sft" and kind == "curve" else label
                result[r].setdefault(key, [(0, *b_acc)]).append((n, *rule_accuracy(t, r, weight, norm, heads)))
    result["sft"].setdefault("positive", [(0, *b_acc)])
    order = {label: k for k, label in enumerate(labels)}
    return {r: dict(sorted(by.items(), key=lambda kv: order.get(kv[0], -1))) for r, by in result.items()}


def _comparisons(cells, curve_label: str, weight: float) -> dict:
    rows = []
    for n, by_label in cells:
        _, curve_t, curve_heads = by_label[curve_label]
        ours = {r: rule_correct(curve_t, r, weight, True, curve_heads) for r in ("sft", "likra")}
        for label, (kind, t, heads) in by_label.items():
            if kind == "curve":
                continue
            if kind == "alone":  # Likra against the baseline adapter by itself
                rows.append(("likra", "alone", label, n, paired(ours["likra"], rule_correct(t, "sft", weight, True, heads))))
                continue
            for r in ("sft", "likra") if kind == "pair" else ("likra",):
                rows.append((r, r, label, n, paired(ours[r], rule_correct(t, r, weight, True, heads))))
    adjusted = holm([p.p for *_, p in rows])
    return {"comparisons": [{"rule": ra, "rule_b": rb, "a": curve_label, "b": label, "n": n, **p.as_dict(), "p_holm": ph}
                            for (ra, rb, label, n, p), ph in zip(rows, adjusted)],
            "holm_over": len(rows),
            "note": f"the curve's own heads ({curve_label}) minus each label's, paired on the same questions: 95% bootstrap "
                    f"interval ({BOOTSTRAP_SAMPLES} resamples of questions), exact McNemar p, Holm over every comparison here"}


def negative_type_accuracies(curve_dir: str | os.PathLike, types_dir: str | os.PathLike, curve_label: str = "near-miss",
                             weight: float = 1.0, norm: bool = True, baselines: tuple[str, ...] = ()) -> Accuracies:
    """rule ("likra", "base-likra") -> label -> [(n, accuracy, stderr)], "sft" -> {"positive": the curve's,
    PAIR: a variant's own}, "alone" -> {BASELINE: ...}: negative types with the curve's positive head at
    the same n, pairs with their own, baselines scored by themselves. Tables only."""
    base, cells, labels = _cells(curve_dir, types_dir, curve_label, baselines)
    return _accuracies(base, cells, labels, weight, norm)


def negative_type_comparisons(curve_dir: str | os.PathLike, types_dir: str | os.PathLike, curve_label: str = "near-miss",
                              weight: float = 1.0, baselines: tuple[str, ...] = ()) -> dict:
    """Every label against the curve's own heads at each n both have, paired on the same questions:
    Likra (the curve's) - Likra (the label's) for negative types and pairs, SFT - SFT for pairs (the
    curve's positive head against the variant's), and Likra - the baseline alone; 95% bootstrap
    interval, exact McNemar p, Holm over the whole table."""
    _, cells, _ = _cells(curve_dir, types_dir, curve_label, baselines)
    return _comparisons(cells, curve_label, weight)


def negtypes_result(curve_dir: str | os.PathLike, types_dir: str | os.PathLike, curve_label: str = "near-miss",
                    weight: float = 1.0, baselines: tuple[str, ...] = ()) -> dict:
    """What ``negtypes.json`` holds: the accuracies, the paired comparisons, and where they were read
    from (so that a report can read them again off the tables)."""
    base, cells, labels = _cells(curve_dir, types_dir, curve_label, baselines)
    return {**_accuracies(base, cells, labels, weight), **_comparisons(cells, curve_label, weight),
            "curve": str(curve_dir), "curve_label": curve_label, "weight": weight, "baselines": list(baselines)}


def title(acc: dict) -> str:
    """What a negtypes folder shows: recipe variants (any pair), negative types, or baselines beside Likra."""
    if any(label != "positive" for label in acc["sft"]):
        return "Recipe variants"
    return "Baselines beside Likra" if acc.get("alone") and len(acc.get("likra", {})) <= 1 else "Negative types"


def _side(rule: str, label: str, curve: bool) -> str:
    return {"likra": f"Likra ({label})", "sft": "SFT" if curve else f"SFT ({label})", "alone": f"{label} alone"}[rule]


def _name(c: dict) -> str:
    return f"{_side(c['rule'], c['a'], True)} - {_side(c.get('rule_b', c['rule']), c['b'], False)}"


def comparison_table(comp: dict) -> list[str]:
    """The comparisons as a markdown table: one row per pair of rules, one column per n (the report's form)."""
    ns = sorted({c["n"] for c in comp["comparisons"]})
    rows: dict[str, dict[int, dict]] = {}
    for c in comp["comparisons"]:
        rows.setdefault(_name(c), {})[c["n"]] = c
    cell = lambda c: f"{c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]; {c['p_holm']:.2g}"  # noqa: E731
    return ["| paired difference; Holm p | " + " | ".join(f"n={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"] + \
        [f"| {name} | " + " | ".join(cell(by_n[n]) if n in by_n else "-" for n in ns) + " |" for name, by_n in rows.items()]


def comparison_lines(comp: dict) -> list[str]:
    """One line per comparison (what the command prints)."""
    return [f"- {_name(c)}, n = {c['n']}: {c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}], "
            f"McNemar p {c['p']:.2g}, Holm p {c['p_holm']:.2g} ({comp['holm_over']})" for c in comp["comparisons"]]


def plot_negative_types(acc: Accuracies, path: str | os.PathLike, title: str) -> Path:
    """Likra with each negative type (solid, 95% binomial band) and Base-Likra (dashed), against n;
    SFT in grey (a recipe variant's own SFT dotted, in its colour); the base model across."""
    import matplotlib.pyplot as plt

    fig, ax = figures.axes(6.8, 4.6)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    sft = acc["sft"]["positive"]
    ns = sorted({n for g in GROUPS for pts in acc.get(g, {}).values() for n, _, _ in pts})
    if sft and sft[0][0] == 0:
        figures.base_line(ax, sft[0][1], figures.Z95 * sft[0][2], ns, "base model (95% binomial interval)")
    for k, (label, pts) in enumerate(acc["likra"].items()):
        c = colors[k % len(colors)]
        figures.line(ax, [n for n, _, _ in pts], [a for _, a, _ in pts], [figures.Z95 * se for _, _, se in pts],
                     f"Likra, {label}", "-o", c, ns)
        bl = acc["base-likra"][label]
        figures.line(ax, [n for n, _, _ in bl], [a for _, a, _ in bl], None, f"Base-Likra, {label}", "--", c, ns)
        if label in acc["sft"]:  # a recipe variant's own positive head
            own = acc["sft"][label]
            figures.line(ax, [n for n, _, _ in own], [a for _, a, _ in own], None, f"SFT, {label}", ":", c, ns)
    figures.line(ax, [n for n, _, _ in sft], [a for _, a, _ in sft], None, "SFT (positive head)", "-", "grey", ns)
    for label, pts in acc.get("alone", {}).items():
        figures.line(ax, [n for n, _, _ in pts], [a for _, a, _ in pts], None, f"{label} (alone)", ":^", None, ns)
    figures.n_axis(ax, ns)
    ax.set_ylabel("accuracy (acc_norm)")
    return figures.finish(fig, ax, path, title, "Bands: 95% binomial interval of each Likra accuracy (dashed and grey lines: same intervals, not drawn).")


def table_rows(acc: Accuracies) -> tuple[list[int], list[tuple[str, dict[int, float]]]]:
    ns = sorted({n for g in GROUPS for pts in acc.get(g, {}).values() for n, _, _ in pts})
    rows = [("sft" if label == "positive" else f"sft, {label}", pts) for label, pts in acc["sft"].items()]
    rows += [(f"{r}, {label}", pts) for r in ("likra", "base-likra", "alone") for label, pts in acc.get(r, {}).items()]
    return ns, [(name, {n: a for n, a, _ in pts}) for name, pts in rows]


def pairs(specs: list[str]) -> dict[str, dict[str, str]]:
    out = {}
    for label, both in labelled(specs, "--pair").items():
        pos, sep, neg = both.partition(",")
        if not sep or not pos or not neg:
            raise ConfigError(f"--pair '{label}={both}': write LABEL=POSITIVE_RUN,NEGATIVE_RUN, e.g. batch32=runs/b32/positive,runs/b32/negative")
        out[label] = {"positive": pos, "negative": neg}
    return out


def run(o: NegtypesOptions) -> dict:
    out = o.require_out("negtypes")
    types, baselines, variants = labelled(o.type, "--type"), labelled(o.baseline, "--baseline"), pairs(o.pair)
    if not o.curve or not (types or baselines or variants):
        raise ConfigError("likra negtypes needs --curve and at least one --type, --pair or --baseline LABEL=RUN")
    given = [*types, *baselines, *variants]
    if len(set(given)) < len(given) or o.curve_label in given:
        raise ConfigError(f"labels must differ from each other and from the curve's own ('{o.curve_label}')")
    runs = {**{k: ("negative", {"negative": r}) for k, r in types.items()}, **{k: ("alone", {"positive": r}) for k, r in baselines.items()},
            **{k: ("pair", v) for k, v in variants.items()}}
    score_negative_types(o, runs, out)
    result = negtypes_result(o.curve, out, o.curve_label, o.weight, tuple(baselines))
    write_json(out / "negtypes.json", result)
    plot_negative_types(result, out / "negative-types.png", f"{o.model}: {title(result).lower()} (w={o.weight:g})")
    return result


@command("negtypes", "negative types: Likra with other negative heads (or other recipes) against a scored curve's heads",
         NegtypesOptions)
def main(o: NegtypesOptions, argv: list[str] | None = None) -> dict:
    acc = run(o)
    ns, rows = table_rows(acc)
    print(f"{'rule':<28}" + "".join(f"{n:>8}" for n in ns))
    for name, by_n in rows:
        print(f"{name:<28}" + "".join(f"{by_n[n]:>8.4f}" if n in by_n else f"{'-':>8}" for n in ns))
    print("\n".join(comparison_lines(acc)))
    print(f"figure: {Path(o.out) / 'negative-types.png'}")
    return acc
