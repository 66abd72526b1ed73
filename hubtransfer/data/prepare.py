"""Data sources -> a deduplicated ``DatasetDict`` with fixed train / validation / test splits.

The split (written into ``split.json`` and the model card):

1. Exact duplicates are dropped (same text, or same image file bytes); the first copy is kept.
   Within the splits a source already has, and across them: a training example that also sits
   in validation or test is removed from training, so test never leaks into training.
2. Each example gets a key ``sha256(f"{split_seed}:" + content)``. Splits the source lacks are
   cut from training by that key: the lowest ``test_fraction`` go to test, the next
   ``validation_fraction`` to validation. The assignment depends on the content alone, not on
   file order or the machine, so the same data always splits the same way.
3. Inside every split, examples are ordered by that key, so ``max_train_samples=N`` takes a
   fixed pseudo-random subset of N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datasets import DatasetDict

from hubtransfer.data.labels import problem_labels, standard_columns, unify_labels, unify_tags
from hubtransfer.data.problem_labels import target_stats
from hubtransfer.data.split import apply_limits, dedup_and_split
from hubtransfer.recipe.refs import ProblemType
from hubtransfer.recipe.sections import DataSpec
from hubtransfer.sources.dataset import load_source
from hubtransfer.sources.packaged import terms_of


@dataclass
class PreparedData:
    """The splits ready for a task: columns ``input_column`` and ``label`` (a ClassLabel, or for per-token tasks a
    Sequence of ClassLabel, one tag per word of the input's word list)."""

    splits: DatasetDict
    labels: list[str]
    input_column: str
    info: dict = field(default_factory=dict)


def prepare_data(
    spec: DataSpec,
    modality: str,
    labeled: bool = True,
    problem: ProblemType = ProblemType.SINGLE_LABEL,
    *,
    per_token: bool = False,
    min_classes: int = 2,
) -> PreparedData:
    """Load ``spec.source`` and return deduplicated, labeled, fixed splits.

    Args:
        spec: the recipe's data section.
        modality: "text" or "image" (decides the input column and the duplicate key).
        labeled: False for self-supervised tasks (masked-LM): no label column is read, ``labels`` is empty.
        min_classes: the fewest labels the training split may hold (1 for the new data of an update).
        per_token: the text column holds word lists and the label column one IOB2 tag per word
            (token classification); the labels are then the tag set of the training split.
        problem: the recipe's problem type; multi-label and regression labels are read by ``problem_data``
            (multi-hot float vectors; float targets, ``labels`` = [the target column], ``info["target"]`` its
            statistics).

    Raises:
        DataError: a missing column, an empty split, labels only some splits have, a bad source,
            (per_token) tags that are not IOB2 or do not match their words.

    Example:
        >>> data = prepare_data(DataSpec(source="packaged:conll2003", text_column="tokens",
        ...                              label_column="ner_tags"), "text", per_token=True)  # doctest: +SKIP
        >>> data.labels[:3]  # doctest: +SKIP
        ['O', 'B-LOC', 'B-MISC']
    """
    problem = ProblemType(problem)  # callers may name it as the recipe does
    raw = load_source(spec)
    input_col = spec.text_column if modality == "text" else spec.image_column
    raw = standard_columns(raw, input_col, spec.label_column if labeled else None, modality, per_token)
    if not labeled:
        labels: list[str] = []
    elif per_token:
        raw, labels = unify_tags(raw)
    elif problem is ProblemType.SINGLE_LABEL:
        raw, labels = unify_labels(raw, spec.label_column, min_classes)
    else:
        raw, labels = problem_labels(raw, spec, problem)
    splits, info = dedup_and_split(raw, spec, modality)
    splits = apply_limits(splits, spec)
    info.update(source=spec.source, sizes={k: len(v) for k, v in splits.items()}, labels=labels)
    if terms_of(spec.source):
        info["terms"] = terms_of(spec.source)
    if labeled and problem is ProblemType.REGRESSION:
        info["target"] = target_stats(splits["train"], spec.label_column)
    return PreparedData(splits=splits, labels=labels, input_column=modality, info=info)


def prepare_task_data(task, recipe) -> PreparedData:
    """The task's own preparation where it has one (``TaskSpec.prepare``: multi-task reads a label column per
    head), else :func:`prepare_data` on the recipe's data section."""
    if task.prepare is not None:
        return task.prepare(recipe)
    return prepare_data(recipe.data, task.modality, task.labeled, recipe.problem, per_token=task.per_token)
