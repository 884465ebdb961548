"""Experiments as functions of cached score tables.

Learning curve (paper figures 1 and 3): for every curve point n of a positive and a negative
training run, score the evaluation items under the heads saved at n, cache the table, and read
SFT / Likra / Base-Likra accuracy off it. The base model is scored once (n = 0). A table that is
already on disk is never recomputed, so an interrupted experiment resumes where it stopped and a
re-plot costs no model call.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from .rules import Heads, rule_accuracy
from .scoring.table import ScoreTable

CURVE_RULES = ("base", "sft", "likra", "base-likra")


def curve_points(run_dir: str | os.PathLike) -> dict[int, Path]:
    """n -> adapter folder, for every finished adapter of a training run."""
    out = {}
    for p in Path(run_dir).glob("n-*"):
        m = re.fullmatch(r"n-(\d+)", p.name)
        if m and (p / "likra.json").exists():
            out[int(m.group(1))] = p
    if not out:
        raise FileNotFoundError(f"{run_dir}: no finished adapters (n-XXXXXX folders with likra.json)")
    return dict(sorted(out.items()))


def score_curve(model: str, task: str, positive_run: str, negative_run: str, out: str | os.PathLike,
                split: str | None = None, limit: int | None = None, data_dir: str | None = None,
                dtype: str = "fp32", progress: bool = True, shots: int = 0) -> Path:
    """Score the base once and both heads at every common curve point; tables cached under out."""
    import torch

    from .models import attach_adapters, load_base, load_tokenizer
    from .scoring.engine import Scorer
    from .tasks import load_items

    out = Path(out)
    meta = {"model": model, "task": task, "split": split, "limit": limit, "dtype": dtype, "shots": shots,
            "positive_run": str(positive_run), "negative_run": str(negative_run)}
    if _finished_curve(out, meta):
        return out
    (out / "tables").mkdir(parents=True, exist_ok=True)
    pos, neg = curve_points(positive_run), curve_points(negative_run)
    points = sorted(set(pos) & set(neg))
    items = load_items(task, split, shots, limit, data_dir).items
    base = load_base(model, torch.float32 if dtype == "fp32" else torch.bfloat16)
    tokenizer = load_tokenizer(model)
    base_path = out / "tables" / "n-000000.parquet"
    if not base_path.exists():
        Scorer(base, tokenizer).score(items, ["base"], progress=progress, meta={**meta, "n": 0}).save(base_path)
    todo = [n for n in points if not (out / "tables" / f"n-{n:06d}.parquet").exists()]
    if todo:
        adapters = {}
        for n in todo:
            adapters[f"positive@{n}"] = str(pos[n])
            adapters[f"negative@{n}"] = str(neg[n])
        model_with_heads = attach_adapters(base, adapters)
        scorer = Scorer(model_with_heads, tokenizer)
        for n in todo:
            print(f"curve point n={n}", file=sys.stderr)
            t = scorer.score(items, [f"positive@{n}", f"negative@{n}"], progress=progress, meta={**meta, "n": n})
            t.save(out / "tables" / f"n-{n:06d}.parquet")
    (out / "curve.json").write_text(json.dumps({**meta, "points": [0] + points}, indent=1))
    return out


def _has_adapters(run_dir: str) -> bool:
    try:
        return bool(curve_points(run_dir))
    except FileNotFoundError:
        return False


def _finished_curve(out: Path, wanted: dict) -> bool:
    """True when out's tables are complete and the runs' adapters are gone.

    Adapters are large and not kept (nor committed); a finished curve must still re-plot, and join
    new seeds, from its tables alone. While the runs exist they decide, so new points get scored.
    """
    if _has_adapters(wanted["positive_run"]) and _has_adapters(wanted["negative_run"]):
        return False
    done = out / "curve.json"
    tables = sorted((out / "tables").glob("n-*.parquet"))
    if done.exists():
        meta = json.loads(done.read_text())
    elif tables:  # curves scored before curve.json was written: the tables carry the same settings
        meta = {**ScoreTable.load(tables[-1]).meta, "points": [int(t.stem[2:]) for t in tables]}
        done = tables[-1]
    else:
        return False
    meta["shots"] = meta.get("shots") or 0  # early tables wrote None for zero-shot
    differ = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
    if differ:
        raise ValueError(f"{done} was scored with other settings ({', '.join(f'{k}: {a} there, {b} asked' for k, (a, b) in differ.items())}); "
                         f"ask for the same ones or give another --out")
    missing = [n for n in meta["points"] if not (out / "tables" / f"n-{n:06d}.parquet").exists()]
    if missing:
        raise FileNotFoundError(f"{out}/tables lacks n={missing} and {wanted['positive_run']} or {wanted['negative_run']} is gone: "
                                f"retrain the heads (the same command and seed give the same adapters) to score them")
    print(f"{out}: all {len(meta['points'])} points cached and the adapters are not on disk; using the tables", file=sys.stderr)
    return True


def curve_accuracies(out: str | os.PathLike, weight: float = 1.0, norm: bool = True) -> dict[str, list[tuple[int, float, float]]]:
    """rule -> [(n, accuracy, stderr)] from the cached tables only."""
    out = Path(out)
    base = ScoreTable.load(out / "tables" / "n-000000.parquet")
    result: dict[str, list[tuple[int, float, float]]] = {r: [] for r in CURVE_RULES}
    b_acc = rule_accuracy(base, "base", norm=norm, heads=Heads())
    for r in CURVE_RULES:
        result[r].append((0, *b_acc))  # at n = 0 every head is the base model
    for path in sorted((out / "tables").glob("n-*.parquet")):
        n = int(path.stem.split("-")[1])
        if n == 0:
            continue
        t = base.concat(ScoreTable.load(path))
        heads = Heads(base="base", positive=f"positive@{n}", negative=f"negative@{n}")
        for r in CURVE_RULES:
            result[r].append((n, *rule_accuracy(t, r, weight, norm, heads)))
    return result


def plot_curve(curves: dict[str, dict[str, list[tuple[int, float, float]]]], path: str | os.PathLike, title: str) -> Path:
    """curves: seed label -> rule -> points. Mean over seeds drawn as a line, spread as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for rule, style in (("sft", "-o"), ("likra", "-s"), ("base-likra", "-^")):
        ns = sorted({n for c in curves.values() for n, _, _ in c[rule]})
        xs, means, lo, hi = [], [], [], []
        for n in ns:
            vals = [a for c in curves.values() for m, a, _ in c[rule] if m == n]
            xs.append(max(n, 8))  # n = 0 drawn at the left edge of the log axis
            means.append(np.mean(vals))
            lo.append(min(vals))
            hi.append(max(vals))
        ax.plot(xs, means, style, label=rule, markersize=4)
        if len(curves) > 1:
            ax.fill_between(xs, lo, hi, alpha=0.2)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training examples (n = 0 drawn at 8)")
    ax.set_ylabel("accuracy (acc_norm)")
    return _finish(fig, ax, path, title)


