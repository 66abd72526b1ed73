"""Problem types of the classification tasks: the recipe's ``problem`` key.

``single-label`` (the default: one label per input, softmax), ``multi-label`` (any number of labels,
sigmoid per label, thresholds tuned on validation) and ``regression`` (one real value). Each maps to
transformers' ``config.problem_type``, so the stock model computes the matching loss (cross-entropy,
BCE-with-logits on multi-hot floats, MSE) and a stock ``pipeline()`` applies softmax, sigmoid or
nothing. The Hub pipeline tag stays ``text-classification`` / ``image-classification``.

A problem changes what evaluation computes (its scorer replaces the task's: :meth:`hubtransfer.job.Job.scorer`),
the config's problem type and the new head's starting bias; the card's wording for it is the card's
(:mod:`hubtransfer.card.wording`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hubtransfer.recipe.refs import ProblemType
from hubtransfer.registry import Registry
from hubtransfer.tasks.metrics import DEFAULT_METRICS
from hubtransfer.tasks.model import output_layer
from hubtransfer.tasks.problem_metrics import (
    DEFAULT_THRESHOLD,
    MULTI_LABEL_METRICS,
    REGRESSION_METRICS,
    REGRESSION_WATCHABLE,
    MultiLabelScorer,
    RegressionScorer,
)

PROBLEM_TASKS = ("text-classification", "image-classification")  # for messages: the tasks that take a problem type
THRESHOLDS_KEY = "hubtransfer_thresholds"  # config.json: {label: threshold} of a multi-label model


@dataclass(frozen=True)
class Problem:
    """What a problem type changes. ``watchable``: metrics early stopping may watch (higher is better).
    ``head_bias``: where the new output layer's bias starts ('mean': the training mean; 'log-odds': each label's)."""

    type: ProblemType
    config_problem_type: str
    default_metric: str
    watchable: tuple
    scorer: Callable[..., Any] | None = None
    pipeline_function: str | None = None  # pipeline(function_to_apply=...) giving every label's score
    head_bias: str | None = None

    @property
    def single_label(self) -> bool:
        return self.type is ProblemType.SINGLE_LABEL


PROBLEMS: Registry[Problem] = Registry("problem")
for _p in (
    Problem(ProblemType.SINGLE_LABEL, "single_label_classification", "accuracy", DEFAULT_METRICS),
    Problem(
        ProblemType.MULTI_LABEL,
        "multi_label_classification",
        "f1_micro",
        MULTI_LABEL_METRICS,
        MultiLabelScorer,
        pipeline_function="sigmoid",
        head_bias="log-odds",
    ),
    Problem(
        ProblemType.REGRESSION,
        "regression",
        "r_squared",
        REGRESSION_WATCHABLE,
        RegressionScorer,
        pipeline_function="none",
        head_bias="mean",
    ),
):
    PROBLEMS.register(_p.type, _p)
KNOWN_METRICS = tuple(dict.fromkeys(m for p in PROBLEMS for m in (*PROBLEMS.get(p).watchable, *REGRESSION_METRICS)))


def problem_of_config(config) -> Problem:
    """The problem a saved model was trained for, from ``config.problem_type``."""
    saved = getattr(config, "problem_type", None)
    return next(
        (p for name in PROBLEMS if (p := PROBLEMS.get(name)).config_problem_type == saved),
        PROBLEMS.get(ProblemType.SINGLE_LABEL),
    )


# --------------------------------------------------------------------------- the model


def configure_model(model, problem: Problem, data) -> None:
    """Set ``config.problem_type`` (so the stock loss and pipeline match) and start the new output layer's bias
    where a model that ignores its input would end: the training mean (regression), each label's training
    log-odds (multi-label). From a zero bias, a 19-label head with rare labels spends its first epoch only
    learning the label frequencies (the MovieLens recipe sat at the all-labels baseline for 300 steps).
    Single-label configs are left as transformers makes them."""
    if problem.single_label:
        return
    model.config.problem_type = problem.config_problem_type
    import numpy as np
    import torch

    if problem.head_bias == "mean":
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


def saved_scorer(job, labels: list[str], config):
    """The job's scorer for a saved model: a multi-label model applies its saved thresholds."""
    thresholds = getattr(config, THRESHOLDS_KEY, None)
    if thresholds and problem_of_config(config).type is ProblemType.MULTI_LABEL:
        return MultiLabelScorer(labels, thresholds=[thresholds[n] for n in labels])
    return job.scorer(labels)


def over_thresholds(scores: list[dict], config) -> list[dict]:
    """The labels of one input whose sigmoid score reaches the saved threshold (0.5 where none was saved), best
    first."""

    thresholds = getattr(config, THRESHOLDS_KEY, None) or {}
    kept = [s for s in scores if s["score"] >= thresholds.get(s["label"], DEFAULT_THRESHOLD)]
    return sorted(kept, key=lambda s: -s["score"])
