"""What machine a figure came from: CPU model and the flags that decide precision, cores, threads, versions, GPU.

Every run record and every benchmark result carries this, so figures from two machines are never compared
unknowingly (the CPU differs between sessions of the same machine kind: some have avx512_bf16 / AMX).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """Which of the flags that decide ``precision: auto`` on CPU this machine has."""
    flags = set()
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return [f for f in BF16_FLAGS if f in flags]


def describe_machine() -> dict:
    """CPU model, bf16/AMX flags, cores, torch threads, library versions and the GPU (None without one)."""
    import torch
    import transformers

    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "bf16_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
