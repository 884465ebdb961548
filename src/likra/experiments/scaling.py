"""``likra scaling``: what positives and negatives buy as the model grows.

The question no published run answers: at what size do negatives start to pay more than
positives, and does Base-Likra (the base model with a negative head, no SFT) catch up? Config in:
eval folders or scored curve runs of several models (as ``likra table1`` reads them). Nothing is
scored. Per source, three paired comparisons on the same questions: Likra - SFT (what the negative
head adds to SFT), SFT - base (what the positives add) and Base-Likra - base (what the negatives add
alone), each with its 95% bootstrap interval and exact McNemar p, Holm-corrected over every
comparison of the table. What comes out: ``scaling.json``, ``scaling.md`` and ``scaling.png``
(the three differences against parameters, one panel per benchmark and protocol, with the paper's
3B/7B rows beside ours where its protocol is the same).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..command import Writes, command, option
from ..errors import ConfigError
from ..io import atomic_write, write_json
from ..rules import rule_correct, rule_summary
from ..stats import holm, paired
from .table1 import PAPER_ROWS, load_paper_rows, table1_source

COMPARISONS = (("likra", "sft"), ("sft", "base"), ("base-likra", "base"))
LABELS = {"likra - sft": "Likra - SFT (negatives on top of SFT)", "sft - base": "SFT - base (positives)",
          "base-likra - base": "Base-Likra - base (negatives alone)"}


@dataclass
class ScalingOptions(Writes):
    source: list[str] = option([], "a likra eval folder (heads base, positive, negative) or a scored curve run (repeatable)")
    parameters: list[str] = option([], "MODEL=COUNT for a model likra does not embed, e.g. my-model=3.2B (repeatable)")
    paper: str = option("builtin", "YAML of the paper's rows (with their models' parameters) drawn beside ours; "
                        "'builtin': the copy shipped with likra; 'none': no paper rows")
    weight: float = option(1.0, "negative-head weight w")


def parse_count(text: str) -> float:
    """'135M' -> 1.35e8, '1.78B' -> 1.78e9, '7241732096' -> 7.24e9."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKMBG]?)\s*", str(text))
    if not m:
        raise ConfigError(f"{text!r} is not a parameter count; write it as 135M, 1.5B or a plain number")
    return float(m.group(1)) * {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}[m.group(2)]


def parameter_count(model: str, given: dict[str, float]) -> float:
    """Parameters of a scored model: given on the command line, else the embedded registry's count."""
    from ..embedded import EMBEDDED

    if model in given:
        return given[model]
    if model in EMBEDDED:
        return parse_count(EMBEDDED[model].parameters)
    raise ConfigError(f"model {model!r}: its parameter count is unknown; pass --parameters {model}=COUNT (e.g. 3.2B)")


def scaling_row(path: str | os.PathLike, given: dict[str, float], weight: float = 1.0) -> dict:
    """One model's accuracies (acc_norm) and its three paired differences, from its score table."""
    t, heads, meta = table1_source(path)
    summary = rule_summary(t, weight, heads)
    row = {"source": str(path), "model": meta.get("model"), "parameters": parameter_count(str(meta.get("model")), given),
           "task": meta.get("task"), "shots": meta.get("shots") or 0, "dtype": meta.get("dtype", "fp32"),
           "limit": meta.get("limit"), "n_train": meta.get("n"),
           "acc": {r: summary[r]["acc_norm"] for r in ("base", "sft", "likra", "base-likra")}}
    for a, b in COMPARISONS:
        row[f"{a} - {b}"] = paired(rule_correct(t, a, weight, True, heads), rule_correct(t, b, weight, True, heads)).as_dict()
    row["n_items"] = row["likra - sft"]["questions"]
    return row


def with_holm(rows: list[dict]) -> list[dict]:
    """Each comparison's p-value Holm-corrected over all the table's comparisons (rows x 3)."""
    keys = [(i, f"{a} - {b}") for i, _ in enumerate(rows) for a, b in COMPARISONS]
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
    return f"{x / 1e9:.2f}B" if x >= 1e9 else f"{x / 1e6:.0f}M"


def scaling_markdown(rows: list[dict], paper: list[dict]) -> str:
    cell = lambda c: f"{c['diff']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]; p={c['p_holm']:.2g}"  # noqa: E731
    lines = ["| model | parameters | benchmark (shots) | questions | n train | precision | base | SFT | Likra | Base-Likra "
             "| Likra - SFT | SFT - base | Base-Likra - base |", "|---" * 13 + "|"]
    for r in sorted(rows, key=lambda r: (r["task"], r["shots"], r["n_train"] or 0, r["parameters"])):
        a = r["acc"]
        lines.append(f"| {r['model']} | {_count(r['parameters'])} | {r['task']} ({r['shots']}-shot) | {r['n_items']} | "
                     f"{r['n_train']} | {r['dtype']} | {a['base']:.4f} | {a['sft']:.4f} | {a['likra']:.4f} | {a['base-likra']:.4f} | "
                     + " | ".join(cell(r[f"{x} - {y}"]) for x, y in COMPARISONS) + " |")
    if paper:
        lines += ["", "The paper's rows (its Table 1: 25-shot ARC-Challenge, all 6615 pool questions; no interval or "
                  "Base-Likra published):", "", "| model | parameters | benchmark | Likra - SFT | SFT - base |", "|---|---|---|---|---|"]
        for p in paper:
            shots = f" ({p['shots']}-shot)" if p.get("shots") is not None else ""
            lines.append(f"| {p['model']} | {_count(p['parameters'])} | {p['task']}{shots} | {p['likra - sft']:+.4f} | {p['sft - base']:+.4f} |")
    return "\n".join(lines) + "\n"


