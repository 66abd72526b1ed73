"""Choices made from the data in hand: what a recipe leaves at ``auto`` (or unset), resolved once, before training.

Each rule looks at the training split, the checkpoint's own files or the processor, and returns a
:class:`Choice`: the recipe key, the value taken, what the recipe asked for, and why. The resolved values go into
the run's recipe (``recipe.yaml`` names them, so it reproduces the run), and the choices, with their reasons,
into the run record, the log and the model card. ``train.lr: auto`` is chosen during training
(:mod:`hubtransfer.train.search`); its candidates are resolved here.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from hubtransfer.job import load_recipe
from hubtransfer.recipe.load import set_key
from hubtransfer.recipe.schema import Recipe
from hubtransfer.train.budget import AUTO_PATIENCE, auto_epochs, auto_patience, steps_per_epoch
from hubtransfer.train.search import default_candidates

logger = logging.getLogger(__name__)

MAX_AUTO_LENGTH = 256  # 'auto' never asks for more tokens: attention cost grows with the square of the length
MIN_AUTO_LENGTH = 16
LENGTH_SAMPLE = 5000  # training texts measured for data.max_length 'auto'
IMAGE_SAMPLE = 200  # training images measured for data.image_size 'auto'
MIN_AUTO_IMAGE = 96  # small images are enlarged at least to this side: pretrained filters expect objects of some size


@dataclass
class Choice:
    key: str  # dotted recipe key
    value: Any
    requested: Any  # what the recipe said ('auto', or None for unset)
    why: str
    detail: dict = field(default_factory=dict)

    def line(self) -> str:
        return f"{self.key} = {_show(self.value)} ({self.why})"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


def apply(recipe: Recipe, choices: list[Choice]) -> Recipe:
    """``recipe`` with every choice's value written in."""
    d = recipe.to_dict()
    for c in choices:
        set_key(d, c.key.split("."), c.value)
    return load_recipe(d)


def resolved(recipe: Recipe, run_record: dict) -> Recipe:
    """``recipe`` with the choices a finished run recorded written in where ``recipe`` leaves that key as the run's
    recipe did: what the run's recipe.yaml holds when the run was made from ``recipe``."""
    d = recipe.to_dict()
    recorded = [Choice(**c) for c in run_record.get("choices", [])]
    return apply(recipe, [c for c in recorded if _get(d, c.key) == c.requested])


def _get(d: dict, key: str):
    for part in key.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


def log(choices: list[Choice]) -> None:
    for c in choices:
        logger.info("chosen from the data: %s", c.line())


def as_records(choices: list[Choice]) -> list[dict]:
    return [asdict(c) for c in choices]


# --------------------------------------------------------------------------- before the model is built


def choose_pooling(job, sentence: str | None) -> Choice | None:
    """head.pooling 'auto': the checkpoint's own sentence pooling where it has one and a pooled head applies."""
    recipe, task = job.recipe, job.task
    if recipe.head.pooling != "auto":
        return None
    if task.custom_class is None or task.modality != "text" or job.strategy.keeps_native_head or sentence is None:
        why = (
            f"strategy {job.strategy} keeps the checkpoint's own head class"
            if job.strategy.keeps_native_head and sentence
            else "the checkpoint is not a sentence-embedding model"
            if task.modality == "text" and task.custom_class
            else f"task {task.name} reads the checkpoint's own outputs"
        )
        return Choice("head.pooling", "native", "auto", why)
    return Choice(
        "head.pooling",
        sentence,
        "auto",
        f"the checkpoint is a sentence-embedding model trained with {sentence} pooling "
        "(its 1_Pooling/config.json); the stock classifier reads an untrained first-token pooler",
    )


# --------------------------------------------------------------------------- from the data


def label_counts(data) -> Counter | None:
    """Training examples per class (single-label classification only)."""
    if not data.labels or "label" not in data.splits["train"].column_names:
        return None
    labels = data.splits["train"]["label"]
    if labels and not isinstance(labels[0], int):
        return None
    counts = Counter(labels)
    return Counter({i: counts.get(i, 0) for i in range(len(data.labels))})


def imbalance(counts: Counter) -> float:
    present = [n for n in counts.values() if n > 0]
    return max(present) / min(present) if present else 1.0