def _finish(fig, ax, path, title: str) -> Path:
    """The common end of every figure: title, grid, legend, saved as PNG."""
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# ---- weight sweep (paper figure 4) -------------------------------------------------------------

def sweep_from_curve(out: str | os.PathLike, weights: list[float], rule: str = "likra",
                     norm: bool = True) -> dict[int, list[tuple[float, float, float]]]:
    """n -> [(w, accuracy, stderr)] for every cached curve point: table arithmetic only."""
    from .rules import weight_sweep

    out = Path(out)
    base = ScoreTable.load(out / "tables" / "n-000000.parquet")
    result = {}
    for path in sorted((out / "tables").glob("n-*.parquet")):
        n = int(path.stem.split("-")[1])
        if n == 0:
            continue
        heads = Heads(base="base", positive=f"positive@{n}", negative=f"negative@{n}")
        result[n] = weight_sweep(base.concat(ScoreTable.load(path)), rule, weights, norm, heads)
    return result


def plot_sweep(sweeps: dict[int, list[tuple[float, float, float]]], path: str | os.PathLike, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for n, pts in sweeps.items():
        ax.plot([w for w, _, _ in pts], [a for _, a, _ in pts], "-o", markersize=3, label=f"n={n}")
    ax.set_xlabel("negative-head weight w")
    ax.set_ylabel("accuracy (acc_norm)")
    return _finish(fig, ax, path, title)


# ---- likelihood mass (paper figures 2 and 6) ---------------------------------------------------

MASS_CATEGORIES = ("correct", "most-likely-incorrect", "irrelevant", "unrelated")


def mass_items(test_items, base_scores: dict[str, list[float]], unrelated_answers: list[str], seed: int = 0):
    """Each test question with four continuations: its correct answer, the incorrect option the
    base model finds most likely (per character), another test question's correct answer, and an
    answer from another benchmark. Option k of every item is category k."""
    import random

    from .tasks.base import Item

    rng = random.Random(f"mass:{seed}")
    out = []
    for idx, it in enumerate(test_items):
        s = base_scores[it.id]
        wrong = max((o for o in range(it.n_options) if o != it.gold), key=lambda o: s[o])
        while True:
            other = test_items[rng.randrange(len(test_items))]
            irrelevant = other.continuations[other.gold]
            if other.id != it.id and irrelevant not in it.continuations:
                break
        unrelated = " " + unrelated_answers[rng.randrange(len(unrelated_answers))].strip()
        conts = (it.continuations[it.gold], it.continuations[wrong], irrelevant, unrelated)
        if len(set(conts)) < 4:
            continue  # a coincidence of texts would blur the categories
        out.append(Item(id=it.id, contexts=(it.contexts[it.gold],) * 4, continuations=conts, gold=0,
                        n_chars=tuple(len(c.strip()) for c in conts)))
    return out


def score_mass(model: str, task: str, positive_run: str, negative_run: str, out: str | os.PathLike,
               unrelated_task: str = "hellaswag", split: str | None = None, limit: int | None = None,
               data_dir: str | None = None, progress: bool = True) -> Path:
    """Score the mass items under the base and under both heads at every curve point (cached)."""
    from .models import attach_adapters, load_base, load_tokenizer
    from .negatives import answers_of
    from .scoring.engine import Scorer
    from .scoring.table import option_matrix
    from .tasks import load_docs, load_items, resolve_spec
    from .tasks.base import item_from_doc

    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    pos, neg = curve_points(positive_run), curve_points(negative_run)
    points = sorted(set(pos) & set(neg))
    base = load_base(model)
    tokenizer = load_tokenizer(model)
    items_path = out / "items.json"
    if items_path.exists():
        from .tasks.base import Item

        items = [Item(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}) for d in json.loads(items_path.read_text())]
    else:
        test = load_items(task, split, 0, limit, data_dir).items
        m = option_matrix(Scorer(base, tokenizer).score(test, ["base"], progress=progress), "base")
        scores = {i: list(ll / nc) for i, ll, nc in zip(m.item_ids, m.loglik, m.n_chars)}
        spec = resolve_spec(unrelated_task)
        other = answers_of([item_from_doc(d, spec) for d in load_docs(spec, spec.eval_split, data_dir)])
        items = mass_items(test, scores, other)
        items_path.write_text(json.dumps([it.__dict__ for it in items]))
    base_path = out / "tables" / "n-000000.parquet"
    if not base_path.exists():
        Scorer(base, tokenizer).score(items, ["base"], progress=progress, meta={"n": 0}).save(base_path)
    todo = [n for n in points if not (out / "tables" / f"n-{n:06d}.parquet").exists()]
    if todo:
        adapters = {f"{h}@{n}": str(run[n]) for n in todo for h, run in (("positive", pos), ("negative", neg))}
        scorer = Scorer(attach_adapters(base, adapters), tokenizer)
        for n in todo:
            scorer.score(items, [f"positive@{n}", f"negative@{n}"], progress=progress, meta={"n": n}).save(
                out / "tables" / f"n-{n:06d}.parquet")
    return out


