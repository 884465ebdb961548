"""The report of a run folder: figures (PNG), and one markdown and one self-contained HTML page
with the tables, the exact commands, versions and wall times. It reads only what the experiments
wrote (JSON summaries and cached score tables); it never calls a model."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

from .io import atomic_write


def _curve_table(curves: dict) -> list[str]:
    from .experiments.curve import CURVE_RULES, seed_summary

    cols = {r: seed_summary(curves, r) for r in CURVE_RULES}
    mixed = len(curves) > 1 and any(k < len(curves) for *_, k in cols["sft"])  # some n scored by fewer runs
    lines = ["| n | " + " | ".join(CURVE_RULES) + (" | runs |" if mixed else " |"), "|---" * (len(CURVE_RULES) + 1 + mixed) + "|"]
    for i, (n, _, _, k) in enumerate(cols["sft"]):
        lines.append(f"| {n} | " + " | ".join(f"{cols[r][i][1]:.4f} ± {cols[r][i][2]:.3f}" for r in CURVE_RULES)
                     + (f" | {k} |" if mixed else " |"))
    return lines


def _seed_lines(runs: list[Path]) -> list[str]:
    """Over the runs (seeds), at the points all of them scored: Likra's gains and Likra - SFT, pooled."""
    from .experiments.curve import across_runs

    seeds = across_runs(runs)
    if not seeds:
        return []
    return ([f"Over the {len(runs)} runs, at the points every run scored ({', '.join(map(str, seeds['points']))}): "
             f"the mean of the runs' paired differences, 95% bootstrap interval resampling questions (each question's "
             f"runs together), randomisation p Holm-corrected over the {seeds['holm_over']} comparisons of "
             f"`curve_seeds.json`.", ""]
            + [f"- Likra gain n = {g['from']} -> {g['to']}: {g['text']}" for g in seeds["gains"]["likra"]]
            + [f"- Likra - SFT at n = {c['n']}: {c['text']}" for c in seeds["comparisons"]["likra - sft"]]
            + [f"- Base-Likra - base at n = {c['n']}: {c['text']}" for c in seeds["comparisons"]["base-likra - base"]]
            + [f"- {'SFT' if rule == 'sft' else 'Likra'} step test on the seeds' mean curve (Holm over its {len(st['ns']) - 1} consecutive "
               f"gains): {st['text']}" for rule, st in seeds.get("step", {}).items()] + [""])


def _comparison_lines(runs: list[Path]) -> list[str]:
    """Per run: Likra - SFT at the last n (paired, bootstrap interval, Holm over the run's table of
    comparisons) and the step test of the SFT and Likra curves."""
    from .experiments.curve import curve_comparisons

    md = []
    for r in runs:
        st = curve_comparisons(r)
        points = f" (points {', '.join(map(str, st['step']['likra']['ns']))})" if st["step"] else ""
        last = {k: v[-1] for k, v in st["comparisons"].items()}
        md.append(f"- {r.name}: at n = {last['likra - sft']['n']}, " + "; ".join(
            f"{k} {v['diff']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}] (p = {v['p_holm']:.2g})" for k, v in last.items())
            + (f". Step test{points}: SFT {st['step']['sft']['text']}; Likra {st['step']['likra']['text']}." if st["step"]
               else ". (Too few curve points for the step test.)"))
    return md


def _meta(folder: Path) -> dict:
    """The metadata of a scored folder's base table ({} when it has none)."""
    from .scoring.table import ScoreTable

    for cand in sorted(folder.glob("run*/tables/n-000000.parquet")) + sorted(folder.glob("tables/n-000000.parquet")):
        return ScoreTable.load(cand).meta
    return {}


def _meta_line(folder: Path) -> str:
    """What a scored folder holds, from its base table's metadata."""
    m = _meta(folder)
    if not m:
        return ""
    limit = m.get("limit")
    return (f"Model **{m.get('model')}**, evaluation `{m.get('task')}` ({m.get('shots') or 0}-shot, "
            f"{'first ' + str(limit) if limit else 'all'} questions), scored in {m.get('dtype', 'fp32')}.")


def portable(text: str, run_dir: Path) -> str:
    """``text`` with absolute paths made relative: to the repository holding ``run_dir`` where they lie
    inside it, else to their last two parts. A committed report names no machine's folders."""
    root = next((p for p in [run_dir.resolve(), *run_dir.resolve().parents] if (p / ".git").exists()), run_dir.resolve())

    def rel(m: re.Match) -> str:
        path = Path(m.group(0))
        if not Path("/", path.parts[1]).exists():  # not a folder of this machine (e.g. a URL path such as /v1/score)
            return m.group(0)
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(Path("...", *path.parts[-2:]))

    return re.sub(r"(?<![\w.~/])/(?:[\w.+-]+/)*[\w.+-]+", rel, text)