def choose_metric(job, counts: Counter | None) -> Choice | None:
    recipe = job.recipe
    if recipe.train.early_stopping.metric is not None:
        return None
    if counts is None:
        return Choice(
            "train.early_stopping.metric",
            job.watched_metric,
            None,
            f"the default for {job.task.name} ({recipe.problem})",
        )
    ratio = imbalance(counts)
    if ratio >= recipe.train.imbalance_ratio:
        return Choice(
            "train.early_stopping.metric",
            "f1",
            None,
            f"training labels are imbalanced ({ratio:.1f}x largest / smallest "
            f"class >= train.imbalance_ratio {recipe.train.imbalance_ratio:g}): macro f1 counts every class alike",
            {"imbalance": round(ratio, 3)},
        )
    return Choice(
        "train.early_stopping.metric",
        job.watched_metric,
        None,
        f"training labels are balanced ({ratio:.1f}x largest / smallest class)",
        {"imbalance": round(ratio, 3)},
    )


def choose_class_weights(recipe: Recipe, data, counts: Counter | None) -> Choice | None:
    """train.class_weights 'auto' (``counts``: training examples per class, None where classes do not apply)."""
    cw = recipe.train.class_weights
    if cw != "auto":
        return None
    if counts is None:
        return Choice(
            "train.class_weights",
            "none",
            "auto",
            f"class weights apply to single-label classification, not {recipe.problem}",
        )
    ratio = imbalance(counts)
    if ratio < recipe.train.imbalance_ratio:
        return Choice(
            "train.class_weights",
            "none",
            "auto",
            f"training labels are balanced ({ratio:.1f}x < train.imbalance_ratio {recipe.train.imbalance_ratio:g})",
        )
    n, k = sum(counts.values()), sum(1 for v in counts.values() if v)
    weights = {data.labels[i]: round(math.sqrt(n / (k * c)), 4) for i, c in counts.items() if c}
    return Choice(
        "train.class_weights",
        weights,
        "auto",
        f"training labels are imbalanced ({ratio:.1f}x largest / smallest class): "
        "each class weighs sqrt(n / (classes x its count)) in the loss",
        {"counts": {data.labels[i]: c for i, c in counts.items()}},
    )


def choose_max_length(recipe: Recipe, data, tokenizer, per_token: bool) -> Choice | None:
    if recipe.data.max_length != "auto":
        return None
    limit = min(MAX_AUTO_LENGTH, _tokenizer_limit(tokenizer))
    texts = data.splits["train"][data.input_column][:LENGTH_SAMPLE]
    if per_token:
        lengths = [len(x) for x in tokenizer(list(texts), is_split_into_words=True, truncation=False)["input_ids"]]
    else:
        lengths = [
            len(x) for x in tokenizer([t if isinstance(t, str) else "" for t in texts], truncation=False)["input_ids"]
        ]
    if not lengths:
        return Choice("data.max_length", min(128, limit), "auto", "no training text to measure")
    p95 = sorted(lengths)[min(len(lengths) - 1, math.ceil(0.95 * len(lengths)) - 1)]
    value = max(MIN_AUTO_LENGTH, min(limit, 8 * math.ceil(p95 / 8)))
    cut = sum(x > value for x in lengths) / len(lengths)
    why = f"95% of {len(lengths):,} training texts fit in {p95} tokens; at most {limit}"
    return Choice(
        "data.max_length",
        value,
        "auto",
        f"{why}; {100 * cut:.1f}% are cut",
        {"p95": p95, "max": max(lengths), "cut_share": round(cut, 4)},
    )


def _tokenizer_limit(tokenizer) -> int:
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 100_000 else 512


def processor_side(processor) -> int | None:
    """The square side an image processor resizes (or crops) to."""
    size = (
        getattr(processor, "crop_size", None)
        if getattr(processor, "do_center_crop", False)
        else getattr(processor, "size", None)
    )
    if not hasattr(size, "get"):  # a dict, or transformers' SizeDict
        return None
    return size.get("height") or size.get("shortest_edge")


