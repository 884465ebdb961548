"""``likra table1``: the paper's Table 1 (base / + / - / Likra per model and benchmark) from score
tables, beside the paper's published rows.

Config in: eval folders (heads base, positive, negative) or scored curve runs (their largest n),
``A+B+C`` for one row over seeds, and optionally the YAML of the paper's rows. Nothing is scored:
each row is read off its table (acc_norm, the paired Likra - SFT gap, the AUROC of each rule's score as a detector of wrong
options, a calibration check). What comes out: ``table1.json``, ``table1.md``, printed.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..command import Writes, command, option
from ..errors import ConfigError, ResultMissing
from ..io import DTYPES, atomic_write, write_json
from ..rules import Heads, auroc_wrong, fit_temperature, rule_correct, rule_scores, rule_summary, softmax_probs
from ..stats import BOOTSTRAP_SAMPLES, holm, paired, pooled_paired, seed_mean_sd
from ..scoring.table import ScoreTable, option_matrix
from .runs import check_meta


@dataclass
class Table1Options(Writes):
    source: list[str] = option([], "a likra eval folder (heads base, positive, negative) or a scored curve run (RUN or "
                                   "RUN@N); A+B+C: one row over seeds (repeatable)")
    # Table 1 scores nothing: given, a protocol option is a check that every source was scored so
    shots: int | None = option(None, "refuse a source not scored with this many few-shot examples (default: any)")
    dtype: str | None = option(None, "refuse a source not scored in this precision (default: any)", choices=DTYPES)
    paper: str | None = option(None, "YAML with the paper's published rows, printed alongside for reference")
    weight: float = option(1.0, "negative-head weight w")


def table1_source(path: str | os.PathLike) -> tuple[ScoreTable, Heads, dict]:
    """The tables behind one Table 1 row: a ``likra eval`` folder (scores.parquet with heads base,
    positive, negative), or a scored curve run at its largest n (``RUN``) or at a given one (``RUN@1024``)."""
    where, _, at = str(path).partition("@")
    path = Path(where)
    table_file = path if path.suffix in (".parquet", ".jsonl") else path / "scores.parquet"
    if table_file.exists() and not at:
        t = ScoreTable.load(table_file)
        meta = dict(t.meta)
        heads_meta = meta.get("heads") or {}
        m = re.search(r"n-(\d+)", str(heads_meta.get("positive", "")))
        meta["n"] = int(m.group(1)) if m else None
        return t, Heads(), meta
    tables = sorted((path / "tables").glob("n-*.parquet"))
    if len(tables) < 2:
        raise ResultMissing(f"{path}: neither a likra eval folder (scores.parquet) nor a scored curve (tables/n-*.parquet)")
    scored = [int(f.stem.split("-")[1]) for f in tables]
    n = int(at) if at.isdigit() else scored[-1]
    if n not in scored[1:]:
        raise ResultMissing(f"{path}@{at}: no scored point n = {at} in {path / 'tables'} (scored: {', '.join(map(str, scored[1:]))}); "
                            "give one of those, or score it with likra curve --points")
    t = ScoreTable.load(tables[0]).concat(ScoreTable.load(tables[scored.index(n)]))
    return t, Heads(positive=f"positive@{n}", negative=f"negative@{n}"), {**t.meta, "n": n}


RULES = ("base", "sft", "base-likra", "likra", "dexperts")


def table1_row(path: str | os.PathLike, weight: float = 1.0) -> dict:
    """acc_norm (with stderr) of base, + (SFT), - (the Likra model, L+ - L-: the paper's "-" row),
    Base-Likra and DExperts; Likra - SFT paired (bootstrap interval, exact McNemar); and the AUROC
    of each rule's score as a detector of wrong options: the paper's columns and ours.
    ``A+B+C`` is one row over seeds (``seeds_row``)."""

    if "+" in str(path):
        return seeds_row(source_parts(str(path)), weight)
    t, heads, meta = table1_source(path)
    row = {"source": str(path), "model": meta.get("model"), "task": meta.get("task"), "shots": meta.get("shots", 0),
           "n_train": meta.get("n"), "limit": meta.get("limit")}
    summary = rule_summary(t, weight, heads)
    for rule in RULES:
        scores, gold = rule_scores(t, rule, weight, True, heads)
        row[rule] = {**summary[rule], "auroc_wrong": auroc_wrong(scores, gold)}
        row["n_items"] = len(gold)
    row["likra_minus_sft"] = {**summary["likra_minus_sft"],
                              **paired(rule_correct(t, "likra", weight, True, heads), rule_correct(t, "sft", weight, True, heads)).as_dict()}
    row["likra_calibration"] = _calibration(*rule_scores(t, "likra", weight, True, heads))
    return row


def source_parts(source: str) -> list[str]:
    """The sources of one row: ``A`` alone, or the seeds ``A+B+C``."""
    parts = source.split("+")
    if len(parts) > 1 and not all(p.strip() for p in parts):
        raise ConfigError(f"source {source!r}: a row over seeds is two or more sources joined by '+', none empty")
    return parts


def seeds_row(sources: list[str], weight: float = 1.0) -> dict:
    """One row over seeds: the same recipe trained with other seeds, each scored on the same questions.
    A seed's accuracy moves with its training order and initialisation, which one run's stderr does
    not show; so each accuracy here is the mean over the seeds with their sd, and Likra - SFT is
    pooled question by question over the seeds (``pooled_paired``: the interval resamples whole
    questions, the p-value is a randomisation test), the p that Holm then corrects with the others."""

    rows = [table1_row(src, weight) for src in sources]
    right: dict[str, list] = {"likra": [], "sft": []}
    first_ids = None
    for src, r in zip(sources, rows):
        for key in ("model", "task", "shots", "n_train", "n_items"):
            if r[key] != rows[0][key]:
                raise ConfigError(f"source {'+'.join(sources)}: {src} has {key} {r[key]!r} where {sources[0]} has "
                                  f"{rows[0][key]!r}; a row over seeds pools runs of one model, task, protocol and n")
        t, heads, _ = table1_source(src)
        ids = list(option_matrix(t, "base").item_ids)
        if first_ids is not None and ids != first_ids:
            raise ConfigError(f"source {'+'.join(sources)}: {src} holds other questions (or another order) than {sources[0]}; "
                              "pool only seeds scored on the same items")
        first_ids = ids
        for rule in right:
            right[rule].append(rule_correct(t, rule, weight, True, heads))
    row = {**rows[0], "source": "+".join(sources), "seeds": len(rows)}
    for rule in RULES:
        accs = [r[rule]["acc_norm"] for r in rows]
        mean, sd, _ = seed_mean_sd(accs)
        row[rule] = {"acc_norm": mean, "sd": sd, "per_seed": accs,
                     "auroc_wrong": float(np.mean([r[rule]["auroc_wrong"] for r in rows]))}
    pooled = pooled_paired(right["likra"], right["sft"])
    row["likra_minus_sft"] = pooled.as_dict()
    row["likra_calibration"] = {k: float(np.mean([r["likra_calibration"][k] for r in rows])) for k in rows[0]["likra_calibration"]}
    return row


def _calibration(scores, gold) -> dict:
    """Softmax over the options of the Likra scores: the temperature fitted on the even-numbered
    items (the dev half), and the gold options' mean NLL on the odd-numbered ones at T = 1 and at
    the fitted T."""

    dev, test = scores[0::2], scores[1::2]
    t = fit_temperature(dev, gold[0::2])
    nll = lambda temp: float(-sum(math.log(max(p[g], 1e-300)) for p, g in zip(softmax_probs(test, temp), gold[1::2])) / len(test))  # noqa: E731
    return {"temperature": t, "heldout_nll_t1": nll(1.0), "heldout_nll_fitted": nll(t)}


def parse_count(text: str | float) -> float:
    """A parameter count as people write it: '135M' -> 1.35e8, '1.78B' -> 1.78e9, '7000' -> 7000."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKMBG]?)\s*", str(text))
    if not m:
        raise ConfigError(f"{text!r} is not a parameter count; write it as 135M, 1.5B or a plain number")
    return float(m.group(1)) * {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}[m.group(2)]


