"""What evaluation computes for multi-label classification and regression (see ``problems.py``).

Both scorers follow :class:`hubtransfer.metrics.ClassificationScorer`'s protocol: ``reduce`` runs on the
device per batch, ``score`` on the gathered batches. The numbers come from sklearn and scipy (their
definitions are the ones users compare against); both are imported inside the functions, so a
single-label run never loads them.

Multi-label decisions need a threshold per label. :class:`MultiLabelScorer` tunes them on the split it
scores (validation), and :meth:`MultiLabelScorer.tuned` hands a scorer that *applies* those
thresholds to another split (test): ``hubtransfer.api`` re-scores the best weights on validation, then
scores test with ``scorer.tuned()``, and saves the thresholds in ``config.json``.
"""

from __future__ import annotations

import numpy as np
import torch

MULTI_LABEL_METRICS = ("f1_micro", "f1_macro", "subset_accuracy")
# Regression metrics; early stopping may only watch the higher-is-better ones (the best model maximises).
REGRESSION_METRICS = ("mse", "rmse", "mae", "r_squared", "pearsonr", "spearmanr")
REGRESSION_WATCHABLE = ("r_squared", "pearsonr", "spearmanr")
DEFAULT_THRESHOLD = 0.5  # for a label without positives in validation, where F1 cannot choose one


# --------------------------------------------------------------------------- multi-label


def tune_thresholds(probs: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Per label, the probability threshold (predict ``p >= t``) with the best F1 on these examples.

    Candidates are the label's distinct probabilities (sklearn's precision_recall_curve); among equal
    F1s the lowest threshold wins. A label with no positive example keeps ``DEFAULT_THRESHOLD``.

    Example:
        >>> tune_thresholds(np.array([[0.9], [0.4], [0.3]]), np.array([[1], [1], [0]]))
        array([0.4])
    """
    from sklearn.metrics import precision_recall_curve

    out = np.full(probs.shape[1], DEFAULT_THRESHOLD)
    for j in range(probs.shape[1]):
        if refs[:, j].sum() == 0:
            continue
        precision, recall, thresholds = precision_recall_curve(refs[:, j], probs[:, j])
        p, r = precision[: len(thresholds)], recall[: len(thresholds)]
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        out[j] = thresholds[int(np.argmax(f1))]
    return out


def multi_label_metrics(refs: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    """Micro / macro F1 over the labels and subset accuracy (the whole label set right), sklearn's definitions."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "f1_micro": float(f1_score(refs, preds, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(refs, preds, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(refs, preds)),
    }


class MultiLabelScorer:
    """Sigmoid probabilities per label; thresholds tuned on the scored split unless given (then applied)."""

    tunes_on_validation = True

    def __init__(self, labels: list[str], thresholds=None):
        self.labels = list(labels)
        self.thresholds = None if thresholds is None else np.asarray(thresholds, dtype=float)
        self.last_thresholds: np.ndarray | None = None

    def reduce(self, logits, labels):
        return torch.sigmoid(logits.float()), labels

    def score(self, predictions: list, references: list) -> dict:
        probs, refs = np.concatenate(predictions), (np.concatenate(references) >= 0.5).astype(np.int64)
        thresholds = self.thresholds if self.thresholds is not None else tune_thresholds(probs, refs)
        self.last_thresholds = thresholds
        preds = (probs >= thresholds).astype(np.int64)
        per_label = self._per_label(refs, preds, thresholds)
        return {
            "metrics": multi_label_metrics(refs, preds),
            "predictions": preds,
            "references": refs,
            "probabilities": probs,
            "per_label": per_label,
            "thresholds": {n: float(t) for n, t in zip(self.labels, thresholds)},
        }

    def tuned(self) -> MultiLabelScorer:
        """A scorer applying the thresholds of this scorer's last (validation) pass."""
        if self.last_thresholds is None:
            raise RuntimeError("tuned() needs a validation pass first: evaluate the validation split with this scorer")
        return MultiLabelScorer(self.labels, thresholds=self.last_thresholds)

    def _per_label(self, refs, preds, thresholds) -> dict:
        from sklearn.metrics import f1_score

        f1 = f1_score(refs, preds, average=None, zero_division=0, labels=range(len(self.labels)))
        return {
            n: {"f1": float(f), "threshold": float(t), "support": int(s)}
            for n, f, t, s in zip(self.labels, f1, thresholds, refs.sum(axis=0))
        }


# --------------------------------------------------------------------------- regression


def error_metrics(references, predictions) -> dict[str, float]:
    """RMSE and MAE on the target's own scale, and R² (1 - residual / total sum of squares; 0.0 for constant targets).
    numpy only: the multi-task scorer runs it in training processes, which keep sklearn out."""
    r, p = np.asarray(references, dtype=np.float64), np.asarray(predictions, dtype=np.float64)
    err = p - r
    total = float(((r - r.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
        "r_squared": 1.0 - float((err**2).sum()) / total if total > 0 and len(r) > 1 else 0.0,
    }


def regression_metrics(references, predictions) -> dict[str, float]:
    """MSE, RMSE, MAE, R² (:func:`error_metrics`), and Pearson and Spearman correlation (scipy).

    A correlation is undefined when the predictions (or targets) are constant, as a model still at its
    initial bias may be; it is reported as 0.0 (no linear / rank relation shown), never NaN, which
    would break the JSON files and early stopping's comparisons.
    """
    from scipy.stats import pearsonr, spearmanr

    refs, preds = np.asarray(references, dtype=np.float64), np.asarray(predictions, dtype=np.float64)
    errors = error_metrics(refs, preds)
    constant = np.ptp(refs) == 0 or np.ptp(preds) == 0
    return {
        "mse": float(((preds - refs) ** 2).mean()),
        **errors,
        "pearsonr": 0.0 if constant else float(pearsonr(refs, preds)[0]),
        "spearmanr": 0.0 if constant else float(spearmanr(refs, preds)[0]),
    }


class RegressionScorer:
    """One real value per input: the model's single output, on the targets' own scale."""

    def __init__(self, labels: list[str]):
        self.labels = list(labels)

    def reduce(self, logits, labels):
        return logits.float().reshape(-1), labels.float().reshape(-1)

    def score(self, predictions: list, references: list) -> dict:
        preds, refs = np.concatenate(predictions), np.concatenate(references)
        return {"metrics": regression_metrics(refs, preds), "predictions": preds, "references": refs}
