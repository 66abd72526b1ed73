"""What a run carries from step to step: its result so far, the best weights by the watched metric (early stopping),
its position in the data, and the checkpoint that holds all three so an interrupted run continues exactly."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from accelerate import Accelerator

from hubtransfer.errors import TrainingError
from hubtransfer.recipe.schema import Recipe
from hubtransfer.tasks.metrics import SHARE_METRICS, standard_error
from hubtransfer.train import checkpoints as checkpoint

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    steps: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_samples: int = 0
    lr: float | None = None  # the learning rate the saved weights trained at
    lr_search: dict | None = None  # candidates, their validation scores at the rung, the cost (lr 'auto')

    @property
    def samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0


class Best:
    """Early stopping state + the best weights so far (trainable params and buffers, see
    :class:`checkpoint.BestWeights`)."""

    def __init__(
        self,
        metric: str,
        patience: int | None,
        min_delta: float,
        may_train: set[str],
        weights: checkpoint.BestWeights,
        within: int | None = None,
    ):
        """``within``: keep the last evaluation within one standard error of the best, the error of a share
        measured on this many validation examples (train.early_stopping.keep: last_within_se); None: the best."""
        self.metric, self.patience, self.min_delta, self.may_train = metric, patience, min_delta, may_train
        self.value, self.record, self.bad, self.weights = -math.inf, None, 0, weights
        self.within = within if metric in SHARE_METRICS else None

    def update(self, model, record: dict) -> bool:
        """Whether ``record`` improved on the best (early stopping counts from the best); keeps its weights then, or
        when it is within a standard error of the best and ``within`` is set. ``self.record``: the kept weights'."""
        value = record["validation"].get(self.metric)
        if value is None:
            raise TrainingError(
                f"train.early_stopping.metric '{self.metric}' is not computed; pick one of "
                f"{sorted(record['validation'])}"
            )
        if value > self.value + self.min_delta:
            self.value, self.bad = value, 0
            self._keep(model, record)
            return True
        self.bad += 1
        # A score this close to the best is the same within the validation split's noise, and trained longer.
        if self.within and value >= self.value - standard_error(self.value, self.within):
            self._keep(model, record)
        return False

    def _keep(self, model, record: dict) -> None:
        self.record = record
        self.weights.keep(_changing_state(model, self.may_train))

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad >= self.patience


def _changing_state(model, may_train: set[str]) -> dict:
    """The parameters that may train in this run, and every buffer (batch-norm statistics move too)."""
    params = {n for n, _ in model.named_parameters()}
    return {k: v for k, v in model.state_dict().items() if k in may_train or k not in params}


@dataclass
class Position:
    """Where the loop is: what a checkpoint must hold to continue exactly."""

    result: FitResult
    step: int = 0
    epoch: int = 0
    batches: int = 0  # batches already taken from this epoch
    since_eval: int = 0  # batches summed in ``running`` since the last evaluation
    running: float = 0.0


def resume_state(accelerator: Accelerator, path: Path, best: Best, recipe: Recipe) -> Position:
    saved_by = checkpoint.read_loop_state(path).get("processes", 1)
    if saved_by != accelerator.num_processes:
        raise TrainingError(
            f"{path} was written by {saved_by} process(es) and this launch has {accelerator.num_processes}: each "
            "process's data shard and random state are in the checkpoint, so only the same count continues exactly. "
            f"Relaunch with {saved_by} process(es), or set train.resume=false to start over"
        )
    state = checkpoint.load(accelerator, path, best.weights)
    if comparable(state["recipe"]) != comparable(recipe.to_dict()):
        raise TrainingError(
            f"{path.parent} holds an interrupted run of a different recipe; set train.resume=false to start over, "
            "or run the recipe it was started with"
        )
    b = state["best"]
    best.value = b["value"] if b["value"] is not None else -math.inf
    best.record, best.bad = b["record"], b["bad"]
    result = FitResult(
        history=state["history"], train_samples=state["train_samples"], train_seconds=state["train_seconds"]
    )
    logger.info(
        "resuming from %s (step %d, epoch %d, batch %d)", path.name, state["step"], state["epoch"], state["batches"]
    )
    running = state.get("running_by_process", [state["running"]])[accelerator.process_index]
    return Position(result, state["step"], state["epoch"], state["batches"], state["since_eval"], running)


def comparable(recipe: dict) -> dict:
    """The recipe keys a resumed run must share with the interrupted one (output and hub keys may differ)."""
    out = {k: v for k, v in recipe.items() if k not in ("hub", "overwrite_output_dir", "output_dir")}
    out["train"] = {k: v for k, v in recipe["train"].items() if k not in ("resume", "log_with", "num_workers")}
    return out
