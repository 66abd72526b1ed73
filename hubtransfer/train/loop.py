"""The only training loop: Accelerate, AdamW, warm-up + decay, accumulation, evaluation, early stopping."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from hubtransfer.errors import RecipeError, TrainingError
from hubtransfer.job import Job
from hubtransfer.recipe.schema import Recipe
from hubtransfer.train import checkpoints as checkpoint
from hubtransfer.train.budget import auto_patience, total_steps
from hubtransfer.train.search import search_lr
from hubtransfer.train.state import FitResult, resume_state
from hubtransfer.train.steps import Run, Schedule, evaluate_start

logger = logging.getLogger(__name__)


@dataclass
class RunFiles:
    """Where a fit writes: the per-evaluation log (``metrics.jsonl``), checkpoints (a fit finding one there resumes
    from the newest) and the best weights (a file there instead of a copy in RAM). None: not written."""

    log: Path | None = None
    checkpoints: Path | None = None
    best: Path | None = None


def fit(
    model,
    loaders: dict,
    job: Job,
    accelerator: Accelerator,
    scorer,
    *,
    files: RunFiles | None = None,
    class_weights: torch.Tensor | None = None,
    extra_loss=None,
) -> FitResult:
    """Train ``model`` by the recipe; keep and restore the best weights by the watched metric.

    A fit finding a checkpoint in ``files.checkpoints`` resumes from the newest one exactly where it stopped (same
    batches, same RNG). ``extra_loss(logits, inputs)`` adds a term to the task's loss. ``train.lr: auto`` first
    searches the learning rate (:mod:`hubtransfer.train.search`); the run
    then goes on from the winner's state. ``class_weights`` (one per class) weight the cross-entropy; the job's
    strategy may change what trains as epochs start.
    """
    files, recipe = files or RunFiles(), job.recipe
    plan = _schedule(loaders, job, accelerator, scorer, files, class_weights, extra_loss)
    found = checkpoint.checkpoints(files.checkpoints) if files.checkpoints is not None else []
    if found:
        run = _resumed(model, plan, found[-1], files.best)
    elif recipe.train.lr == "auto":
        run = search_lr(model, plan, files.best)
    else:
        run = Run(model, recipe.train.lr, plan, checkpoint.BestWeights(accelerator, files.best))
        if recipe.train.eval_at_start:
            evaluate_start(run, run.evaluate())
    bar = tqdm(
        total=plan.steps,
        initial=run.pos.step,
        desc="train",
        disable=not accelerator.is_main_process,
        dynamic_ncols=True,
    )
    try:
        run.advance(plan.steps, bar)
    finally:
        bar.close()  # before any error message, so it does not land on the bar's line
    result = run.result
    result.steps, result.best = run.pos.step, run.best.record
    run.best.weights.restore(run.unwrapped())
    run.best.weights.discard()
    return result


def _schedule(loaders, job: Job, accelerator, scorer, files: RunFiles, class_weights, extra_loss=None) -> Schedule:
    """The run's length, evaluation and checkpoint steps, watched metric and patience, resolved once."""
    recipe, strategy = job.recipe, job.strategy
    t = recipe.train
    if strategy.one_process and accelerator.num_processes > 1:
        raise TrainingError(
            f"strategy '{strategy}' changes what trains between epochs, which DistributedDataParallel cannot follow; "
            "run it in one process, or use strategy=lp-ft or full with train.layer_decay"
        )
    per_epoch, steps = total_steps(recipe, len(loaders["train"]) // accelerator.num_processes or 1)
    eval_every = per_epoch if t.eval_every == "epoch" else t.eval_every
    patience = t.early_stopping.patience
    return Schedule(
        recipe,
        accelerator,
        loaders,
        loaders["train"].batch_sampler,
        scorer,
        steps,
        per_epoch,
        eval_every=eval_every,
        strategy=strategy,
        save_every=per_epoch if t.checkpoint_every == "epoch" else t.checkpoint_every,
        metric=job.watched_metric,
        patience=auto_patience(math.ceil(steps / eval_every)) if patience == "auto" else patience,
        log_path=files.log,
        checkpoint_dir=files.checkpoints,
        class_weights=class_weights.to(accelerator.device) if class_weights is not None else None,
        extra_loss=extra_loss,
    )


def _resumed(model, plan: Schedule, path: Path, best_dir: Path | None) -> Run:
    """The run a checkpoint holds, at its learning rate (for lr 'auto', the one the search chose before it)."""
    state = checkpoint.read_loop_state(path)
    run = Run(model, state.get("lr", plan.recipe.train.lr), plan, checkpoint.BestWeights(plan.accelerator, best_dir))
    run.pos = resume_state(plan.accelerator, path, run.best, plan.recipe)
    run.running = torch.tensor(run.pos.running, device=plan.accelerator.device)
    run.result.lr, run.result.lr_search = run.lr, state.get("lr_search")
    if plan.log_path is not None:  # evaluations after that checkpoint will run again: drop their old lines
        plan.log_path.write_text("".join(json.dumps(r) + "\n" for r in run.result.history), encoding="utf-8")
    return run


def class_weight_tensor(recipe: Recipe, labels: list[str]):
    """The loss weights the resolved recipe names (None: plain cross-entropy)."""
    import torch

    cw = recipe.train.class_weights
    if not isinstance(cw, dict):
        return None
    unknown = sorted(set(cw) - set(labels))
    if unknown:
        raise RecipeError(
            [f"train.class_weights names labels the data does not have: {unknown}; the labels are {labels}"]
        )
    return torch.tensor([float(cw.get(name, 1.0)) for name in labels], dtype=torch.float32)
