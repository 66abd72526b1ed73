"""``train.lr: auto``: the learning rate chosen on validation by one round of successive halving.

Every candidate starts from the same weights and trains on the run's own schedule (the same warm-up and decay
over the run's total steps, the same batches, the same random draws a run at that rate alone would take) for
``train.lr_search.fraction`` of the steps. Each is then scored on validation (its best watched metric so far,
counting one extra evaluation at that step), and the best continues to the end while the others stop. So the
search costs ``(candidates - 1) x fraction`` of a run, and the winner's trajectory is exactly that of a run with
``train.lr`` set to the chosen rate: the saved recipe, which names it, reproduces the weights. The extra
evaluation is not in the run's history (a run at that rate alone would not have made it).

``train.lr_search.schedule: short`` instead gives each candidate a short run of its own (warm-up and decay to zero
within the rung) and trains the winner's whole run from the start: see ``_search_short``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hubtransfer.train import checkpoints as checkpoint
from hubtransfer.train.steps import Run, Schedule, evaluate_start, save_checkpoint

logger = logging.getLogger(__name__)

# Log-spaced by about 3x around what usually works for each kind of training. Image backbones try two: 3e-3 lost the
# rung by far on every image set the defaults were tuned on (8x8 digits 0.883 vs 0.983, animal shapes 0.764 vs 0.925;
# docs/user-data.md), and each candidate costs a fifth of a run.
CANDIDATES = {
    "text": (3e-5, 1e-4, 3e-4),
    "image": (3e-4, 1e-3),
    "head": (1e-3, 3e-3, 1e-2),
    "lora": (3e-4, 1e-3, 3e-3),
}


def default_candidates(lr_family: str | None, modality: str) -> list[float]:
    """The learning rates tried when the recipe names none: by what trains (the strategy's ``lr_family``: the head
    alone, adapters; else the backbone of the modality)."""
    return list(CANDIDATES.get(lr_family or modality, CANDIDATES["text"]))


def _rng_state() -> tuple:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return torch.get_rng_state(), cuda, random.getstate(), np.random.get_state()


def _set_rng_state(state: tuple) -> None:
    cpu, cuda, py, npy = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)
    random.setstate(py)
    np.random.set_state(npy)


def search_lr(model, plan: Schedule, best_dir: Path | None) -> Run:
    """Train one copy of ``model`` per candidate to the rung, keep the best; returns the winner's run, continued on
    ``model`` itself (its weights, optimizer and schedule state moved there), ready to train on to the end.
    ``train.lr_search.schedule: short`` trains each candidate a short run of its own instead (``_search_short``)."""
    t, acc = plan.recipe.train, plan.accelerator
    lrs = list(t.lr_search.candidates or [])
    if len(lrs) < 2:
        raise ValueError("train.lr 'auto' needs train.lr_search.candidates (resolved from the recipe before training)")
    rung = max(1, min(plan.steps, round(t.lr_search.fraction * plan.steps)))
    if t.lr_search.schedule == "short":
        return _search_short(model, plan, best_dir, lrs, rung)
    started = time.perf_counter()
    # Copies before the first prepare(): preparing patches the model's forward for mixed precision.
    models = [model] + [copy.deepcopy(model) for _ in lrs[1:]]
    searching = dataclasses.replace(plan, checkpoint_dir=None, log_path=None)
    runs = [
        Run(m, lr, searching, checkpoint.BestWeights(acc, best_dir, f"best-lr{i}.safetensors"))
        for i, (m, lr) in enumerate(zip(models, lrs))
    ]
    if t.eval_at_start:
        start = runs[0].evaluate()  # every candidate starts from the same weights
        for run in runs:
            evaluate_start(run, start)
    initial, after = _rng_state(), []
    scores = []
    bar = tqdm(total=rung * len(runs), desc="lr search", disable=not acc.is_main_process, dynamic_ncols=True)
    try:
        for run in runs:
            _set_rng_state(initial)
            run.advance(rung, bar)
            after.append(_rng_state())
            scores.append(_score(run))
    finally:
        bar.close()
    win = _winner(scores, lrs)
    record = _record(lrs, scores, win, plan, rung, rung * (len(runs) - 1), started)
    logger.info(
        "lr search at step %d of %d: %s -> %s continues",
        rung,
        plan.steps,
        ", ".join(f"{lr:g}: {s:.4f}" for lr, s in zip(lrs, scores)),
        f"{lrs[win]:g}",
    )
    run = _continue_on(model, runs, win, plan, best_dir)
    _set_rng_state(after[win])
    run.result.lr_search = record
    if plan.log_path is not None:  # the winner's evaluations so far; the others' are not the run's
        plan.log_path.write_text("".join(json.dumps(r) + "\n" for r in run.result.history), encoding="utf-8")
    if plan.checkpoint_dir is not None and not run.done:
        run.pos.running = run.running.item()
        save_checkpoint(run)  # a restart after this point does not search again
    return run


def _search_short(model, plan: Schedule, best_dir: Path | None, lrs: list[float], rung: int) -> Run:
    """``schedule: short``: each candidate trains a run of ``rung`` steps with its own warm-up and decay to zero, then
    the winner trains the whole run from the start on ``model``.

    Why: on the run's own schedule a higher rate is still near its peak at the rung, where its weights are noisier
    than a lower rate's; the comparison there favours low rates (short-horizon bias). On elpv-defects the rung chose
    3e-4 (validation f1 0.453 against 0.417), where a reference fine-tune at 1e-3 reached 0.612 test f1 against
    0.496 at 3e-4. A short run that decays compares each rate at the end of its own schedule. It costs ``candidates x
    fraction`` of a run (one rung more than the continuing search), and the winner's run is a run at that rate
    alone."""
    acc = plan.accelerator
    started = time.perf_counter()
    short = dataclasses.replace(plan, steps=rung, checkpoint_dir=None, log_path=None, save_every=None)
    initial, scores = _rng_state(), []
    bar = tqdm(total=rung * len(lrs), desc="lr search", disable=not acc.is_main_process, dynamic_ncols=True)
    try:
        for i, lr in enumerate(lrs):
            _set_rng_state(initial)
            # A copy of ``model``, which is never prepared before the winner's run: it stays at the starting weights.
            run = Run(copy.deepcopy(model), lr, short, checkpoint.BestWeights(acc, best_dir, f"best-lr{i}.safetensors"))
            run.advance(rung, bar)
            scores.append(_score(run))
            run.best.weights.discard()
            del run
            acc.free_memory()  # Accelerate's references to this candidate's model and optimizer
    finally:
        bar.close()
    win = _winner(scores, lrs)
    record = _record(lrs, scores, win, plan, rung, rung * len(lrs), started) | {"schedule": "short"}
    logger.info(
        "lr search, a run of %d steps each: %s -> %s trains the whole run (%d steps)",
        rung,
        ", ".join(f"{lr:g}: {s:.4f}" for lr, s in zip(lrs, scores)),
        f"{lrs[win]:g}",
        plan.steps,
    )
    _set_rng_state(initial)  # the winner's run draws what a run at that rate alone would
    run = Run(model, lrs[win], plan, checkpoint.BestWeights(acc, best_dir))
    if plan.recipe.train.eval_at_start:
        evaluate_start(run, run.evaluate())
    run.result.lr_search = record
    return run


def _winner(scores: list[float], lrs: list[float]) -> int:
    return max(range(len(lrs)), key=lambda i: (scores[i], -lrs[i]))  # a tie goes to the smaller rate


def _record(lrs, scores, win, plan: Schedule, rung, extra, started) -> dict:
    return {
        "candidates": lrs,
        "scores": [round(s, 6) for s in scores],
        "metric": plan.metric,  # every candidate's Best watches the plan's metric
        "rung_step": rung,
        "steps": plan.steps,
        "chosen": lrs[win],
        "extra_steps": extra,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _score(run: Run) -> float:
    """The candidate's best watched metric so far, with one evaluation at the rung unless one was just made."""
    last = run.result.history[-1]["step"] if run.result.history else None
    if last != run.pos.step:
        value = run.evaluate().get(run.best.metric)
        return max(run.best.value, value if value is not None else -float("inf"))
    return run.best.value


