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

Each step is appended to ``train_log.jsonl`` in the run folder (loss, learning rate, tokens/s,
examples seen; ``read_train_log`` reads it back), and to TensorBoard event files under
``tensorboard/`` when that package is installed. On resume the log is rewritten from the history
saved with the resumed state, so steps run after that state and lost with the kill are not kept twice.

Adapters are portable: ``adapter_config.json`` names the base by its public id (an embedded model's
hub id, a local folder by its name, never a machine's path), and each folder carries a model card
(``README.md`` in the Hub's format) saying what head it is, what it saw and how to load it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .distributed import all_reduce_sum, barrier, rank_world
from .embedded import EMBEDDED, record
from .errors import ConfigError, LikraError, OutputRefused
from .fused import fuse_lora, unfuse_lora
from .io import atomic_dir, atomic_write, write_json
from .models import weights_fingerprint
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


def encode_pairs(pairs: list[Pair], tokenizer, max_length: int, chat_template: bool = False) -> list[Example]:
    """Token ids of each (prompt, answer) pair, tokenised as the scorer tokenises an option, so that
    a head learns exactly the tokens it is later scored on (``chat_template``: see likra.chat)."""
    enc = Encoder(tokenizer, move_whitespace=not chat_template)
    prompts: dict[str, str] = {}
    out = []
    for p in pairs:
        context, answer = p.context, p.answer
        if chat_template:
            from .chat import chat_prompt

            context = prompts.get(context) or prompts.setdefault(context, chat_prompt(tokenizer, context.rstrip()))
            answer = answer.lstrip()
        ctx, ans = enc.pair(context, answer)
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
    if not cfg.get("chat_template"):  # added later: the plain prompt keeps the key it always had
        cfg.pop("chat_template", None)
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
    stop_at: int | None = None,
) -> list[Path]:
    """Train one LoRA head on ``pairs`` in the given order; returns the saved adapter folders.

    ``out/n-000016``, ``out/n-000032``, ... each a PEFT folder plus ``likra.json``. ``stop_at``
    (one of the run's curve points) pauses the run once that adapter is saved, with a resume state
    beside it: the same call without ``stop_at`` goes on to the end, step for step as if never
    paused. It lets a queue score an early point before the long rest of a run.
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
    keys = [key]
    if (out / "state.json").exists():  # a run begun before 2026-12-03 keyed the older fp32 fingerprint
        keys.append(_config_key(replace(info, base_fingerprint=weights_fingerprint(base, legacy=True)), pairs))
    sizes = checkpoint_sizes(n_total, config.first_checkpoint)
    if stop_at is not None and stop_at not in sizes:
        raise ConfigError(f"--stop-at {stop_at} is not a curve point of this run; its points are "
                          f"{', '.join(map(str, sizes))}")
    epoch_ends = [n_pairs * (e + 1) for e in range(config.epochs)]
    bounds = batch_bounds(n_total, config.batch_size, sorted(set(sizes) | set(epoch_ends)))
    examples = encode_pairs(pairs, tokenizer, config.max_length, config.chat_template)

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
        step, history = _resume(model, opt, out, keys)

    saved_dirs = [out / f"n-{n:06d}" for n in sizes if (out / f"n-{n:06d}" / "likra.json").exists()]
    rank, world = rank_world()  # under a launcher each process takes every world-th example of a batch
    seen = bounds[step - 1][1] if step else 0
    bar = tqdm(total=n_total, initial=seen, desc=f"train {info.head}", unit="ex", disable=not progress or rank != 0,
               dynamic_ncols=True)
    t0, tokens_done, ex_done = time.time(), 0, 0
    elapsed0 = history[-1]["elapsed"] if history else 0.0  # the log's clock runs on across resumes
    log = TrainLog(out, history, config.lr, step) if rank == 0 else None

    def step_loss(batch: list[Example]) -> torch.Tensor:
        n_answer = sum(len(e.targets) for e in batch)
        mine = batch[rank::world]
        if not mine:  # fewer examples than processes: this one adds a zero gradient
            return sum(p.sum() * 0.0 for p in params)
        return batch_loss(lm, mine, window, config.bf16, None if world == 1 else n_answer)[0]

    end = len(bounds) if stop_at is None else next(i + 1 for i, (_, b) in enumerate(bounds) if b == stop_at)
    try:
        while step < end:
            a, b = bounds[step]
            batch = [examples[i % n_pairs] for i in range(a, b)]
            n_tok = sum(len(e.input_ids) for e in batch)
            t_step = time.time()
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
            now = time.time()
            el = max(now - t0, 1e-9)
            history.append({"step": step, "seen": b, "loss": loss_value.item(), "tokens": n_tok,
                            "elapsed": round(elapsed0 + el, 4), "lr": opt.param_groups[0]["lr"],
                            "tokens_per_s": round(n_tok / max(now - t_step, 1e-9), 1)})
            if log:
                log.append(history[-1])
            bar.update(b - a)
            bar.set_postfix(loss=f"{loss_value.item():.3f}", tok_s=f"{tokens_done / el:.0f}", ex_s=f"{ex_done / el:.1f}")
            if rank == 0 and b in sizes:
                saved_dirs.append(_save_adapter(model, out, b, info, history))
            if rank == 0 and (step % config.state_every == 0 or b in sizes):
                _save_state(model, opt, out, step, key, history)
            if b in sizes:
                barrier()
    finally:
        if log:
            log.close()
        uncompile_layers(compiled)  # the base model is the caller's: hand it back as it came
        unfuse_lora(fused)
        if attn_before is not None:
            lm.set_attn_implementation(attn_before)
    bar.close()
    if rank != 0 or step < len(bounds):  # a paused run has no run.json until it ends
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


def _resume(model, opt, out: Path, keys: list[str]) -> tuple[int, list[dict]]:
    state = json.loads((out / "state.json").read_text())
    if state["key"] not in keys:
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
        meta = adapter_meta(info, n, loss_last_step=history[-1]["loss"] if history else None)
        write_json(tmp / "likra.json", meta)
        make_portable(tmp, meta, final)

    atomic_dir(final, write)
    return final


# ---- the training log --------------------------------------------------------------------------

TRAIN_LOG = "train_log.jsonl"


def _log_row(h: dict, lr: float) -> dict:
    """A history entry as a log line (entries saved by older versions lack lr and tokens/s)."""
    return {"step": h["step"], "examples": h["seen"], "loss": h["loss"], "lr": h.get("lr", lr), "tokens": h["tokens"],
            "tokens_per_s": h.get("tokens_per_s"), "elapsed_s": h["elapsed"]}


class TrainLog:
    """``train_log.jsonl``, one line per optimizer step, flushed as it is written; TensorBoard
    scalars beside it when ``tensorboard`` is importable. Opening it rewrites the file from the
    history of the state being resumed: lines of steps after that state (run before a kill) go."""

    def __init__(self, out: Path, history: list[dict], lr: float, step: int):
        self.lr = lr
        self.path = out / TRAIN_LOG
        atomic_write(self.path, "".join(json.dumps(_log_row(h, lr)) + "\n" for h in history))
        self.file = self.path.open("a")
        self.tb = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: event files also hold the steps lost with a kill; TensorBoard drops those from here on
            self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=step + 1 if step else None)

    def append(self, h: dict) -> None:
        row = _log_row(h, self.lr)
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.tb:
            for k in ("loss", "lr", "tokens_per_s", "examples"):
                self.tb.add_scalar(f"train/{k}", row[k], row["step"])

    def close(self) -> None:
        self.file.close()
        if self.tb:
            self.tb.close()


def read_train_log(run_dir: str | os.PathLike) -> list[dict]:
    """The per-step log of a training run, oldest step first: dicts with ``step``, ``examples``
    (seen so far), ``loss``, ``lr``, ``tokens`` (of the step), ``tokens_per_s`` (None where not
    recorded) and ``elapsed_s``. ``run_dir`` is the run folder, or one of its ``n-XXXXXX``
    adapters (then only the steps up to that adapter). A run made before the log existed is read
    from the history saved with its last resume state; a folder with neither gives []. A line cut
    short by a kill is skipped (the next resume rewrites it)."""
    run_dir = Path(run_dir)
    upto = None
    if not (run_dir / TRAIN_LOG).exists() and not (run_dir / "state.json").exists() and (run_dir / "likra.json").exists():
        upto = json.loads((run_dir / "likra.json").read_text()).get("n")
        run_dir = run_dir.parent
    rows: list[dict] = []
    if (run_dir / TRAIN_LOG).exists():
        for line in (run_dir / TRAIN_LOG).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    elif (run_dir / "state.json").exists():
        state = json.loads((run_dir / "state.json").read_text())
        saved = torch.load(run_dir / state["dir"] / "state.pt", weights_only=True, map_location="cpu")
        meta = next((m for m in [run_dir / "run.json", *sorted(run_dir.glob("n-*/likra.json"))] if m.exists()), None)
        lr = json.loads(meta.read_text()).get("config", {}).get("lr") if meta else None
        rows = [_log_row(h, lr) for h in saved["history"]]
    return [r for r in rows if upto is None or r["examples"] <= upto]


# ---- portable adapters ---------------------------------------------------------------------------

HUB_LICENSES = {"Apache-2.0": "apache-2.0", "MIT": "mit", "Gemma Terms of Use": "gemma"}  # likra's wording -> the Hub's id


def portable_base(model: str) -> str:
    """What an adapter names as its base: an embedded model's public id; a local folder by its
    name (a machine's path means nothing elsewhere); a hub id as it is."""
    if model in EMBEDDED:
        return EMBEDDED[model].hub_id
    path = Path(model)
    if path.is_absolute() or path.exists():
        return path.resolve().name
    return model


def adapter_meta(info: RunInfo, n: int, **extra) -> dict:
    """An adapter's ``likra.json``: how it was made, and for an embedded base the GGUF file it came from."""
    meta = {**asdict(info), "n": n, "versions": versions(), **extra}
    if info.model in EMBEDDED:
        meta["base_model"] = record(info.model)
    return meta


def make_portable(folder: Path, meta: dict, final: Path | None = None) -> None:
    """Rewrite the base named in ``adapter_config.json`` (PEFT writes the folder it loaded from)
    and write the model card. ``final``: where the folder will live (it may be built elsewhere)."""
    cfg_path = folder / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = portable_base(meta["model"])
    atomic_write(cfg_path, json.dumps(cfg, indent=2, sort_keys=True))
    atomic_write(folder / "README.md", model_card(meta, final or folder))


def model_card(meta: dict, folder: Path) -> str:
    """A Hugging Face Hub model card for an adapter, from its ``likra.json``. Nothing is scored at
    training time, so its accuracy section says so; scores are added under its marker later."""
    head, base_id = meta["head"], portable_base(meta["model"])
    model = meta["model"] if meta["model"] in EMBEDDED else base_id
    pool = re.sub(r"(?<![\w.])/(?:[^\s/+]+/)*([^\s/+]+)", r"\1", meta["pool"])  # jsonl:/a/b/quiz.jsonl -> jsonl:quiz.jsonl
    embedded = meta.get("base_model")
    licence = HUB_LICENSES.get(embedded["licence"]) if embedded else None
    role = {"positive": "positive head (L+): trained on questions with their correct answers",
            "negative": f"negative head (L-): trained on questions with wrong answers ({meta.get('negatives')} negatives)"}
    what = role.get(head, f"{head} baseline adapter (TRL), trained on the same questions and near-miss negatives")
    where = f"{folder.parent.name}/{folder.name}"  # the run folder and this adapter, relative: no machine's path
    front = ["---", f"base_model: {base_id}", "library_name: peft"] + ([f"license: {licence}"] if licence else [])
    front += ["tags:", "- likra", "- likelihood-ratio", "- lora", "- peft", f"- {head}-head" if head in role else f"- {head}", "---"]
    if embedded:
        base_text = (f"`{base_id}` as likra's embedded model `{model}`: the GGUF file `{embedded['source']}` "
                     f"({embedded['quantisation']}, SHA-256 `{embedded['sha256']}`) dequantised to fp32. The adapter was "
                     f"trained on those weights (fingerprint `{meta['base_fingerprint']}`), which "
                     f"`likra.models.resolve_model_path(\"{model}\")` gives; with PEFT it also loads on the original "
                     f"`{base_id}` weights, a base that differs by the quantisation.")
    else:
        base_text = f"`{base_id}` (weights fingerprint `{meta['base_fingerprint']}`)."
    recipe = "\n".join(f"| {k} | {v} |" for k, v in meta.get("config", {}).items())
    use_likra = (f'LikraModel.from_pretrained("{model}", positive="{where}", negative="NEGATIVE_HEAD")'
                 if head == "positive" else
                 f'LikraModel.from_pretrained("{model}", positive="base", negative="{where}")')
    return "\n".join(front + [
        "", f"# likra {head} adapter: {model}, {pool}, n = {meta['n']}, seed {meta['seed']}", "",
        f"A LoRA adapter made by [likra](https://pypi.org/project/likra/): the {what}. A Likra model scores each "
        "option of a question per character as `L+ - w * L-` (log-likelihoods under its positive and negative heads).",
        "", "## Base model", "", base_text,
        "", "## Data", "",
        f"- pool: `{pool}`, in the order of seed {meta['seed']}",
        f"- negatives: {meta.get('negatives') or 'none (positive head)'}",
        f"- n = {meta['n']}: the first {meta['n']} examples of a run of {meta['n_total']}",
        f"- seed: {meta['seed']} (order, negative draws, LoRA initialisation)",
        "", "## Recipe", "", "| setting | value |", "|---|---|", recipe,
        "", "## Use", "", "With likra:", "", "```python", "from likra.api import LikraModel", "",
        f"lm = {use_likra}", 'lm.score("Which gas do plants take in?", ["oxygen", "carbon dioxide"])', "```", "",
        "With PEFT alone:", "", "```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM", "",
        f'base = AutoModelForCausalLM.from_pretrained("{base_id}")', f'model = PeftModel.from_pretrained(base, "{where}")',
        "```", "", "## Accuracies it was scored at", "",
        f"Not scored yet: training records no accuracy. Score it with `likra eval --model {model} --head "
        f"{head}={where}` (or in a `likra curve`); results are added below this line.", "",
        "<!-- likra: scores -->", ""])


def _save_state(model, opt, out: Path, step: int, key: str, history: list[dict]) -> None:
    name = f"state-{step:07d}"

    def write(tmp: Path) -> None:
        torch.save({"lora": _lora_state(model), "optimizer": opt.state_dict(), "history": history}, tmp / "state.pt")

    atomic_dir(out / name, write)
    write_json(out / "state.json", {"step": step, "dir": name, "key": key})  # the switch: before it the old state is current
    for old in out.glob("state-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


__all__ = ["TrainConfig", "RunInfo", "TrainingDiverged", "train_head", "read_train_log", "portable_base", "make_portable", "checkpoint_sizes", "batch_bounds", "encode_pairs", "compile_layers", "uncompile_layers"]
