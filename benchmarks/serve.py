"""``likra serve`` under load on the loopback, against scoring the same requests one by one in-process;
and (``--detector``) the served probability as a detector of wrong candidates.

    python benchmarks/serve.py --positive ADAPTER --negative ADAPTER [--data-dir ../shared/data]
    python benchmarks/serve.py --detector results/serve/detector.json --positive ... --negative ...

The requests are ARC-Easy validation questions with their options (the first --requests). First
they are scored one by one in this process (one engine call each: what a server without batching
does); then ``likra serve`` starts in a subprocess and, for 1, 4 and 16 concurrent clients, the same
requests are sent, split evenly between the clients, each client sending its next request when
the last is answered (a bounded test: it stops when all are answered). Prints requests/s and
p50/p95/p99 latency per level, and the server's mean batch size. The two model processes never
run at once, so each has the machine's CPUs to itself.

The detector scores, exactly as the server does (prompt "Question: ...\nAnswer:", 0 shots),
the first --limit questions of TruthfulQA MC1 and ARC-Easy test under the base model and both
heads, and reports the option-level AUROC of -probability for "this candidate is wrong" (Likra,
the positive head alone, the base model), each probability at the temperature fitted, as
``--calibrate-on`` fits it, on the first --calibrate questions of ARC-Easy validation, with a 95%
percentile interval from resampling questions; beside it the same with 1/k alone (no model),
and the within-question AUROC (a wrong candidate against its own question's correct one: free of
the temperature and of k); and the precision and recall of the server's flag.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time

import numpy as np


def requests_of(n: int, data_dir: str) -> list[dict]:
    from likra.tasks.load import load_docs, resolve_spec

    docs = load_docs(resolve_spec("arc_easy"), "validation", data_dir)[:n]
    return [{"question": d.meta["question"], "candidates": list(d.choices)} for d in docs]


def one_by_one(args, reqs: list[dict]) -> list[float]:
    """Seconds per request, each scored alone (the verifier the server uses, one request per call)."""
    from likra.serve import ServeOptions, build_verifier

    v = build_verifier(ServeOptions(model=args.model, positive=args.positive, negative=args.negative))
    v.score_batch(reqs[:1])  # warm-up
    out = []
    for r in reqs:
        t0 = time.perf_counter()
        v.score_batch([r])
        out.append(time.perf_counter() - t0)
    return out


async def load(url: str, reqs: list[dict], clients: int) -> tuple[float, list[float]]:
    """Wall seconds for all requests with ``clients`` concurrent clients, and each request's latency."""
    import httpx

    latencies: list[float] = []

    async def client(share: list[dict], http) -> None:
        for body in share:
            t0 = time.perf_counter()
            r = await http.post(url + "/v1/score", json=body)
            r.raise_for_status()
            latencies.append(time.perf_counter() - t0)

    async with httpx.AsyncClient(timeout=600) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(reqs[c::clients], http) for c in range(clients)))
        return time.perf_counter() - t0, latencies


def row(label: str, n: int, seconds: float, lat: list[float], batch: str = "") -> str:
    p = np.percentile(np.asarray(lat) * 1000, [50, 95, 99])
    return f"{label:<22}{n:>6}{n / seconds:>10.2f}{p[0]:>9.0f}{p[1]:>9.0f}{p[2]:>9.0f}  {batch}"


