"""Token-level building blocks shared by scoring and training: lm-eval's tokenisation of
(context, continuation) pairs, and attention masks for several sequences packed in one row."""

from __future__ import annotations

import torch


class Encoder:
    """Tokenises (context, continuation) pairs exactly as lm-eval's HF backend does."""

    def __init__(self, tokenizer, move_whitespace: bool = True):
        self.tok = tokenizer
        self.move_whitespace = move_whitespace  # lm-eval's rule; chat prompts keep their template's newline (likra.chat)
        self._cache: dict[str, list[int]] = {}
        bos = tokenizer.bos_token_id
        self.prefix_token_id = bos if bos is not None else tokenizer.eos_token_id
        self._prefix_str = tokenizer.decode(self.prefix_token_id) if self.prefix_token_id is not None else None

    def encode(self, text: str) -> list[int]:
        ids = self._cache.get(text)
        if ids is None:
            kwargs = {}
            if self._prefix_str and text.startswith(self._prefix_str):
                kwargs["add_special_tokens"] = False  # the text already carries its BOS
            ids = self.tok.encode(text, **kwargs)
            if len(self._cache) < 100_000:
                self._cache[text] = ids
        return ids

    def pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        if context == "":
            cont = self.tok.encode(continuation, add_special_tokens=False)
            if cont and cont[0] == self.prefix_token_id:
                return cont[:1], cont[1:]
            return [self.prefix_token_id], cont
        n_spaces = len(context) - len(context.rstrip())
        if n_spaces and self.move_whitespace:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        whole = self.encode(context + continuation)
        ctx = self.encode(context)
        return ctx, whole[len(ctx):]


def build_mask(segment: torch.Tensor, position: torch.Tensor, dtype: torch.dtype, window: int | None = None) -> torch.Tensor:
    """Additive [B, 1, T, T] mask: causal, options blind to each other, padding (segment -1)
    attending to itself only (so no row is all -inf), optional sliding window on positions."""
    B, T = segment.shape
    idx = torch.arange(T)
    causal = idx[:, None] >= idx[None, :]
    sq, sk = segment[:, :, None], segment[:, None, :]
    allowed = causal[None] & ((sk == 0) | (sk == sq)) & (sk >= 0) & (sq >= 0)
    if window is not None:
        allowed &= (position[:, :, None] - position[:, None, :]) < window
    allowed |= torch.eye(T, dtype=torch.bool)[None]
    mask = torch.zeros(B, 1, T, T, dtype=dtype)
    mask.masked_fill_(~allowed[:, None], torch.finfo(dtype).min)
    return mask


def attention_masks(segment: torch.Tensor, position: torch.Tensor, dtype: torch.dtype, window: int | None = None):
    """The mask argument for a decoder: one 4D mask, or for sliding-window models a dict with a
    full mask and a windowed one (a custom mask replaces the model's own, window included)."""
    full = build_mask(segment, position, dtype)
    if window is None:
        return full
    return {"full_attention": full, "sliding_attention": build_mask(segment, position, dtype, window)}


# --- attention one segment at a time (training) ---------------------------------------------------
# A packed row of S examples of ~L tokens attends through a T x T mask (T = S * L) of which only the
# S causal diagonal blocks are open: S times the attention work that is needed, on a masked kernel.
# Training packs independent examples (no shared prefixes), so the row can instead be laid out as
# S zero-padded sequences for the attention alone: the pad slots sit after the real tokens, so a
# causal mask keeps every real query off them, and the pad queries' outputs are dropped; that is
# exactly the per-example attention. Everything else runs on the packed row.

SEGMENT_ATTENTION = "likra_segments"


