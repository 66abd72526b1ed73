"""Training checkpoints: Accelerate's ``save_state`` plus the loop's own position, written atomically.

A checkpoint folder ``step-N`` holds model, optimizer, scheduler and RNG states (``save_state``),
``loop_state.json`` (optimizer step, epoch, batches already taken from this epoch, history,
early-stopping state, the resolved recipe) and ``best.safetensors`` (the best weights so far).
It is built under a temporary name and renamed, so a kill mid-write leaves the previous
checkpoint as the newest whole one; only the last ``keep`` are kept.

RNG states are stored by Accelerate as pickles; they are loaded back only from the run's own
staging folder, which hubtransfer itself wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator
from safetensors.torch import load_file, save_file

LOOP_STATE = "loop_state.json"
BEST_WEIGHTS = "best.safetensors"
_STEP = re.compile(r"^step-(\d+)$")


def checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP.match(p.name)) and (p / LOOP_STATE).is_file()]
    return [p for _, p in sorted(found)]


def save(accelerator: Accelerator, root: Path, step: int, loop_state: dict, best_state: dict | None, keep: int) -> Path:
    """Write checkpoint ``step-<step>`` (all processes call this; rank 0 writes the shared files)."""
    final = root / f"step-{step}"
    tmp = root / f".step-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        if best_state:
            save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp / BEST_WEIGHTS))
        (tmp / LOOP_STATE).write_text(json.dumps(loop_state), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator: Accelerator, path: Path) -> tuple[dict, dict | None]:
    """Restore model / optimizer / scheduler / RNG from ``path``; return (loop state, best weights)."""
    accelerator.load_state(str(path))
    state = json.loads((path / LOOP_STATE).read_text(encoding="utf-8"))
    best = load_file(str(path / BEST_WEIGHTS)) if (path / BEST_WEIGHTS).is_file() else None
    return state, best