def mass_changes(out: str | os.PathLike) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """head -> category -> [(n, mean change of per-character log-likelihood from the base)]."""
    import numpy as np

    from .scoring.table import option_matrix

    out = Path(out)
    base = option_matrix(ScoreTable.load(out / "tables" / "n-000000.parquet"), "base")
    base_pc = np.array([ll / nc for ll, nc in zip(base.loglik, base.n_chars)])
    result: dict[str, dict[str, list[tuple[int, float]]]] = {h: {c: [(0, 0.0)] for c in MASS_CATEGORIES} for h in ("positive", "negative")}
    for path in sorted((out / "tables").glob("n-*.parquet")):
        n = int(path.stem.split("-")[1])
        if n == 0:
            continue
        t = ScoreTable.load(path)
        for h in ("positive", "negative"):
            m = option_matrix(t, f"{h}@{n}")
            delta = np.array([ll / nc for ll, nc in zip(m.loglik, m.n_chars)]) - base_pc
            for k, c in enumerate(MASS_CATEGORIES):
                result[h][c].append((n, float(delta[:, k].mean())))
    return result


# ---- negative types (paper figure 5) -----------------------------------------------------------

def _table_meta(path: Path) -> dict:
    return ScoreTable.load(path).meta


def score_negative_types(model: str, curve_dir: str | os.PathLike, negative_runs: dict[str, str],
                         out: str | os.PathLike, data_dir: str | None = None, progress: bool = True) -> Path:
    """Score more negative heads (irrelevant, unrelated, hardest, ...) at the points of a scored
    learning curve, on the curve's own items and dtype, so that each reads as Likra with the
    curve's positive head: the positive head is never trained or scored again. Tables are cached
    under ``out/LABEL/n-XXXXXX.parquet`` (head ``LABEL@n``)."""
    import torch

    from .models import attach_adapters, load_base, load_tokenizer
    from .scoring.engine import Scorer
    from .tasks import load_items

    curve_dir, out = Path(curve_dir), Path(out)
    meta = _table_meta(curve_dir / "tables" / "n-000000.parquet")
    if meta.get("model") not in (None, model):
        raise ValueError(f"{curve_dir} was scored with model '{meta['model']}', not '{model}'")
    curve_ns = sorted(int(p.stem.split("-")[1]) for p in (curve_dir / "tables").glob("n-*.parquet"))
    todo: dict[str, dict[int, Path]] = {}
    for label, run in negative_runs.items():
        if not label.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"negative type label '{label}': use letters, digits, - and _ only")
        pts = curve_points(run)
        for n in sorted(set(pts) & set(curve_ns)):
            if not (out / label / f"n-{n:06d}.parquet").exists():
                todo.setdefault(label, {})[n] = pts[n]
    if todo:
        items = load_items(meta["task"], meta.get("split"), meta.get("shots", 0), meta.get("limit"), data_dir).items
        dtype = torch.bfloat16 if meta.get("dtype") == "bf16" else torch.float32
        tokenizer = load_tokenizer(model)
        adapters = {f"{label}@{n}": str(p) for label, pts in todo.items() for n, p in pts.items()}
        scorer = Scorer(attach_adapters(load_base(model, dtype), adapters), tokenizer)
        for label, pts in todo.items():
            for n in pts:
                print(f"negative type {label}, n={n}", file=sys.stderr)
                t = scorer.score(items, [f"{label}@{n}"], progress=progress,
                                 meta={**meta, "n": n, "negative_type": label, "negative_run": str(negative_runs[label])})
                t.save(out / label / f"n-{n:06d}.parquet")
    return out


