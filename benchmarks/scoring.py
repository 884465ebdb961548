"""likra's scoring engine vs lm-evaluation-harness (HF backend), side by side in one run.

    python benchmarks/scoring.py [--data-dir ../shared/data] [--quick]
    python benchmarks/scoring.py --bf16-check 300   # likra fp32 against bf16 and bf16-mixed only, 25-shot

SmolLM2-135M on ARC-Challenge test: the first 300 questions 0-shot and the first 50 25-shot
(lm-eval's --limit). Each measurement runs in its own process so that peak memory (VmHWM) is that
run's alone. Prints options/s of each, the ratio, peak memory, the max per-option difference
and both accuracies; then likra in bf16 and in bf16-mixed with their speed and accuracy change. Last, the whole-process
wall time (interpreter start, imports, model load, data, scoring, writing) of ``likra eval`` against
an lm-eval process doing the same 0-shot work, and of ``likra eval --limit 1`` (the start-up cost).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import peak_rss_mb
from likra.cpu import describe, has_bf16_units

MODEL = "smollm2-135m"
TASK = "arc_challenge"
BF16_DTYPES = ("fp32", "bf16", "bf16-mixed")  # the reference first


def worker(engine: str, shots: int, limit: int, dtype: str, data_dir: str, floor: bool = True) -> dict:
    from likra.models import load_base, load_tokenizer

    model = load_base(MODEL, dtype)
    tok = load_tokenizer(MODEL)
    t0 = time.perf_counter()
    if engine == "lm-eval":
        from likra.parity import lmeval_loglikelihoods

        lls, metrics, _ = lmeval_loglikelihoods(model, tok, TASK, data_dir, shots, limit, batch_size=16)
        norm_picks = None
    else:
        from likra.metrics import choose, head_metrics
        from likra.scoring.engine import Scorer
        from likra.scoring.table import option_matrix
        from likra.tasks import load_items

        items = load_items(TASK, shots=shots, limit=limit, data_dir=data_dir).items
        table = Scorer(model, tok).score(items, progress=False)
        matrix = option_matrix(table, "base")
        lls = [list(x) for x in matrix.loglik]
        norm_picks = [int(c) for c in choose([ll / nc for ll, nc in zip(matrix.loglik, matrix.n_chars)])]
        metrics = head_metrics(table)["base"]
    seconds = time.perf_counter() - t0
    floor = context_floor(model, tok, shots, limit, data_dir) if floor and engine == "likra" and dtype == "fp32" else None
    n_opts = sum(len(x) for x in lls)
    return {"engine": engine, "dtype": dtype, "shots": shots, "limit": limit, "seconds": seconds,
            "options": n_opts, "options_per_s": n_opts / seconds, "peak_rss_mb": peak_rss_mb(),
            "acc": metrics["acc"], "acc_norm": metrics["acc_norm"], "lls": lls, "floor_seconds": floor,
            "norm_picks": norm_picks}


def context_floor(model, tok, shots: int, limit: int, data_dir: str) -> float:
    """Seconds for one plain causal forward pass over each item's context alone, one item at a
    time (no options, no vocabulary projection): what any exact engine must at least spend when
    contexts share nothing across items, as k-shot contexts drawn at random do."""
    import torch

    from likra.packing import Encoder
    from likra.tasks import load_items

    enc = Encoder(tok)
    contexts = [enc.encode(it.contexts[0]) for it in load_items(TASK, shots=shots, limit=limit, data_dir=data_dir).items]
    decoder = model.get_decoder()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for ids in contexts:
            decoder(input_ids=torch.tensor([ids]), use_cache=False)
    return time.perf_counter() - t0


def run(engine: str, shots: int, limit: int, dtype: str, data_dir: str, floor: bool = True) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, "--shots", str(shots), "--limit", str(limit),
           "--dtype", dtype, "--data-dir", data_dir, "--model", MODEL] + ([] if floor else ["--no-floor"])
    env = dict(os.environ, TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{engine} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def whole_process(cmd: list[str]) -> float:
    """Wall seconds of a whole process, from its start to its exit."""
    env = dict(os.environ, TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return time.perf_counter() - t0


def likra_eval_cmd(limit: int, data_dir: str, out: str) -> list[str]:
    return [sys.executable, "-m", "likra.cli", "eval", "--model", MODEL, "--task", TASK, "--limit", str(limit),
            "--data-dir", data_dir, "--out", out, "--overwrite", "--quiet"]


def max_diff(a: dict, b: dict) -> float:
    return max(abs(x - y) for ra, rb in zip(a["lls"], b["lls"]) for x, y in zip(ra, rb))


def main() -> None:
    global MODEL
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=os.environ.get("LIKRA_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    p.add_argument("--model", default=MODEL, help="embedded name or model folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="60 questions 0-shot, 8 at 25-shot")
    p.add_argument("--questions", default="300,50", help="questions at 0-shot and at 25-shot (default: %(default)s)")
    p.add_argument("--worker", choices=("likra", "lm-eval"))
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--rounds", type=int, default=3, help="pairs of whole-process runs (median reported)")
    p.add_argument("--bf16", action="store_true", help="measure bf16 even on a CPU without bf16 matrix units")
    p.add_argument("--whole-process-only", action="store_true", help="only the whole-process comparison and the start-up")
    p.add_argument("--no-floor", action="store_true", help=argparse.SUPPRESS)  # worker: skip the context floor
    p.add_argument("--bf16-check", type=int, metavar="N", help="only likra fp32 against likra bf16, 25-shot on the first N "
                   "questions: the agreement check that decides whether bf16 may score a table")
    args = p.parse_args()
    MODEL = args.model
    if args.worker:
        print(json.dumps(worker(args.worker, args.shots, args.limit, args.dtype, args.data_dir, not args.no_floor)))
        return
    if args.whole_process_only:
        print(f"# scoring benchmark, whole process only: {MODEL}, {TASK} test, {os.cpu_count()} CPUs, {describe()}")
        whole_process_pairs(0, 60 if args.quick else int(args.questions.split(",")[0]), args.data_dir, args.rounds, None)
        return

    if args.bf16_check:
        print(f"# bf16 agreement check: {MODEL}, {TASK} test, 25-shot, first {args.bf16_check}, {os.cpu_count()} CPUs, {describe()}")
        bf16_check(args.bf16_check, args.data_dir)
        return

    n0, n25 = (60, 8) if args.quick else map(int, args.questions.split(","))
    settings = [(0, n0), (25, n25)]
    bf16 = bool(has_bf16_units()) or args.bf16
    print(f"# scoring benchmark: {MODEL}, {TASK} test, {os.cpu_count()} CPUs, {describe()}")
    if not bf16:
        print("# bf16 skipped: this CPU has no bf16 matrix units (AMX or AVX-512 BF16), so bf16 is emulated and slower "
              "than fp32 here (--bf16 runs it anyway)")
    print(f"{'setting':<18}{'engine':<18}{'options/s':>11}{'seconds':>10}{'peak MB':>10}{'acc':>8}{'acc_norm':>10}")
    rows = []
    for shots, limit in settings:
        ref = run("lm-eval", shots, limit, "fp32", args.data_dir)
        ours = run("likra", shots, limit, "fp32", args.data_dir)
        halves = [run("likra", shots, limit, dtype, args.data_dir) for dtype in BF16_DTYPES[1:]] if bf16 else []
        label = f"{shots}-shot x{limit}"
        for r in (ref, ours, *halves):
            name = r["engine"] + ("" if r["dtype"] == "fp32" else " " + r["dtype"])
            print(f"{label:<18}{name:<18}{r['options_per_s']:>11.2f}{r['seconds']:>10.1f}{r['peak_rss_mb']:>10.0f}{r['acc']:>8.4f}{r['acc_norm']:>10.4f}")
        rows.append((label, ref, ours, halves))
    print()
    for label, ref, ours, halves in rows:
        print(f"{label}: likra/lm-eval speed ratio {ours['options_per_s'] / ref['options_per_s']:.2f}x (fp32), "
              f"max per-option |diff| {max_diff(ours, ref):.2e}, acc equal: {ours['acc'] == ref['acc']}, "
              f"acc_norm equal: {ours['acc_norm'] == ref['acc_norm']}")
        if ours["shots"] > 0 and ours.get("floor_seconds"):
            print(f"{label}: floor (one causal pass over each context, nothing else) {ours['floor_seconds']:.1f} s, likra "
                  f"{ours['seconds']:.1f} s: the most any exact engine could reach here is "
                  f"{ref['seconds'] / ours['floor_seconds']:.2f}x lm-eval")
        for half in halves:
            print(f"{label}: {half['dtype']} vs fp32 likra: speed {half['options_per_s'] / ours['options_per_s']:.2f}x, "
                  f"acc {half['acc'] - ours['acc']:+.4f}, acc_norm {half['acc_norm'] - ours['acc_norm']:+.4f}, "
                  f"max per-option |diff| {max_diff(half, ours):.2e}")

    whole_process_pairs(*settings[0], args.data_dir, args.rounds, rows[0][2]["options_per_s"] / rows[0][1]["options_per_s"])


def bf16_check(limit: int, data_dir: str, shots: int = 25) -> None:
    """likra fp32, bf16 and bf16-mixed on the same items: speed ratios and how many predictions move.
    The target (issue 13): >= 2.5x fp32, and acc_norm within one question per 300."""
    import math

    full, *halves = (run("likra", shots, limit, dtype, data_dir, floor=False) for dtype in BF16_DTYPES)
    for r in (full, *halves):
        print(f"likra {r['dtype']}: {r['seconds']:.1f} s, {r['options_per_s']:.2f} options/s, peak {r['peak_rss_mb']:.0f} MB, "
              f"acc {r['acc']:.4f}, acc_norm {r['acc_norm']:.4f}")
    allowed = max(1, math.floor(limit / 300))
    for half in halves:
        moved = sum(a != b for a, b in zip(full["norm_picks"], half["norm_picks"]))
        ratio = half["options_per_s"] / full["options_per_s"]
        net = round(abs(half["acc_norm"] - full["acc_norm"]) * limit)
        verdict = "meets" if ratio >= 2.5 and net <= allowed else "misses"
        print(f"{half['dtype']} / fp32 speed {ratio:.2f}x (target >= 2.5x); acc {half['acc'] - full['acc']:+.4f}, acc_norm "
              f"{half['acc_norm'] - full['acc_norm']:+.4f} ({net} questions; target <= {allowed}); the acc_norm choice moved "
              f"on {moved} of {limit} questions; max per-option |diff| {max_diff(half, full):.2e} nat: {verdict} the target")


def whole_process_pairs(shots: int, limit: int, data_dir: str, rounds: int, throughput_ratio: float | None) -> None:
    """lm-eval then likra eval as whole processes, ``rounds`` pairs; and likra eval --limit 1."""
    import tempfile

    worker_cmd = [sys.executable, __file__, "--worker", "lm-eval", "--shots", str(shots), "--limit", str(limit),
                  "--dtype", "fp32", "--data-dir", data_dir, "--model", MODEL]
    with tempfile.TemporaryDirectory() as tmp:
        startup = sorted(whole_process(likra_eval_cmd(1, data_dir, f"{tmp}/one")) for _ in range(rounds))
        pairs = [(whole_process(worker_cmd), whole_process(likra_eval_cmd(limit, data_dir, f"{tmp}/e"))) for _ in range(rounds)]
    ratios = sorted(a / b for a, b in pairs)
    beside = f" (throughput ratio above: {throughput_ratio:.2f}x)" if throughput_ratio else ""
    print(f"\nwhole process, {shots}-shot x{limit} (median of {rounds} pairs, each lm-eval then likra eval): "
          + ", ".join(f"lm-eval {a:.1f} s / likra {b:.1f} s" for a, b in pairs)
          + f"; ratio {ratios[len(ratios) // 2]:.2f}x{beside}")
    print(f"likra eval --limit 1, whole process: median {startup[len(startup) // 2]:.1f} s ({', '.join(f'{t:.1f}' for t in startup)})")


if __name__ == "__main__":
    main()
