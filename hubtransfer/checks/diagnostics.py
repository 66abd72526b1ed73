"""What a finished run says about itself, one line each: below the classical baseline or a linear probe of its own
backbone, the probe kept instead of the fine-tuned weights, still improving at its last evaluation, classes it never
predicts, a validation split too small to choose between checkpoints.

The lines go to the log (as warnings), ``metrics.json`` and the model card. They are checks on numbers the run
already has; none of them trains anything.
"""

from __future__ import annotations

import logging

from hubtransfer.tasks.metrics import standard_error

logger = logging.getLogger(__name__)

SMALL_VALIDATION = 200  # fewer validation examples than this cannot tell checkpoints apart reliably
MAX_NAMES = 8


BASELINE_ADVICE = (
    "Use the baseline, or give the network more to work with (more epochs, another learning rate or strategy, more "
    "data)."
)
PROBE_ADVICE = (
    "Fine-tuning lost what the pretrained features already had: try strategy=head or lp-ft, or a lower learning rate."
)


def below_baseline(
    test: dict,
    baseline: dict | None,
    metric: str,
    code: str = "below_baseline",
    what: str = "the classical baseline",
    advice: str = BASELINE_ADVICE,
) -> dict | None:
    """The model scores below a reference fitted on the same split (the classical baseline, or the linear probe of its
    own backbone) on test, in the watched metric or in accuracy."""
    if not baseline:
        return None
    keys = list(dict.fromkeys([metric, "accuracy"]))
    worse = [
        (k, test[k], baseline["test"][k])
        for k in keys
        if k in test and k in baseline.get("test", {}) and test[k] < baseline["test"][k]
    ]
    if not worse:
        return None
    parts = ", ".join(f"{k} {m:.4f} vs {b:.4f}" for k, m, b in worse)
    return {
        "code": code,
        "message": f"The model is below {what} ({baseline['name']}) on test: {parts}. {advice}",
        "detail": {k: {"model": m, "baseline": b} for k, m, b in worse},
    }


def still_improving(history: list[dict], metric: str, best_step: int | None, n_validation: int) -> dict | None:
    """The last evaluation is the best, and each of the last two evaluations rose above the one before by more than a
    standard error: validation was still climbing when the budget ran out. One rise alone is not enough: a decaying
    learning rate gives the last evaluation of most runs a gain (annealing), under-trained or not; so this needs three
    evaluations or more."""
    evals = [r for r in history if r.get("train_loss") is not None and metric in r["validation"]]
    if len(evals) < 3 or best_step != evals[-1]["step"]:
        return None
    first, previous, last = (r["validation"][metric] for r in evals[-3:])
    se = standard_error(last, n_validation)
    if min(last - previous, previous - first) <= se:
        return None
    return {
        "code": "still_improving",
        "message": f"Validation {metric} was still rising over the last evaluations ({first:.4f} -> "
        f"{previous:.4f} -> {last:.4f} at step {evals[-1]['step']}, each rise more than its standard error {se:.4f}): "
        "the "
        "model is likely under-trained. Train longer (train.epochs, train.min_steps) or at a higher learning rate.",
        "detail": {"values": [first, previous, last], "standard_error": se},
    }


def never_predicted(confusion: list[list[int]] | None, labels: list[str]) -> dict | None:
    """Classes that occur in test but that the model never answers."""
    if not confusion:
        return None
    missing = [labels[i] for i, row in enumerate(confusion) if sum(row) > 0 and sum(r[i] for r in confusion) == 0]
    if not missing:
        return None
    shown = ", ".join(missing[:MAX_NAMES]) + (
        f" and {len(missing) - MAX_NAMES} more" if len(missing) > MAX_NAMES else ""
    )
    return {
        "code": "never_predicted",
        "message": f"{len(missing)} of {len(labels)} classes are never predicted on test ({shown}): "
        "the model cannot recognise them. More examples of them, train.class_weights or a longer run may help.",
        "detail": {"labels": missing},
    }


def linear_probe_kept(probe: dict | None, metric: str) -> dict | None:
    """The run's line when it saved the probe instead of its fine-tuned weights (``probe``: the record's dict)."""
    if not probe or not probe.get("kept"):
        return None
    best_validation = probe["fine_tuned_validation"]
    return {
        "code": "linear_probe_kept",
        "message": f"The fine-tuned weights scored below a linear probe of the pretrained backbone on validation "
        f"({metric} {best_validation.get(metric, float('nan')):.4f} vs {probe['validation'][metric]:.4f}): the saved "
        "model is that probe, the pretrained backbone unchanged with logistic-regression weights (C = "
        f"{probe['C']:g}) in its output layer. Fine-tuning did not help on this data; more data, another learning rate "
        "or strategy=head may.",
        "detail": {"fine_tuned": best_validation, "probe": probe["validation"]},
    }


def small_validation(n_validation: int, metric: str, value: float | None, fraction: float) -> dict | None:
    if n_validation >= SMALL_VALIDATION:
        return None
    se = standard_error(value if value is not None else 0.5, n_validation)
    return {
        "code": "small_validation",
        "message": f"The validation split has {n_validation} examples (under {SMALL_VALIDATION}): its "
        f"{metric} has a standard error of about {se:.3f}, too coarse to choose between checkpoints or learning rates "
        "reliably. "
        f"Raise data.validation_fraction (now {fraction:g}) or supply a validation split.",
        "detail": {"n": n_validation, "standard_error": se},
    }


def check_run(
    *,
    history: list[dict],
    best_step: int | None,
    test: dict,
    baseline: dict | None,
    labels: list[str],
    n_validation: int,
    recipe,
    probe: dict | None = None,
) -> list[dict]:
    """Every finding about a finished run (``test``: its test evaluation, with the confusion matrix where the task has
    one), each ``{"code", "message", "detail"}``; also logged as warnings."""
    metric = recipe.train.early_stopping.metric
    best = next((r["validation"].get(metric) for r in history if r["step"] == best_step), None)
    found = [
        below_baseline(test["metrics"], baseline, metric),
        linear_probe_kept(probe, metric),
        # The kept probe is the model: its test scores differ from scikit-learn's only by rounding.
        None
        if probe and probe["kept"]
        else below_baseline(
            test["metrics"], probe, metric, "below_linear_probe", "a linear probe of its own backbone", PROBE_ADVICE
        ),
        still_improving(history, metric, best_step, n_validation),
        never_predicted(test.get("confusion"), labels),
        small_validation(n_validation, metric, best, recipe.data.validation_fraction),
    ]
    found = [f for f in found if f is not None]
    for f in found:
        logger.warning("%s", f["message"])
    return found
