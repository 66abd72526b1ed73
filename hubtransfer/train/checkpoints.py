"""Training checkpoints and the best weights so far.

Checkpoints: Accelerate's ``save_state`` plus the loop's own position, written atomically.

A checkpoint folder ``step-N`` holds model, optimizer, scheduler and RNG states (``save_state``),
``loop_state.json`` (optimizer step, epoch, batches already taken from this epoch, history,
early-stopping state, the resolved recipe) and ``best.safetensors`` (the best weights so far).
It is built under a temporary name and renamed, so a kill mid-write leaves the previous
checkpoint as the newest whole one; only the last ``keep`` are kept.

RNG states are stored by Accelerate as pickles; they are loaded back only from the run's own
staging folder, which hubtransfer itself wrote.

The best weights (:class:`BestWeights`) live in a safetensors file in the run's staging folder
rather than in RAM: a second copy of the changing weights in memory would add the model's size to
peak memory (MiniLM: 91 MB), and the file is written only when validation improves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors import safe_open
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


def save(accelerator: Accelerator, root: Path, step: int, loop_state: dict, best: BestWeights, keep: int) -> Path:
    """Write checkpoint ``step-<step>`` (all processes call this; rank 0 writes the shared files)."""
    final = root / f"step-{step}"
    tmp = root / f".step-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    # Every process writes its own RNG state into the folder: all must be done before the main process renames it.
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        best.copy_to(tmp / BEST_WEIGHTS)
        (tmp / LOOP_STATE).write_text(json.dumps(loop_state), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def read_loop_state(path: Path) -> dict:
    """The loop state a checkpoint holds, without restoring anything."""
    return json.loads((path / LOOP_STATE).read_text(encoding="utf-8"))


def load(accelerator: Accelerator, path: Path, best: BestWeights) -> dict:
    """Restore model / optimizer / scheduler / RNG and ``best`` from ``path``; return the loop state."""
    accelerator.load_state(str(path))
    best.copy_from(path / BEST_WEIGHTS)
    return read_loop_state(path)


class BestWeights:
    """The best weights so far (the tensors that may change in training), in ``folder`` or, without one, in RAM.

    All processes call every method; in a multi-process run the main process writes the file and the
    others wait for it (the weights are the same in every process).
    """

    def __init__(self, accelerator: Accelerator, folder: Path | None, name: str = BEST_WEIGHTS):
        self.accelerator = accelerator
        self.path = folder / name if folder is not None else None
        self._memory: dict | None = None
        self.held = False

    def keep(self, state: dict) -> None:
        """Replace the kept weights by ``state`` (name -> the model's own tensors)."""
        if self.path is None:
            if self._memory is not None and self._memory.keys() == state.keys():
                # In place: a fresh copy before the old one is freed would hold the weights twice.
                for k, v in state.items():
                    self._memory[k].copy_(v.detach())
            else:
                self._memory = {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
        else:
            if self.accelerator.is_main_process:
                _write_atomic(state, self.path)
            self.accelerator.wait_for_everyone()
        self.held = True

    @torch.no_grad()
    def restore(self, model) -> None:
        """Copy the kept weights into ``model`` (tensor by tensor: no second copy of the model at any moment)."""
        if not self.held:
            return
        live = model.state_dict()
        if self.path is None:
            for k, v in self._memory.items():
                live[k].copy_(v)
            return
        with safe_open(str(self.path), framework="pt", device="cpu") as f:
            for k in f.keys():  # noqa: SIM118  (safe_open has keys(), it is not iterable)
                live[k].copy_(f.get_tensor(k))

    def copy_to(self, target: Path) -> None:
        """Write the kept weights to ``target`` (a checkpoint being built; main process only)."""
        if not self.held:
            return
        if self.path is None:
            _write_atomic(self._memory, target)
        else:
            shutil.copyfile(self.path, target)

    def copy_from(self, source: Path) -> None:
        """Take the weights kept in a checkpoint (resume); nothing is kept when it has none."""
        self.held = source.is_file()
        if not self.held:
            self._memory = None
        elif self.path is None:
            self._memory = load_file(str(source))
        else:
            if self.accelerator.is_main_process:
                tmp = self.path.with_name(self.path.name + ".tmp")
                shutil.copyfile(source, tmp)
                os.replace(tmp, self.path)
            self.accelerator.wait_for_everyone()

    def discard(self) -> None:
        """Remove the file (after :meth:`restore`): it must not ship with the saved model."""
        # Every process must have finished reading it in restore() before the main process deletes it.
        self.accelerator.wait_for_everyone()
        if self.path is not None and self.accelerator.is_main_process:
            self.path.unlink(missing_ok=True)
        self.accelerator.wait_for_everyone()


def _write_atomic(state: dict, path: Path) -> None:
    """``state`` as safetensors at ``path`` via a temporary file (a kill mid-write leaves the previous file).

    safetensors refuses tensors that share memory: a tied tensor (the same view under two names) is
    written once, since restoring one restores both; another view of a storage already written goes
    as a copy. CPU tensors are written from their own memory, without a copy."""
    views: dict[int, set] = {}
    out = {}
    for k, v in state.items():
        v = v.detach()
        storage, view = v.untyped_storage().data_ptr(), (v.storage_offset(), tuple(v.shape), tuple(v.stride()))
        if storage in views:
            if view in views[storage]:
                continue
            v = v.clone()
        views.setdefault(storage, set()).add(view)
        out[k] = v.contiguous()
    tmp = path.with_name(path.name + ".tmp")
    save_file(out, str(tmp))
    os.replace(tmp, path)
