"""What this CPU offers that decides how fast bf16 runs.

bf16 pays on a CPU only with bf16 matrix units (Intel AMX, or AVX-512 BF16). Without them torch
emulates bf16 products, and a bf16 table costs several times an fp32 one (README, Benchmarks): on a
2-core AVX2 machine, Gemma-3-270M's base model in bf16-mixed scored 344 of the 1172 ARC-Challenge
test questions (0-shot) in 11 min, where fp32 scored all 1172 with three heads in 9 min on the
project's AMX machine. ``load_base`` warns before such a run starts.
"""

from __future__ import annotations

from pathlib import Path

BF16_UNITS = ("amx_bf16", "avx512_bf16")
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | None = None) -> tuple[str, set[str]]:
    """The CPU's model name and its feature flags, from ``/proc/cpuinfo`` (or the text given);
    empty flags where they cannot be read (not Linux, not x86)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "unknown CPU", set()
    model, flags = "unknown CPU", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return model, flags


def has_bf16_units(cpuinfo: str | None = None) -> bool | None:
    """True with AMX or AVX-512 BF16, False on an x86 CPU without them, None where unknown."""
    _, flags = cpu_flags(cpuinfo)
    if not flags:
        return None
    return any(f in flags for f in BF16_UNITS)


def describe(cpuinfo: str | None = None) -> str:
    """One line for a benchmark's header: the model and the flags that change its speed."""
    model, flags = cpu_flags(cpuinfo)
    simd = [f for f in SPEED_FLAGS if f in flags]
    return f"{model}, {', '.join(simd) or 'no AVX2'}"


def slow_bf16_warning(dtype: str, cpuinfo: str | None = None) -> str | None:
    """The warning for a bf16 precision on a CPU that would emulate it, else None."""
    if dtype == "fp32" or has_bf16_units(cpuinfo) is not False:
        return None
    return (f"--dtype {dtype} on {describe(cpuinfo)}: this CPU has no bf16 matrix units (AMX or AVX-512 BF16), "
            f"so bf16 products are emulated and run several times slower than fp32 here; "
            f"--dtype fp32 is faster on this machine and is the parity reference")
