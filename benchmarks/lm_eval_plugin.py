"""lm-evaluation-harness with likra's plugin (--model likra) vs with its own HF backend, on the
same requests, side by side in one run.

    python benchmarks/lm_eval_plugin.py [--data-dir ../shared/data] [--shots 0] [--limit 200]

SmolLM2-135M, ARC-Challenge test from the local files, lm-eval building the prompts and computing
acc / acc_norm in both runs; the plugin scores the base model alone (positive=base, no negative
head), so both answer exactly the same loglikelihood requests. Each run is its own process (peak
memory is that run's). Prints options/s, the ratio, peak memory, the largest per-option difference.
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

MODEL = "smollm2-135m"


def worker(engine: str, data_dir: str, shots: int, limit: int) -> dict:
    from likra.parity import run_lmeval

    if engine == "hf":
        from lm_eval.models.huggingface import HFLM

        from likra.models import load_base, load_tokenizer

        lm = HFLM(pretrained=load_base(MODEL), tokenizer=load_tokenizer(MODEL), batch_size=16)
    else:
        from likra.lm_eval_plugin import LikraLM

        lm = LikraLM(pretrained=MODEL, positive="base")
    t0 = time.perf_counter()
    scores, metrics, _ = run_lmeval(lm, "arc_challenge", data_dir, shots, limit)
    seconds = time.perf_counter() - t0
    return {"engine": engine, "seconds": seconds, "n_options": sum(len(s) for s in scores), "scores": scores,
            "metrics": metrics, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=os.environ.get("LIKRA_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    p.add_argument("--shots", type=int, default=0)
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--worker", default=None)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir, args.shots, args.limit)))
        return
    env = dict(os.environ, TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
    res = {}
    for engine in ("hf", "likra"):
        out = subprocess.run([sys.executable, __file__, "--worker", engine, "--data-dir", args.data_dir, "--shots", str(args.shots),
                              "--limit", str(args.limit)], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
        res[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"# lm-eval {args.shots}-shot ARC-Challenge (first {args.limit} questions, local files), {MODEL}, {os.cpu_count()} CPUs")
    print(f"{'backend':<24}{'options/s':>11}{'seconds':>10}{'acc':>8}{'acc_norm':>10}{'peak MB':>9}")
    for name, label in (("hf", "lm-eval HF backend"), ("likra", "lm-eval --model likra")):
        r = res[name]
        print(f"{label:<24}{r['n_options'] / r['seconds']:>11.2f}{r['seconds']:>10.1f}{r['metrics']['acc']:>8.4f}"
              f"{r['metrics']['acc_norm']:>10.4f}{r['peak_rss_mb']:>9.0f}")
    diff = max(abs(a - b) for sa, sb in zip(res["hf"]["scores"], res["likra"]["scores"]) for a, b in zip(sa, sb))
    print(f"\nspeed ratio (plugin / HF backend): {res['hf']['seconds'] / res['likra']['seconds']:.2f}x; "
          f"largest per-option log-likelihood difference: {diff:.1e}")


if __name__ == "__main__":
    main()
