"""What the model card says of each task and problem type: its metric rows (the first is the headline), the note
under them, the intended use, and what a task adds to the card. Tasks and problems say nothing of the card
themselves; a task without an entry here gets single-label classification's wording."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from hubtransfer.card import multitask
from hubtransfer.recipe.refs import ProblemType

# (metric key in metrics.json, display name, metric_args for the model-index)
CLASSIFICATION_METRICS = (
    ("accuracy", "Accuracy", None),
    ("f1", "F1 (macro)", {"average": "macro"}),
    ("precision", "Precision (macro)", {"average": "macro"}),
    ("recall", "Recall (macro)", {"average": "macro"}),
)


@dataclass(frozen=True)
class CardText:
    """``metrics`` may be a function of the run record returning the rows (multi-task: one set per head);
    ``metric_prefix``: test metrics whose key starts with it get rows too (F1 per entity type); ``context``:
    (run folder, usage facts) -> values that replace or add to the template's; ``index_task``: the model-index task
    type when it differs from the task; ``example_input``: the usage snippet's input (None: by modality)."""

    metrics: tuple | Callable = CLASSIFICATION_METRICS
    metrics_note: str = "Precision, recall and F1 are macro averages over the {n_labels} labels."
    use: str = (
        "Single-label classification of {input_kind} into exactly one of {n_labels} labels ({label_names}). There is "
        "no "
        '"none of these" output: any input, in scope or not, gets one of these labels.'
    )
    metric_prefix: str | None = None
    context: Callable | None = None
    index_task: str = ""
    example_input: str | None = None


TASKS: dict[str, CardText] = {
    "token-classification": CardText(
        metrics=(
            ("f1", "Entity F1", None),
            ("precision", "Entity precision", None),
            ("recall", "Entity recall", None),
            ("accuracy", "Token accuracy", None),
        ),
        metrics_note=(
            "Entity scores follow the CoNLL-2003 convention (seqeval): an entity counts only when its type and exact "
            "span match; precision, recall and F1 are micro averages over entities. Token accuracy is over words "
            "(the first sub-token of each), {n_labels} tags. F1 per entity type follows."
        ),
        metric_prefix="f1_",
        use=(
            "Tagging of {input_kind}: each word gets one of {n_labels} IOB2 tags ({label_names}); the pipeline's "
            '`aggregation_strategy="simple"` groups them into entity spans. Entity types outside this set are not '
            "found, "
            "and words past the token limit (`data.max_length`) are not tagged."
        ),
        example_input='"Angela Merkel met officials of the European Union in Paris."',
    ),
    "fill-mask": CardText(
        metrics=(
            ("accuracy", "Masked-token accuracy", None),
            ("perplexity", "Perplexity (masked tokens)", None),
            ("loss", "Masked-token loss", None),
        ),
        metrics_note=(
            "Scores on 15% of the tokens of each held-out chunk, masked once with a fixed seed (BERT's 80/10/10 rule)."
        ),
        use=(
            "A source model: a {input_kind} encoder with its masked-LM head, further pretrained on in-domain text, "
            "meant as the starting point of fine-tuning (`model.id` of a hubtransfer recipe) rather than for use as "
            "it is."
        ),
        example_input='f"This movie was {classifier.tokenizer.mask_token}."',
    ),
    "multi-task": CardText(
        metrics=multitask.card_metrics,
        metrics_note=(
            "Each head is scored on its own label column; F1 is the macro average over that head's labels. The mean "
            "rows "
            "average the classification heads with equal weight (not the loss weights); early stopping and the "
            "headline "
            "use them. RMSE and MAE of a regression head are in its label's units."
        ),
        context=multitask.card_context,
        index_task="text-classification",
        use=(
            "Multi-task classification of {input_kind}: one shared encoder with several heads (see Labels), each "
            "answering its own "
            'question; a classification head gives exactly one of its labels for any input, in scope or not (no "none '
            'of these").'
        ),
    ),
}

PROBLEMS: dict[ProblemType, dict] = {
    ProblemType.MULTI_LABEL: dict(
        metrics=(
            ("f1_micro", "F1 (micro)", {"average": "micro"}),
            ("f1_macro", "F1 (macro)", {"average": "macro"}),
            ("subset_accuracy", "Subset accuracy", None),
        ),
        metrics_note=(
            "A label is predicted where its sigmoid probability reaches that label's threshold, tuned on the "
            "validation "
            "split to maximise the label's F1 (`hubtransfer_thresholds` in `config.json`). Micro F1 pools every "
            "(example, label) decision; macro F1 averages the {n_labels} labels' F1; subset accuracy counts examples "
            "whose whole label set is right. Validation numbers use thresholds tuned on validation itself "
            "(optimistic); "
            "test numbers apply them unchanged."
        ),
        use=(
            "Multi-label classification of {input_kind}: each input gets any number of the {n_labels} labels "
            "({label_names}), "
            "none included; a label is given where its sigmoid score reaches its threshold, tuned on the validation "
            "split "
            "(`hubtransfer_thresholds` in `config.json`; a stock `pipeline()` returns the scores, not the decisions)."
        ),
    ),
    ProblemType.REGRESSION: dict(
        metrics=(
            ("rmse", "RMSE", None),
            ("mae", "MAE", None),
            ("r_squared", "R²", None),
            ("pearsonr", "Pearson r", None),
            ("spearmanr", "Spearman ρ", None),
            ("mse", "MSE", None),
        ),
        metrics_note=(
            "Errors (RMSE, MAE, MSE) are on the target's own scale; R² compares with always predicting the test mean."
        ),
        use=(
            "Regression of {input_kind} to one real-valued score ({label_names}). Training targets ranged from "
            "{target_min:g} to "
            "{target_max:g} (mean {target_mean:.3g}); outputs are not clipped to that range, and values far outside "
            "it mean "
            "the input is unlike the training data."
        ),
    ),
}

POOLING = {
    "native": "the checkpoint's own pooled features",
    "mean": "mean-pooled token features",
    "cls": "the first token's features",
}


def card_text(task: str, problem: ProblemType | str = ProblemType.SINGLE_LABEL) -> CardText:
    """The card's wording for a task of a problem type (a multi-label or regression problem's rows, note and use
    replace the task's)."""
    text = TASKS.get(task, CardText())
    return replace(text, **PROBLEMS[ProblemType(problem)]) if ProblemType(problem) in PROBLEMS else text
