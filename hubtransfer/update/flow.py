"""The update's steps inside a run (hubtransfer.run calls them when the recipe has an ``update`` section): the data
and the starting model, the soft targets, the weight average, and the two versions side by side on both tests."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from datasets import Dataset, DatasetDict

from hubtransfer.choices import Choice
from hubtransfer.data.prepare import PreparedData, prepare_data, prepare_task_data
from hubtransfer.errors import RecipeError
from hubtransfer.job import Job
from hubtransfer.recipe.sections import UpdateSpec
from hubtransfer.tasks import TaskSpec
from hubtransfer.train.batches import eval_loader
from hubtransfer.train.budget import steps_per_epoch, update_epochs
from hubtransfer.train.evaluate import evaluate
from hubtransfer.update.data import update_data
from hubtransfer.update.methods import SoftTargets, choose_alpha
from hubtransfer.update.model import parent_model
from hubtransfer.update.parent import Parent, fetch_parent
from hubtransfer.update.versions import Versions

logger = logging.getLogger(__name__)
# The previous version evaluated on the merged labels: its new rows never win.
NEVER = -1e9


@dataclass
class Update:
    """What an update run carries from its data to its record."""

    parent: Parent
    old_test: Dataset
    spec: UpdateSpec
    task: TaskSpec
    start: dict | None = None  # the state training started from (method interpolate)
    alpha: dict | None = None

    @property
    def method(self) -> str:
        return self.spec.method


def update_data_of(job: Job, accelerator) -> tuple[PreparedData, Update]:
    """The previous version, both data sets under one label map, and what the method trains on."""
    spec, recipe = job.recipe.update, job.recipe
    if not (job.task.input_classification and job.problem.single_label):
        raise RecipeError(
            [f"update: single-label text or image classification only, not {recipe.task} ({job.problem})"]
        )
    parent = fetch_parent(spec)
    if parent.recipe.task != recipe.task:
        raise RecipeError([f"update.from_model is a {parent.recipe.task} model; this recipe's task is {recipe.task}"])
    with accelerator.main_process_first():
        old = prepare_task_data(job.task, parent.recipe)
        # One class is enough in the new data: an update may add one label to those the previous version knows.
        new = prepare_data(recipe.data, job.task.modality, problem=recipe.problem, min_classes=1)
    data, old_test = update_data(
        old, new, spec.method, spec.replay_fraction, recipe.train.seed, job.task.modality, spec.label_map
    )
    logger.info("update from %s@%s (%s): %s", spec.from_model, spec.from_revision, spec.method, data.info["update"])
    return data, Update(parent, old_test, spec, job.task)


def new_train(info: dict) -> int:
    """New training examples the update keeps (those that are old validation or test examples are dropped)."""
    return info["new_sizes"]["train"] - info["new_train_dropped_as_old_held_out"]


def continuing_choices(update: Update, job: Job, data: PreparedData, processes: int) -> list[Choice]:
    """What an update that continues the previous version (every method but 'joint') takes where the recipe says
    'auto': the previous version's learning rate, and a budget for the new data's share of the examples. Both are
    chosen so the update costs a fraction of retraining: its backbone and old head rows are trained already."""
    if update.method == "joint":
        return []
    t, out = job.recipe.train, []
    parent_lr, who = update.parent.recipe.train.lr, f"{update.spec.from_model}@{update.spec.from_revision}"
    if t.lr == "auto" and t.lr_search.candidates is None and isinstance(parent_lr, float):
        why = f"an update continues {who} at the rate it trained at (its own search chose it); no search again"
        out.append(Choice("train.lr", parent_lr, "auto", why))
    if t.epochs == "auto" and not t.max_steps:
        info = data.info["update"]
        new = new_train(info)
        both = new + info["old_sizes"]["train"]
        share = new / max(1, both)
        per_epoch = steps_per_epoch(t, len(data.splits["train"]), processes)
        epochs = update_epochs(t, per_epoch, share)
        steps = math.ceil(epochs * per_epoch)
        why = (
            f"an update: train.min_steps {t.min_steps} x the new data's share of old + new training examples "
            f"({new:,} of {both:,}), at least one epoch: {steps} steps of {per_epoch} an epoch"
        )
        out.append(Choice("train.epochs", epochs, "auto", why, {"steps_per_epoch": per_epoch, "steps": steps}))
    return out


def starting_model(update: Update, labels: list[str]):
    """The previous version with its head grown to ``labels``; None for 'joint' (it starts from the base)."""
    if update.method == "joint":
        return None
    model = parent_model(update.parent, update.task, labels)
    if update.method == "interpolate":
        update.start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model


def soft_targets(update: Update, accelerator) -> SoftTargets | None:
    if update.method != "distill":
        return None
    teacher = parent_model(update.parent, update.task, update.parent.labels)
    spec = update.spec
    return SoftTargets(teacher, len(update.parent.labels), spec.distill_weight, spec.temperature, accelerator)


def average_weights(update: Update, job: Job, model, loader, accelerator, scorer) -> None:
    """Method interpolate: the weight average with the start, chosen on old + new validation, left in ``model``."""
    if update.method == "interpolate":
        metric = job.watched_metric
        update.alpha = choose_alpha(model, update.start, update.spec.alphas, loader, accelerator, scorer, metric)


def versions(update: Update, job: Job, trainer, new_test: dict, test_loader, data, processor, accelerator, scorer):
    """Both versions on the old and the new test split (accuracy). ``job``: the run's, its 'auto' keys resolved;
    ``trainer``: the trained model and its collate; ``test_loader``: the run's prepared loader of the new test split,
    on which ``new_test`` was measured."""
    recipe, task, model = job.recipe, job.task, trainer.model
    old = PreparedData(DatasetDict(test=update.old_test), data.labels, data.input_column, data.info)
    old_test = accelerator.prepare(eval_loader(task.encode(old, processor, recipe)["test"], trainer.collate, recipe))
    previous = parent_model(update.parent, task, data.labels, new_rows_bias=NEVER)
    previous = accelerator.prepare_model(previous, evaluation_mode=True)  # the precision the run evaluates in
    score = lambda m, loader: evaluate(m, loader, accelerator, scorer)["metrics"]["accuracy"]
    spec, info = update.spec, data.info["update"]
    return Versions(
        parent=f"{spec.from_model}@{spec.from_revision}",
        parent_sha=update.parent.sha,
        method=spec.method,
        old_test={"previous": score(previous, old_test), "new": score(model, old_test)},
        new_test={"previous": score(previous, test_loader), "new": new_test["metrics"]["accuracy"]},
        data={
            "new_train": new_train(info),
            "old_examples_replayed": info["old_examples_replayed"],
            "new_labels": info["new_labels"],
        },
        alpha=update.alpha,
    )
