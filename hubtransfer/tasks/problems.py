"""Problem types of the classification tasks: the recipe's ``problem`` key.

``single-label`` (the default: one label per input, softmax), ``multi-label`` (any number of labels,
sigmoid per label, thresholds tuned on validation) and ``regression`` (one real value). Each maps to
transformers' ``config.problem_type``, so the stock model computes the matching loss (cross-entropy,
BCE-with-logits on multi-hot floats, MSE) and a stock ``pipeline()`` applies softmax, sigmoid or
nothing. The Hub pipeline tag stays ``text-classification`` / ``image-classification``.

A problem changes only what a :class:`~hubtransfer.tasks.TaskSpec` says about evaluation and the card
(scorer, metric rows, note, intended use): :func:`task_for` returns the task with those fields replaced,
so the loop, the card and inference keep asking the task.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from hubtransfer.registry import Registry
from hubtransfer.tasks.problem_metrics import (
    MULTI_LABEL_METRICS,
    REGRESSION_METRICS,
    REGRESSION_WATCHABLE,
    MultiLabelScorer,
    RegressionScorer,
)

SINGLE_LABEL = "single-label"
PROBLEM_TASKS = ("text-classification", "image-classification")
THRESHOLDS_KEY = "hubtransfer_thresholds"  # config.json: {label: threshold} of a multi-label model


@dataclass(frozen=True)
class Problem:
    """What a problem type changes. ``watchable``: metrics early stopping may watch (higher is better)."""

    config_problem_type: str
    default_metric: str
    watchable: tuple
    scorer: Callable[..., Any] | None = None
    card_metrics: tuple = ()
    card_metrics_note: str = ""
    card_use: str = ""
    pipeline_function: str | None = None  # pipeline(function_to_apply=...) giving every label's score


PROBLEMS: Registry[Problem] = Registry("problem")
PROBLEMS.register(SINGLE_LABEL, Problem("single_label_classification", "accuracy", ("accuracy", "f1", "precision", "recall")))
PROBLEMS.register("multi-label", Problem(
    "multi_label_classification", "f1_micro", MULTI_LABEL_METRICS, MultiLabelScorer,
    card_metrics=(("f1_micro", "F1 (micro)", {"average": "micro"}), ("f1_macro", "F1 (macro)", {"average": "macro"}),
                  ("subset_accuracy", "Subset accuracy", None)),
    card_metrics_note=("A label is predicted where its sigmoid probability reaches that label's threshold, tuned on the validation "
                       "split to maximise the label's F1 (`hubtransfer_thresholds` in `config.json`). Micro F1 pools every "
                       "(example, label) decision; macro F1 averages the {n_labels} labels' F1; subset accuracy counts examples "
                       "whose whole label set is right. Validation numbers use thresholds tuned on validation itself (optimistic); "
                       "test numbers apply them unchanged."),
    card_use=("Multi-label classification of {input_kind}: each input gets any number of the {n_labels} labels ({label_names}), "
              "none included; a label is given where its sigmoid score reaches its threshold, tuned on the validation split "
              "(`hubtransfer_thresholds` in `config.json`; a stock `pipeline()` returns the scores, not the decisions)."),
    pipeline_function="sigmoid",
))
PROBLEMS.register("regression", Problem(
    "regression", "r_squared", REGRESSION_WATCHABLE, RegressionScorer,
    card_metrics=(("rmse", "RMSE", None), ("mae", "MAE", None), ("r_squared", "R²", None), ("pearsonr", "Pearson r", None),
                  ("spearmanr", "Spearman ρ", None), ("mse", "MSE", None)),
    card_metrics_note="Errors (RMSE, MAE, MSE) are on the target's own scale; R² compares with always predicting the test mean.",
    card_use=("Regression of {input_kind} to one real-valued score ({label_names}). Training targets ranged from {target_min:g} to "
              "{target_max:g} (mean {target_mean:.3g}); outputs are not clipped to that range, and values far outside it mean "
              "the input is unlike the training data."),
    pipeline_function="none",
))
KNOWN_METRICS = tuple(dict.fromkeys(m for p in PROBLEMS for m in (*PROBLEMS.get(p).watchable, *REGRESSION_METRICS)))


def task_for(task_name: str, problem: str = SINGLE_LABEL):
    """The registered task with the problem's scorer and card wording (the task itself for single-label)."""
    from hubtransfer.tasks import get_task

    task = get_task(task_name)
    if problem == SINGLE_LABEL:
        return task
    p = PROBLEMS.get(problem)
    return dataclasses.replace(task, scorer=p.scorer, card_metrics=p.card_metrics, card_metrics_note=p.card_metrics_note, card_use=p.card_use)


