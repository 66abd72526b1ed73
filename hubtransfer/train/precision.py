"""Mixed precision: 'auto' takes bf16 only where the hardware runs it natively."""

from __future__ import annotations

from pathlib import Path

import torch


def cpu_has_fast_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(choice: str) -> tuple[str, str]:
    """(accelerate mixed_precision, reason). 'auto' takes bf16 only where the hardware runs it natively."""
    if choice != "auto":
        return choice, "set by the recipe"
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", "GPU supports bf16"
        return "fp16", "GPU lacks bf16"
    if cpu_has_fast_bf16():
        return "bf16", "CPU has avx512_bf16/AMX"
    return "no", "CPU lacks avx512_bf16/AMX: bf16 would be emulated and slower"


def autocast_dtype(mixed: str):
    """The torch dtype of an accelerate ``mixed_precision`` value (None for full precision)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed)
