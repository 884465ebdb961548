"""The head-training recipe's hyperparameters, as options of ``likra train`` (a light module: the
command line reads it without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

from .command import option


@dataclass
class TrainConfig:
    """The seed paper's recipe by default: LoRA r=8, alpha=8, dropout 0 on the MLP projections,
    AdamW at a constant 1e-4, batch 8, one epoch (gradient norm clipped at 1.0 as HF Trainer does)."""

    lora_r: int = option(8, "LoRA rank")
    lora_alpha: int = option(8, "LoRA alpha")
    lora_dropout: float = option(0.0, "LoRA dropout")
    target_modules: list[str] | None = option(None, "modules to adapt (default: the architecture's MLP projections)", nargs="+")
    lr: float = option(1e-4, "AdamW learning rate, constant")
    weight_decay: float = option(0.0, "AdamW weight decay")
    max_grad_norm: float | None = option(1.0, "clip the gradient norm at this value (HF Trainer's default)")
    batch_size: int = option(8, "examples per optimizer step")
    epochs: int = option(1, "passes over the training questions")
    first_checkpoint: int = option(16, "first curve point; then doubling: 16, 32, 64, ... and the end")
    bf16: bool = option(False, "bf16 autocast (fp32 master weights)")
    # torch.compile each decoder layer (inductor, dynamic shapes). Off by default: the compilation
    # (~30-40 s on two cores with a cold cache) outweighs its gain on runs of a few hundred steps
    compile: bool = option(False, "torch.compile the decoder layers (pays ~30 s once; worth it for thousands of examples)")
    state_every: int = option(10, "steps between resume states")
    # "segments": attention runs per example, as batched products (packing.segment_attention);
    # "mask": one block-diagonal mask over the packed row (any architecture, S times the attention work)
    attention: str = option("segments", "segments: attention within each example; mask: the packed row under one mask",
                            choices=("segments", "mask"))
    max_length: int = option(2048, "longest training example in tokens (longer ones are left-truncated)")
    chat_template: bool = option(False, "instruct models: the question as the user turn of the model's chat template and the "
                                        "answer as the assistant turn (score such heads with --chat-template too)")
    # the divergence guard: it changes no result unless it stops a run, so resumes ignore it
    max_loss_ratio: float = option(4.0, "stop a run whose mean loss over 8 steps exceeds this multiple of its lowest 8-step "
                                        "mean, or whose loss climbs back to the uniform loss ln(vocabulary) after being "
                                        "below it (0: never)")
