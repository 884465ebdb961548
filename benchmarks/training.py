"""likra's head training vs the seed paper's recipe (HF Trainer + PEFT + DataCollatorForSeq2Seq),
side by side in one run, on the same examples in the same order with the same hyperparameters.

    python benchmarks/training.py [--data-dir ../shared/data] [--n 128] [--pool arc] [--repeat 3]

SmolLM2-135M, positive pairs of the paper's ARC pool (seeded order, first N), LoRA r=8 alpha=8 on
the MLP projections, AdamW lr 1e-4 constant, batch 8, one epoch, gradient clipping 1.0. Each
trainer runs in its own process (peak memory = that run's VmHWM). Prints non-padding tokens/s of
each, the ratio, the recipe's padding share, each run's loss per step and final loss.

A shared two-core machine drifts by +-15% from minute to minute, so the engines run in rounds
(``--repeat``), each round in a new order, and the figures are medians over rounds; the ratio is
also given per round (each round's engines ran within a few minutes of each other).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import peak_rss_mb

MODEL = "smollm2-135m"


def examples(data_dir: str, pool: str, n: int, tokenizer):
    from likra.negatives import pool_items, positive_pairs, shuffled
    from likra.tasks import load_pool, resolve_spec
    from likra.training import encode_pairs

    items = shuffled(pool_items([(resolve_spec(t), d) for t, d in load_pool(pool, data_dir)]), 0)[:n]
    pairs = positive_pairs(items)
    return pairs, encode_pairs(pairs, tokenizer, 2048)


WARMUP_STEPS = 4  # steady-state rates leave out the first steps (compilation of the forward and backward graphs) on both sides


def run_likra(pairs, tok, model, bf16: bool, compile: bool, first_checkpoint: int = 16) -> dict:
    """likra's loop (``first_checkpoint=len(pairs)`` saves only the last adapter, after the last timed step)."""
    import tempfile

    from likra.training import RunInfo, TrainConfig, train_head

    with tempfile.TemporaryDirectory() as out:
        info = RunInfo(MODEL, "", "bench", "positive", None, 0, 0)
        t0 = time.perf_counter()
        config = TrainConfig(bf16=bf16, compile=compile, state_every=10**9, first_checkpoint=first_checkpoint)
        train_head(model, tok, pairs, out, info, config, progress=False)
        seconds = time.perf_counter() - t0
        run = json.loads((Path(out) / "run.json").read_text())
        state = json.loads((Path(out) / "state.json").read_text())
        import torch

        history = torch.load(Path(out) / state["dir"] / "state.pt", weights_only=True)["history"]
    return {"seconds": seconds, "losses": [h["loss"] for h in history], "final_loss": run["final_loss"], "padding_share": 0.0,
            "step_ends": [h["elapsed"] for h in history]}


