"""Training a head: a LoRA adapter that maximises the log-likelihood of the answer tokens.

One run gives a whole learning curve. The pairs are put in one seeded order, and an adapter is
saved whenever the number of examples seen reaches 16, 32, 64, ... and at the end. Batches are
cut at multiples of the batch size *and* at those sizes, so the adapter saved at n is the one a
run on exactly the first n examples would give (with a constant learning rate, one run replaces
ten). There is no length-aware reordering: batches are packed without padding instead (below).

Work nobody uses is not done:

* a batch is one row: the examples are concatenated with position ids restarting at each, so no
  padding token goes through the projections and MLPs; attention sees them as a zero-padded
  batch and runs per example as batched products (``packing.segment_attention``), or, where an
  architecture does not allow that, through one block-diagonal mask over the row;
* each LoRA layer adds its low-rank update into the base product's output in one ``addmm``
  (``fused.fuse_lora``) instead of PEFT's chain of separate operations;
* hidden states are projected onto the vocabulary only at the answer positions, where the loss is.

The loss is the mean negative log-likelihood over the answer tokens of the batch (question tokens
carry none), as the HF Trainer recipe with ``DataCollatorForSeq2Seq`` and ``-100`` labels gives.

Resume: the adapter weights, the optimizer state and the position in the order are saved every
few steps (under a new name, then a pointer is switched with an atomic rename). A run killed at
any point and started again with the same command continues from the last saved state; since
dropout is 0 and the order is fixed, it repeats the same floating-point operations and ends with
the same adapters as an uninterrupted run (tests allow 1e-6 for BLAS thread scheduling).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .distributed import all_reduce_sum, barrier, rank_world
from .errors import ConfigError, LikraError, OutputRefused
from .fused import fuse_lora, unfuse_lora
from .io import atomic_dir, write_json
from .negatives import Pair
from .packing import (SEGMENT_ATTENTION, Encoder, Segments, attention_masks, per_example_attention_allowed,
                      register_segment_attention, sliding_window, softcap_logits)
from .provenance import versions
from .train_config import TrainConfig

# peft still reads a transformers attribute deprecated in 5.x; the warning says nothing to our users
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

MLP_MODULES = {
    "llama": ["gate_proj", "up_proj", "down_proj"],
    "mistral": ["gate_proj", "up_proj", "down_proj"],
    "qwen2": ["gate_proj", "up_proj", "down_proj"],
    "qwen3": ["gate_proj", "up_proj", "down_proj"],
    "gemma": ["gate_proj", "up_proj", "down_proj"],
    "gemma2": ["gate_proj", "up_proj", "down_proj"],
    "gemma3": ["gate_proj", "up_proj", "down_proj"],
    "gemma3_text": ["gate_proj", "up_proj", "down_proj"],
    "phi3": ["gate_up_proj", "down_proj"],
    "gpt2": ["mlp.c_fc", "mlp.c_proj"],
    "gpt_neox": ["dense_h_to_4h", "dense_4h_to_h"],
}


class TrainingDiverged(LikraError, RuntimeError):
    pass


@dataclass
class RunInfo:
    """What a saved adapter records about how it was made (written as likra.json)."""

    model: str
    base_fingerprint: str
    pool: str
    head: str
    negatives: str | None
    seed: int
    n_total: int
    config: dict = field(default_factory=dict)


def checkpoint_sizes(n_total: int, first: int = 16) -> list[int]:
    sizes, n = [], first
    while n < n_total:
        sizes.append(n)
        n *= 2
    return sizes + [n_total]


def batch_bounds(n_total: int, batch_size: int, sizes: list[int]) -> list[tuple[int, int]]:
    cuts = sorted(set(range(batch_size, n_total, batch_size)) | set(sizes) | {n_total})
    start, out = 0, []
    for c in cuts:
        if c > start:
            out.append((start, c))
            start = c
    return out


def default_targets(model) -> list[str]:
    mt = getattr(model.config, "model_type", "")
    if mt not in MLP_MODULES:
        raise ConfigError(f"no default LoRA target modules for model type '{mt}'; pass --target-modules "
                         f"(the MLP projection names of this architecture)")
    return MLP_MODULES[mt]


@dataclass
class Example:
    input_ids: list[int]  # context + answer, last token dropped
    targets: list[int]  # the answer tokens
    start: int  # input position whose output predicts the first answer token


def encode_pairs(pairs: list[Pair], tokenizer, max_length: int) -> list[Example]:
    enc = Encoder(tokenizer)
    out = []
    for p in pairs:
        ctx, ans = enc.pair(p.context, p.answer)
        full = (ctx + ans)[-(max_length + 1):]
        out.append(Example(full[:-1], ans, len(full) - 1 - len(ans)))
    return out


def pack_batch(examples: list[Example]):
    """One row: examples side by side, each its own segment with positions from 0."""
    ids, pos, seg, loss_pos, targets = [], [], [], [], []
    for k, ex in enumerate(examples):
        off = len(ids)
        ids += ex.input_ids
        pos += list(range(len(ex.input_ids)))
        seg += [k + 1] * len(ex.input_ids)
        loss_pos += [off + q for q in range(ex.start, len(ex.input_ids))]
        targets += ex.targets
    t = lambda x: torch.tensor([x], dtype=torch.long)  # noqa: E731
    return t(ids), t(pos), t(seg), torch.tensor(loss_pos), torch.tensor(targets)


def batch_loss(lm, examples: list[Example], window: int | None, bf16: bool,
               denominator: int | None = None) -> tuple[torch.Tensor, int]:
    """NLL of the answer tokens: their mean, or their sum over ``denominator`` (a data-parallel
    process holds part of a batch and divides by the whole batch's answer tokens)."""
    ids, pos, seg, loss_pos, targets = pack_batch(examples)
    param = next(lm.parameters())
    dev = param.device
    dtype = torch.bfloat16 if bf16 else param.dtype
    extra = {}
    if lm.config._attn_implementation == SEGMENT_ATTENTION:
        masks, extra["likra_segments"] = None, Segments([len(e.input_ids) for e in examples], dev)
    else:
        masks = attention_masks(seg, pos, dtype, window)
        masks = {k: m.to(dev) for k, m in masks.items()} if isinstance(masks, dict) else masks.to(dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        hidden = lm.get_decoder()(input_ids=ids.to(dev), attention_mask=masks, position_ids=pos.to(dev), use_cache=False,
                                  **extra).last_hidden_state
        logits = lm.get_output_embeddings()(hidden[0, loss_pos.to(dev)])
    logits = softcap_logits(lm.config, logits.float())
    if denominator is None:
        return F.cross_entropy(logits, targets.to(dev)), ids.shape[1]
    return F.cross_entropy(logits, targets.to(dev), reduction="sum") / denominator, ids.shape[1]


def use_segment_attention(lm) -> str | None:
    """Switch ``lm`` to per-example attention; returns the implementation to restore, or None where
    the architecture does not dispatch through transformers' attention interface (then the masked
    path is used)."""
    before = lm.config._attn_implementation
    if not per_example_attention_allowed(lm.config):
        return None
    register_segment_attention()
    try:
        lm.set_attn_implementation(SEGMENT_ATTENTION)
    except (ValueError, AttributeError, NotImplementedError):
        return None
    return before


def compile_layers(lm) -> list:
    """Compile every decoder layer in place (same parameter names, so adapters save as usual).
    One graph serves all layers; sequence lengths are dynamic, so batches of new lengths do not
    recompile. Returns the layers, for ``uncompile_layers``."""
    layers = list(getattr(lm.get_decoder(), "layers", []))
    for layer in layers:
        layer.compile(dynamic=True)
    return layers


def uncompile_layers(layers: list) -> None:
    for layer in layers:
        layer._compiled_call_impl = None  # what nn.Module.compile sets; None means eager again


def _config_key(info: RunInfo, pairs: list[Pair]) -> str:
    # compiling the layers or the attention layout changes no result beyond float rounding: not part of the key
    cfg = {k: v for k, v in info.config.items() if k not in ("compile", "attention", "max_loss_ratio")}
    h = hashlib.sha256(json.dumps({**asdict(info), "config": cfg, "n_pairs": len(pairs)}, sort_keys=True).encode())
    for p in pairs:
        h.update(f"{p.question_id}\x00{p.context}\x00{p.answer}\x01".encode())
    return h.hexdigest()[:16]


def _lora_state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}


def train_head(
    base,
    tokenizer,
    pairs: list[Pair],
    out: str | os.PathLike,
    info: RunInfo,
    config: TrainConfig | None = None,
    progress: bool = True,
) -> list[Path]:
    """Train one LoRA head on ``pairs`` in the given order; returns the saved adapter folders.

    ``out/n-000016``, ``out/n-000032``, ... each a PEFT folder plus ``likra.json``.
    """
    from peft import LoraConfig, get_peft_model
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    n_pairs = len(pairs)
    if n_pairs == 0:
        raise ValueError("no training pairs")
    info.config = asdict(config)
    info.n_total = n_total = n_pairs * config.epochs  # examples seen over the run
    key = _config_key(info, pairs)
    sizes = checkpoint_sizes(n_total, config.first_checkpoint)
    epoch_ends = [n_pairs * (e + 1) for e in range(config.epochs)]
    bounds = batch_bounds(n_total, config.batch_size, sorted(set(sizes) | set(epoch_ends)))
    examples = encode_pairs(pairs, tokenizer, config.max_length)

    torch.manual_seed(info.seed)
    targets = config.target_modules or default_targets(base)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    model.train()
    lm = model.get_base_model()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    window = sliding_window(lm.config)
    uniform = math.log(lm.config.vocab_size)  # the loss of a uniform guess over the vocabulary

    if config.attention not in ("segments", "mask"):
        raise ConfigError(f"attention '{config.attention}' (from --attention or the config's 'attention:' key): "
                         f"use 'segments' or 'mask'")
    attn_before = use_segment_attention(lm) if config.attention == "segments" else None
    fused = fuse_lora(model)
    compiled = compile_layers(lm) if config.compile else []
    step, history = 0, []
    if (out / "state.json").exists():
        step, history = _resume(model, opt, out, key)

    saved_dirs = [out / f"n-{n:06d}" for n in sizes if (out / f"n-{n:06d}" / "likra.json").exists()]
    rank, world = rank_world()  # under a launcher each process takes every world-th example of a batch
    seen = bounds[step - 1][1] if step else 0
    bar = tqdm(total=n_total, initial=seen, desc=f"train {info.head}", unit="ex", disable=not progress or rank != 0,
               dynamic_ncols=True)
    t0, tokens_done, ex_done = time.time(), 0, 0

    def step_loss(batch: list[Example]) -> torch.Tensor:
        n_answer = sum(len(e.targets) for e in batch)
        mine = batch[rank::world]
        if not mine:  # fewer examples than processes: this one adds a zero gradient
            return sum(p.sum() * 0.0 for p in params)
        return batch_loss(lm, mine, window, config.bf16, None if world == 1 else n_answer)[0]

    try:
        while step < len(bounds):
            a, b = bounds[step]
            batch = [examples[i % n_pairs] for i in range(a, b)]
            n_tok = sum(len(e.input_ids) for e in batch)
            try:
                loss = step_loss(batch)
            except Exception as err:  # compilation is an optimisation: without a working compiler, go eager
                if not compiled:
                    raise
                warnings.warn(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); training eagerly "
                              f"(leave --compile off to skip the attempt)")
                uncompile_layers(compiled)
                compiled = []
                loss = step_loss(batch)
            loss_value = loss.detach().reshape(1).clone()
            all_reduce_sum([loss_value])
            if not torch.isfinite(loss_value).all():
                raise TrainingDiverged(f"loss became {loss_value.item()} at step {step + 1} (examples {a}-{b} of the order); "
                                       f"nothing was saved for this step. Lower --lr or use fp32.")
            diverged = divergence(loss_value.item(), [h["loss"] for h in history], uniform, config.max_loss_ratio)
            if diverged:
                raise TrainingDiverged(f"{diverged} at step {step + 1} (examples {a}-{b} of the order); this step was not "
                                       f"taken and nothing after it saved. Lower --lr (now {config.lr:g}), or pass "
                                       f"--max-loss-ratio 0 to train on regardless.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            all_reduce_sum([p.grad for p in params])
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            opt.step()
            step += 1
            tokens_done, ex_done = tokens_done + n_tok, ex_done + b - a
            el = max(time.time() - t0, 1e-9)
            history.append({"step": step, "seen": b, "loss": loss_value.item(), "tokens": n_tok, "elapsed": round(el, 4)})
            bar.update(b - a)
            bar.set_postfix(loss=f"{loss_value.item():.3f}", tok_s=f"{tokens_done / el:.0f}", ex_s=f"{ex_done / el:.1f}")
            if rank == 0 and b in sizes:
                saved_dirs.append(_save_adapter(model, out, b, info, history))
            if rank == 0 and (step % config.state_every == 0 or b in sizes):
                _save_state(model, opt, out, step, key, history)
            if b in sizes:
                barrier()
    finally:
        uncompile_layers(compiled)  # the base model is the caller's: hand it back as it came
        unfuse_lora(fused)
        if attn_before is not None:
            lm.set_attn_implementation(attn_before)
    bar.close()
    if rank != 0:
        return sorted(set(saved_dirs))
    write_json(out / "run.json", {**asdict(info), "checkpoints": sizes, "steps": step, "final_loss": history[-1]["loss"]})
    return sorted(set(saved_dirs))


def divergence(loss: float, earlier: list[float], uniform: float, ratio: float, window: int = 8) -> str | None:
    """Why a step's loss means the run has diverged, or None. A model that starts near the uniform
    loss (random weights) is not diverged there; one that was well below it and climbs back is. The
    ratio test compares means over ``window`` steps, since single batches of 8 vary a lot."""
    if not ratio or not earlier:
        return None
    best = min(earlier)
    if best < uniform - 1.0 and loss >= uniform - 0.05:
        return f"the loss climbed back to {loss:.3f}, the uniform loss ln(vocabulary) = {uniform:.3f}, from {best:.3f}"
    if len(earlier) >= 2 * window:
        recent = (sum(earlier[-(window - 1):]) + loss) / window
        lowest = min(sum(earlier[i:i + window]) / window for i in range(len(earlier) - window + 1))
        if recent > ratio * lowest:
            return (f"the mean loss of the last {window} steps, {recent:.3f}, exceeds {ratio:g} times its lowest "
                    f"value in this run ({lowest:.3f})")
    return None


def _resume(model, opt, out: Path, key: str) -> tuple[int, list[dict]]:
    state = json.loads((out / "state.json").read_text())
    if state["key"] != key:
        raise OutputRefused(f"{out} holds a run with other settings or data; use another --out "
                         f"(or delete {out}) to start afresh")
    saved = torch.load(out / state["dir"] / "state.pt", weights_only=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(saved["lora"][name])
    opt.load_state_dict(saved["optimizer"])
    return state["step"], saved["history"]


def _save_adapter(model, out: Path, n: int, info: RunInfo, history: list[dict]) -> Path:
    final = out / f"n-{n:06d}"

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp)
        meta = {**asdict(info), "n": n, "versions": versions(),
                "loss_last_step": history[-1]["loss"] if history else None}
        write_json(tmp / "likra.json", meta)

    atomic_dir(final, write)
    return final


def _save_state(model, opt, out: Path, step: int, key: str, history: list[dict]) -> None:
    name = f"state-{step:07d}"

    def write(tmp: Path) -> None:
        torch.save({"lora": _lora_state(model), "optimizer": opt.state_dict(), "history": history}, tmp / "state.pt")

    atomic_dir(out / name, write)
    write_json(out / "state.json", {"step": step, "dir": name, "key": key})  # the switch: before it the old state is current
    for old in out.glob("state-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["TrainConfig", "RunInfo", "TrainingDiverged", "train_head", "checkpoint_sizes", "batch_bounds", "encode_pairs", "compile_layers", "uncompile_layers"]