def _command_lines(folder: Path, run_dir: Path) -> list[str]:
    path = folder / "likra-command.json"
    if not path.exists():
        return []
    rec = json.loads(path.read_text())
    return [f"Made with `{rec['command']}` ({rec.get('seconds', 0):.0f} s).", ""]


def _figure(title: str, png: Path, run_dir: Path) -> list[str]:
    return [f"![{title}]({png.relative_to(run_dir).as_posix()})", ""] if png.exists() else []


def _curve_section(folder: Path, run_dir: Path) -> list[str]:
    from .experiments import figures
    from .experiments.curve import curve_accuracies, plot_curve
    from .experiments.sweep import plot_sweep

    curves = json.loads((folder / "curve_accuracies.json").read_text())
    runs = sorted(p.parent for p in folder.glob("run*/tables") if (p / "n-000000.parquet").exists())
    if runs:  # read off the tables themselves, not a copy of the numbers
        curves = {r.name: curve_accuracies(r) for r in runs}
    rel = folder.relative_to(run_dir) if folder != run_dir else Path(".")
    meta = _meta(folder)
    if runs:  # every figure is redrawn from the tables, in today's style
        plot_curve(curves, folder / "curve.png", f"{meta.get('model')} on {meta.get('task')} ({meta.get('shots') or 0}-shot)",
                   figures.paper_caption(meta.get("task", ""), meta.get("shots") or 0))
    md = [f"## Learning curve: `{rel}`", "", _meta_line(folder), "",
          "SFT is the positive head alone, Likra is `L+ - w L-` and Base-Likra `L_base - w L-` (w = 1), "
          "per character (acc_norm). "
          + (f"{len(curves)} runs (seeds): mean ± sample sd over them." if len(curves) > 1 else "One run: accuracy ± binomial standard error."),
          ""] + _curve_table(curves) + [""] + _figure(f"Learning curve ({rel})", folder / "curve.png", run_dir)
    if runs:
        md += ["Paired differences on the same questions, per run, at the last n: 95% bootstrap interval (10000 resamples "
               "of questions), exact McNemar p Holm-corrected over all comparisons of the run (4 per n). Step test: the "
               "largest gain between consecutive points, Holm over the consecutive gains, and its share of the whole rise "
               "(step-like when the gain is significant and the share's interval lies above one half).", ""] + _comparison_lines(runs) + [""]
        md += _seed_lines(runs)
    logs = {f"{r.name} {role}": [json.loads(x) for x in (r / f"train_log-{role}.jsonl").read_text().splitlines() if x]
            for r in runs for role in ("positive", "negative") if (r / f"train_log-{role}.jsonl").exists()}
    if logs:
        from .experiments.train import plot_train_logs

        plot_train_logs(logs, folder / "loss.png", f"Training loss of the heads ({rel})")
        md += _figure(f"Training loss of the heads ({rel})", folder / "loss.png", run_dir)
    md += _command_lines(folder, run_dir)
    sweep_json = folder / "sweep-likra.json"
    if sweep_json.exists():
        md += [f"### Weight sweep (Likra), `{rel}`", ""]
        sweeps = json.loads(sweep_json.read_text())
        best_json = folder / "sweep-likra-best.json"
        against_one = json.loads(best_json.read_text()) if best_json.exists() else {"runs": {}}
        gaps = {(run, str(row["n"])): row for run, rows in against_one["runs"].items() for row in rows}
        for run, per_n in sweeps.items():
            plot_sweep({int(n): pts for n, pts in per_n.items()}, folder / f"sweep-likra-{run}.png", f"likra: accuracy vs w ({run})")
        for run, per_n in sweeps.items():
            for n, pts in per_n.items():
                best = max(pts, key=lambda p: p[1])
                at1 = next((a for w, a, _ in pts if abs(w - 1.0) < 1e-9), float("nan"))
                gap = gaps.get((run, n))
                vs1 = (f"; best - w=1 {gap['diff']:+.3f} [{gap['lo']:+.3f}, {gap['hi']:+.3f}], Holm p {gap['p_holm']:.2g}"
                       if gap and gap["best_w"] != 1.0 else "")
                md.append(f"- {run}, n={n}: best w = {best[0]:g} ({best[1]:.4f}); at w = 1: {at1:.4f}; at w = 0 (SFT): {pts[0][1]:.4f}{vs1}")
        if gaps:
            md += ["", f"Best w against w = 1: {against_one['note']} ({against_one['holm_over']} comparisons)."]
        md.append("")
        for png in sorted(folder.glob("sweep-*.png")):
            md += _figure(f"Weight sweep ({rel}, {png.stem})", png, run_dir)
    return md


