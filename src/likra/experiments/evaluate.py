"""``likra eval``: score a task under the base model and any adapters, write the score table.

The table is the product; everything printed (acc, acc_norm, and with heads named ``positive`` and
``negative`` the rules and the paired Likra - SFT gap) is read off it.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from ..defaults import DEFAULT_MODEL
from ..command import Writes, command, option
from ..errors import ConfigError, OutputRefused
from ..io import write_json
from .runs import Protocol

FEWSHOT_SEED = 1234  # lm-eval's default few-shot seed (tasks.base uses the same)


@dataclass
class EvalOptions(Protocol, Writes):
    model: str = option(DEFAULT_MODEL, "embedded name (`likra models` lists them), local folder or hub id")
    task: str = option("arc_challenge", "arc_challenge, arc_easy, hellaswag, mmlu[_SUBJECT], truthfulqa_mc1, winogrande, jsonl:PATH")
    head: list[str] = option([], "a LoRA adapter folder scored as a head, NAME=ADAPTER (repeatable)", metavar="NAME=ADAPTER")
    data_dir: str | None = option(None, "folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")
    seed: int = option(0, "torch seed (scoring is deterministic; recorded)")
    reuse: str | None = option(None, "a finished eval folder of the same model, heads and protocol on fewer items: its rows "
                                     "are taken for those items, the rest are scored", metavar="FOLDER")
    out: str | None = option("runs/eval", "output folder: a new one, or this command's own with the same settings to resume")


def evaluate(o: EvalOptions, argv: list[str] | None = None) -> dict:
    """Score ``o.task`` under every head; save ``scores.parquet`` and ``results.json`` in ``o.out``."""
    import torch

    from ..distributed import rank_world
    from ..metrics import head_metrics
    from ..models import attach_adapters, load_base, load_tokenizer, parse_heads
    from ..provenance import versions
    from ..rules import rule_summary
    from ..scoring.engine import Scorer
    from ..scoring.progress import ScoreLog

    torch.manual_seed(o.seed)
    heads = parse_heads(o.head)
    out = Path(o.out)
    meta = {"model": o.model, "task": o.task, **o.protocol(), "heads": heads}
    _refuse_other_result(out, meta)
    t0 = time.time()
    task_items = o.items(o.task, o.data_dir)
    meta["split"] = task_items.split
    log = ScoreLog(out / "scores.parquet.progress.jsonl")  # a stopped run goes on from here
    reused = 0
    if o.reuse:  # checked before the model is loaded
        reused = reuse_rows(Path(o.reuse), meta, task_items.items, log)
        meta["reused_from"] = {"folder": o.reuse, "scores": reused}
    model = attach_adapters(load_base(o.model, o.dtype), heads)
    scorer = Scorer(model, load_tokenizer(o.model), batch_tokens=o.batch_tokens, chat_template=o.chat_template)
    t_load = time.time() - t0
    t1 = time.time()
    table = scorer.score(task_items.items, list(heads), progress=not o.quiet, meta=meta, log=log)
    t_score = time.time() - t1
    results = {**meta, "metrics": head_metrics(table),
               "rules": rule_summary(table) if {"positive", "negative"} <= set(heads) else {}}
    if rank_world()[0] != 0:  # under a launcher, one process writes
        return results
    table.save(out / "scores.parquet")
    log.remove()
    results.update({
        "n_items": len(task_items.items),
        "n_options": sum(it.n_options for it in task_items.items),
        "n_skipped_rows": task_items.n_skipped,
        "skipped_rows": [str(s) for s in task_items.sources] if task_items.n_skipped else [],
        "n_truncated_options": table.meta["n_truncated_options"],
        "max_length": table.meta["max_length"],
        "seed": o.seed,
        "fewshot_seed": FEWSHOT_SEED,
        "processes": rank_world()[1],
        "seconds": {"load": round(t_load, 2), "score": round(t_score, 2)},  # of this process (a resumed run: its last stretch)
        "resumed_scores": log.restored - reused,  # (head, item) scores an earlier, stopped run of this command had finished
        "command": "likra " + shlex.join(argv or []),
        "versions": versions(),
    })
    write_json(out / "results.json", results)
    return results


def reuse_rows(folder: Path, meta: dict, items: list, log) -> int:
    """Put the rows of an earlier, finished eval into this run's progress log, so that they are read
    back instead of scored; returns how many (head, item) scores that is.

    Extending a scored subset (the first 100 questions to the first 300, say) should not cost the
    100 again. It is exact only for the same model, heads, precision and protocol, and only for the
    first items: a k-shot item's examples are drawn from one generator advanced item by item, so the
    first K items of a longer run have the very prompts of a run limited to K. Anything else is refused."""
    from ..scoring.table import ScoreTable
    from .runs import check_meta

    path = folder / "scores.parquet"
    if not path.exists():
        raise ConfigError(f"--reuse {folder}: no scores.parquet there; give the folder of a finished likra eval")
    table = ScoreTable.load(path)
    check_meta(path, table.meta, {k: v for k, v in meta.items() if k != "limit"}, hint="reuse a run with the same settings")
    index = {it.id: i for i, it in enumerate(items)}
    options: dict[str, dict[int, list[tuple[int, float, bool]]]] = {}
    for r in table.rows():
        i = index.get(r["item_id"])
        if i is None:
            raise ConfigError(f"--reuse {folder}: item {r['item_id']!r} is not among this run's items; reuse a run on "
                              f"fewer items of the same task and split")
        options.setdefault(r["head"], {}).setdefault(i, []).append((r["option"], r["loglik"], r["greedy"]))
    done = {h: {i: ([x[1] for x in sorted(o)], [x[2] for x in sorted(o)]) for i, o in rows.items()} for h, rows in options.items()}
    first = sorted({i for rows in done.values() for i in rows})
    if first != list(range(len(first))):
        raise ConfigError(f"--reuse {folder}: its items are not the first {len(first)} of this run (a k-shot context "
                          f"depends on the items before it); reuse a run with a smaller --limit")
    have = log.load(items, list(done))  # a resumed run's log holds them already (or some, if it was stopped while adding them)
    for head, rows in done.items():
        missing = {i: r for i, r in rows.items() if i not in have[head]}
        if missing:
            log.append(head, items, missing)
    return sum(len(rows) for rows in done.values())


def _refuse_other_result(out: Path, meta: dict) -> None:
    """The results.json in ``out`` is a record of its settings too (folders made before likra-run.json
    existed have only it): refuse to overwrite another evaluation."""
    old = out / "results.json"
    if not old.exists():
        return
    try:
        found = json.loads(old.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    differ = [k for k in ("model", "task", "shots", "limit", "dtype") if k in found and found[k] != meta[k]]
    if differ:
        raise OutputRefused(f"{out} holds another evaluation ({', '.join(f'{k}: {found[k]!r}' for k in differ)}); "
                            f"give another --out or pass --overwrite")


def print_metrics(results: dict) -> None:
    print(f"\n{results['task']} ({results['split']}, {results['shots']}-shot, {results['n_items']} items) on {results['model']}")
    print(f"{'head':<16}{'acc':>16}{'acc_norm':>16}{'gold LL/char':>14}{'wrong LL/char':>15}")
    se = lambda v: "   -  " if v is None else f"{v:.4f}"  # noqa: E731  (one item: no standard error)
    for head, m in results["metrics"].items():
        print(f"{head:<16}{m['acc']:>9.4f} ±{se(m['acc_stderr'])}{m['acc_norm']:>9.4f} ±{se(m['acc_norm_stderr'])}"
              f"{m['gold_loglik_per_char']:>14.4f}{m['wrong_loglik_per_char']:>15.4f}")
    rules = results.get("rules") or {}
    if rules:
        print("rules on the heads 'positive' and 'negative' (acc_norm, w = 1): " + ", ".join(
            f"{r} {rules[r]['acc_norm']:.4f} ±{se(rules[r]['stderr'])}" for r in ("sft", "likra", "base-likra", "dexperts")))
        gap = rules["likra_minus_sft"]
        print(f"Likra - SFT, question by question: {gap['diff']:+.4f} ±{se(gap['paired_stderr'])} (paired standard error)")
    if results["n_truncated_options"]:
        print(f"({results['n_truncated_options']} options were left-truncated to the model window of {results['max_length']} tokens)")


@command("eval", "score a multiple-choice task under the base model and any adapters", EvalOptions)
def main(o: EvalOptions, argv: list[str] | None = None) -> dict:
    from ..distributed import rank_world

    results = evaluate(o, argv)
    if rank_world()[0] == 0:
        print_metrics(results)
        print(f"\nscore table: {Path(o.out) / 'scores.parquet'}\nresults:     {Path(o.out) / 'results.json'}")
    return results
