"""Token-level building blocks shared by scoring and training: lm-eval's tokenisation of
(context, continuation) pairs, and attention masks for several sequences packed in one row."""

from __future__ import annotations

import torch


class Encoder:
    """Tokenises (context, continuation) pairs exactly as lm-eval's HF backend does."""

    def __init__(self, tokenizer):
        self.tok = tokenizer
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
        if n_spaces:
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

