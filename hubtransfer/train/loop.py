"""The only training loop: Accelerate, AdamW, warm-up + decay, accumulation, evaluation, early stopping."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm
from transformers import get_scheduler

from hubtransfer.errors import TrainingError
from hubtransfer.job import watched_metric
from hubtransfer.recipe.schema import Recipe
from hubtransfer.strategies import get_strategy
from hubtransfer.strategies.base import Strategy, parameter_groups, set_train_mode
from hubtransfer.train import checkpoints as checkpoint
from hubtransfer.train.batches import ShuffledBatches
from hubtransfer.train.cpu_kernels import cpu_training_kernels
from hubtransfer.train.evaluate import evaluate

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- precision


# --------------------------------------------------------------------------- batching


# --------------------------------------------------------------------------- evaluation


# --------------------------------------------------------------------------- training


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


class _Best:
    """Early stopping state + the best weights so far (trainable params and buffers, see
    :class:`checkpoint.BestWeights`)."""

    def __init__(
        self, metric: str, patience: int | None, min_delta: float, may_train: set[str], weights: checkpoint.BestWeights
    ):
        self.metric, self.patience, self.min_delta, self.may_train = metric, patience, min_delta, may_train
        self.value, self.record, self.bad, self.weights = -math.inf, None, 0, weights

    def update(self, model, record: dict) -> bool:
        value = record["validation"].get(self.metric)
        if value is None:
            raise TrainingError(
                f"train.early_stopping.metric '{self.metric}' is not computed; pick one of "
                f"{sorted(record['validation'])}"
            )
        if value > self.value + self.min_delta:
            self.value, self.record, self.bad = value, record, 0
            self.weights.keep(_changing_state(model, self.may_train))
            return True
        self.bad += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad >= self.patience


def _changing_state(model, may_train: set[str]) -> dict:
    """The parameters that may train in this run, and every buffer (batch-norm statistics move too)."""
    params = {n for n, _ in model.named_parameters()}
    return {k: v for k, v in model.state_dict().items() if k in may_train or k not in params}


def auto_epochs(train, steps_per_epoch: int) -> int:
    """``train.epochs: auto``: enough epochs for ``train.min_steps`` optimizer steps, at least 2 (a second pass still
    helps a new head) and at most ``train.max_auto_epochs``."""
    return min(train.max_auto_epochs, max(2, math.ceil(train.min_steps / max(1, steps_per_epoch))))


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
        self.raw_scheduler = get_scheduler(
            t.scheduler,
            self.raw_optimizer,
            num_warmup_steps=int(t.warmup_ratio * plan.steps),
            num_training_steps=plan.steps,
        )
        self.best = _Best(plan.metric, plan.patience, t.early_stopping.min_delta, may_train, best_weights)
        self.pos = _Position(result=FitResult(lr=lr))
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


def fit(
    model,
    loaders: dict,
    sampler: ShuffledBatches,
    recipe: Recipe,
    accelerator: Accelerator,
    scorer,
    log_path: Path | None,
    checkpoint_dir: Path | None = None,
    best_dir: Path | None = None,
    class_weights: torch.Tensor | None = None,
    strategy: Strategy | None = None,
) -> FitResult:
    """Train ``model`` by the recipe; keep and restore the best weights by the watched metric.

    With ``checkpoint_dir``, checkpoints are written there as the recipe says, and a run finding a
    checkpoint there resumes from the newest one exactly where it stopped (same batches, same RNG).
    With ``best_dir`` (an existing folder), the best weights are kept in a file there instead of in RAM;
    the file is removed once they are back in the model. ``train.lr: auto`` first searches the learning rate
    (:mod:`hubtransfer.lr_search`); the run then goes on from the winner's state. ``class_weights`` (one per
    class) weight the cross-entropy.
    """
    t = recipe.train
    strategy = strategy or get_strategy(recipe.strategy)
    if strategy.one_process and accelerator.num_processes > 1:
        raise TrainingError(
            f"strategy '{strategy}' changes what trains between epochs, which DistributedDataParallel cannot follow; "
            "run it in one process, or use strategy=lp-ft or full with train.layer_decay"
        )
    per_epoch, steps = total_steps(recipe, len(loaders["train"]) // accelerator.num_processes or 1)
    eval_every = per_epoch if t.eval_every == "epoch" else t.eval_every
    patience = t.early_stopping.patience
    plan = Schedule(
        recipe,
        accelerator,
        loaders,
        sampler,
        scorer,
        steps,
        per_epoch,
        eval_every=eval_every,
        strategy=strategy,
        save_every=per_epoch if t.checkpoint_every == "epoch" else t.checkpoint_every,
        metric=t.early_stopping.metric or watched_metric(recipe),
        patience=auto_patience(math.ceil(steps / eval_every)) if patience == "auto" else patience,
        log_path=log_path,
        checkpoint_dir=checkpoint_dir,
        class_weights=class_weights.to(accelerator.device) if class_weights is not None else None,
    )
    found = checkpoint.checkpoints(checkpoint_dir) if checkpoint_dir is not None else []
    if found:
        run = _resumed(model, plan, found[-1], best_dir)
    elif t.lr == "auto":
        from hubtransfer.train.search import search_lr  # late: it builds on this module

        run = search_lr(model, plan, best_dir)
    else:
        run = Run(model, t.lr, plan, checkpoint.BestWeights(accelerator, best_dir))
        if t.eval_at_start:
            evaluate_start(run, run.evaluate())
    bar = tqdm(
        total=steps, initial=run.pos.step, desc="train", disable=not accelerator.is_main_process, dynamic_ncols=True
    )
    try:
        run.advance(steps, bar)
    finally:
        bar.close()  # before any error message, so it does not land on the bar's line
    result = run.result
    result.steps, result.best = run.pos.step, run.best.record
    run.best.weights.restore(run.unwrapped())
    run.best.weights.discard()
    return result


def _resumed(model, plan: Schedule, path: Path, best_dir: Path | None) -> Run:
    """The run a checkpoint holds, at its learning rate (for lr 'auto', the one the search chose before it)."""
    state = checkpoint.read_loop_state(path)
    run = Run(model, state.get("lr", plan.recipe.train.lr), plan, checkpoint.BestWeights(plan.accelerator, best_dir))
    run.pos = _resume(plan.accelerator, path, run.best, plan.recipe)
    run.running = torch.tensor(run.pos.running, device=plan.accelerator.device)
    run.result.lr, run.result.lr_search = run.lr, state.get("lr_search")
    if plan.log_path is not None:  # evaluations after that checkpoint will run again: drop their old lines
        plan.log_path.write_text("".join(json.dumps(r) + "\n" for r in run.result.history), encoding="utf-8")
    return run


def _loss(model, batch: dict, class_weights: torch.Tensor | None):
    if class_weights is None:
        return model(**batch).loss
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    return torch.nn.functional.cross_entropy(logits.float(), batch["labels"], weight=class_weights)


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
                loss = _loss(model, batch, plan.class_weights)
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
                pos.running = run.running.item()
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


@dataclass
class _Position:
    """Where the loop is: what a checkpoint must hold to continue exactly."""

    result: FitResult
    step: int = 0
    epoch: int = 0
    batches: int = 0  # batches already taken from this epoch
    since_eval: int = 0  # batches summed in ``running`` since the last evaluation
    running: float = 0.0


def save_checkpoint(run: Run) -> None:
    r, pos, best, plan = run.result, run.pos, run.best, run.plan
    state = {
        "recipe": plan.recipe.to_dict(),
        "step": pos.step,
        "epoch": pos.epoch,
        "batches": pos.batches,
        "since_eval": pos.since_eval,
        "running": pos.running,
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


def _resume(accelerator: Accelerator, path: Path, best: _Best, recipe: Recipe) -> _Position:
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
    return _Position(result, state["step"], state["epoch"], state["batches"], state["since_eval"], state["running"])


def comparable(recipe: dict) -> dict:
    """The recipe keys a resumed run must share with the interrupted one (output and hub keys may differ)."""
    out = {k: v for k, v in recipe.items() if k not in ("hub", "overwrite_output_dir", "output_dir")}
    out["train"] = {k: v for k, v in recipe["train"].items() if k not in ("resume", "log_with", "num_workers")}
    return out


def _fused_ok(model) -> bool:
    # Fused AdamW runs on CPU and CUDA in torch 2.13 and saves the per-parameter Python loop.
    return all(p.device.type in ("cpu", "cuda") for p in model.parameters())


def evaluate_start(run: Run, metrics: dict) -> None:
    """Step 0 of the learning curve: the model as built, before any update (the 'start' of transfer)."""
    record = {"step": 0, "epoch": 0.0, "train_loss": None, "validation": metrics, "train_seconds": 0.0}
    _log(record, run.plan.accelerator, run.plan.log_path, None)
    run.result.history.append(record)
    run.best.update(run.unwrapped(), record)


def _evaluate_step(model, loader, accelerator, scorer, running, pos: _Position, per_epoch: int) -> dict:
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


def class_weight_tensor(recipe: Recipe, labels: list[str]):
    """The loss weights the resolved recipe names (None: plain cross-entropy)."""
    import torch

    cw = recipe.train.class_weights
    if not isinstance(cw, dict):
        return None
    unknown = sorted(set(cw) - set(labels))
    if unknown:
        from hubtransfer.errors import RecipeError

        raise RecipeError(
            [f"train.class_weights names labels the data does not have: {unknown}; the labels are {labels}"]
        )
    return torch.tensor([float(cw.get(name, 1.0)) for name in labels], dtype=torch.float32)
