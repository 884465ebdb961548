"""Data parallelism over the processes of a launcher (``accelerate launch``, ``torchrun``).

The launcher sets ``WORLD_SIZE``/``RANK``/``MASTER_ADDR``; likra then joins one process group
(NCCL on GPUs, gloo on CPUs). Scoring gives each process whole batches of the single-process
plan (so every option is computed in the same batch as alone) and gathers the results; training
splits each batch's examples over the processes and sums their gradients, normalised by the
batch's answer tokens, which is the single-process loss. One process (rank 0) writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_from_env() -> tuple[int, int]:
    """Join the launcher's process group if there is one; returns (rank, world size)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return rank_world()


def sharding_requested() -> str | None:
    """The sharding backend an ``accelerate launch`` config asked for (FSDP or DeepSpeed), if any.

    Only the TRL baselines (HF Trainer) honour it; likra's own loops replicate the model."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true":
        return "FSDP"
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":
        return "DeepSpeed"
    return None


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_objects(obj) -> list:
    """Every process's ``obj``, in rank order, on every process."""
    rank, world = rank_world()
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sum tensors across processes in place (one flat buffer: one collective per step)."""
    if rank_world()[1] == 1 or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    off = 0
    for t in tensors:
        t.copy_(flat[off:off + t.numel()].view_as(t))
        off += t.numel()


def barrier() -> None:
    if rank_world()[1] > 1:
        dist.barrier()
