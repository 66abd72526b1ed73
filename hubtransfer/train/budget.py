"""How long a run trains: epochs and patience when the recipe says 'auto', and the optimizer steps that gives."""

from __future__ import annotations

import math

from hubtransfer.recipe.schema import Recipe


def auto_epochs(train, steps_per_epoch: int) -> int:
    """``train.epochs: auto``: enough epochs for ``train.min_steps`` optimizer steps, at least 2 (a second pass still
    helps a new head) and at most ``train.max_auto_epochs``."""
    return min(train.max_auto_epochs, max(2, math.ceil(train.min_steps / max(1, steps_per_epoch))))


def update_epochs(train, steps_per_epoch: int, new_share: float) -> float:
    """``train.epochs: auto`` for an update that continues the previous version: ``train.min_steps`` scaled by the new
    data's share of old + new training examples (the rest of a from-scratch budget was spent on the previous
    version), and at least one pass over the update's training set; fractions of an epoch allowed."""
    steps = max(steps_per_epoch, math.ceil(train.min_steps * new_share))
    return min(float(train.max_auto_epochs), round(steps / steps_per_epoch, 2))


def steps_per_epoch(train, n_train: int, processes: int) -> int:
    """Optimizer steps an epoch of ``n_train`` examples takes, over ``processes`` processes."""
    return max(1, math.ceil(math.ceil(math.ceil(n_train / train.batch_size) / max(1, processes)) / train.grad_accum))


AUTO_PATIENCE, PATIENCE_MIN_EVALS = 3, 6


def auto_patience(evaluations: int) -> int | None:
    """``early_stopping.patience: auto``: stop after 3 evaluations without a gain, when the run has 6 or more."""
    return AUTO_PATIENCE if evaluations >= PATIENCE_MIN_EVALS else None


def total_steps(recipe: Recipe, batches_per_epoch: int) -> tuple[int, int]:
    """(optimizer steps per epoch, total optimizer steps)."""
    per_epoch = max(1, math.ceil(batches_per_epoch / recipe.train.grad_accum))
    if recipe.train.max_steps:
        return per_epoch, recipe.train.max_steps
    epochs = auto_epochs(recipe.train, per_epoch) if recipe.train.epochs == "auto" else recipe.train.epochs
    return per_epoch, max(1, math.ceil(epochs * per_epoch))