PAPER_KEYS = {"model", "parameters", "task", "shots", "base", "sft", "likra"}
PAPER_ROWS = Path(__file__).resolve().parents[1] / "presets" / "paper-table1.yaml"  # the paper's Table 1, shipped with likra


def load_paper_rows(path: str | os.PathLike) -> dict:
    """The published rows a Table 1 is set beside: {"note": where they come from, "rows": [...]}.

    Typed in by hand from a paper, so every row is checked: a typo must not become a reference number."""
    from ..command import read_yaml_mapping

    data = read_yaml_mapping(path)
    if not isinstance(data.get("rows"), list):
        raise ConfigError(f"{path}: expected a mapping with a 'rows:' list (see configs/paper-table1.yaml)")
    for i, row in enumerate(data["rows"], 1):
        where = f"{path}, row {i}"
        if not isinstance(row, dict) or not {"model", "task"} <= set(row):
            raise ConfigError(f"{where}: each row needs 'model' and 'task'")
        if set(row) - PAPER_KEYS:
            raise ConfigError(f"{where}: unknown field(s) {sorted(set(row) - PAPER_KEYS)}; use {sorted(PAPER_KEYS)}")
        if "parameters" in row:
            try:
                parse_count(row["parameters"])
            except ConfigError as e:
                raise ConfigError(f"{where}, field 'parameters': {e}") from None
        for k in ("base", "sft", "likra"):
            v = row.get(k)
            if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ConfigError(f"{where}, field '{k}': {v!r} is not an accuracy in [0, 1] (write 0.5998, not 59.98)")
    return {"note": str(data.get("source_note", f"from {path}")), "rows": data["rows"]}