class Segments:
    """Where each example of a packed row sits, in the [S, Lmax] layout the attention uses."""

    def __init__(self, lengths: list[int], device: torch.device | str = "cpu"):
        self.shape = (len(lengths), max(lengths))  # [S, Lmax]: segments, padded length
        j = torch.arange(self.shape[1])
        valid = (j[None, :] < torch.tensor(lengths)[:, None]).reshape(-1)
        self.scatter = valid.nonzero().squeeze(1).to(device)  # flat [S*Lmax] slots of the packed tokens, in order
        self._bias: dict = {}

    def bias(self, groups: int, window: int | None, dtype: torch.dtype) -> torch.Tensor:
        """Additive causal (and sliding-window) mask, [groups * Lmax, Lmax]: one per batch, shared by all layers."""
        key = (groups, window, dtype)
        if key not in self._bias:
            L = self.shape[1]
            i = torch.arange(L, device=self.scatter.device)
            ok = i[:, None] >= i[None, :]
            if window is not None:
                ok &= i[:, None] - i[None, :] < window
            bias = torch.zeros(L, L, dtype=dtype, device=ok.device).masked_fill_(~ok, torch.finfo(dtype).min)
            self._bias[key] = bias.repeat(groups, 1)
        return self._bias[key]


def segment_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None,
                      sliding_window: int | None = None, softcap: float | None = None, **kwargs):
    """An attention function for transformers' ``AttentionInterface`` (query [1, H, T, d], key and
    value [1, KVH, T, d]; returns [1, T, H, d]) that attends within each segment of ``likra_segments``.

    Segments are short (tens of tokens), where a fused attention kernel costs more in setup than the
    arithmetic: plain batched products are faster here. The G query heads that share a key/value head
    are stacked as rows of one product, so keys and values are never copied per query head."""
    seg: Segments = kwargs["likra_segments"]
    if softcap is not None:
        raise NotImplementedError("segment attention has no logit soft-capping; train with the masked path")
    if dropout:
        raise NotImplementedError("segment attention has no attention dropout; train with the masked path")
    S, L = seg.shape
    H, KVH, d = query.shape[1], key.shape[1], query.shape[-1]
    G = H // KVH
    scale = d ** -0.5 if scaling is None else scaling
    # tokens into a zero-padded [S, L] layout with index_copy / index_select: their gradients are an
    # index_select / index_add, far cheaper than the accumulating index_put that a gather's needs
    def padded(x):  # [1, heads, T, d] -> [S, L, heads, d]
        x = x[0].transpose(0, 1)
        return x.new_zeros(S * L, *x.shape[1:]).index_copy(0, seg.scatter, x).view(S, L, *x.shape[1:])

    q = padded(query).view(S, L, KVH, G, d).permute(0, 2, 3, 1, 4).reshape(S * KVH, G * L, d)
    k = padded(key).transpose(1, 2).reshape(S * KVH, L, d)
    v = padded(value).transpose(1, 2).reshape(S * KVH, L, d)
    window = sliding_window if sliding_window is not None and L > sliding_window else None
    scores = torch.baddbmm(seg.bias(G, window, query.dtype), q, k.transpose(1, 2), alpha=scale)
    out = torch.bmm(torch.softmax(scores, dim=-1), v)  # [S*KVH, G*L, d], rows (g, position)
    out = out.view(S, KVH, G, L, d).permute(0, 3, 1, 2, 4).reshape(S * L, H, d).index_select(0, seg.scatter)
    return out.unsqueeze(0), None


def register_segment_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(SEGMENT_ATTENTION, segment_attention)


# ---- model quirks: what an architecture's config asks of any code that runs its layers ----------

def sliding_window(config) -> int | None:
    """The attention window of the sliding layers (Gemma-3), or None when no layer slides."""
    layer_types = getattr(config, "layer_types", None) or []
    return getattr(config, "sliding_window", None) if "sliding_attention" in layer_types else None


def softcap_logits(config, logits: torch.Tensor) -> torch.Tensor:
    """Final-logit soft-capping (Gemma-2/3 configs that set it): ``tanh(x / c) * c``."""
    cap = getattr(config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def per_example_attention_allowed(config) -> bool:
    """Whether the segment path computes this attention exactly (it has no softcap and no dropout)."""
    return not (getattr(config, "attn_logit_softcapping", None) or getattr(config, "attention_dropout", 0.0))
