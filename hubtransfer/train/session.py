"""The process side of a run: the Accelerator (precision, processes, trackers) and where log lines go."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import accelerate
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

from hubtransfer.errors import TrainingError

# The sharded engines a launch can ask for (`accelerate launch --use_fsdp / --use_deepspeed` set these variables), and
# the Accelerate mode that shows the engine is on.
ENGINES = {
    "ACCELERATE_USE_FSDP": ("FSDP", DistributedType.FSDP),
    "ACCELERATE_USE_DEEPSPEED": ("DeepSpeed", DistributedType.DEEPSPEED),
}


def make_accelerator(recipe, mixed: str, project_dir: Path | None = None) -> Accelerator:
    """The run's Accelerator. Without a GPU, ``cpu=True``: only then does Accelerate join the ranks of a
    multi-process launch (torchrun / ``accelerate launch --multi_gpu``) over gloo instead of each
    process training alone."""
    # AcceleratorState is a process-wide singleton that refuses a second precision; finetune() may run many times in
    # one process (API, sweeps), so the previous run's state is dropped and the process group (PartialState) kept.
    # Accelerate has no public call for this: its own test utilities use the same _reset_state.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed,
        gradient_accumulation_steps=recipe.train.grad_accum,
        log_with=recipe.train.log_with or None,
        project_dir=str(project_dir) if project_dir else None,
    )
    check_launch(accelerator, os.environ)
    return accelerator


def check_launch(accelerator: Accelerator, env) -> None:
    """Refuse a launch that would not run as asked, before any work: Accelerate falls back without a word.

    - A sharded engine asked for but not on: Accelerate runs FSDP and DeepSpeed only on GPU-class devices; on a
      CPU-only machine it trains plain data parallel (FSDP) or each process alone (DeepSpeed).
    - Fewer processes joined than the launcher started (``WORLD_SIZE``): each would train alone on all the data and
      race to write the same folder.
    """
    for var, (name, mode) in ENGINES.items():
        if str(env.get(var, "false")).lower() == "true" and accelerator.distributed_type != mode:
            raise TrainingError(
                f"the launch asks for {name} but Accelerate {accelerate.__version__} set up "
                f"{accelerator.distributed_type.value} on {accelerator.device.type}: it runs {name} on GPUs only. "
                "On CPU launch with recipes/launch/cpu_2proc.yaml (data parallel); run the "
                f"{name} configs on a GPU machine (docs/distributed.md)"
            )
    launched = int(env.get("WORLD_SIZE", "1") or 1)
    if launched != accelerator.num_processes:
        raise TrainingError(
            f"the launcher started {launched} processes but this one joined a world of {accelerator.num_processes}: "
            "each would train alone. Launch with `accelerate launch --multi_gpu` (torchrun; on CPU too) or "
            "`hubtransfer launch` and a config of recipes/launch/, not `--cpu`, which starts separate processes"
        )


def sharded(accelerator: Accelerator) -> bool:
    """Whether the model's parameters are split across processes (FSDP, DeepSpeed ZeRO): saving gathers them."""
    return accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)


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
