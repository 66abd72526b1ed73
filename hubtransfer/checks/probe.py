"""A linear probe of the run's own pretrained backbone beside every small fine-tune: logistic regression on the
frozen network's features (the input of its output layer), C chosen on validation, scored once on test.

Why: fine-tuning every weight can end below what the pretrained features already give a linear classifier. On a
small, imbalanced image set (elpv-defects in docs/user-data.md) the default fine-tune was 3.4 points of accuracy
under frozen features + logistic regression, and nothing in the run said so. The probe costs one forward pass over
the data (cached on disk, shared with head-only runs) and seconds of scikit-learn. The run reports it, says when
the model is below it on test, and keeps it when it scores higher on validation than the fine-tuned weights: the
saved model is then the pretrained backbone, unchanged, with the probe's weights in its output layer (a stock
model; dropout is the identity in inference, so the layer computes exactly the probe's logits).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from hubtransfer.checks.baselines import tuned_logreg
from hubtransfer.errors import RecipeError
from hubtransfer.tasks.metrics import SHARE_METRICS, classification_metrics, standard_error
from hubtransfer.train.features import output_split
from hubtransfer.train.routes import frozen_features

logger = logging.getLogger(__name__)

PROBE_C = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
# Above this 'auto' skips the probe: both larger sets measured (the shipped recipes, 7,772 and 10,202 examples)
# fine-tune far above their frozen features, and the extra pass is a larger share of their short runs.
AUTO_MAX_TRAIN = 5000
NAME = "logistic regression on the frozen pretrained features"


@dataclass
class LinearProbe:
    """The probe's scores, and its weights on the raw features (the standardisation folded in)."""

    C: float
    validation: dict
    test: dict
    seconds: float
    extract_seconds: float
    weight: np.ndarray = field(repr=False)  # (num_labels, D)
    bias: np.ndarray = field(repr=False)  # (num_labels,)
    kept: bool = False  # the saved model is the probe: it beat the fine-tuned weights on validation
    fine_tuned_validation: dict | None = None  # the fine-tuned weights' best validation, where the probe was kept

    def to_dict(self, timing: bool = True) -> dict:
        out = {"name": NAME, "C": self.C, "validation": self.validation, "test": self.test, "kept": self.kept}
        if self.kept:
            out["fine_tuned_validation"] = self.fine_tuned_validation
        return out | ({"seconds": self.seconds, "extract_seconds": self.extract_seconds} if timing else {})


def wanted(job, model, n_train: int, update: bool, sharded: bool = False) -> bool:
    """Whether this run fits the probe: ``train.linear_probe`` resolved. ``true`` where the probe cannot apply is
    refused before training, with the reason."""
    setting = job.recipe.train.linear_probe
    why_not = _why_not(job, model, update, sharded)
    if setting is True and why_not:
        raise RecipeError([f"train.linear_probe=true, but {why_not}. Set train.linear_probe to auto or false"])
    if setting == "auto":
        if why_not or n_train > AUTO_MAX_TRAIN:
            logger.info(
                "linear probe: not fitted (%s)",
                why_not or f"{n_train:,} training examples, over the {AUTO_MAX_TRAIN:,} where 'auto' fits it",
            )
            return False
        return True
    return bool(setting)


def _why_not(job, model, update: bool, sharded: bool) -> str | None:
    recipe = job.recipe
    if sharded:  # restoring the pretrained weights into a sharded model would need every shard gathered
        return "the model is sharded across processes (FSDP / DeepSpeed)"
    if not (job.problem.single_label and job.task.input_classification):
        return "it applies to single-label classification of texts or images only"
    if update:
        return "an update starts from the previous version, not from the pretrained backbone"
    if job.strategy.head_only:
        return "the strategy trains the head alone on the frozen backbone already"
    if recipe.model.init != "pretrained":
        return "the backbone is randomly initialised (model.init=random): its features carry nothing to probe"
    if recipe.train.early_stopping.metric not in SHARE_METRICS:
        return f"the watched metric {recipe.train.early_stopping.metric!r} is not a classification metric"
    if getattr(job.strategy, "name", "") == "lora" or hasattr(model, "peft_config"):
        return "a LoRA model's output layer sits inside the adapter wrapper"
    if output_split(model) is None:
        return "the head has more than one new layer (head.type=mlp, or a dense layer before the output layer)"
    return None


