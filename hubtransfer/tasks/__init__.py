"""Tasks: what a task needs from a checkpoint, how its inputs are prepared, and how it is batched.

Each task module registers one :class:`TaskSpec` in :data:`TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hubtransfer.registry import Registry
from hubtransfer.tasks.metrics import DEFAULT_METRICS, ClassificationScorer


@dataclass(frozen=True)
class TaskSpec:
    """What hubtransfer needs to know of a task.

    Attributes:
        name: the recipe's ``task`` value (also the pipeline task).
        modality: "text" or "image"; decides the input column and the processor kind.
        auto_class: name of the transformers ``AutoModelFor...`` class.
        custom_class: name of the class in ``modeling_hubtransfer`` for pooled / MLP heads; None where
            those heads do not apply (the recipe then refuses head.type / head.pooling settings).
        load_processor: (model_dir, recipe) -> tokenizer or image processor.
        encode: (PreparedData, processor, recipe) -> {split: torch Dataset of model inputs + labels}.
        collate: (processor, recipe) -> collate function for the DataLoader.
        scorer: labels -> what evaluation computes from logits (default: single-label classification
            metrics, :class:`hubtransfer.metrics.ClassificationScorer`).
        card_metrics: (key, display name, model-index metric_args) rows of the model card; the first
            is the card's headline. card_metrics_note: what the card says of them.
        labeled: False for self-supervised tasks (masked-LM): the data has no label column.
        card_use: the card's first "Intended use" sentence ({input_kind}, {n_labels}, {label_names}).
            ``card_metrics`` may instead be a function of the run record (hubtransfer_run.json) returning the rows,
            for tasks whose metrics depend on the recipe (multi-task: one set per head).
        prepare: (recipe) -> PreparedData, for tasks that read more than ``data.label_column``
            (default: :func:`hubtransfer.data.prepare_data`).
        build_model: (model_dir, recipe, labels, load_kwargs) -> the model with its new head(s), for tasks
            without a transformers ``AutoModelFor...`` class (default: :func:`hubtransfer.model.build_model`'s own).
        predict: (model, processor, inputs, top_k) -> one prediction per input, for tasks no transformers
            pipeline serves; such a task has no ``pipeline_tag``.
        card_context: (run record, usage facts) -> values that replace or add to the card template's.
        index_task: the model-index task type when it differs from ``name``.
        card_metric_prefix: test metrics whose key starts with it get card rows too (per entity type).
        metric_keys: validation metrics a recipe may watch (train.early_stopping.metric); default_metric
            is watched when the recipe names none.
        per_token: one label per word of a word list (token classification) instead of one per input.
        evidence: whether ``compare`` / ``datasize`` / ``strategies`` / ``rank`` support the task.
        pipeline_kwargs: arguments of ``transformers.pipeline`` for this task (the card's snippet and predict).
        peft_class: the peft ``AutoPeftModel...`` class that loads an adapter of this task.
        example_input: the input of the card's usage snippet (a Python literal; None: by modality).
    """

    name: str
    modality: str
    auto_class: str
    custom_class: str | None
    load_processor: Callable[..., Any]
    encode: Callable[..., dict]
    collate: Callable[..., Callable]
    scorer: Callable[[list[str]], Any] = ClassificationScorer
    labeled: bool = True
    prepare: Callable[..., Any] | None = None
    build_model: Callable[..., Any] | None = None
    predict: Callable[..., list] | None = None
    metric_keys: tuple = DEFAULT_METRICS
    default_metric: str = "accuracy"
    per_token: bool = False
    evidence: bool = True
    pipeline_kwargs: dict = field(default_factory=dict)
    peft_class: str = "AutoPeftModelForSequenceClassification"
    multi_head: bool = False  # reads the recipe's heads: list (several heads on one backbone)
    input_classification: bool = False  # one class per input (text, image): classical baselines and class weights apply
    check_recipe: Callable[..., list] | None = (
        None  # (recipe, watched metric) -> problems, for tasks with keys of their own
    )

    @property
    def pipeline_tag(self) -> str | None:
        return None if self.predict is not None else self.name


TASKS: Registry[TaskSpec] = Registry("task")


def get_task(name: str) -> TaskSpec:
    """The registered task called ``name`` (ValueError with a did-you-mean otherwise)."""
    return TASKS.get(name)


from hubtransfer.tasks import (  # noqa: E402,F401  (registration)
    image_classification,
    masked_lm,
    multitask,
    text_classification,
    token_classification,
)
