"""DPO and KTO baselines, trained with TRL's own trainers on the triples the Likra heads use.

Each question of the pool (seeded order, first n) gives (prompt, correct answer, near-miss wrong
answer), the same near-miss the negative head sees. DPO learns from the pair; KTO from the correct
answer as desirable and the wrong one as undesirable; ``kto-rejected`` keeps only the undesirable
rows, the closest relative of Base-Likra (negatives only). LoRA on the same modules with the same
rank, learning rate, batch of 8 rows and one epoch as the heads; TRL's defaults otherwise (beta 0.1).
Rows are fed in order (no shuffling) and an adapter is saved when the number of *questions* seen
reaches 16, 32, 64, ... and at the end, as for the heads, with a ``likra.json`` so that every
likra command loads it as a head.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from .errors import ConfigError
from .io import atomic_dir, write_json
from .negatives import negative_pairs, positive_pairs
from .training import TRAIN_LOG, RunInfo, TrainConfig, adapter_meta, checkpoint_sizes, default_targets, make_portable

METHODS = ("dpo", "kto", "kto-rejected")


def preference_rows(items, method: str, seed: int) -> tuple[list[dict], int]:
    """The rows TRL trains on, and how many rows each question gives."""
    pos = positive_pairs(items)
    neg = negative_pairs(items, "near-miss", seed)
    if method == "dpo":
        return [{"prompt": p.context, "chosen": p.answer, "rejected": n.answer} for p, n in zip(pos, neg)], 1
    if method == "kto":
        rows = []
        for p, n in zip(pos, neg):
            rows += [{"prompt": p.context, "completion": p.answer, "label": True},
                     {"prompt": n.context, "completion": n.answer, "label": False}]
        return rows, 2
    if method == "kto-rejected":
        return [{"prompt": n.context, "completion": n.answer, "label": False} for n in neg], 1
    raise ConfigError(f"unknown method '{method}' (choose from {', '.join(METHODS)})")


def train_baseline(base, tokenizer, items, method: str, out: str | os.PathLike, info: RunInfo,
                   config: TrainConfig | None = None, progress: bool = True) -> list[Path]:
    """Train a DPO/KTO LoRA adapter on ``items`` in order; returns the curve adapter folders."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    config = config or TrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, per_q = preference_rows(items, method, info.seed)
    n_q = len(items)
    sizes = checkpoint_sizes(n_q, config.first_checkpoint)
    if any((n * per_q) % config.batch_size for n in sizes[:-1]):
        raise ConfigError(f"batch size {config.batch_size} must divide every curve size x {per_q} rows per question")
    at_step = {-(-n * per_q // config.batch_size): n for n in sizes}  # ceil: the last batch may be short
    info.config = {**asdict(config), "method": method}
    info.n_total = n_q
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules or default_targets(base), task_type="CAUSAL_LM")
    common = dict(output_dir=str(out / ".trl"), per_device_train_batch_size=config.batch_size, learning_rate=config.lr,
                  lr_scheduler_type="constant", num_train_epochs=config.epochs, weight_decay=config.weight_decay,
                  max_grad_norm=config.max_grad_norm or 0.0, logging_steps=1, save_strategy="no", report_to=[],
                  seed=info.seed, disable_tqdm=not progress, use_cpu=not base.device.type == "cuda",
                  max_length=config.max_length, bf16=config.bf16, include_num_input_tokens_seen="non_padding",
                  gradient_checkpointing=False)  # TRL turns it on by default; the heads do not recompute either
    saved: list[Path] = []
    log = (out / TRAIN_LOG).open("w")  # no resume here: a run starts its log afresh
    clock = {"t": time.time(), "tokens": 0, "t0": time.time()}

    class CurveCheckpoints(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            n = at_step.get(state.global_step)
            if n is not None:
                saved.append(_save(model, out, n, info))

        def on_log(self, args, state, control, logs=None, **kwargs):  # every step (logging_steps=1): the heads' log format
            if not logs or "loss" not in logs:
                return
            now, tokens = time.time(), int(getattr(state, "num_input_tokens_seen", 0) or 0)
            row = {"step": state.global_step, "examples": min(-(-state.global_step * config.batch_size // per_q), n_q),
                   "loss": logs["loss"], "lr": logs.get("learning_rate"), "tokens": tokens - clock["tokens"],
                   "tokens_per_s": round((tokens - clock["tokens"]) / max(now - clock["t"], 1e-9), 1),
                   "elapsed_s": round(now - clock["t0"], 4)}
            clock.update(t=now, tokens=tokens)
            log.write(json.dumps(row) + "\n")
            log.flush()

    if method == "dpo":
        trainer_cls, args = DPOTrainer, DPOConfig(**common)
    else:
        trainer_cls, args = KTOTrainer, KTOConfig(**common, train_sampling_strategy="sequential")

    class InOrder(trainer_cls):  # the seeded order, as for the heads: the adapter at n saw the first n questions
        def _get_train_sampler(self, *a, **k):
            from torch.utils.data import SequentialSampler

            return SequentialSampler(self.train_dataset)

    trainer = InOrder(model=base, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=lora, callbacks=[CurveCheckpoints()])
    try:
        trainer.train()
    finally:
        log.close()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    (out / "run.json").write_text(json.dumps({**asdict(info), "checkpoints": sizes, "steps": trainer.state.global_step,
                                               "final_loss": losses[-1] if losses else None}, indent=1))
    shutil.rmtree(out / ".trl", ignore_errors=True)
    return sorted(set(saved))


def _save(model, out: Path, n: int, info: RunInfo) -> Path:
    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        meta = adapter_meta(info, n)
        write_json(tmp / "likra.json", meta)
        make_portable(tmp, meta, out / f"n-{n:06d}")

    return atomic_dir(out / f"n-{n:06d}", write)