def negative_type_accuracies(curve_dir: str | os.PathLike, types_dir: str | os.PathLike, curve_label: str = "near-miss",
                             weight: float = 1.0, norm: bool = True, baselines: tuple[str, ...] = ()
                             ) -> dict[str, dict[str, list[tuple[int, float, float]]]]:
    """rule ("likra", "base-likra") -> negative type -> [(n, accuracy, stderr)], plus "sft" -> {"positive": ...}:
    every type paired with the curve's positive head at the same n; labels in ``baselines`` (DPO,
    KTO adapters scored the same way) appear under "alone" only, each scored by itself. Tables only."""
    curve_dir, types_dir = Path(curve_dir), Path(types_dir)
    base = ScoreTable.load(curve_dir / "tables" / "n-000000.parquet")
    b_acc = rule_accuracy(base, "base", norm=norm, heads=Heads())
    result: dict[str, dict[str, list]] = {"likra": {}, "base-likra": {}, "sft": {"positive": [(0, *b_acc)]}, "alone": {}}
    curve_tables = {int(p.stem.split("-")[1]): p for p in (curve_dir / "tables").glob("n-*.parquet")}
    sources = {curve_label: None, **{d.name: d for d in sorted(types_dir.iterdir()) if d.is_dir()}} if types_dir.exists() else {curve_label: None}
    for label in sources:
        for r in (("alone",) if label in baselines else ("likra", "base-likra")):
            result[r][label] = [(0, *b_acc)]
    for n in sorted(curve_tables):
        if n == 0:
            continue
        curve_t = base.concat(ScoreTable.load(curve_tables[n]))
        result["sft"]["positive"].append((n, *rule_accuracy(curve_t, "sft", weight, norm, Heads(positive=f"positive@{n}"))))
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


