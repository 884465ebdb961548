"""The ``likra`` command. Each subcommand reads its arguments, calls one library function, and
prints what a user needs to see; no logic lives here."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from . import __version__


def versions() -> dict[str, str]:
    out = {"likra": __version__, "python": platform.python_version()}
    for mod in ("torch", "transformers", "peft", "datasets"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - an optional package missing is not an error here
            out[mod] = "not installed"
    return out


def _dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


def run_eval(args: argparse.Namespace) -> dict:
    """Score a task under every head, save the score table and a results JSON, return results."""
    import torch

    from .metrics import head_metrics
    from .models import attach_adapters, load_base, load_tokenizer, parse_heads
    from .scoring.engine import Scorer
    from .tasks import load_items

    torch.manual_seed(args.seed)
    heads = parse_heads(args.head)
    t0 = time.time()
    task_items = load_items(args.task, args.split, args.shots, args.limit, args.data_dir, args.skip_invalid, args.template)
    if task_items.n_skipped:
        print(f"skipped {task_items.n_skipped} invalid rows (--skip-invalid); first: {task_items.sources[0]}", file=sys.stderr)
    if not task_items.items:
        raise SystemExit(f"task '{args.task}' gave no items to score")
    base = load_base(args.model, _dtype(args.dtype))
    tokenizer = load_tokenizer(args.model)
    model = attach_adapters(base, heads)
    scorer = Scorer(model, tokenizer, batch_tokens=args.batch_tokens)
    t_load = time.time() - t0
    t1 = time.time()
    meta = {"model": args.model, "task": args.task, "split": task_items.split, "shots": args.shots,
            "limit": args.limit, "dtype": args.dtype, "heads": heads}
    table = scorer.score(task_items.items, list(heads), progress=not args.quiet, meta=meta)
    t_score = time.time() - t1
    metrics = head_metrics(table)
    out = Path(args.out)
    table.save(out / "scores.parquet")
    results = {
        **meta,
        "metrics": metrics,
        "n_items": len(task_items.items),
        "n_options": sum(it.n_options for it in task_items.items),
        "n_skipped_rows": task_items.n_skipped,
        "n_truncated_options": table.meta["n_truncated_options"],
        "max_length": table.meta["max_length"],
        "seed": args.seed,
        "fewshot_seed": 1234,
        "seconds": {"load": round(t_load, 2), "score": round(t_score, 2)},
        "command": " ".join(["likra"] + sys.argv[1:]) if sys.argv and sys.argv[0].endswith("likra") else " ".join(sys.argv),
        "versions": versions(),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def print_metrics(results: dict) -> None:
    print(f"\n{results['task']} ({results['split']}, {results['shots']}-shot, {results['n_items']} items) on {results['model']}")
    print(f"{'head':<16}{'acc':>16}{'acc_norm':>16}")
    for head, m in results["metrics"].items():
        print(f"{head:<16}{m['acc']:>9.4f} ±{m['acc_stderr']:.4f}{m['acc_norm']:>9.4f} ±{m['acc_norm_stderr']:.4f}")
    if results["n_truncated_options"]:
        print(f"({results['n_truncated_options']} options were left-truncated to the model window of {results['max_length']} tokens)")


def build_parser() -> argparse.ArgumentParser:
    from .models import DEFAULT_MODEL

    p = argparse.ArgumentParser(prog="likra", description="Likelihood-ratio language models: learn from negative examples.")
    p.add_argument("--version", action="version", version=f"likra {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    e = sub.add_parser("eval", help="score a multiple-choice task under the base model and any adapters")
    e.add_argument("--model", default=DEFAULT_MODEL, help="embedded name (smollm2-135m, gemma3-270m), local folder or hub id")
    e.add_argument("--task", default="arc_challenge", help="arc_challenge, arc_easy, hellaswag, mmlu[_SUBJECT], truthfulqa_mc1, winogrande, jsonl:PATH")
    e.add_argument("--split", default=None, help="default: the split lm-eval evaluates")
    e.add_argument("--shots", type=int, default=0)
    e.add_argument("--limit", type=int, default=None, help="first N items of each task, in file order")
    e.add_argument("--head", action="append", metavar="NAME=ADAPTER", help="a LoRA adapter folder to score as a head (repeatable)")
    e.add_argument("--data-dir", default=None, help="folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")
    e.add_argument("--template", default=None, help="jsonl tasks: question template, e.g. 'Q: {question}\\nA:'")
    e.add_argument("--skip-invalid", action="store_true", help="skip bad rows (and report how many) instead of stopping")
    e.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    e.add_argument("--batch-tokens", type=int, default=1024, help="tokens per forward pass (rows x longest row)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="runs/eval")
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from .models import ModelNotAvailable
    from .tasks import DataError, DataUnavailable

    try:
        if args.command == "eval":
            results = run_eval(args)
            print_metrics(results)
            print(f"\nscore table: {Path(args.out) / 'scores.parquet'}\nresults:     {Path(args.out) / 'results.json'}")
    except (DataError, DataUnavailable, ModelNotAvailable, FileNotFoundError, KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"likra {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
