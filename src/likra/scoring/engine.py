"""The option-scoring engine: log-likelihood of every option of every item under every head.

Numbers match lm-evaluation-harness's HF backend (same tokenisation of each (context,
continuation) pair, same left truncation); the speed comes from not repeating work:

* **Shared prefixes.** The options of an item share a token prefix (the whole context for most
  tasks, the sentence start for WinoGrande). It is put once in a row, followed by each option's
  remaining tokens; a 4D attention mask lets every option see the prefix and itself only, and
  position ids restart after the prefix, so each option is computed exactly as in its own run.
* **Many items per forward.** Items are sorted by packed length and grouped up to a token budget,
  so rows in a batch have similar lengths and padding stays small.
* **Vocabulary projection only where scored.** The decoder's hidden states are gathered at the
  scored positions before the LM head; there is never a [batch, seq, vocab] tensor.

Sliding-window models (Gemma-3) get their window written into the mask of their sliding layers,
because a custom mask replaces the one the model would build.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..distributed import gather_objects, rank_world
from ..errors import InputRefused
from ..models import BASE_HEAD, HeadSwitch, autocast_dtype
from ..packing import Encoder, attention_masks, build_mask, sliding_window, softcap_logits
from ..tasks.base import Item
from .progress import ScoreLog
from .table import ScoreTable

DEFAULT_MAX_LENGTH = 2048  # lm-eval's fallback when neither config nor tokenizer says


@dataclass
class Encoded:
    """One option: the token sequence whose last ``n_cont`` tokens are scored (already left
    truncated to max_length + 1 tokens, as lm-eval does)."""

    tokens: list[int]
    n_cont: int
    truncated: bool


@dataclass
class Packed:
    """One item as one row: prefix, then each option's remaining input tokens."""

    item_index: int
    input_ids: list[int]
    position_ids: list[int]
    segment: list[int]  # 0 = shared prefix, i+1 = option i's own tokens
    prefix_len: int
    # per option: (row positions whose logits predict the targets, target token ids)
    scored: list[tuple[list[int], list[int]]]


def resolve_max_length(model, tokenizer) -> int:
    """lm-eval's rule: the config's n_positions / max_position_embeddings / n_ctx, then the
    tokenizer's model_max_length, then 2048."""
    config = getattr(model, "config", None)
    for cfg in (getattr(config, "text_config", None), config):
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            value = getattr(cfg, attr, None) if cfg is not None else None
            if isinstance(value, int):
                return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and value < 10**12:
        return value
    return DEFAULT_MAX_LENGTH


def encode_item(encoder: Encoder, item: Item, max_length: int) -> list[Encoded]:
    out = []
    for o, (ctx, cont) in enumerate(zip(item.contexts, item.continuations)):
        if item.n_chars[o] <= 0:
            raise InputRefused(f"item '{item.id}', option {o}: the continuation {cont!r} has no characters, so its "
                               f"per-character score is undefined; fix the row or skip it (--skip-invalid)")
        ctx_ids, cont_ids = encoder.pair(ctx, cont)
        if not cont_ids:
            raise InputRefused(f"item '{item.id}': continuation {cont!r} encodes to no tokens")
        if len(cont_ids) > max_length:
            raise InputRefused(f"item '{item.id}': continuation of {len(cont_ids)} tokens exceeds the model window {max_length}")
        full = ctx_ids + cont_ids
        truncated = len(full) > max_length + 1
        out.append(Encoded(full[-(max_length + 1):], len(cont_ids), truncated))
    return out


def pack_item(index: int, options: list[Encoded]) -> Packed:
    """Put the options' common input prefix once, then each option's own tail."""
    inputs = [o.tokens[:-1] for o in options]
    n = min(len(x) for x in inputs)
    p = 0
    first = inputs[0]
    while p < n and all(x[p] == first[p] for x in inputs[1:]):
        p += 1
    ids, pos, seg = list(first[:p]), list(range(p)), [0] * p
    scored = []
    for i, (opt, inp) in enumerate(zip(options, inputs)):
        offset = len(ids)
        tail = inp[p:]
        ids += tail
        pos += list(range(p, p + len(tail)))
        seg += [i + 1] * len(tail)
        # input position q predicts token q+1; the targets are the last n_cont tokens
        start = len(opt.tokens) - 1 - opt.n_cont
        rows = [q if q < p else offset + (q - p) for q in range(start, len(inp))]
        scored.append((rows, opt.tokens[-opt.n_cont:]))
    return Packed(index, ids, pos, seg, p, scored)