def recipe_problems(recipe) -> list[str]:
    """The recipe's problem-type mistakes (task, early-stopping metric, label separator), for the recipe's checks."""
    problems, p = [], recipe.problem
    if p != SINGLE_LABEL and recipe.task not in PROBLEM_TASKS:
        problems.append(f"problem '{p}' applies to {list(PROBLEM_TASKS)}, not task '{recipe.task}'; drop problem")
    metric = recipe.train.early_stopping.metric
    watchable = PROBLEMS.get(p).watchable
    if p != SINGLE_LABEL and metric is not None and metric not in watchable:  # single-label recipes: checked against their task's metrics
        lower = " (lower is better; the best model maximises the watched metric)" if metric in REGRESSION_METRICS else ""
        problems.append(f"train.early_stopping.metric '{metric}' is not watched for problem {p}{lower}; use one of {list(watchable)}")
    if recipe.data.label_separator is not None and p != "multi-label":
        problems.append(f"data.label_separator is set but problem is {p}; it splits multi-label strings only (set problem=multi-label or drop it)")
    return problems


def problem_of_config(config) -> str:
    """The problem a saved model was trained for, from ``config.problem_type``."""
    return {"multi_label_classification": "multi-label", "regression": "regression"}.get(getattr(config, "problem_type", None), SINGLE_LABEL)


def require_single_label(recipe, command: str) -> None:
    """The evidence and ranking commands compare classification accuracy: refuse other problems up front."""
    if getattr(recipe, "problem", SINGLE_LABEL) != SINGLE_LABEL:
        from hubtransfer.errors import RecipeError

        raise RecipeError([f"problem: `hubtransfer {command}` supports single-label classification only (its baselines and "
                           f"reports compare accuracy), not {recipe.problem}; train the recipe with `hubtransfer train`"])


# --------------------------------------------------------------------------- the model


def configure_model(model, recipe, data) -> None:
    """Set ``config.problem_type`` (so the stock loss and pipeline match) and start the new output layer's bias
    where a model that ignores its input would end: the training mean (regression), each label's training
    log-odds (multi-label). From a zero bias, a 19-label head with rare labels spends its first epoch only
    learning the label frequencies (the MovieLens recipe sat at the all-labels baseline for 300 steps).
    Single-label configs are left as transformers makes them."""
    if recipe.problem == SINGLE_LABEL:
        return
    model.config.problem_type = PROBLEMS.get(recipe.problem).config_problem_type
    import numpy as np
    import torch

    from hubtransfer.tasks.model import output_layer

    if recipe.problem == "regression":
        start = torch.tensor([data.info["target"]["mean"]])
    else:
        freq = np.clip(np.asarray(data.splits["train"]["label"], dtype=np.float64).mean(axis=0), 1e-3, 1 - 1e-3)
        start = torch.from_numpy(np.log(freq / (1 - freq)))
    _, _, layer = output_layer(model, len(data.labels))
    with torch.no_grad():
        layer.bias.copy_(start.to(layer.bias.dtype))


def tuned_for_test(scorer, evaluate_validation: Callable[[], dict]):
    """The scorer test is scored with: for multi-label, one applying the thresholds tuned on the best
    weights' validation predictions (``evaluate_validation`` re-scores them: the last evaluation of
    training may not be the best one); other scorers keep no state and serve test as they are."""
    if not getattr(scorer, "tunes_on_validation", False):
        return scorer
    evaluate_validation()
    return scorer.tuned()


def saved_scorer(task, labels: list[str], config):
    """The task's scorer for a saved model: a multi-label model applies its saved thresholds."""
    thresholds = getattr(config, THRESHOLDS_KEY, None)
    if thresholds and problem_of_config(config) == "multi-label":
        return MultiLabelScorer(labels, thresholds=[thresholds[n] for n in labels])
    return task.scorer(labels)


def over_thresholds(scores: list[dict], config) -> list[dict]:
    """The labels of one input whose sigmoid score reaches the saved threshold (0.5 where none was saved), best first."""
    from hubtransfer.tasks.problem_metrics import DEFAULT_THRESHOLD

    thresholds = getattr(config, THRESHOLDS_KEY, None) or {}
    kept = [s for s in scores if s["score"] >= thresholds.get(s["label"], DEFAULT_THRESHOLD)]
    return sorted(kept, key=lambda s: -s["score"])
