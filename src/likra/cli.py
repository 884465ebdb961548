"""The ``likra`` command. Each subcommand reads its arguments, calls the library, and prints what
a user needs to see; the work itself lives in the modules below."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from . import __version__
from .provenance import versions


def _dtype(name: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16}[name]


def run_eval(args: argparse.Namespace) -> dict:
    """Score a task under every head, save the score table and a results JSON, return results."""
    import torch

    from .distributed import rank_world
    from .metrics import head_metrics
    from .models import attach_adapters, load_base, load_tokenizer, parse_heads
    from .rules import rule_summary
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
    rules = rule_summary(table) if {"positive", "negative"} <= set(heads) else {}
    out = Path(args.out)
    if rank_world()[0] != 0:  # under a launcher, one process writes
        return {**meta, "metrics": metrics}
    table.save(out / "scores.parquet")
    results = {
        **meta,
        "metrics": metrics,
        "rules": rules,
        "n_items": len(task_items.items),
        "n_options": sum(it.n_options for it in task_items.items),
        "n_skipped_rows": task_items.n_skipped,
        "n_truncated_options": table.meta["n_truncated_options"],
        "max_length": table.meta["max_length"],
        "seed": args.seed,
        "fewshot_seed": 1234,
        "processes": rank_world()[1],
        "seconds": {"load": round(t_load, 2), "score": round(t_score, 2)},
        "command": "likra " + " ".join(shlex.quote(a) for a in args.argv),
        "versions": versions(),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    return results


def _train_config(args: argparse.Namespace):
    """TrainConfig defaults, overridden by the YAML config, overridden by explicit flags."""
    import dataclasses

    import yaml

    from .training import TrainConfig

    values: dict = {}
    extra: dict = {}
    if args.config:
        raw = yaml.safe_load(Path(args.config).read_text()) or {}
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        for k, v in raw.items():
            k = k.replace("-", "_")
            (values if k in fields else extra)[k] = v
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    return TrainConfig(**values), extra


def run_train(args: argparse.Namespace) -> list[Path]:
    from .heads import train

    config, extra = _train_config(args)
    for k in ("model", "pool", "head", "negatives", "n", "seed", "data_dir"):
        if getattr(args, k, None) is None and k in extra:
            setattr(args, k, extra[k])
    method = args.method or extra.get("method", "likra")
    if not args.pool or (method == "likra" and not args.head):
        raise ValueError("--pool and --head are required (on the command line or in --config)")
    t0 = time.time()
    saved = train(model=args.model or "smollm2-135m", pool=args.pool, head=args.head, out=args.out,
                  negatives=args.negatives, n=args.n, seed=0 if args.seed is None else args.seed,
                  data_dir=args.data_dir, config=config, per_question=args.per_question,
                  skip_invalid=args.skip_invalid, progress=not args.quiet, method=method)
    print(f"trained the {args.head if method == 'likra' else method} {'head' if method == 'likra' else 'adapter'} in {time.time() - t0:.0f} s")
    return saved


def run_curve(args: argparse.Namespace) -> dict:
    from .experiments import curve_accuracies, plot_curve, score_curve

    if not args.positive or not args.negative or not args.out:
        raise ValueError("curve needs --positive, --negative and --out (on the command line or in --config)")
    if len(args.positive) != len(args.negative):
        raise ValueError("give as many --negative runs as --positive runs (one pair per seed)")
    curves = {}
    for k, (pos, neg) in enumerate(zip(args.positive, args.negative)):
        out = Path(args.out) / f"run{k}"
        score_curve(args.model, args.task, pos, neg, out, args.split, args.limit, args.data_dir, args.dtype, not args.quiet)
        curves[f"run{k}"] = curve_accuracies(out, args.weight)
    (Path(args.out) / "curve_accuracies.json").write_text(json.dumps(curves, indent=1))
    fig = plot_curve(curves, Path(args.out) / "curve.png", f"{args.model} on {args.task} ({len(curves)} run(s))")
    print(f"{'n':>6}" + "".join(f"{r:>12}" for r in ("base", "sft", "likra", "base-likra")))
    first = curves["run0"]
    for i, (n, _, _) in enumerate(first["sft"]):
        print(f"{n:>6}" + "".join(f"{first[r][i][1]:>12.4f}" for r in ("base", "sft", "likra", "base-likra")))
    print(f"figure: {fig}")
    return curves


def run_sweep(args: argparse.Namespace) -> dict:
    from .experiments import plot_sweep, sweep_from_curve
    from .rules import parse_weights

    if not args.curve_dir:
        raise ValueError("sweep needs a curve folder (as its argument or curve_dir: in --config)")
    runs = sorted(Path(args.curve_dir).glob("run*/tables"))
    if not runs:
        raise FileNotFoundError(f"{args.curve_dir}: no runK/tables folders (make them with likra curve)")
    result = {}
    for tables in runs:
        sweeps = sweep_from_curve(tables.parent, parse_weights(args.weights), args.rule)
        result[tables.parent.name] = {str(n): pts for n, pts in sweeps.items()}
        fig = plot_sweep(sweeps, Path(args.curve_dir) / f"sweep-{args.rule}-{tables.parent.name}.png", f"{args.rule}: accuracy vs w")
        print(f"{tables.parent.name} ({args.rule}): " + "  ".join(f"n={n}: best w={max(p, key=lambda x: x[1])[0]:g} "
                                                              f"({max(p, key=lambda x: x[1])[1]:.4f})" for n, p in sweeps.items()))
        print(f"figure: {fig}")
    (Path(args.curve_dir) / f"sweep-{args.rule}.json").write_text(json.dumps(result, indent=1))
    return result


def run_mass(args: argparse.Namespace) -> dict:
    from .experiments import mass_changes, score_mass

    if not args.positive or not args.negative or not args.out:
        raise ValueError("mass needs --positive, --negative and --out (on the command line or in --config)")
    out = score_mass(args.model, args.task, args.positive, args.negative, args.out, args.unrelated_task, args.split,
                     args.limit, args.data_dir, not args.quiet)
    changes = mass_changes(out)
    (Path(out) / "mass.json").write_text(json.dumps(changes, indent=1))
    for head, cats in changes.items():
        print(f"{head} head: change of mean log-likelihood per character from the base model")
        ns = [n for n, _ in next(iter(cats.values()))]
        print(f"{'category':<24}" + "".join(f"{n:>9}" for n in ns))
        for c, pts in cats.items():
            print(f"{c:<24}" + "".join(f"{v:>9.3f}" for _, v in pts))
    return changes


def run_negtypes(args: argparse.Namespace) -> dict:
    from .experiments import negative_type_accuracies, plot_negative_types, score_negative_types

    if not args.curve or not (args.negative or args.baseline) or not args.out:
        raise ValueError("negtypes needs --curve, at least one --negative (or --baseline) LABEL=RUN and --out "
                         "(on the command line or in --config)")
    runs, baselines = {}, []
    for flag, specs in (("--negative", args.negative or []), ("--baseline", args.baseline or [])):
        for spec in specs:
            label, sep, run = spec.partition("=")
            if not sep:
                raise ValueError(f"{flag} '{spec}': write LABEL=RUN_FOLDER, e.g. irrelevant=runs/arc-s0/neg-irrelevant")
            runs[label] = run
            if flag == "--baseline":
                baselines.append(label)
    out = score_negative_types(args.model, args.curve, runs, args.out, args.data_dir, not args.quiet)
    acc = negative_type_accuracies(args.curve, out, args.curve_label, args.weight, baselines=tuple(baselines))
    (Path(out) / "negtypes.json").write_text(json.dumps(acc, indent=1))
    what = "negative types" if args.negative else "Likra and " + ", ".join(baselines)
    fig = plot_negative_types(acc, Path(out) / "negative-types.png", f"{args.model}: {what} (w={args.weight:g})")
    ns = [n for n, _, _ in acc["sft"]["positive"]]
    print(f"{'rule':<28}" + "".join(f"{n:>8}" for n in ns))
    rows = [("sft", acc["sft"]["positive"])] + [(f"{r}, {label}", pts) for r in ("likra", "base-likra", "alone")
                                                for label, pts in acc[r].items()]
    for name, pts in rows:
        by_n = {n: a for n, a, _ in pts}
        print(f"{name:<28}" + "".join(f"{by_n[n]:>8.4f}" if n in by_n else f"{'-':>8}" for n in ns))
    print(f"figure: {fig}")
    return acc


def run_table1(args: argparse.Namespace) -> list[dict]:
    from .experiments import load_paper_rows, table1_markdown, table1_row

    if not args.source:
        raise ValueError("table1 needs at least one --source (a likra eval folder or a scored curve run)")
    rows = [table1_row(src, args.weight) for src in args.source]
    paper = load_paper_rows(args.paper) if args.paper else None
    md = table1_markdown(rows, paper)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table1.json").write_text(json.dumps({"rows": rows, "paper": paper, "weight": args.weight}, indent=1))
        (out / "table1.md").write_text(md)
    print(md)
    return rows


def print_metrics(results: dict) -> None:
    print(f"\n{results['task']} ({results['split']}, {results['shots']}-shot, {results['n_items']} items) on {results['model']}")
    print(f"{'head':<16}{'acc':>16}{'acc_norm':>16}{'gold LL/char':>14}{'wrong LL/char':>15}")
    for head, m in results["metrics"].items():
        print(f"{head:<16}{m['acc']:>9.4f} ±{m['acc_stderr']:.4f}{m['acc_norm']:>9.4f} ±{m['acc_norm_stderr']:.4f}"
              f"{m['gold_loglik_per_char']:>14.4f}{m['wrong_loglik_per_char']:>15.4f}")
    rules = results.get("rules") or {}
    if rules:
        print("rules on the heads 'positive' and 'negative' (acc_norm, w = 1): " + ", ".join(
            f"{r} {rules[r]['acc_norm']:.4f} ±{rules[r]['stderr']:.4f}" for r in ("sft", "likra", "base-likra", "dexperts")))
        gap = rules["likra_minus_sft"]
        print(f"Likra - SFT, question by question: {gap['diff']:+.4f} ±{gap['paired_stderr']:.4f} (paired standard error)")
    if results["n_truncated_options"]:
        print(f"({results['n_truncated_options']} options were left-truncated to the model window of {results['max_length']} tokens)")


class _ReplaceAppend(argparse.Action):
    """A repeatable flag whose command-line values replace (not extend) a list from --config."""

    def __call__(self, parser, namespace, values, option_string=None):
        marker = f"_given_{self.dest}"
        current = getattr(namespace, self.dest) if getattr(namespace, marker, False) else []
        setattr(namespace, self.dest, [*current, values])
        setattr(namespace, marker, True)


CONFIG_COMMANDS = ("eval", "curve", "sweep", "mass", "negtypes", "table1")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Flags override the YAML given with --config, which overrides the built-in defaults: an
    experiment is a config file plus whatever one run changes."""
    parser, subs = build_parser(with_subparsers=True)
    args = parser.parse_args(argv)
    if args.command in CONFIG_COMMANDS and args.config:
        import yaml

        path = Path(args.config)
        if not path.exists():
            raise SystemExit(f"likra {args.command}: error: config file {path} not found")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise SystemExit(f"likra {args.command}: error: {path}: expected a mapping of option: value")
        known = {a.dest: a for a in subs[args.command]._actions}
        values = {}
        for key, value in raw.items():
            dest = str(key).replace("-", "_")
            if dest not in known or dest in ("help", "config"):
                raise SystemExit(f"likra {args.command}: error: {path}: unknown option '{key}' "
                                 f"(known: {', '.join(sorted(d for d in known if d not in ('help', 'config')))})")
            if isinstance(known[dest], _ReplaceAppend) and not isinstance(value, list):
                value = [value]
            values[dest] = value
        subs[args.command].set_defaults(**values)
        args = parser.parse_args(argv)
    return args