def _continue_on(model, runs: list[Run], win: int, plan: Schedule, best_dir: Path | None) -> Run:
    """The winner's state on ``model`` (candidate 0's own object, which the caller saves), registered with
    Accelerate alone: the other candidates' models and optimizers are released."""
    acc, winner = plan.accelerator, runs[win]
    optimizer_state, scheduler_state = winner.raw_optimizer.state_dict(), winner.raw_scheduler.state_dict()
    with torch.no_grad():
        model_state = acc.unwrap_model(winner.model).state_dict()
        acc.unwrap_model(runs[0].model, keep_fp32_wrapper=False).load_state_dict(model_state)
    for run in runs:
        raw = acc.unwrap_model(run.model, keep_fp32_wrapper=False)  # drops the mixed-precision forward
        # prepare() skips (and so would not wrap again) an object it marked as prepared: the continuing run is
        # prepared afresh, with its mixed precision and, across processes, its DistributedDataParallel wrapper.
        raw.__dict__.pop("_is_accelerate_prepared", None)
    acc.free_memory()
    run = Run(model, winner.lr, plan, winner.best.weights)
    run.raw_optimizer.load_state_dict(optimizer_state)
    run.raw_scheduler.load_state_dict(scheduler_state)
    run.best, run.pos = winner.best, winner.pos
    run.running = winner.running.detach().clone()
    for i, other in enumerate(runs):
        if i != win:
            other.best.weights.discard()
    return run
