"""A training-time stand-in for PEFT's LoRA linear layer: the same function in fewer kernels.

PEFT computes ``base(x) + B(A(dropout(x))) * scaling`` as four products' worth of separate
operations (and a multiply by the scaling even when it is 1). On CPU, with rows of a few hundred
tokens, each kernel launch and temporary costs as much as the rank-8 arithmetic, so the low-rank
update is folded into the base product's output with one in-place ``addmm``. The parameters are
PEFT's own; adapters save and load as usual. Layers this does not cover (several active adapters,
DoRA and other variants, merged weights, non-Linear bases) keep PEFT's forward.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F


class _LoraLinear(torch.autograd.Function):
    """y = x W^T (+ b) + s (x A^T) B^T with a hand-written backward: the low-rank term's input
    gradient is accumulated into the base one in place (one ``addmm_``), where autograd would make
    a temporary and add it. The base weight and bias are frozen: no gradient is made for them."""

    @staticmethod
    def forward(ctx, x, weight, bias, A, B, scaling: float):
        low = x @ A.t()
        y = F.linear(x, weight, bias).addmm_(low, B.t(), alpha=scaling)
        ctx.save_for_backward(x, weight, A, B, low)
        ctx.scaling = scaling
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, A, B, low = ctx.saved_tensors
        s = ctx.scaling
        grad_low = (grad @ B).mul_(s)  # [rows, r]
        grad_B = (low.t() @ grad).t().mul_(s) if ctx.needs_input_grad[4] else None
        grad_A = grad_low.t() @ x if ctx.needs_input_grad[3] else None
        grad_x = (grad @ weight).addmm_(grad_low, A) if ctx.needs_input_grad[0] else None
        return grad_x, None, None, grad_A, grad_B, None


def _fused_forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    name = self.active_adapters[0]
    A, B = self.lora_A[name].weight, self.lora_B[name].weight
    base = self.base_layer
    flat = x.reshape(-1, x.shape[-1])
    dropout = self.lora_dropout[name]
    exact_dtypes = x.dtype == A.dtype == base.weight.dtype and not torch.is_autocast_enabled(x.device.type)
    frozen = not base.weight.requires_grad and (base.bias is None or not base.bias.requires_grad)
    if isinstance(dropout, torch.nn.Identity) and exact_dtypes and frozen:
        y = _LoraLinear.apply(flat, base.weight, base.bias, A, B, self.scaling[name])
    else:  # dropout, autocast or a trainable base: let autograd differentiate the same sum
        y = F.linear(flat, base.weight, base.bias)
        y = y.addmm_(F.linear(dropout(flat), A).to(y.dtype), B.t().to(y.dtype), alpha=self.scaling[name])
    return y.view(*x.shape[:-1], y.shape[-1])


def _fusable(module) -> bool:
    from peft.tuners.lora.layer import Linear as LoraLinear

    return (type(module) is LoraLinear and isinstance(module.base_layer, torch.nn.Linear) and not module.merged
            and not module.disable_adapters and len(module.active_adapters) == 1
            and module.active_adapters[0] in module.lora_A and not getattr(module, "lora_variant", {})
            and not getattr(module, "fan_in_fan_out", False))


def fuse_lora(model) -> list:
    """Give every plain LoRA linear layer of ``model`` the fused forward; returns them, for ``unfuse_lora``."""
    fused = [m for m in model.modules() if _fusable(m)]
    for m in fused:
        m.forward = types.MethodType(_fused_forward, m)
    return fused


def unfuse_lora(modules: list) -> None:
    for m in modules:
        m.__dict__.pop("forward", None)  # back to the class's (PEFT's) forward