def fit_probe(job, trainer, data, processor, model_dir, device, mixed: str) -> LinearProbe:
    """Features of every split from ``trainer``'s model (still pretrained), then logistic regression tuned on
    validation in the run's watched metric."""
    from sklearn.preprocessing import StandardScaler  # late: sklearn stays out of processes that do not probe

    feats = frozen_features(output_split(trainer.model), trainer, job, data, processor, model_dir, device, mixed)
    started = time.perf_counter()
    x = {s: f.features.float().numpy() for s, f in feats.items()}
    y = {s: f.labels.numpy() for s, f in feats.items()}
    scaler = StandardScaler().fit(x["train"])
    fitted = tuned_logreg(
        NAME,
        {s: scaler.transform(v) for s, v in x.items()},
        y,
        PROBE_C,
        job.recipe.train.early_stopping.metric,
        started,
        weights=True,
    )
    weight, bias = _raw_weights(*fitted["linear"], scaler, len(data.labels))
    probe = LinearProbe(
        C=fitted["C"],
        validation=fitted["validation"],
        test=fitted["test"],
        seconds=fitted["seconds"],
        extract_seconds=round(sum(f.seconds for f in feats.values()), 2),
        weight=weight,
        bias=bias,
    )
    # What the output layer will compute from these weights, checked against scikit-learn's own answers.
    agree = classification_metrics(np.argmax(x["validation"] @ weight.T + bias, axis=1), y["validation"])
    if abs(agree["accuracy"] - probe.validation["accuracy"]) > 1.5 / len(y["validation"]):  # a near tie may flip
        raise AssertionError(f"probe weights disagree with the fitted model: {agree} vs {probe.validation}")
    logger.info(
        "linear probe (C=%g): validation %s, test %s (features %.1f s, fit %.1f s)",
        probe.C,
        _short(probe.validation),
        _short(probe.test),
        probe.extract_seconds,
        probe.seconds,
    )
    return probe


def _raw_weights(coef, intercept, classes, scaler, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's model on standardised inputs as logits of one Linear on raw features, a row per label.

    Binary problems come as one row w (the log-odds of the second class): rows -w/2 and +w/2 give the same softmax.
    A label absent from the training split gets a zero row and a bias of -10,000: never predicted, as in the fit.
    """
    coef, intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
    if coef.shape[0] == 1 and len(classes) == 2:
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    w = coef / scaler.scale_
    b = intercept - w @ scaler.mean_
    weight = np.zeros((num_labels, w.shape[1]))
    bias = np.full(num_labels, -1e4)
    weight[classes], bias[classes] = w, b
    return weight.astype(np.float32), bias.astype(np.float32)


def keep_probe(probe: LinearProbe, best_validation: dict | None, metric: str, n_validation: int) -> bool:
    """The probe replaces the fine-tuned weights when it is higher on validation in the watched metric by more than
    the standard error of the fine-tune's score there. A smaller lead is noise: on sms-spam (453 validation
    messages) the probe led by 0.005 macro-F1, one message, and was 1.3 points of test accuracy below the fine-tune
    it replaced."""
    if best_validation is None or metric not in best_validation:
        return True
    tuned = best_validation[metric]
    return probe.validation[metric] - tuned > standard_error(tuned, n_validation)


def adopt(probe: LinearProbe, model: torch.nn.Module, pretrained: torch.nn.Module, fine_tuned: dict | None) -> None:
    """``model`` back to ``pretrained``'s weights (the same architecture, freshly built from the checkpoint), the
    probe's weights in its output layer; ``fine_tuned``: the validation scores it replaces."""
    model.load_state_dict(pretrained.state_dict())
    layer = next(m for m in output_split(model).head.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(probe.weight))
        layer.bias.copy_(torch.from_numpy(probe.bias))
    probe.kept, probe.fine_tuned_validation = True, fine_tuned or {}


def _short(metrics: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in ("accuracy", "f1"))