def run_hf_trainer(exs, tok, model, bf16: bool = False) -> dict:
    """The seed recipe: labels -100 on the question, DataCollatorForSeq2Seq pads each batch
    (``bf16``: the Trainer's bf16 autocast, as the authors' code trains on a GPU)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import SequentialSampler
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    rows = []
    for ex in exs:
        ids = ex.input_ids + ex.targets[-1:]
        labels = [-100] * (ex.start + 1) + ex.targets
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})

    class InOrder(Trainer):  # the same order as likra (the recipe would shuffle with its own seed)
        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    torch.manual_seed(0)
    peft = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0,
                                            target_modules=["gate_proj", "up_proj", "down_proj"], task_type="CAUSAL_LM"))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    scratch = tempfile.mkdtemp(prefix="likra-bench-hf-")  # the Trainer wants an output folder; it saves nothing
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    args = TrainingArguments(output_dir=scratch, per_device_train_batch_size=8, learning_rate=1e-4,
                             lr_scheduler_type="constant", num_train_epochs=1, weight_decay=0.0, max_grad_norm=1.0,
                             logging_steps=1, save_strategy="no", report_to=[], use_cpu=model.device.type == "cpu", seed=0,
                             bf16=bf16,
                             disable_tqdm=True, dataloader_num_workers=0)
    step_ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            step_ends.append(time.perf_counter() - t0)

    trainer = InOrder(model=peft, args=args, train_dataset=rows, data_collator=collator, callbacks=[StepClock()])
    batches = [rows[i:i + 8] for i in range(0, len(rows), 8)]
    padded = sum(len(b) * max(len(r["input_ids"]) for r in b) for b in batches)
    real = sum(len(r["input_ids"]) for r in rows)
    t0 = time.perf_counter()
    try:
        trainer.train()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": seconds, "losses": losses, "final_loss": losses[-1], "padding_share": 1 - real / padded,
            "step_ends": step_ends}


def worker(engine: str, data_dir: str, pool: str, n: int) -> dict:
    import torch

    from likra.models import load_base, load_tokenizer

    torch.manual_seed(0)
    model, tok = load_base(MODEL), load_tokenizer(MODEL)
    pairs, exs = examples(data_dir, pool, n, tok)
    if engine == "hf-trainer":
        res = run_hf_trainer(exs, tok, model)
    else:
        res = run_likra(pairs, tok, model, bf16=engine == "likra-bf16", compile=engine == "likra-compile")
    step_tokens = [sum(len(e.input_ids) + 1 for e in exs[i:i + 8]) for i in range(0, len(exs), 8)]  # non-padding
    tokens = sum(step_tokens)
    ends = res["step_ends"]
    steady = sum(step_tokens[WARMUP_STEPS:]) / (ends[-1] - ends[WARMUP_STEPS - 1])
    return {"engine": engine, **res, "tokens": tokens, "tokens_per_s": tokens / res["seconds"], "steady_tokens_per_s": steady,
            "warmup_seconds": ends[WARMUP_STEPS - 1], "peak_rss_mb": peak_rss_mb(), "n": len(exs)}


def matmul_gflop_per_step(data_dir: str, pool: str, n: int) -> tuple[float, float]:
    """Matrix-product GFLOP per step of each engine, counted from the model's shapes (attention
    scores and elementwise work left out): forward plus the input-gradient backward of every
    projection (the frozen weights need no weight gradient; LoRA's rank-8 products are negligible)
    over the positions each engine computes: likra the examples' real tokens and the vocabulary at
    answer positions; the recipe every padded position, vocabulary included."""
    import torch

    from likra.models import load_base, load_tokenizer

    model, tok = load_base(MODEL), load_tokenizer(MODEL)
    layer = model.get_decoder().layers[0]
    per_token_layer = 2 * sum(m.weight.numel() for m in layer.modules() if isinstance(m, torch.nn.Linear))
    per_token_head = 2 * model.get_output_embeddings().weight.numel()
    n_layers = len(model.get_decoder().layers)
    _, exs = examples(data_dir, pool, n, tok)
    likra = recipe = 0.0
    for i in range(0, len(exs), 8):
        b = exs[i:i + 8]
        real = sum(len(e.input_ids) for e in b)
        answers = sum(len(e.targets) for e in b)
        padded = len(b) * max(len(e.input_ids) + 1 for e in b)
        likra += 2 * (real * n_layers * per_token_layer + answers * per_token_head)
        recipe += 2 * (padded * n_layers * per_token_layer + padded * per_token_head)
    steps = -(-len(exs) // 8)
    return likra / steps / 1e9, recipe / steps / 1e9


def main() -> None:
    global MODEL
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=os.environ.get("LIKRA_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    p.add_argument("--model", default=MODEL, help="embedded name or model folder (default: %(default)s)")
    p.add_argument("--pool", default="arc")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--repeat", type=int, default=3, help="rounds of all engines (figures are medians)")
    p.add_argument("--engines", default="hf-trainer,likra,likra-compile,likra-bf16")
    p.add_argument("--worker", default=None)
    p.add_argument("--flops", action="store_true", help="only print each engine's matrix-product GFLOP per step")
    args = p.parse_args()
    if args.n < 8 * (WARMUP_STEPS + 1):
        p.error(f"--n {args.n} is too few: steady tokens/s leave out the first {WARMUP_STEPS} steps of batch 8, "
                f"so --n must be at least {8 * (WARMUP_STEPS + 1)}")
    MODEL = args.model
    if args.flops:
        ours, theirs = matmul_gflop_per_step(args.data_dir, args.pool, args.n)
        print(f"matrix products per step (forward + input-gradient backward, attention and elementwise work left out): "
              f"HF recipe {theirs:.1f} GFLOP, likra {ours:.1f} GFLOP ({theirs / ours:.2f}x fewer)")
        import torch

        for rows, k, m in ((280, 576, 1536), (280, 1536, 576), (480, 576, 1536), (2048, 576, 1536)):
            a, w = torch.randn(rows, k), torch.randn(m, k)
            for _ in range(5):
                a @ w.t()
            t0 = time.perf_counter()
            for _ in range(50):
                a @ w.t()
            rate = 2 * rows * k * m * 50 / (time.perf_counter() - t0) / 1e9
            print(f"fp32 GEMM [{rows}x{k}] @ [{k}x{m}]: {rate:.0f} GFLOP/s "
                  f"(likra's matrix products alone: {ours / rate:.2f} s per step at this rate)")
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir, args.pool, args.n)))
        return
    import statistics
    import tempfile

    engines = args.engines.split(",")
    rounds: dict[str, list[dict]] = {e: [] for e in engines}
    for r in range(args.repeat):
        for engine in engines[r % len(engines):] + engines[:r % len(engines)]:  # a new order each round
            # a fresh compile cache per run: the compile time counted is that of a first run on a new machine
            cache = tempfile.mkdtemp(prefix="likra-inductor-")
            env = dict(os.environ, TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false", TORCHINDUCTOR_CACHE_DIR=cache)
            out = subprocess.run([sys.executable, __file__, "--worker", engine, "--data-dir", args.data_dir, "--pool", args.pool,
                                  "--n", str(args.n), "--model", MODEL], capture_output=True, text=True, env=env)
            if out.returncode != 0:
                raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
            rounds[engine].append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = lambda e, k: statistics.median(r[k] for r in rounds[e])  # noqa: E731
    results = {e: {**rounds[e][0], **{k: med(e, k) for k in ("steady_tokens_per_s", "tokens_per_s", "warmup_seconds", "seconds",
                                                                 "peak_rss_mb")}} for e in engines}
    print(f"# training benchmark: {MODEL}, pool {args.pool}, first {args.n} positive pairs, batch 8, LoRA r=8 on MLP, "
          f"{os.cpu_count()} CPUs, {args.repeat} rounds (medians)")
    print("likra: fp32 (the default); likra-compile: fp32 with compiled decoder layers (--compile); likra-bf16: bf16 autocast; "
          f"steady: non-padding tokens/s after the first {WARMUP_STEPS} steps (which hold the compilation)")
    print(f"{'engine':<13}{'steady tok/s':>13}{'overall tok/s':>14}{'first steps s':>14}{'seconds':>9}{'s/step':>8}"
          f"{'padding':>8}{'final loss':>11}{'peak MB':>9}")
    for name, r in results.items():
        steps = len(r["losses"])
        print(f"{name:<13}{r['steady_tokens_per_s']:>13.1f}{r['tokens_per_s']:>14.1f}{r['warmup_seconds']:>14.1f}{r['seconds']:>9.1f}"
              f"{r['seconds'] / steps:>8.2f}{r['padding_share']:>8.0%}{r['final_loss']:>11.4f}{r['peak_rss_mb']:>9.0f}")
    if "hf-trainer" not in results:
        return
    ref = results["hf-trainer"]
    print("\nspeed ratio to the HF Trainer recipe (steady / overall; medians, then each round's steady ratio):")
    others = [e for e in engines if e != "hf-trainer"]
    for name in others:
        r = results[name]
        per_round = [a["steady_tokens_per_s"] / b["steady_tokens_per_s"] for a, b in zip(rounds[name], rounds["hf-trainer"])]
        print(f"  {name:<14}{r['steady_tokens_per_s'] / ref['steady_tokens_per_s']:.2f}x / {r['tokens_per_s'] / ref['tokens_per_s']:.2f}x"
              f"   rounds: {', '.join(f'{x:.2f}x' for x in per_round)}")
    for name in [e for e in others if e != "likra-bf16"]:
        diffs = [abs(a - b) for a, b in zip(ref["losses"], results[name]["losses"])]
        print(f"per-step loss, {name} vs HF Trainer: max |diff| {max(diffs):.2e} over {len(diffs)} steps "
              f"(first {ref['losses'][0]:.4f} vs {results[name]['losses'][0]:.4f})")


if __name__ == "__main__":
    main()