def choose_image_size(recipe: Recipe, data, processor) -> Choice | None:
    if recipe.data.image_size != "auto":
        return None
    native = processor_side(processor)
    train = data.splits["train"]
    sides = sorted(
        s for i in range(min(IMAGE_SAMPLE, len(train))) if (s := _side(train, i, data.input_column)) is not None
    )
    if native is None or not sides:
        return Choice("data.image_size", None, "auto", "the processor's own size")
    median = sides[len(sides) // 2]
    if median >= native:
        # A center crop suits photos of one centred object, not every user's frames: on 300 px solar-cell images
        # the processor's resize to 256 + crop to 224 cut 23% of the area, edge defects included. The whole frame
        # measured 80.4 / 57.9 accuracy / macro-F1 against the crop's 76.6 / 54.1 (means of three seeds,
        # elpv-defects in docs/user-data.md). Smaller images already reach the model whole (below).
        crops = getattr(processor, "do_center_crop", False)
        how = (
            f"the whole image resized to {native} px, not the processor's center crop, which would cut the border"
            if crops
            else "its own resize"
        )
        return Choice(
            "data.image_size",
            native if crops else None,
            "auto",
            f"training images (median side {median} px) are at least the processor's {native} px: {how}",
            {"median_side": median},
        )
    value = min(native, max(min(MIN_AUTO_IMAGE, native), 32 * math.ceil(2 * median / 32)))
    return Choice(
        "data.image_size",
        value,
        "auto",
        f"training images are small (median side {median} px): enlarged to twice that, "
        f"at least {min(MIN_AUTO_IMAGE, native)} and at most the processor's {native} px",
        {"median_side": median},
    )


def _side(split, i: int, column: str) -> int | None:
    """The shorter side of one image; None for a file that cannot be read (encoding reports it, with the fix)."""
    try:
        return min(split[i][column].size)
    except Exception:  # PIL raises many kinds for broken files
        return None


def choose_budget(recipe: Recipe, n_train: int, processes: int) -> list[Choice]:
    """train.epochs 'auto' (from the steps an epoch takes) and early_stopping.patience 'auto' (from the evaluations)."""

    t, out = recipe.train, []
    per_epoch = steps_per_epoch(t, n_train, processes)
    epochs = t.epochs
    if epochs == "auto":
        epochs = auto_epochs(t, per_epoch)
        out.append(
            Choice(
                "train.epochs",
                epochs,
                "auto",
                f"{per_epoch} optimizer steps an epoch: {epochs} epochs give "
                f"{epochs * per_epoch} steps (train.min_steps {t.min_steps}, at most {t.max_auto_epochs} epochs)",
                {"steps_per_epoch": per_epoch, "steps": epochs * per_epoch},
            )
        )
    if t.early_stopping.patience == "auto":
        steps = t.max_steps or math.ceil(epochs * per_epoch)
        evals = math.ceil(steps / (per_epoch if t.eval_every == "epoch" else t.eval_every))
        patience = auto_patience(evals)
        why = (
            f"{evals} evaluations: stop after {AUTO_PATIENCE} without a gain"
            if patience
            else f"{evals} evaluations are too few to stop early"
        )
        out.append(Choice("train.early_stopping.patience", patience, "auto", why))
    return out


def choose_lr_candidates(job) -> Choice | None:
    recipe, strategy, modality = job.recipe, job.strategy, job.task.modality
    if recipe.train.lr != "auto" or recipe.train.lr_search.candidates is not None:
        return None

    lrs = default_candidates(strategy.lr_family, modality)
    what = {"head": "the head alone", "lora": "low-rank adapters"}.get(strategy.lr_family, f"the {modality} backbone")
    return Choice("train.lr_search.candidates", lrs, None, f"train.lr is 'auto': the rates tried for {what}")


def input_shape(recipe: Recipe, task, data, processor) -> list[Choice]:
    """data.max_length / data.image_size 'auto': what the task's inputs are cut or resized to."""
    if task.modality == "image":
        found = [choose_image_size(recipe, data, processor)]
    elif task.labeled:
        found = [choose_max_length(recipe, data, processor, task.per_token)]
    elif recipe.data.max_length == "auto":
        found = [Choice("data.max_length", 128, "auto", "self-supervised text is cut into chunks of this many tokens")]
    else:
        found = []
    return [c for c in found if c is not None]


def from_data(job, data, processor, processes: int) -> list[Choice]:
    """Every choice that needs the training split (and the processor)."""
    recipe, task = job.recipe, job.task
    counts = label_counts(data) if job.problem.single_label and task.input_classification else None
    found = [choose_metric(job, counts), choose_class_weights(recipe, data, counts), choose_lr_candidates(job)]
    found += input_shape(recipe, task, data, processor)
    found += choose_budget(recipe, len(data.splits["train"]), processes)
    return [c for c in found if c is not None]