def uniform_auroc(ks: list[int], gold, samples: int) -> dict:
    """The AUROC of the probability 1/k alone (no model): wrong candidates come more often from
    questions with many candidates, whose every probability is smaller, so this is above 0.5 on
    a task whose questions differ in k (TruthfulQA MC1); a model's AUROC means something beyond it."""
    from likra.rules import auroc_wrong
    from likra.stats import BOOTSTRAP_SEED

    rng, probs = np.random.default_rng(BOOTSTRAP_SEED), [np.full(k, 1 / k) for k in ks]
    boot = [auroc_wrong([probs[i] for i in b], gold[b]) for b in (rng.integers(0, len(gold), len(gold)) for _ in range(samples))]
    return {"auroc": auroc_wrong(probs, gold), "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))]}


def detector(args) -> dict:
    import json
    from pathlib import Path

    from likra.models import BASE_HEAD, attach_adapters, load_base, load_tokenizer
    from likra.rules import auroc_wrong, fit_temperature, rule_scores, softmax_probs
    from likra.scoring.engine import Scorer
    from likra.scoring.table import option_matrix
    from likra.serve import likely_wrong, question_item
    from likra.stats import BOOTSTRAP_SEED, bootstrap_interval
    from likra.tasks.load import load_docs, resolve_spec

    model = attach_adapters(load_base(args.model), {"positive": args.positive, "negative": args.negative})
    scorer, heads = Scorer(model, load_tokenizer(args.model)), [BASE_HEAD, "positive", "negative"]

    def table(task: str, split: str, n: int):
        docs = load_docs(resolve_spec(task), split, args.data_dir)[:n]
        items = [question_item(d.id, d.meta["question"], list(d.choices), gold=d.gold) for d in docs]
        return scorer.score(items, heads, progress=False)

    rules = {"likra": "likra", "positive head": "sft", "base model": "base"}
    calib = table("arc_easy", "validation", args.calibrate)
    temps = {name: fit_temperature(*rule_scores(calib, rule, 1.0)) for name, rule in rules.items()}
    out = {"model": args.model, "positive": args.positive, "negative": args.negative, "weight": 1.0, "shots": 0,
           "prompt": "Question: {question}\nAnswer: {candidate}", "calibration": f"arc_easy validation, first {args.calibrate}",
           "temperatures": temps, "bootstrap": {"samples": args.samples, "seed": BOOTSTRAP_SEED}, "tasks": {}}
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    for task, split in (("truthfulqa_mc1", "validation"), ("arc_easy", "test")):
        t = table(task, split, args.limit)
        res = {"split": split, "questions": None, "candidates": None}
        for name, rule in rules.items():
            scores, gold = rule_scores(t, rule, 1.0)
            probs = softmax_probs(scores, temps[name])
            idx = [rng.integers(0, len(gold), len(gold)) for _ in range(args.samples)]
            boot = [auroc_wrong([probs[i] for i in b], gold[b]) for b in idx]
            res.update(questions=len(gold), candidates=int(sum(len(p) for p in probs)))
            within = np.array([np.mean([(p[g] > p[o]) + 0.5 * (p[g] == p[o]) for o in range(len(p)) if o != g])
                               for p, g in zip(probs, gold)])
            res[name] = {"auroc": auroc_wrong(probs, gold), "ci95": [float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))],
                         "within_question_auroc": float(within.mean()), "within_ci95": list(bootstrap_interval(within, args.samples)),
                         "accuracy": float(np.mean([np.argmax(s) == g for s, g in zip(scores, gold)]))}
        res["uniform 1/k (no model)"] = uniform_auroc([len(x) for x in scores], gold, args.samples)
        plus, minus = (option_matrix(t, h) for h in ("positive", "negative"))
        probs = softmax_probs(rule_scores(t, "likra", 1.0)[0], temps["likra"])
        flag = [likely_wrong(p, lp / nc, ln / nc) for p, lp, ln, nc in zip(probs, plus.loglik, minus.loglik, plus.n_chars)]
        wrong = [np.arange(len(p)) != g for p, g in zip(probs, plus.gold)]
        f, w = np.concatenate(flag), np.concatenate(wrong)
        res["flag"] = {"flagged": int(f.sum()), "precision": float((f & w).sum() / max(f.sum(), 1)), "recall": float((f & w).sum() / w.sum())}
        out["tasks"][task] = res
        print(task, json.dumps(res), flush=True)
    Path(args.detector).write_text(json.dumps(out, indent=1) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--positive", required=True)
    ap.add_argument("--negative", required=True)
    ap.add_argument("--data-dir", default=os.environ.get("LIKRA_DATA_DIR"))
    ap.add_argument("--requests", type=int, default=64, help="requests per level (split between the clients)")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--max-batch-wait-ms", type=float, default=5.0)
    ap.add_argument("--detector", metavar="JSON", help="measure the detector instead and write it here")
    ap.add_argument("--limit", type=int, default=300, help="detector: first N questions of each task")
    ap.add_argument("--calibrate", type=int, default=200, help="detector: ARC-Easy validation questions fitting T")
    ap.add_argument("--samples", type=int, default=2000, help="detector: bootstrap samples")
    args = ap.parse_args()
    if args.detector:
        detector(args)
        return
    reqs = requests_of(args.requests, args.data_dir)
    n_opts = sum(len(r["candidates"]) for r in reqs)
    print(f"# likra serve load test: {args.model}, {len(reqs)} ARC-Easy validation requests ({n_opts} candidates), "
          f"{os.cpu_count()} CPUs (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), loopback, --max-batch-wait-ms {args.max_batch_wait_ms:g}", flush=True)
    print(f"{'setting':<22}{'reqs':>6}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  mean batch", flush=True)
    alone = one_by_one(args, reqs)
    print(row("in-process, 1 by 1", len(reqs), sum(alone), alone, "1"), flush=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "likra.cli", "serve", "--model", args.model, "--positive", args.positive,
                               "--negative", args.negative, "--port", str(port), "--quiet", "--queue-size", "256",
                               "--max-batch-wait-ms", str(args.max_batch_wait_ms)])
    try:
        import httpx

        deadline = time.time() + 600
        while True:
            try:
                httpx.get(url + "/health", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit("likra serve did not start")
                time.sleep(1)
        asyncio.run(load(url, reqs[:2], 1))  # warm-up
        for clients in (int(c) for c in args.clients.split(",")):
            before = httpx.get(url + "/metrics").json()
            seconds, lat = asyncio.run(load(url, reqs, clients))
            after = httpx.get(url + "/metrics").json()
            mean_batch = len(reqs) / (after["batches"] - before["batches"])
            print(row(f"served, {clients:>2} client{'s' if clients > 1 else ''}", len(reqs), seconds, lat,
                      f"{mean_batch:.1f}"), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