def make_batches(packed: list[Packed], batch_tokens: int, max_rows: int = 64) -> list[list[Packed]]:
    """Longest first (memory problems show at once), rows*length within the token budget."""
    order = sorted(packed, key=lambda p: len(p.input_ids), reverse=True)
    batches, cur = [], []
    for p in order:
        width = len(cur[0].input_ids) if cur else len(p.input_ids)
        if cur and ((len(cur) + 1) * width > batch_tokens or len(cur) >= max_rows):
            batches.append(cur)
            cur = []
        cur.append(p)
    if cur:
        batches.append(cur)
    return batches


class Scorer:
    """Scores items under several heads of one model (base and/or LoRA adapters)."""

    def __init__(self, model, tokenizer, batch_tokens: int = 1024, max_length: int | None = None, split_prefix_at: int = 256,
                 chat_template: bool = False):
        self.heads = HeadSwitch(model)
        self.lm = self.heads.causal_lm()
        self.tokenizer, self.chat_template = tokenizer, chat_template  # see likra.chat
        self.encoder = Encoder(tokenizer, move_whitespace=not chat_template)
        self.batch_tokens = batch_tokens
        self.max_length = max_length or resolve_max_length(self.lm, tokenizer)
        config = self.lm.config
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.encoder.prefix_token_id or 0)
        self.window = sliding_window(config)
        # A bf16-mixed model runs its decoder under autocast (likra.models.load_base); masks are
        # built in the dtype attention runs in, whose finite minimum keeps padded rows free of NaN.
        self.autocast = autocast_dtype(self.lm)
        self.dtype = self.autocast or next(self.lm.parameters()).dtype
        self.device = next(self.lm.parameters()).device
        # Long shared prefixes run first as plain causal rows (the fast attention path) and the
        # options then attend to their cached keys/values; sliding-window caches keep only the
        # window, so those models always take the one-pass path.
        self.split_prefix_at = split_prefix_at if self.window is None else None
        params = inspect.signature(self.lm.get_decoder().forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x

    def _rows(self, batch: list[Packed], start: list[int], stop: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ids, positions and segments of each row's tokens [start, stop)."""
        stop = stop or [len(p.input_ids) for p in batch]
        T = max(b - a for a, b in zip(start, stop))
        ids = torch.full((len(batch), T), self.pad_id, dtype=torch.long)
        pos = torch.zeros((len(batch), T), dtype=torch.long)
        seg = torch.full((len(batch), T), -1, dtype=torch.long)
        for r, (p, a, b) in enumerate(zip(batch, start, stop)):
            ids[r, : b - a] = torch.tensor(p.input_ids[a:b])
            pos[r, : b - a] = torch.tensor(p.position_ids[a:b])
            seg[r, : b - a] = torch.tensor(p.segment[a:b])
        return ids, pos, seg

    def _hidden_one_pass(self, batch: list[Packed]) -> tuple[torch.Tensor, list[list[int]]]:
        ids, pos, seg = self._rows(batch, [0] * len(batch))
        masks = attention_masks(seg, pos, self.dtype, self.window)
        masks = {k: m.to(self.device) for k, m in masks.items()} if isinstance(masks, dict) else masks.to(self.device)
        hidden = self.lm.get_decoder()(input_ids=ids.to(self.device), attention_mask=masks, position_ids=pos.to(self.device),
                                       use_cache=False).last_hidden_state
        return hidden, [list(range(len(p.input_ids))) for p in batch]

    def _hidden_two_pass(self, batch: list[Packed]) -> tuple[torch.Tensor, list[list[int]]]:
        """Prefixes as plain causal rows with a cache, then all options' tails against it."""
        from transformers import DynamicCache

        decoder = self.lm.get_decoder()
        P = [p.prefix_len for p in batch]
        pre_ids, pre_pos, _ = self._rows(batch, [0] * len(batch), P)
        Pmax = pre_ids.shape[1]
        cache = {self._cache_arg: DynamicCache(config=self.lm.config)}
        # Right padding needs no mask in a causal pass: real tokens never look right.
        h1 = decoder(input_ids=pre_ids.to(self.device), position_ids=pre_pos.to(self.device), use_cache=True, **cache).last_hidden_state
        ids, pos, seg = self._rows(batch, P)
        B, S = ids.shape
        if S == 0:  # every option's input lies inside the prefix (one-token options)
            return h1, [list(range(len(p.input_ids))) for p in batch]
        allowed = torch.zeros(B, S, Pmax + S, dtype=torch.bool)
        allowed[:, :, :Pmax] = (torch.arange(Pmax)[None, None, :] < torch.tensor(P)[:, None, None]) & (seg[:, :, None] >= 0)
        idx = torch.arange(S)
        same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] >= 0) & (idx[:, None] >= idx[None, :])[None]
        allowed[:, :, Pmax:] = same | torch.eye(S, dtype=torch.bool)[None]
        mask = torch.zeros(B, 1, S, Pmax + S, dtype=self.dtype).masked_fill_(~allowed[:, None], torch.finfo(self.dtype).min)
        h2 = decoder(input_ids=ids.to(self.device), position_ids=pos.to(self.device), attention_mask=mask.to(self.device),
                     use_cache=True, **cache).last_hidden_state
        where = [[q if q < P[r] else Pmax + q - P[r] for q in range(len(p.input_ids))] for r, p in enumerate(batch)]
        return torch.cat([h1, h2], dim=1), where

    @torch.inference_mode()
    def _forward(self, batch: list[Packed]) -> tuple[list[list[float]], list[list[bool]]]:
        two_pass = self.split_prefix_at is not None and max(p.prefix_len for p in batch) >= self.split_prefix_at
        with torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext():
            hidden, where = self._hidden_two_pass(batch) if two_pass else self._hidden_one_pass(batch)
        rows, cols, targets, owners = [], [], [], []
        for r, p in enumerate(batch):
            for o, (positions, tgt) in enumerate(p.scored):
                rows += [r] * len(positions)
                cols += [where[r][q] for q in positions]
                targets += tgt
                owners += [(r, o)] * len(positions)
        h = hidden[torch.tensor(rows, device=self.device), torch.tensor(cols, device=self.device)]
        logits = softcap_logits(self.lm.config, self.lm.get_output_embeddings()(h).float())  # outside autocast: fp32 where mixed
        logp = F.log_softmax(logits, dim=-1)
        tgt = torch.tensor(targets, device=self.device)
        tok_lp = logp.gather(1, tgt[:, None])[:, 0].double().cpu()
        greedy = (logits.argmax(-1) == tgt).cpu()
        sums = [[0.0] * len(p.scored) for p in batch]
        greedy_all = [[True] * len(p.scored) for p in batch]
        # Sum per option in float64 so the order of additions never matters.
        for k, (r, o) in enumerate(owners):
            sums[r][o] += tok_lp[k].item()
            if not greedy[k]:
                greedy_all[r][o] = False
        return sums, greedy_all

    def score(self, items: list[Item], heads: list[str] | None = None, progress: bool = True, meta: dict | None = None,
              log: ScoreLog | None = None) -> ScoreTable:
        """One table row per (item, option, head). With ``log``, finished batches are recorded there
        and what an earlier, stopped run recorded is not scored again (one process only)."""
        from tqdm.auto import tqdm

        heads = heads or self.heads.names()
        if self.chat_template:
            from ..chat import chat_item

            items = [chat_item(it, self.tokenizer) for it in items]
        rank, world = rank_world()  # under a launcher: this process takes every world-th batch
        log = log if world == 1 else None
        results = log.load(items, heads) if log else {h: {} for h in heads}
        encoded = [encode_item(self.encoder, it, self.max_length) for it in items]
        packed = [pack_item(i, e) for i, e in enumerate(encoded) if any(i not in results[h] for h in heads)]
        batches = make_batches(packed, self.batch_tokens)
        n_opts = sum(it.n_options for it in items) * len(heads)
        bar = tqdm(total=n_opts // world, desc="scoring options", unit="opt", disable=not progress or rank != 0,
                   dynamic_ncols=True, initial=sum(items[i].n_options for r in results.values() for i in r))
        for b, batch in enumerate(batches):
            if b % world != rank:
                continue
            for head in heads:
                todo = [p for p in batch if p.item_index not in results[head]]
                if not todo:
                    continue
                with self.heads.activate(head):
                    sums, greedy = self._forward(todo)
                finished = {p.item_index: (s, g) for p, s, g in zip(todo, sums, greedy)}
                results[head].update(finished)
                if log:
                    log.append(head, items, finished)
                bar.update(sum(len(p.scored) for p in todo))
        bar.close()
        if world > 1:
            for part in gather_objects(results):
                for head in heads:
                    results[head].update(part[head])
        table = ScoreTable.empty()
        for head in heads:
            for i, (it, enc) in enumerate(zip(items, encoded)):
                s, g = results[head][i]
                for o in range(it.n_options):
                    if not math.isfinite(s[o]):
                        raise InputRefused(f"item '{it.id}', option {o}, head '{head}': log-likelihood {s[o]} cannot be "
                                           f"compared (the model gives the continuation no probability)")
                    table.append(
                        item_id=it.id, option=o, head=head, loglik=s[o], n_tokens=enc[o].n_cont,
                        n_chars=it.n_chars[o], gold=(o == it.gold), greedy=g[o], truncated=enc[o].truncated,
                    )
        table.meta.update(meta or {})
        table.meta["n_truncated_options"] = sum(e.truncated for enc in encoded for e in enc)
        table.meta["max_length"] = self.max_length
        return table


__all__ = ["Scorer", "Encoder", "encode_item", "pack_item", "build_mask", "make_batches", "resolve_max_length", "BASE_HEAD"]