def build_parser(with_subparsers: bool = False):
    from .models import DEFAULT_MODEL

    p = argparse.ArgumentParser(prog="likra", description="Likelihood-ratio language models: learn from negative examples.")
    p.add_argument("--version", action="version", version=f"likra {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    subs: dict[str, argparse.ArgumentParser] = {}

    e = sub.add_parser("eval", help="score a multiple-choice task under the base model and any adapters")
    e.add_argument("--model", default=DEFAULT_MODEL, help="embedded name (smollm2-135m, gemma3-270m), local folder or hub id")
    e.add_argument("--task", default="arc_challenge", help="arc_challenge, arc_easy, hellaswag, mmlu[_SUBJECT], truthfulqa_mc1, winogrande, jsonl:PATH")
    e.add_argument("--split", default=None, help="default: the split lm-eval evaluates")
    e.add_argument("--shots", type=int, default=0)
    e.add_argument("--limit", type=int, default=None, help="first N items of each task, in file order")
    e.add_argument("--head", action=_ReplaceAppend, metavar="NAME=ADAPTER", help="a LoRA adapter folder to score as a head (repeatable)")
    e.add_argument("--data-dir", default=None, help="folder of the original benchmark files (or LIKRA_DATA_DIR); default: the hub")
    e.add_argument("--template", default=None, help="jsonl tasks: question template, e.g. 'Q: {question}\\nA:'")
    e.add_argument("--skip-invalid", action="store_true", help="skip bad rows (and report how many) instead of stopping")
    e.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    e.add_argument("--batch-tokens", type=int, default=1024, help="tokens per forward pass (rows x longest row)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--out", default="runs/eval")
    e.add_argument("--quiet", action="store_true", help="no progress bar")

    c = sub.add_parser("curve", help="learning curve: score every curve point of a positive and a negative run")
    c.add_argument("--model", default=DEFAULT_MODEL)
    c.add_argument("--task", default="arc_challenge")
    c.add_argument("--split", default=None)
    c.add_argument("--limit", type=int, default=None, help="first N evaluation items (a fixed subset)")
    c.add_argument("--positive", action=_ReplaceAppend, help="positive training run folder (one per seed)")
    c.add_argument("--negative", action=_ReplaceAppend, help="negative training run folder (same order)")
    c.add_argument("--weight", type=float, default=1.0)
    c.add_argument("--data-dir", default=None)
    c.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32")
    c.add_argument("--out", default=None)
    c.add_argument("--quiet", action="store_true")

    w = sub.add_parser("sweep", help="accuracy against the negative-head weight w, from a curve's cached tables (no model call)")
    w.add_argument("curve_dir", nargs="?", default=None, help="a likra curve output folder (its runK/ subfolders)")
    w.add_argument("--weights", default="0:1.5:0.1", help="START:STOP:STEP (inclusive) or a comma list")
    w.add_argument("--rule", default="likra", choices=("likra", "base-likra", "dexperts"))

    ms = sub.add_parser("mass", help="likelihood mass: how each head moves correct / most-likely-incorrect / irrelevant / unrelated answers")
    ms.add_argument("--model", default=DEFAULT_MODEL)
    ms.add_argument("--task", default="arc_challenge")
    ms.add_argument("--split", default=None)
    ms.add_argument("--limit", type=int, default=None)
    ms.add_argument("--unrelated-task", default="hellaswag", help="benchmark whose answers are the unrelated ones")
    ms.add_argument("--positive", default=None)
    ms.add_argument("--negative", default=None)
    ms.add_argument("--data-dir", default=None)
    ms.add_argument("--out", default=None)
    ms.add_argument("--quiet", action="store_true")

    nt = sub.add_parser("negtypes", help="negative types: Likra with other negative heads against a scored curve's positive head")
    nt.add_argument("--model", default=DEFAULT_MODEL)
    nt.add_argument("--curve", default=None, help="a scored learning curve (a likra curve OUT/runK folder)")
    nt.add_argument("--negative", action=_ReplaceAppend, metavar="LABEL=RUN", help="a negative training run and its label (repeatable)")
    nt.add_argument("--baseline", action=_ReplaceAppend, metavar="LABEL=RUN",
                    help="an adapter run scored by itself at the same points, e.g. dpo=runs/arc-s0/dpo (repeatable)")
    nt.add_argument("--curve-label", default="near-miss", help="the label of the curve's own negative head")
    nt.add_argument("--weight", type=float, default=1.0)
    nt.add_argument("--data-dir", default=None)
    nt.add_argument("--out", default=None)
    nt.add_argument("--quiet", action="store_true")

    tb = sub.add_parser("table1", help="Table 1: base / + / - / Likra accuracy and AUROC for each model x benchmark, from tables")
    tb.add_argument("--source", action=_ReplaceAppend, help="a likra eval folder (heads base, positive, negative) or a scored curve run")
    tb.add_argument("--paper", default=None, help="YAML with the paper's published rows, printed alongside for reference")
    tb.add_argument("--weight", type=float, default=1.0)
    tb.add_argument("--out", default=None)

    sub.add_parser("lm-eval", help="lm-evaluation-harness's command line with --model likra available (arguments as lm_eval's)",
                   add_help=False)

    rp = sub.add_parser("reproduce", help="run a preset's experiments end to end and write the report")
    rp.add_argument("--preset", default="quick", help="quick (~10 min on 2 CPU cores), cpu, paper, or a YAML file")
    rp.add_argument("--data-dir", default=None)
    rp.add_argument("--out", default=None, help="default: runs/reproduce-PRESET")
    rp.add_argument("--quiet", action="store_true")

    rr = sub.add_parser("report", help="write the figures and the markdown + HTML report of a run folder")
    rr.add_argument("run_dir")

    t = sub.add_parser("train", help="train a positive or negative LoRA head, saving a learning curve of adapters")
    t.add_argument("--model", default=None, help="embedded name, local folder or hub id (default smollm2-135m)")
    t.add_argument("--pool", default=None, help="arc (the paper's ARC pool), arc-notest, or TASK[:SPLIT] joined with + and - (e.g. hellaswag:train)")
    t.add_argument("--head", choices=("positive", "negative"), default=None)
    t.add_argument("--method", choices=("likra", "dpo", "kto", "kto-rejected"), default=None,
                   help="likra (a head, the default) or a TRL baseline on the same questions and near-miss negatives")
    t.add_argument("--negatives", default=None, help="near-miss (default), irrelevant, unrelated:TASK, hardest")
    t.add_argument("--per-question", type=int, default=1, help="negatives per question (balanced: 1)")
    t.add_argument("--n", "--examples", dest="n", type=int, default=None,
                   help="train on the first N questions of the seeded order (default: all); spell it --examples after a "
                        "launcher (accelerate launch, torchrun), whose own parser takes --n for one of its options")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--data-dir", default=None)
    t.add_argument("--skip-invalid", action="store_true")
    t.add_argument("--config", default=None, help="YAML file with any of these options and the hyperparameters below")
    t.add_argument("--out", required=True)
    t.add_argument("--quiet", action="store_true")
    h = t.add_argument_group("hyperparameters (default: the seed paper's recipe)")
    h.add_argument("--lora-r", dest="lora_r", type=int)
    h.add_argument("--lora-alpha", dest="lora_alpha", type=int)
    h.add_argument("--lora-dropout", dest="lora_dropout", type=float)
    h.add_argument("--target-modules", dest="target_modules", nargs="+")
    h.add_argument("--lr", type=float)
    h.add_argument("--weight-decay", dest="weight_decay", type=float)
    h.add_argument("--batch-size", dest="batch_size", type=int)
    h.add_argument("--epochs", type=int)
    h.add_argument("--first-checkpoint", dest="first_checkpoint", type=int)
    h.add_argument("--bf16", action="store_const", const=True, default=None, help="bf16 autocast")
    h.add_argument("--compile", action="store_const", const=True, default=None,
                   help="torch.compile the decoder layers (pays ~30 s once; worth it for runs of thousands of examples)")
    h.add_argument("--state-every", dest="state_every", type=int, help="steps between resume states")
    h.add_argument("--attention", choices=("segments", "mask"),
                   help="segments (default): attention within each example; mask: the packed row under one mask")
    for name, sp in (("eval", e), ("curve", c), ("sweep", w), ("mass", ms), ("negtypes", nt), ("table1", tb)):
        sp.add_argument("--config", default=None, help="YAML file of this command's options (flags override it)")
        subs[name] = sp
    return (p, subs) if with_subparsers else p


def _record(args: argparse.Namespace, seconds: float) -> None:
    """Leave the exact command beside an experiment's output, so every figure and table can be
    traced to what made it (``likra report`` prints it)."""
    out = {"sweep": getattr(args, "curve_dir", None)}.get(args.command, getattr(args, "out", None))
    if args.command not in ("curve", "sweep", "mass", "negtypes", "table1") or not out or not Path(out).is_dir():
        return
    rec = {"command": "likra " + " ".join(shlex.quote(a) for a in args.argv), "seconds": round(seconds, 1), "versions": versions()}
    (Path(out) / "likra-command.json").write_text(json.dumps(rec, indent=1))


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["lm-eval"]:  # lm-eval's own command line, with the likra model type registered
        from .lm_eval_plugin import main as lm_eval_main

        lm_eval_main(raw[1:])
        return 0
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    args.argv = argv
    from .models import ModelNotAvailable
    from .tasks import DataError, DataUnavailable
    from .training import TrainingDiverged

    t0 = time.time()
    from .distributed import init_from_env, sharding_requested

    rank, _ = init_from_env()  # a no-op unless started by a launcher (accelerate launch, torchrun)
    sharding = sharding_requested()
    if sharding and rank == 0 and not (args.command == "train" and getattr(args, "method", None) not in (None, "likra")):
        print(f"likra {args.command}: warning: the launcher asked for {sharding}, which only the TRL baselines "
              "(likra train --method dpo|kto) use; this command runs plain data parallel with a full model "
              "copy per process (configs/accelerate/multi-gpu.yaml is its config)", file=sys.stderr)
    try:
        if args.command == "eval":
            results = run_eval(args)
            if rank != 0:
                return 0
            print_metrics(results)
            print(f"\nscore table: {Path(args.out) / 'scores.parquet'}\nresults:     {Path(args.out) / 'results.json'}")
        elif args.command == "curve":
            run_curve(args)
        elif args.command == "sweep":
            run_sweep(args)
        elif args.command == "mass":
            run_mass(args)
        elif args.command == "negtypes":
            run_negtypes(args)
        elif args.command == "table1":
            run_table1(args)
        elif args.command == "reproduce":
            from .reproduce import reproduce

            html_path = reproduce(args.preset, args.out or f"runs/reproduce-{Path(args.preset).stem}", args.data_dir, not args.quiet)
            print(f"report: {html_path}\n        {html_path.with_suffix('.md')}")
        elif args.command == "report":
            from .report import write_report

            md, html_path = write_report(args.run_dir)
            print(f"report: {html_path}\n        {md}")
        elif args.command == "train":
            saved = run_train(args)
            if rank == 0:
                print("adapters:\n" + "\n".join(f"  {p}" for p in saved))
        _record(args, time.time() - t0)
    except (DataError, DataUnavailable, ModelNotAvailable, FileNotFoundError, KeyError, ValueError, TrainingDiverged) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"likra {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
