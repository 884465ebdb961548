"""``likra scaling``: what positives and negatives buy as the model grows.

The question no published run answers: at what size do negatives start to pay more than
positives, and does Base-Likra (the base model with a negative head, no SFT) catch up? Config in:
eval folders or scored curve runs of several models (as ``likra table1`` reads them). Nothing is
scored. Per source, three paired comparisons on the same questions: Likra - SFT (what the negative
head adds to SFT), SFT - base (what the positives add) and Base-Likra - base (what the negatives add
alone), each with its 95% bootstrap interval and exact McNemar p, Holm-corrected over every
comparison of the table. Where two or more models share a protocol and a training size, each
difference's trend with size: its slope per tenfold parameters, with a bootstrap interval over
questions and a randomisation test (Holm over the trend table). What comes out: ``scaling.json``,
``scaling.md`` and ``scaling.png`` (the three differences against parameters, one panel per
protocol, with the paper's rows beside ours where its protocol is the same).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..command import Writes, command, option
from ..errors import ConfigError
from ..io import atomic_write, write_json
from ..rules import choose, rule_heads, rule_scores
from ..scoring.table import option_matrix
from ..stats import BOOTSTRAP_SAMPLES, holm, paired, size_trend
from .table1 import PAPER_ROWS, load_paper_rows, parse_count, table1_source

# (A, B, colour, what A - B measures)
COMPARISONS = (("likra", "sft", "tab:red", "negatives on top of SFT"), ("sft", "base", "tab:blue", "positives"),
               ("base-likra", "base", "tab:green", "negatives alone"))
RULES = ("base", "sft", "likra", "base-likra")


@dataclass
class ScalingOptions(Writes):
    source: list[str] = option([], "a likra eval folder (heads base, positive, negative) or a scored curve run (repeatable)")
    parameters: list[str] = option([], "MODEL=COUNT for a model likra does not embed, e.g. my-model=3.2B (repeatable)")
    paper: str = option("builtin", "YAML of the paper's rows (with their models' parameters) drawn beside ours; "
                        "'builtin': the copy shipped with likra; 'none': no paper rows")
    weight: float = option(1.0, "negative-head weight w")
    questions: int | None = option(None, "compare every source on its first K questions only (a source scored on "
                                   "more is cut; one scored on fewer is refused): sources of different --limit in one panel")


def parameter_count(model: str, given: dict[str, float]) -> float:
    """Parameters of a scored model: given on the command line, else the embedded registry's count
    (found by likra's name or by the public model id)."""
    from ..embedded import EMBEDDED

    if model in given:
        return given[model]
    for m in EMBEDDED.values():
        if model in (m.name, m.hub_id):
            return parse_count(m.parameters)
    raise ConfigError(f"model {model!r}: its parameter count is unknown; pass --parameters {model}=COUNT (e.g. 3.2B)")


def protocol(row: dict) -> tuple:
    """What must be equal for two rows to share a panel: benchmark, shots, questions, precision. (The
    split is not: an unset split is the task's evaluation split, and the question count tells
    subsets apart.)"""
    return row["task"], row["shots"], row["n_items"], row["dtype"]


def scaling_row(path: str | os.PathLike, given: dict[str, float], weight: float = 1.0, questions: int | None = None) -> dict:
    """One model's accuracies (acc_norm) and its three paired differences, from its score table;
    with ``questions``, on its first that many questions (tables keep the task's item order, and
    the first K items of a k-shot run are those of any longer run: lm-eval's shots are drawn in order)."""
    t, heads, meta = table1_source(path)
    missing = sorted({h for r in RULES for h in rule_heads(r, heads)} - set(t.heads()))
    if missing:
        raise ConfigError(f"{path}: no scores for head(s) {missing} (the table has {t.heads()}); a scaling row needs the base "
                          "model and both heads: score them with likra eval --head positive=RUN/n-N --head negative=RUN/n-N")
    if meta.get("n") is None:
        raise ConfigError(f"{path}: its training size n cannot be read (the heads' folders are not named n-NNNNNN); "
                          "score adapters saved by likra train")
    # DExperts reads all three heads, so its gold indices are the check that every head scored the same questions
    rule_scores(t, "dexperts", weight, True, heads)
    correct = {}
    for r in RULES:
        scores, gold = rule_scores(t, r, weight, True, heads)
        correct[r] = (choose(scores) == np.asarray(gold))[:questions]
    if questions is not None and len(correct["base"]) < questions:
        raise ConfigError(f"{path}: scored on {len(correct['base'])} questions, fewer than --questions {questions}; "
                          "score it on more (--limit) or lower --questions")
    row = {"source": str(path), "model": meta.get("model"), "parameters": parameter_count(str(meta.get("model")), given),
           "task": meta.get("task"), "split": meta.get("split"), "shots": meta.get("shots") or 0,
           "dtype": meta.get("dtype", "fp32"), "limit": meta.get("limit"), "n_train": meta["n"], "n_items": len(correct["base"]),
           "acc": {r: float(c.mean()) for r, c in correct.items()}}
    for a, b, *_ in COMPARISONS:
        row[f"{a} - {b}"] = paired(correct[a], correct[b]).as_dict()
    ids = option_matrix(t, rule_heads("base", heads)[0]).item_ids[:questions]
    row["_correct"] = {r: dict(zip(ids, c)) for r, c in correct.items()}  # per question, for trends; not written out
    return row


def public(row: dict) -> dict:
    """A row as written to scaling.json (without its per-question outcomes)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def size_trends(rows: list[dict]) -> list[dict]:
    """Per protocol and training size with two or more model sizes: each difference's slope against
    log10(parameters) on the questions every model answered, Holm-corrected over the whole list."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((*protocol(r), r["n_train"]), []).append(r)
    out = []
    for key, group in sorted(groups.items(), key=lambda kv: (-kv[0][1], str(kv[0]))):
        if len({r["parameters"] for r in group}) < 2:
            continue
        group = sorted(group, key=lambda r: r["parameters"])
        shared = sorted(set.intersection(*(set(r["_correct"]["base"]) for r in group)))
        if len(shared) < min(len(r["_correct"]["base"]) for r in group):
            raise ConfigError(f"{', '.join(r['source'] for r in group)}: the same protocol but different questions; "
                              "score every model on the same items (same task, split, --limit)")
        trend = {"task": key[0], "shots": key[1], "n_items": key[2], "dtype": key[3], "n_train": key[4],
                 "models": [r["model"] for r in group], "parameters": [r["parameters"] for r in group]}
        for a, b, *_ in COMPARISONS:
            diffs = [np.array([float(r["_correct"][a][q]) - float(r["_correct"][b][q]) for q in shared]) for r in group]
            trend[f"{a} - {b}"] = size_trend(trend["parameters"], diffs).as_dict()
        out.append(trend)
    keys = [(i, f"{a} - {b}") for i in range(len(out)) for a, b, *_ in COMPARISONS]
    for (i, k), p in zip(keys, holm([out[i][k]["p"] for i, k in keys])):
        out[i][k]["p_holm"] = p
    return out


def with_holm(rows: list[dict]) -> list[dict]:
    """Each comparison's p-value Holm-corrected over all the table's comparisons (rows x 3); a
    second row of the same model, protocol and n would be counted twice, so it is refused."""
    seen = {}
    for r in rows:
        key = (r["model"], r["n_train"], *protocol(r))
        if key in seen:
            raise ConfigError(f"{seen[key]} and {r['source']}: the same model, n and protocol twice; give one of them")
        seen[key] = r["source"]
    keys = [(i, f"{a} - {b}") for i, _ in enumerate(rows) for a, b, *_ in COMPARISONS]
    for (i, k), p in zip(keys, holm([rows[i][k]["p"] for i, k in keys])):
        rows[i][k]["p_holm"] = p
    return rows


def paper_points(paper: dict | None) -> list[dict]:
    """The paper's rows with a parameter count: Likra - SFT and SFT - base from its published
    accuracies (the paper gives no per-question data, so no interval; it reports no Base-Likra)."""
    out = []
    for p in (paper or {}).get("rows", []):
        if p.get("parameters") is None or None in (p.get("base"), p.get("sft"), p.get("likra")):
            continue
        out.append({"model": p["model"], "parameters": parse_count(p["parameters"]), "task": p["task"], "shots": p.get("shots"),
                    "likra - sft": p["likra"] - p["sft"], "sft - base": p["sft"] - p["base"]})
    return out


def _count(x: float) -> str:
    return f"{x / 1e9:.2f}B" if x >= 1e9 else f"{x / 1e6:.0f}M" if x >= 1e6 else f"{x:.0f}"


def scaling_markdown(rows: list[dict], paper: list[dict], trends: list[dict] = ()) -> str:
    """One line per model, training size and protocol; the trends with size; then the paper's rows,
    which carry no interval."""
    cell = lambda c: f"{c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]; p_Holm={c['p_holm']:.2g}"  # noqa: E731
    lines = ["| model | parameters | benchmark (shots) | questions | n train | precision | base | SFT | Likra | Base-Likra "
             "| Likra - SFT | SFT - base | Base-Likra - base |", "|---" * 13 + "|"]
    for r in sorted(rows, key=lambda r: (-r["shots"], r["task"], r["n_train"], r["parameters"])):
        a = r["acc"]
        lines.append(f"| {r['model']} | {_count(r['parameters'])} | {r['task']} ({r['shots']}-shot) | {r['n_items']} | "
                     f"{r['n_train']} | {r['dtype']} | {a['base']:.4f} | {a['sft']:.4f} | {a['likra']:.4f} | {a['base-likra']:.4f} | "
                     + " | ".join(cell(r[f"{x} - {y}"]) for x, y, *_ in COMPARISONS) + " |")
    lines += ["", f"Differences are paired on the same questions: 95% bootstrap interval per comparison ({BOOTSTRAP_SAMPLES} "
              f"resamples of questions) and the exact McNemar p, Holm-corrected over all {3 * len(rows)} comparisons of the table."]
    if trends:
        slope = lambda c: f"{c['slope']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]; p_Holm={c['p_holm']:.2g}"  # noqa: E731
        lines += ["", "Trend with size: change of each difference per tenfold parameters (least-squares slope against "
                  "log10 of the parameter count), on the questions every model of the line answered:", "",
                  "| benchmark (shots) | questions | n train | precision | models | Likra - SFT | SFT - base | Base-Likra - base |",
                  "|---" * 8 + "|"]
        for t in trends:
            lines.append(f"| {t['task']} ({t['shots']}-shot) | {t['n_items']} | {t['n_train']} | {t['dtype']} | "
                         f"{', '.join(t['models'])} | " + " | ".join(slope(t[f'{x} - {y}']) for x, y, *_ in COMPARISONS) + " |")
        lines += ["", f"Slope intervals: 95% bootstrap ({BOOTSTRAP_SAMPLES} resamples of questions, the same questions for "
                  "every model). p: randomisation test (each question's differences shuffled among the models), "
                  f"Holm-corrected over the {3 * len(trends)} slopes. With two models the slope is their difference over "
                  "the log-size gap; models of different families differ in more than size."]
    if paper:
        lines += ["", "The paper's rows (its Table 1; heads trained on all 6615 questions of its ARC pool; ARC-Challenge "
                  "scored 25-shot on its 1172 test questions, HellaSwag shots not stated; it publishes no interval and no "
                  "Base-Likra):", "", "| model | parameters | benchmark | Likra - SFT | SFT - base |", "|---|---|---|---|---|"]
        for p in paper:
            shots = f" ({p['shots']}-shot)" if p.get("shots") is not None else ""
            lines.append(f"| {p['model']} | {_count(p['parameters'])} | {p['task']}{shots} | {p['likra - sft']:+.4f} | {p['sft - base']:+.4f} |")
    return "\n".join(lines) + "\n"


def plot_scaling(rows: list[dict], paper: list[dict], path: str | os.PathLike) -> Path:
    """The three differences against parameters (log scale), 95% bootstrap intervals as error bars,
    each point named by its model; one panel per protocol (rows in a panel share benchmark,
    shots, questions and precision); one marker per training size n; the paper's rows as stars
    where its benchmark and shots are the panel's (its HellaSwag shots are not stated: not drawn)."""
    from . import figures

    panel_of = lambda r: protocol(r)[:3]  # noqa: E731  (precision is drawn per point: hollow markers where not fp32)
    panels = sorted({panel_of(r) for r in rows}, key=lambda p: (-p[1], str(p)))
    paper_arc = [p for p in paper if p["task"] == "arc_challenge" and p.get("shots") is not None]
    if paper_arc and not any(p[0] == "arc_challenge" and p[1] == paper_arc[0]["shots"] for p in panels):
        panels.insert(0, ("arc_challenge", paper_arc[0]["shots"], None))  # the paper's protocol, ours still to come
    xs_all = [r["parameters"] for r in rows] + [p["parameters"] for p in paper_arc]
    lo, hi = min(xs_all) / 1.6, max(xs_all) * 1.6
    fig, axs = figures.axes(width=5.4 * len(panels), height=6.2, ncols=len(panels), squeeze=False, sharey=True)
    markers = dict(zip(sorted({r["n_train"] for r in rows}), "os^Dv" * 4))  # one marker per n, the same in every panel
    for ax, panel in zip(axs[0], panels):
        task, shots, items = panel
        here = [r for r in rows if panel_of(r) == panel]
        ours = [p for p in paper_arc if (p["task"], p["shots"]) == (task, shots)]
        series = sorted({(r["n_train"], r["dtype"]) for r in here})
        dtypes = sorted({d for _, d in series})
        for ci, (a, b, color, what) in enumerate(COMPARISONS):
            k = f"{a} - {b}"
            for n, dtype in series:
                pts = sorted((r["parameters"], r[k], r["model"]) for r in here if (r["n_train"], r["dtype"]) == (n, dtype))
                shift = 1.0 + 0.035 * (ci - 1)  # side by side, so the bars do not overlap
                ax.errorbar([x * shift for x, _, _ in pts], [c["diff"] for _, c, _ in pts],
                            yerr=[[c["diff"] - c["lo"] for _, c, _ in pts], [c["hi"] - c["diff"] for _, c, _ in pts]],
                            fmt=f":{markers[n]}", color=color, markersize=5, capsize=3, linewidth=0.8,
                            markerfacecolor=color if dtype == "fp32" else "white",
                            label=f"{a} - {b} ({what}), n = {n}" + (f", {dtype}" if len(dtypes) > 1 else ""))
            pp = [p for p in ours if k in p]
            if pp:
                ax.plot([p["parameters"] for p in pp], [p[k] for p in pp], "*", color=color, markersize=11,
                        markeredgecolor="black", linestyle="none", label=f"paper: {a} - {b}")
        names: list[tuple[float, str]] = []  # models of (almost) one size share a label
        for x, name in sorted({(r["parameters"], r["model"]) for r in here} | {(p["parameters"], p["model"]) for p in ours}):
            if names and x / names[-1][0] < 1.05:
                names[-1] = (names[-1][0], names[-1][1] + " / " + name)
            else:
                names.append((x, name))
        for x, name in names:  # the models, named along the top edge
            ax.text(x, 1.01, name.replace(" / ", "\n"), transform=ax.get_xaxis_transform(), fontsize=6, ha="left",
                    va="bottom", rotation=30, rotation_mode="anchor", color="#444444")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ticks = [t for t in (1e8, 3e8, 1e9, 3e9, 1e10, 3e10, 1e11) if lo <= t <= hi]
        ax.set_xticks(ticks, [_count(t).replace(".00B", "B") for t in ticks])
        ax.set_xlim(lo, hi)
        ax.set_xlabel("parameters (log scale)")
        ax.set_title(f"{task}, {shots}-shot" + (f", {items} questions, {' and '.join(dtypes)}" if items else " (the paper's protocol)"),
                     fontsize=9, pad=46)
    axs[0][0].set_ylabel("paired accuracy difference (acc_norm)")
    caption = (f"Bars: 95% bootstrap intervals of the paired difference ({BOOTSTRAP_SAMPLES} resamples of questions); one run "
               "per point; hollow markers: scored in a precision other than fp32 (each panel's title and legend name it). Stars: the "
               "paper's Table 1 differences (no interval published). Dotted lines only guide the eye between models of different "
               "families.")
    return figures.finish(fig, axs[0][0], path, "", caption, legend_axes=axs[0], legend_below=True)


def run(o: ScalingOptions) -> dict:
    if not o.source:
        raise ConfigError("likra scaling needs --source (a likra eval folder or a scored curve run) for each model")
    given = {}
    for spec in o.parameters:
        name, sep, count = spec.partition("=")
        try:
            if not sep:
                raise ConfigError("write MODEL=COUNT, e.g. my-model=3.2B")
            given[name] = parse_count(count)
        except ConfigError as e:
            raise ConfigError(f"--parameters {spec!r}: {e}") from None
    if o.questions is not None and o.questions < 1:
        raise ConfigError(f"--questions {o.questions}: give a positive number of questions")
    rows = with_holm([scaling_row(src, given, o.weight, o.questions) for src in o.source])
    trends = size_trends(rows)
    rows = [public(r) for r in rows]
    paper_file = {"builtin": PAPER_ROWS, "none": None}.get(o.paper, o.paper)
    paper = paper_points(load_paper_rows(paper_file)) if paper_file else []
    result = {"rows": rows, "trends": trends, "paper": paper, "weight": o.weight, "questions": o.questions}
    if o.out:
        write_json(Path(o.out) / "scaling.json", result)
        atomic_write(Path(o.out) / "scaling.md", scaling_markdown(rows, paper, trends))
        plot_scaling(rows, paper, Path(o.out) / "scaling.png")
    return result


@command("scaling", "What negatives and positives add, against model size: paired differences per model, from tables",
         ScalingOptions)
def main(o: ScalingOptions, argv: list[str] | None = None) -> dict:
    result = run(o)
    print(scaling_markdown(result["rows"], result["paper"], result["trends"]))
    return result