def _gap(r: dict, p_holm: float | None) -> str:
    g = r.get("likra_minus_sft")
    if not g:
        return "-"
    if "lo" not in g:  # rows saved before intervals were computed
        return f"{g['diff']:+.4f} ± {g['paired_stderr']:.3f}"
    seeds = f" (mean of {g['runs']} seeds, sd {g['sd']:.3f})" if "runs" in g else ""
    bound = "<=" if g.get("at_floor") else "="  # a randomisation p with no flip as extreme is an upper bound
    return f"{g['diff']:+.4f} [{g['lo']:+.3f}, {g['hi']:+.3f}]{seeds}; p{bound}{p_holm:.2g}"


def table1_markdown(rows: list[dict], paper: dict | None = None) -> str:
    """The rows in the paper's notation: + is the positive head (SFT), - the Likra model (L+ - L-)."""
    lines = ["| model | benchmark | items | n train | base | + (SFT) | - (Likra, L+ - L-) | Base-Likra | DExperts "
             "| Likra - SFT: paired diff [95% bootstrap]; McNemar p (Holm over the rows) "
             "| AUROC SFT / Likra | Likra T; held-out NLL T=1 / fitted |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ps = [r["likra_minus_sft"]["p"] for r in rows if "p" in r.get("likra_minus_sft", {})]
    adjusted = iter(holm(ps))
    for r in rows:
        cell = lambda k: (f"{r[k]['acc_norm']:.4f} (sd {r[k]['sd']:.3f})" if "sd" in r[k]  # noqa: E731
                          else f"{r[k]['acc_norm']:.4f} ± {r[k]['stderr']:.3f}")
        p_holm = next(adjusted) if "p" in r.get("likra_minus_sft", {}) else None
        lines.append(f"| {r['model']} | {r['task']} ({r['shots']}-shot) | {r['n_items']} | {r['n_train']} | {cell('base')} | "
                     f"{cell('sft')} | {cell('likra')} | {cell('base-likra')} | {cell('dexperts')} | {_gap(r, p_holm)} | "
                     f"{r['sft']['auroc_wrong']:.3f} / {r['likra']['auroc_wrong']:.3f} | "
                     f"{r['likra_calibration']['temperature']:.3f}; {r['likra_calibration']['heldout_nll_t1']:.3f} / "
                     f"{r['likra_calibration']['heldout_nll_fitted']:.3f} |")
    if any(r.get("seeds") for r in rows):
        lines += ["", "A row over seeds gives each accuracy as the mean over its seeds (sd over the seeds, not a "
                  "stderr) and Likra - SFT pooled over them question by question (randomisation p over "
                  f"{BOOTSTRAP_SAMPLES} sign flips; p<= marks a bound: no flip was as extreme); AUROC and "
                  "calibration are seed means."]
    if paper:
        lines += ["", f"The paper's published numbers, for reference (its models and protocol; {paper['note']}):", "",
                  "| model | benchmark | base | + (SFT) | - (Likra) |", "|---|---|---|---|---|"]
        for p in paper["rows"]:
            f = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            shots = f" ({p['shots']}-shot)" if p.get("shots") is not None else ""
            lines.append(f"| {p['model']} | {p['task']}{shots} | {f(p.get('base'))} | {f(p.get('sft'))} | {f(p.get('likra'))} |")
    return "\n".join(lines) + "\n"


def run(o: Table1Options) -> dict:
    if not o.source:
        raise ConfigError("likra table1 needs at least one --source (a likra eval folder or a scored curve run)")
    wanted = {k: v for k, v in (("shots", o.shots), ("dtype", o.dtype)) if v is not None}
    for src in (part for row in o.source for part in source_parts(row)):
        check_meta(src, table1_source(src)[2], wanted)
    rows = [table1_row(src, o.weight) for src in o.source]
    paper = load_paper_rows(o.paper) if o.paper else None
    result = {"rows": rows, "paper": paper, "weight": o.weight}
    if o.out:
        write_json(Path(o.out) / "table1.json", result)
        atomic_write(Path(o.out) / "table1.md", table1_markdown(rows, paper))
    return result


@command("table1", "Table 1: base / + / - / Likra accuracy and AUROC for each model x benchmark, from tables", Table1Options)
def main(o: Table1Options, argv: list[str] | None = None) -> dict:
    result = run(o)
    print(table1_markdown(result["rows"], result["paper"]))
    return result