def plot_negative_types(acc: dict[str, dict[str, list[tuple[int, float, float]]]], path: str | os.PathLike, title: str) -> Path:
    """Likra with each negative type (solid) and Base-Likra (dashed), against n; SFT in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (label, pts) in enumerate(acc["likra"].items()):
        c = colors[k % len(colors)]
        ax.plot([max(n, 8) for n, _, _ in pts], [a for _, a, _ in pts], "-o", color=c, markersize=4, label=f"likra, {label}")
        bl = acc["base-likra"][label]
        ax.plot([max(n, 8) for n, _, _ in bl], [a for _, a, _ in bl], "--", color=c, alpha=0.6, linewidth=1)
    sft = acc["sft"]["positive"]
    ax.plot([max(n, 8) for n, _, _ in sft], [a for _, a, _ in sft], "-", color="grey", label="sft (positive head)")
    for label, pts in acc.get("alone", {}).items():
        ax.plot([max(n, 8) for n, _, _ in pts], [a for _, a, _ in pts], ":^", markersize=4, label=f"{label} (alone)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training examples (n = 0 drawn at 8); dashed: base-likra")
    ax.set_ylabel("accuracy (acc_norm)")
    return _finish(fig, ax, path, title)


# ---- Table 1: base / + / - per model x benchmark -----------------------------------------------

def table1_source(path: str | os.PathLike) -> tuple[ScoreTable, Heads, dict]:
    """The tables behind one Table 1 row: a ``likra eval`` folder (scores.parquet with heads base,
    positive, negative), or a scored curve run (its largest n)."""
    path = Path(path)
    table_file = path if path.suffix in (".parquet", ".jsonl") else path / "scores.parquet"
    if table_file.exists():
        t = ScoreTable.load(table_file)
        meta = dict(t.meta)
        heads_meta = meta.get("heads") or {}
        m = re.search(r"n-(\d+)", str(heads_meta.get("positive", "")))
        meta["n"] = int(m.group(1)) if m else None
        return t, Heads(), meta
    tables = sorted((path / "tables").glob("n-*.parquet"))
    if len(tables) < 2:
        raise FileNotFoundError(f"{path}: neither a likra eval folder (scores.parquet) nor a scored curve (tables/n-*.parquet)")
    n = int(tables[-1].stem.split("-")[1])
    t = ScoreTable.load(tables[0]).concat(ScoreTable.load(tables[-1]))
    return t, Heads(positive=f"positive@{n}", negative=f"negative@{n}"), {**t.meta, "n": n}


def table1_row(path: str | os.PathLike, weight: float = 1.0) -> dict:
    """acc_norm (with stderr) of base, + (SFT), - (Base-Likra), Likra and DExperts, and the AUROC
    of each rule's score as a detector of wrong options: the paper's columns and ours."""
    from .rules import auroc_wrong, rule_scores, rule_summary

    t, heads, meta = table1_source(path)
    row = {"source": str(path), "model": meta.get("model"), "task": meta.get("task"), "shots": meta.get("shots", 0),
           "n_train": meta.get("n"), "limit": meta.get("limit")}
    summary = rule_summary(t, weight, heads)
    for rule in ("base", "sft", "base-likra", "likra", "dexperts"):
        scores, gold = rule_scores(t, rule, weight, True, heads)
        row[rule] = {**summary[rule], "auroc_wrong": auroc_wrong(scores, gold)}
        row["n_items"] = len(gold)
    row["likra_minus_sft"] = summary["likra_minus_sft"]
    row["likra_calibration"] = _calibration(*rule_scores(t, "likra", weight, True, heads))
    return row


def _calibration(scores, gold) -> dict:
    """Softmax over the options of the Likra scores: the temperature fitted on the even-numbered
    items (the dev half), and the gold options' mean NLL on the odd-numbered ones at T = 1 and at
    the fitted T."""
    import math

    from .rules import fit_temperature, softmax_probs

    dev, test = scores[0::2], scores[1::2]
    t = fit_temperature(dev, gold[0::2])
    nll = lambda temp: float(-sum(math.log(max(p[g], 1e-300)) for p, g in zip(softmax_probs(test, temp), gold[1::2])) / len(test))  # noqa: E731
    return {"temperature": t, "heldout_nll_t1": nll(1.0), "heldout_nll_fitted": nll(t)}


PAPER_KEYS = {"model", "task", "shots", "base", "sft", "likra"}


def load_paper_rows(path: str | os.PathLike) -> dict:
    """The published rows a Table 1 is set beside: {"note": where they come from, "rows": [...]}.

    Typed in by hand from a paper, so every row is checked: a typo must not become a reference number."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]}); see configs/paper-table1.yaml") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected a mapping with a 'rows:' list (see configs/paper-table1.yaml)")
    for i, row in enumerate(data["rows"], 1):
        where = f"{path}, row {i}"
        if not isinstance(row, dict) or not {"model", "task"} <= set(row):
            raise ValueError(f"{where}: each row needs 'model' and 'task'")
        if set(row) - PAPER_KEYS:
            raise ValueError(f"{where}: unknown field(s) {sorted(set(row) - PAPER_KEYS)}; use {sorted(PAPER_KEYS)}")
        for k in ("base", "sft", "likra"):
            v = row.get(k)
            if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"{where}, field '{k}': {v!r} is not an accuracy in [0, 1] (write 0.5998, not 59.98)")
    return {"note": str(data.get("source_note", f"from {path}")), "rows": data["rows"]}


