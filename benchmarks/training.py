"""likra's head training vs the seed paper's recipe (HF Trainer + PEFT + DataCollatorForSeq2Seq),
side by side in one run, on the same examples in the same order with the same hyperparameters.

    python benchmarks/training.py [--data-dir ../shared/data] [--n 128] [--pool arc]

SmolLM2-135M, positive pairs of the paper's ARC pool (seeded order, first N), LoRA r=8 alpha=8 on
the MLP projections, AdamW lr 1e-4 constant, batch 8, one epoch, gradient clipping 1.0. Each
trainer runs in its own process (peak memory = that run's VmHWM). Prints non-padding tokens/s of
each, the ratio, the recipe's padding share, each run's loss per step and final loss.
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


def examples(data_dir: str, pool: str, n: int, tokenizer):
    from likra.negatives import pool_items, positive_pairs, shuffled
    from likra.tasks import load_pool, resolve_spec
    from likra.training import encode_pairs

    items = shuffled(pool_items([(resolve_spec(t), d) for t, d in load_pool(pool, data_dir)]), 0)[:n]
    pairs = positive_pairs(items)
    return pairs, encode_pairs(pairs, tokenizer, 2048)


def run_likra(pairs, tok, model, bf16: bool) -> dict:
    import tempfile

    from likra.training import RunInfo, TrainConfig, train_head

    with tempfile.TemporaryDirectory() as out:
        info = RunInfo(MODEL, "", "bench", "positive", None, 0, 0)
        t0 = time.perf_counter()
        train_head(model, tok, pairs, out, info, TrainConfig(bf16=bf16, state_every=10**9), progress=False)
        seconds = time.perf_counter() - t0
        run = json.loads((Path(out) / "run.json").read_text())
        state = json.loads((Path(out) / "state.json").read_text())
        import torch

        history = torch.load(Path(out) / state["dir"] / "state.pt", weights_only=True)["history"]
    return {"seconds": seconds, "losses": [h["loss"] for h in history], "final_loss": run["final_loss"], "padding_share": 0.0}


def run_hf_trainer(exs, tok, model) -> dict:
    """The seed recipe: labels -100 on the question, DataCollatorForSeq2Seq pads each batch."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import SequentialSampler
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

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
    collator = DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100)
    args = TrainingArguments(output_dir="/tmp/likra-bench-hf", per_device_train_batch_size=8, learning_rate=1e-4,
                             lr_scheduler_type="constant", num_train_epochs=1, weight_decay=0.0, max_grad_norm=1.0,
                             logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, seed=0,
                             disable_tqdm=True, dataloader_num_workers=0)
    trainer = InOrder(model=peft, args=args, train_dataset=rows, data_collator=collator)
    batches = [rows[i:i + 8] for i in range(0, len(rows), 8)]
    padded = sum(len(b) * max(len(r["input_ids"]) for r in b) for b in batches)
    real = sum(len(r["input_ids"]) for r in rows)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": seconds, "losses": losses, "final_loss": losses[-1], "padding_share": 1 - real / padded}


def worker(engine: str, data_dir: str, pool: str, n: int) -> dict:
    import torch

    from likra.models import load_base, load_tokenizer

    torch.manual_seed(0)
    model, tok = load_base(MODEL), load_tokenizer(MODEL)
    pairs, exs = examples(data_dir, pool, n, tok)
    if engine == "hf-trainer":
        res = run_hf_trainer(exs, tok, model)
    else:
        res = run_likra(pairs, tok, model, bf16=engine == "likra-bf16")
    tokens = sum(len(e.input_ids) + 1 for e in exs)  # non-padding tokens of the examples
    return {"engine": engine, **res, "tokens": tokens, "tokens_per_s": tokens / res["seconds"],
            "peak_rss_mb": peak_rss_mb(), "n": len(exs)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", default=os.environ.get("LIKRA_DATA_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    p.add_argument("--pool", default="arc")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--worker", default=None)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.data_dir, args.pool, args.n)))
        return
    env = dict(os.environ, TQDM_DISABLE="1", TOKENIZERS_PARALLELISM="false")
    results = {}
    for engine in ("hf-trainer", "likra", "likra-bf16"):
        out = subprocess.run([sys.executable, __file__, "--worker", engine, "--data-dir", args.data_dir, "--pool", args.pool,
                              "--n", str(args.n)], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
        results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"# training benchmark: {MODEL}, pool {args.pool}, first {args.n} positive pairs, batch 8, LoRA r=8 on MLP, {os.cpu_count()} CPUs")
    print(f"{'engine':<14}{'non-pad tok/s':>14}{'seconds':>10}{'s/step':>9}{'padding':>9}{'final loss':>12}{'peak MB':>10}")
    for name, r in results.items():
        steps = len(r["losses"])
        print(f"{name:<14}{r['tokens_per_s']:>14.1f}{r['seconds']:>10.1f}{r['seconds'] / steps:>9.2f}{r['padding_share']:>9.0%}"
              f"{r['final_loss']:>12.4f}{r['peak_rss_mb']:>10.0f}")
    ref, ours, bf = results["hf-trainer"], results["likra"], results["likra-bf16"]
    diffs = [abs(a - b) for a, b in zip(ref["losses"], ours["losses"])]
    print(f"\nlikra/HF-Trainer speed ratio (fp32): {ours['tokens_per_s'] / ref['tokens_per_s']:.2f}x; "
          f"bf16 autocast: {bf['tokens_per_s'] / ref['tokens_per_s']:.2f}x")
    print(f"per-step loss, likra vs HF Trainer: max |diff| {max(diffs):.2e} over {len(diffs)} steps "
          f"(first {ref['losses'][0]:.4f} vs {ours['losses'][0]:.4f})")


if __name__ == "__main__":
    main()