def _negtypes_section(folder: Path, run_dir: Path) -> list[str]:
    from .experiments.negtypes import GROUPS, comparison_table, negtypes_result, plot_negative_types, table_rows, title

    acc = json.loads((folder / "negtypes.json").read_text())
    labels = {label for g in GROUPS for label in acc.get(g, {})} - {"positive", acc.get("curve_label")}
    if acc.get("curve") and (Path(acc["curve"]) / "tables" / "n-000000.parquet").exists() \
            and all((folder / label).is_dir() for label in labels):  # read off the tables themselves
        acc = negtypes_result(acc["curve"], folder, acc["curve_label"], acc["weight"], tuple(acc["baselines"]))
    rel = folder.relative_to(run_dir)
    ns, rows = table_rows(acc)
    kind = title(acc)
    plot_negative_types(acc, folder / "negative-types.png", f"{kind} ({rel})")
    md = [f"## {kind}: `{rel}`", "",
          "Likra with the same positive head and negative heads trained on different kinds of negatives; "
          "a recipe variant (\"sft, LABEL\" rows) brings its own positive head; "
          "Base-Likra uses the base model in place of the positive head; \"alone\" rows are baseline adapters "
          f"(DPO, KTO) scored by themselves (acc_norm, w = {acc.get('weight', 1.0):g}).", "",
          "| rule | " + " | ".join(f"n={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for name, by_n in rows:
        md.append(f"| {name} | " + " | ".join(f"{by_n[n]:.4f}" if n in by_n else "-" for n in ns) + " |")
    if acc.get("comparisons"):
        md += ["", f"Paired differences: {acc['note']} ({acc['holm_over']} comparisons).", ""] + comparison_table(acc)
    md += [""] + _figure(f"{kind} ({rel})", folder / "negative-types.png", run_dir) + _command_lines(folder, run_dir)
    return md


def _mass_section(folder: Path, run_dir: Path) -> list[str]:
    from .experiments.mass import GAP, SEPARATION, mass_changes, plot_mass

    changes = mass_changes(folder) if (folder / "tables" / "n-000000.parquet").exists() else json.loads((folder / "mass.json").read_text())
    rel = folder.relative_to(run_dir)
    md = [f"## Likelihood mass: `{rel}`", "", "Change of the mean per-character log-likelihood from the base model, "
          "on test questions paired with their correct answer, the most likely incorrect option, another "
          "question's answer (irrelevant) and another benchmark's answer (unrelated).", ""]
    for head, cats in changes.items():
        ns = [p[0] for p in next(iter(cats.values()))]
        md += [f"**{head} head**" if head != GAP else f"**{GAP}** (question by question: what the Likra score subtracts; "
               f"{SEPARATION}: > 0 where the negative head, against the positive, prefers the wrong answer)", "", "| category | " + " | ".join(f"n={n}" for n in ns) + " |",
               "|---" * (len(ns) + 1) + "|"]
        md += [f"| {c} | " + " | ".join(f"{p[1]:+.3f}" + (f" ± {p[2]:.3f}" if len(p) > 2 and p[0] else "") for p in pts) + " |"
               for c, pts in cats.items()]
        md.append("")
    plot_mass(changes, folder / "mass.png", f"Likelihood mass ({rel})")
    return md + _figure(f"Likelihood mass ({rel})", folder / "mass.png", run_dir) + _command_lines(folder, run_dir)


def _table1_section(folder: Path, run_dir: Path) -> list[str]:
    from .experiments.table1 import table1_markdown, table1_row

    data = json.loads((folder / "table1.json").read_text())
    if all(Path(part.partition("@")[0]).exists() for r in data["rows"] for part in r["source"].split("+")):  # from the tables
        data["rows"] = [table1_row(r["source"], data.get("weight", 1.0)) for r in data["rows"]]
    return [f"## Table 1: `{folder.relative_to(run_dir) if folder != run_dir else '.'}`", "",
            "acc_norm ± stderr at the last training size of each run, in the paper's notation: + is the positive head "
            "(SFT), - the Likra model `L+ - L-`; Base-Likra is the base model with the negative head, DExperts "
            "`L_base + (L+ - L-)`. Likra - SFT is paired on the same questions: its 95% bootstrap interval (10000 "
            "resamples of questions) and the exact McNemar p-value, Holm-corrected over the table's rows. AUROC: each rule's score as a "
            "detector of wrong options (option level; 0.5 is chance). Calibration: softmax of the Likra scores over the "
            "options, temperature T fitted on the even-numbered items, gold NLL on the odd-numbered ones.", "",
            *table1_markdown(data["rows"], data.get("paper")).splitlines(), ""] + _command_lines(folder, run_dir)


def _scaling_section(folder: Path, run_dir: Path) -> list[str]:
    from .experiments.scaling import plot_scaling, public, scaling_markdown, scaling_row, size_trends, with_holm

    data = json.loads((folder / "scaling.json").read_text())
    if all(Path(r["source"]).exists() for r in data["rows"]):  # read off the tables themselves
        given = {r["model"]: r["parameters"] for r in data["rows"]}
        rows = with_holm([scaling_row(r["source"], given, data.get("weight", 1.0), data.get("questions")) for r in data["rows"]])
        data["trends"], data["rows"] = size_trends(rows), [public(r) for r in rows]
    plot_scaling(data["rows"], data["paper"], folder / "scaling.png")
    rel = folder.relative_to(run_dir) if folder != run_dir else Path(".")
    return [f"## Scaling: `{rel}`", "",
            "What the negatives and the positives add, model by model (acc_norm, one run each; the sources and their "
            "seeds are in the command below).", "",
            *scaling_markdown(data["rows"], data["paper"], data.get("trends", [])).splitlines(), ""] \
        + _figure(f"Scaling ({rel})", folder / "scaling.png", run_dir) + _command_lines(folder, run_dir)


def write_report(run_dir: str | os.PathLike) -> tuple[Path, Path]:
    """report.md and report.html in ``run_dir``, covering every experiment output found below it
    (Table 1, scaling, learning curves, weight sweeps, negative types, likelihood mass); returns their paths."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "reproduce.json").read_text()) if (run_dir / "reproduce.json").exists() else {}
    md: list[str] = [f"# Likra report: {run_dir.resolve().name}", ""]
    if info:
        md += [f"Model **{info.get('model')}**, training pool `{info.get('pool')}`, negatives `{info.get('negatives')}`, "
               f"evaluation `{info.get('eval_task')}` (first {info.get('eval_limit') or 'all'} questions), "
               f"seeds {info.get('seeds')}.", ""]
    findings = run_dir / "findings.md"  # a hand-written reading of the numbers below, if the folder has one
    if findings.exists():
        md += [line for line in findings.read_text().splitlines() if not line.startswith("# ")] + [""]
    for path in sorted(run_dir.rglob("table1.json")):
        md += _table1_section(path.parent, run_dir)
    for path in sorted(run_dir.rglob("scaling.json")):
        md += _scaling_section(path.parent, run_dir)
    # the paper's protocol (25-shot) leads; 0-shot curves follow as the second protocol
    for path in sorted(run_dir.rglob("curve_accuracies.json"), key=lambda p: (-(_meta(p.parent).get("shots") or 0), str(p))):
        md += _curve_section(path.parent, run_dir)
    for path in sorted(run_dir.rglob("negtypes.json")):
        md += _negtypes_section(path.parent, run_dir)
    for path in sorted(run_dir.rglob("mass.json")):
        md += _mass_section(path.parent, run_dir)
    if info:
        md += ["## How this was made", "", "Commands, in order, with wall times:", ""]
        md += [f"- `{step['command']}` ({step['seconds']:.0f} s)" for step in info.get("steps", [])]
        md += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items()), "",
               f"Configuration: `{info.get('config_file')}`", ""]
    text = portable("\n".join(md), run_dir)
    md_path = run_dir / "report.md"
    atomic_write(md_path, text)
    html_path = run_dir / "report.html"
    atomic_write(html_path, render_html(text, run_dir, f"Likra report: {run_dir.resolve().name}"))
    return md_path, html_path


STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; color: #1a1a1a; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; font-size: 0.85rem; display: block; overflow-x: auto; max-width: 100%; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; white-space: nowrap; } th { background: #f3f3f3; }
table:not(:has(th:nth-child(4))) td { white-space: normal; min-width: 9rem; }  /* tables of prose (3 columns or fewer) wrap */
img { max-width: 100%; height: auto; display: block; margin: 0.8rem auto; }
code { font-size: 0.85em; background: #f4f4f4; padding: 0 0.2em; overflow-wrap: anywhere; }
p, li { overflow-wrap: break-word; }
@media print { body { max-width: none; font-size: 11pt; } h2 { break-after: avoid; } img, table { break-inside: avoid; } }
"""


def render_html(markdown: str, run_dir: Path, title: str) -> str:
    """One self-contained page: markdown (with tables) rendered by markdown-it-py, every local PNG
    inlined as a data URI, so the file opens offline and can be mailed alone."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    plain_image = md.renderer.rules["image"]

    def inline_image(renderer, tokens, idx, options, env):  # bound to the renderer by add_render_rule
        src = tokens[idx].attrGet("src") or ""
        local = run_dir / src
        if not src.startswith(("data:", "http:", "https:")) and local.suffix == ".png" and local.is_file():
            tokens[idx].attrSet("src", "data:image/png;base64," + base64.b64encode(local.read_bytes()).decode())
        return plain_image(tokens, idx, options, env)

    md.add_render_rule("image", inline_image)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, "
            f"initial-scale=1'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{md.render(markdown)}</body></html>")