def table1_markdown(rows: list[dict], paper: dict | None = None) -> str:
    lines = ["| model | benchmark | items | n train | base | + (SFT) | - (Base-Likra) | Likra | DExperts | Likra - SFT (paired) "
             "| AUROC SFT / Likra | Likra T; held-out NLL T=1 / fitted |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cell = lambda k: f"{r[k]['acc_norm']:.4f} ± {r[k]['stderr']:.3f}"  # noqa: E731
        gap = lambda r: (f"{r['likra_minus_sft']['diff']:+.4f} ± {r['likra_minus_sft']['paired_stderr']:.3f}"  # noqa: E731
                         if "likra_minus_sft" in r else "-")
        lines.append(f"| {r['model']} | {r['task']} ({r['shots']}-shot) | {r['n_items']} | {r['n_train']} | {cell('base')} | "
                     f"{cell('sft')} | {cell('base-likra')} | {cell('likra')} | {cell('dexperts')} | {gap(r)} | "
                     f"{r['sft']['auroc_wrong']:.3f} / {r['likra']['auroc_wrong']:.3f} | "
                     f"{r['likra_calibration']['temperature']:.3f}; {r['likra_calibration']['heldout_nll_t1']:.3f} / "
                     f"{r['likra_calibration']['heldout_nll_fitted']:.3f} |")
    if paper:
        lines += ["", f"The paper's published numbers, for reference (its models and protocol; {paper['note']}):", "",
                  "| model | benchmark | base | + (SFT) | Likra |", "|---|---|---|---|---|"]
        for p in paper["rows"]:
            f = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            shots = f" ({p['shots']}-shot)" if p.get("shots") is not None else ""
            lines.append(f"| {p['model']} | {p['task']}{shots} | {f(p.get('base'))} | {f(p.get('sft'))} | {f(p.get('likra'))} |")
    return "\n".join(lines) + "\n"
