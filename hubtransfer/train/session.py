"""The process side of a run: the Accelerator (precision, processes, trackers) and where log lines go."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState


def make_accelerator(recipe, mixed: str, project_dir: Path | None = None) -> Accelerator:
    """The run's Accelerator. Without a GPU, ``cpu=True``: only then does Accelerate join the ranks of a
    multi-process launch (torchrun / ``accelerate launch --multi_gpu``) over gloo instead of each
    process training alone."""
    # AcceleratorState is a process-wide singleton that refuses a second precision; finetune() may run many times in
    # one process (API, sweeps), so the previous run's state is dropped and the process group (PartialState) kept.
    # Accelerate has no public call for this: its own test utilities use the same _reset_state.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed,
        gradient_accumulation_steps=recipe.train.grad_accum,
        log_with=recipe.train.log_with or None,
        project_dir=str(project_dir) if project_dir else None,
    )


def setup_logging(accelerator: Accelerator) -> None:
    """hubtransfer's log lines on the main process only; a default handler if the application set none."""
    level = logging.INFO if accelerator.is_main_process else logging.WARNING
    logging.getLogger("hubtransfer").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def flat_hparams(recipe) -> dict:
    """The recipe as ``{"train.lr": 5e-05, ...}``: what Accelerate's trackers take as hyperparameters."""
    out = {}

    def walk(prefix, node):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            elif isinstance(v, (int, float, str, bool)):
                out[key] = v

    walk("", recipe.to_dict())
    return out
