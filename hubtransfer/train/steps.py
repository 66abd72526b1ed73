"""One model training at one learning rate: the schedule a fit shares, the steps, evaluations and checkpoints that
move a :class:`Run` forward. The fit (:mod:`hubtransfer.train.loop`) and the learning-rate search
(:mod:`hubtransfer.train.search`) both drive runs from here."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import get_scheduler

from hubtransfer.errors import TrainingError
from hubtransfer.recipe.schema import Recipe
from hubtransfer.strategies.base import Strategy, parameter_groups, set_train_mode
from hubtransfer.train import checkpoints as checkpoint
from hubtransfer.train.batches import ShuffledBatches
from hubtransfer.train.cpu_kernels import cpu_training_kernels
from hubtransfer.train.evaluate import evaluate
from hubtransfer.train.state import Best, FitResult, Position

logger = logging.getLogger(__name__)


@dataclass
class Schedule:
    """What every run of one fit shares: its length, when it evaluates and checkpoints, how it is scored and logged."""

    recipe: Recipe
    accelerator: Accelerator
    loaders: dict
    sampler: ShuffledBatches
    scorer: object
    steps: int
    per_epoch: int
    eval_every: int
    save_every: int | None
    strategy: Strategy | None = None
    metric: str = "accuracy"
    patience: int | None = None
    log_path: Path | None = None
    checkpoint_dir: Path | None = None
    class_weights: torch.Tensor | None = None
    # Called with (logits, inputs): a loss term added to the task's (an update's soft targets).
    extra_loss: object = None


class Run:
    """One model training at one learning rate: the optimizer, schedule, position and best weights that
    :meth:`advance` moves forward. ``fit`` drives one; the learning-rate search drives one per candidate."""

    def __init__(self, model, lr: float, plan: Schedule, best_weights: checkpoint.BestWeights):
        t = plan.recipe.train
        self.plan, self.lr = plan, lr
        may_train = {n for n, p in model.named_parameters() if p.requires_grad}
        self.raw_model = model
        self.raw_optimizer = torch.optim.AdamW(
            parameter_groups(model, lr, t.head_lr, t.weight_decay, t.layer_decay), lr=lr, fused=_fused_ok(model)
        )
        # Accelerate's prepared scheduler steps once per process at every optimizer step (it assumes the schedule was
        # counted in single-process batches), so the schedule is counted that way: else N processes decay N times
        # as fast.
        n = plan.accelerator.num_processes
        self.raw_scheduler = get_scheduler(
            t.scheduler,
            self.raw_optimizer,
            num_warmup_steps=int(t.warmup_ratio * plan.steps) * n,
            num_training_steps=plan.steps * n,
        )
        within = len(plan.loaders["validation"].dataset) if t.early_stopping.keep == "last_within_se" else None
        self.best = Best(plan.metric, plan.patience, t.early_stopping.min_delta, may_train, best_weights, within)
        self.pos = Position(result=FitResult(lr=lr))
        self.prepare()

    def prepare(self) -> None:
        """Hand the model, optimizer, loaders and scheduler to Accelerate (again after the search's ``free_memory``)."""
        acc, loaders = self.plan.accelerator, self.plan.loaders
        self.model, self.optimizer, self.train_loader, self.val_loader, self.scheduler = acc.prepare(
            self.raw_model, self.raw_optimizer, loaders["train"], loaders["validation"], self.raw_scheduler
        )
        self.running = torch.tensor(self.pos.running, device=acc.device)

    @property
    def result(self) -> FitResult:
        return self.pos.result

    def unwrapped(self):
        return self.plan.accelerator.unwrap_model(self.model)

    def advance(self, until: int, bar) -> None:
        """Train until optimizer step ``until`` (or the end, or early stopping); a later call continues exactly
        there."""
        with cpu_training_kernels(self.unwrapped(), self.plan.recipe.train.cpu_kernels):
            _epochs(self, min(until, self.plan.steps), bar)

    @property
    def done(self) -> bool:
        return self.pos.step >= self.plan.steps or self.result.stopped_early

    def evaluate(self) -> dict:
        """Validation metrics of the weights as they are now (recorded nowhere)."""
        return evaluate(self.model, self.val_loader, self.plan.accelerator, self.plan.scorer)["metrics"]


def _loss(model, batch: dict, class_weights: torch.Tensor | None, extra=None):
    if class_weights is None and extra is None:
        return model(**batch).loss
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits
    loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"], weight=class_weights)
    return loss if extra is None else loss + extra(logits, inputs)


def _epochs(run: Run, until: int, bar) -> None:
    """The epochs of a run from its position to step ``until``; updates ``run.pos``, ``run.best`` and the result in
    place."""
    plan, pos = run.plan, run.pos
    t, result, accelerator, model = plan.recipe.train, pos.result, plan.accelerator, run.model
    while pos.step < until and not result.stopped_early:
        n = plan.strategy.on_epoch(accelerator.unwrap_model(model), pos.epoch)
        if n is not None:
            logger.info("%s, epoch %d: %s parameters train", plan.strategy, pos.epoch + 1, f"{n:,}")
        set_train_mode(model)
        tick = time.perf_counter()
        batches = accelerator.skip_first_batches(run.train_loader, pos.batches) if pos.batches else run.train_loader
        # Accelerate's loaders pass their own iteration count to the sampler's set_epoch when iterated;
        # set it on the loader so a resumed run (fresh loaders, count 0) still shuffles as epoch `pos.epoch`.
        for loader in [run.train_loader] if batches is run.train_loader else [run.train_loader, batches]:
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(pos.epoch)
        plan.sampler.set_epoch(pos.epoch)
        for batch in batches:
            with accelerator.accumulate(model):
                loss = _loss(model, batch, plan.class_weights, plan.extra_loss)
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                run.optimizer.step()
                run.scheduler.step()
                run.optimizer.zero_grad(set_to_none=True)
            run.running += loss.detach()  # stays on device: no host sync per step
            pos.batches += 1
            pos.since_eval += 1
            result.train_samples += batch["labels"].shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            pos.step += 1
            bar.update(1)
            if pos.step % plan.eval_every == 0 or pos.step == plan.steps:
                result.train_seconds += time.perf_counter() - tick
                _evaluation(run, bar)
                set_train_mode(model)
                tick = time.perf_counter()
            if (
                plan.checkpoint_dir is not None
                and plan.save_every
                and pos.step % plan.save_every == 0
                and pos.step < plan.steps
            ):
                pos.running = run.running.item()  # this process's share; save_checkpoint gathers every one
                saving = time.perf_counter()
                save_checkpoint(run)
                tick += time.perf_counter() - saving  # checkpoint I/O is not training time
            if pos.step >= until or result.stopped_early:
                break
        else:  # the epoch's batches are all taken
            result.train_seconds += time.perf_counter() - tick
            if pos.step < plan.steps and not result.stopped_early:
                pos.epoch, pos.batches = pos.epoch + 1, 0
            continue
        result.train_seconds += time.perf_counter() - tick


def _evaluation(run: Run, bar) -> None:
    """A scheduled evaluation: history, log, best weights, early stopping."""
    plan, pos, best, result = run.plan, run.pos, run.best, run.result
    record = _evaluate_step(run.model, run.val_loader, plan.accelerator, plan.scorer, run.running, pos, plan.per_epoch)
    record["train_seconds"] = round(result.train_seconds, 3)  # training time so far, evaluations excluded
    run.running.zero_()
    pos.since_eval = 0
    _log(record, plan.accelerator, plan.log_path, bar)
    result.history.append(record)
    best.update(run.unwrapped(), record)
    if best.should_stop:
        result.stopped_early = True
        logger.info("early stop at step %d: no %s gain in %d evaluations", pos.step, best.metric, best.bad)


def save_checkpoint(run: Run) -> None:
    r, pos, best, plan = run.result, run.pos, run.best, run.plan
    state = {
        "recipe": plan.recipe.to_dict(),
        "step": pos.step,
        "epoch": pos.epoch,
        "batches": pos.batches,
        "since_eval": pos.since_eval,
        "running": pos.running,
        # Each process's running loss (they differ: each saw its own batches) and how many there were: a resume
        # continues exactly only with as many processes, each taking its own data shard and RNG state back.
        "running_by_process": _gathered(plan.accelerator, pos.running),
        "processes": plan.accelerator.num_processes,
        "history": r.history,
        "train_samples": r.train_samples,
        "train_seconds": r.train_seconds,
        "lr": run.lr,
        "lr_search": r.lr_search,
        "best": {"value": best.value if math.isfinite(best.value) else None, "record": best.record, "bad": best.bad},
    }
    checkpoint.save(
        plan.accelerator, plan.checkpoint_dir, pos.step, state, best.weights, plan.recipe.train.keep_checkpoints
    )


def _fused_ok(model) -> bool:
    # Fused AdamW runs on CPU and CUDA in torch 2.13 and saves the per-parameter Python loop.
    return all(p.device.type in ("cpu", "cuda") for p in model.parameters())


def evaluate_start(run: Run, metrics: dict) -> None:
    """Step 0 of the learning curve: the model as built, before any update (the 'start' of transfer)."""
    record = {"step": 0, "epoch": 0.0, "train_loss": None, "validation": metrics, "train_seconds": 0.0}
    _log(record, run.plan.accelerator, run.plan.log_path, None)
    run.result.history.append(record)
    run.best.update(run.unwrapped(), record)


def _evaluate_step(model, loader, accelerator, scorer, running, pos: Position, per_epoch: int) -> dict:
    loss = accelerator.reduce(running, reduction="mean").item() / max(1, pos.since_eval)
    if not math.isfinite(loss):
        raise TrainingError(
            f"the training loss became {loss} by step {pos.step}; lower train.lr, or set train.precision=no if using "
            "fp16. "
            "Checkpoints written before this point are kept"
        )
    out = evaluate(model, loader, accelerator, scorer)
    return {
        "step": pos.step,
        "epoch": round(pos.step / per_epoch, 3),
        "train_loss": round(loss, 5),
        "validation": out["metrics"],
    }


def _log(record: dict, accelerator: Accelerator, log_path: Path | None, bar) -> None:
    if not accelerator.is_main_process:
        return
    flat = {f"validation/{k}": v for k, v in record["validation"].items()}
    if record["train_loss"] is not None:  # None at step 0: nothing trained yet
        flat = {"train_loss": record["train_loss"], **flat}
    accelerator.log(flat, step=record["step"])
    if bar is not None:
        bar.set_postfix({k.split("/")[-1]: round(v, 4) for k, v in flat.items()}, refresh=False)
    logger.info("step %d: %s", record["step"], json.dumps(flat))
    if log_path is not None:
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def _gathered(accelerator: Accelerator, value: float) -> list[float]:
    """``value`` from every process, in rank order (float64: a float32 loss comes back bit for bit)."""
    return accelerator.gather(torch.tensor([value], dtype=torch.float64, device=accelerator.device)).tolist()