def plot_scaling(rows: list[dict], paper: list[dict], path: str | os.PathLike) -> Path:
    """The three differences against parameters (log scale), 95% bootstrap intervals as error bars;
    one panel per benchmark and protocol; one marker per training size n; the paper's rows as stars
    where its benchmark and shots are the panel's."""
    from . import figures

    # the paper states its shots for ARC only: its HellaSwag rows have no panel of the same protocol
    panels = sorted({(r["task"], r["shots"]) for r in rows} | {(p["task"], p["shots"]) for p in paper if p.get("shots") is not None})
    fig, axs = figures.axes(width=5.2 * len(panels), height=4.4, ncols=len(panels), squeeze=False, sharex=True, sharey=True)
    colors = {"likra - sft": "tab:red", "sft - base": "tab:blue", "base-likra - base": "tab:green"}
    markers = ["o", "s", "^", "D", "v"]
    for ax, (task, shots) in zip(axs[0], panels):
        here = [r for r in rows if (r["task"], r["shots"]) == (task, shots)]
        ns = sorted({r["n_train"] or 0 for r in here})
        for k, color in colors.items():
            for j, n in enumerate(ns):
                pts = sorted((r["parameters"], r[k]) for r in here if (r["n_train"] or 0) == n)
                if not pts:
                    continue
                shift = 1.0 + 0.03 * (list(colors).index(k) - 1)  # side by side, so the bars do not overlap
                xs = [x * shift for x, _ in pts]
                ys = [c["diff"] for _, c in pts]
                err = [[c["diff"] - c["lo"] for _, c in pts], [c["hi"] - c["diff"] for _, c in pts]]
                ax.errorbar(xs, ys, yerr=err, fmt=f"-{markers[j % len(markers)]}", color=color, markersize=5, capsize=3,
                            linewidth=1, label=f"{LABELS[k]}, n = {n}")
        for k, color in colors.items():
            pp = [p for p in paper if p["task"] == task and p.get("shots") == shots and k in p]
            if pp:
                ax.plot([p["parameters"] for p in pp], [p[k] for p in pp], "*", color=color, markersize=11,
                        markeredgecolor="black", linestyle="none", label=f"paper: {k} (3B/7B, n = 6615)")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ticks = [1e8, 3e8, 1e9, 3e9, 1e10]
        ax.set_xticks(ticks, [_count(t).replace(".00B", "B") for t in ticks])
        ax.set_xlim(8e7, 1.2e10)
        ax.set_xlabel("parameters (log scale)")
        ax.set_ylabel("paired accuracy difference (acc_norm)")
        q = sorted({r["n_items"] for r in here})
        ax.set_title(f"{task}, {shots}-shot" + (f", {'/'.join(map(str, q))} questions" if q else ""), fontsize=9)
    caption = ("Bars: 95% bootstrap intervals of the paired difference (questions resampled, 10000 draws); one seed (0) per "
               "point. Stars: the paper's Table 1 differences (no interval published).")
    return figures.finish(fig, axs[0][0], path, "", caption, legend_axes=axs[0])


def run(o: ScalingOptions) -> dict:
    if not o.source:
        raise ConfigError("likra scaling needs --source (a likra eval folder or a scored curve run) for each model")
    given = {}
    for spec in o.parameters:
        name, sep, count = spec.partition("=")
        if not sep:
            raise ConfigError(f"--parameters {spec!r}: write MODEL=COUNT, e.g. my-model=3.2B")
        given[name] = parse_count(count)
    rows = with_holm([scaling_row(src, given, o.weight) for src in o.source])
    paper_file = {"builtin": PAPER_ROWS, "none": None}.get(o.paper, o.paper)
    paper = paper_points(load_paper_rows(paper_file)) if paper_file else []
    result = {"rows": rows, "paper": paper, "weight": o.weight}
    if o.out:
        write_json(Path(o.out) / "scaling.json", result)
        atomic_write(Path(o.out) / "scaling.md", scaling_markdown(rows, paper))
        plot_scaling(rows, paper, Path(o.out) / "scaling.png")
    return result


@command("scaling", "What negatives and positives add, against model size: paired differences per model, from tables",
         ScalingOptions)
def main(o: ScalingOptions, argv: list[str] | None = None) -> dict:
    result = run(o)
    print(scaling_markdown(result["rows"], result["paper"]))
    return result
