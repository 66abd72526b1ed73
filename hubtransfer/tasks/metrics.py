"""Classification metrics as local ``evaluate`` modules.

``evaluate.load("accuracy")`` fetches the module's code from the Hub, which fails offline, so the
modules are defined here (the ``evaluate.Metric`` API) and looked up in a registry. They keep no
files (``keep_in_memory``): predictions are gathered across processes by Accelerate before
``compute`` runs. The scores are a few lines of numpy over the confusion matrix, with sklearn's
definitions (macro average over the classes seen in references or predictions, 0 where a ratio
has no denominator); a test checks them against sklearn. Importing sklearn in every training
process would add its resident memory for four ratios.
"""

from __future__ import annotations

import math
import warnings

import datasets
import evaluate
import numpy as np

from hubtransfer.registry import Registry

METRICS: Registry[type] = Registry("metric")
_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


def _per_class(references, predictions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, false positives, false negatives) for each class seen in either array."""
    refs, preds = np.asarray(references), np.asarray(predictions)
    labels = np.union1d(refs, preds)
    tp = np.array([np.sum((preds == c) & (refs == c)) for c in labels], dtype=float)
    fp = np.array([np.sum((preds == c) & (refs != c)) for c in labels], dtype=float)
    fn = np.array([np.sum((preds != c) & (refs == c)) for c in labels], dtype=float)
    return tp, fp, fn


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    """Macro mean of num / den, a class with den == 0 counting 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return float(values.mean()) if len(values) else 0.0


def accuracy_score(references, predictions) -> float:
    refs, preds = np.asarray(references), np.asarray(predictions)
    return float((refs == preds).mean()) if len(refs) else 0.0


def precision_score(references, predictions) -> float:
    tp, fp, _ = _per_class(references, predictions)
    return _ratio(tp, tp + fp)


def recall_score(references, predictions) -> float:
    tp, _, fn = _per_class(references, predictions)
    return _ratio(tp, tp + fn)


def f1_score(references, predictions) -> float:
    tp, fp, fn = _per_class(references, predictions)
    return _ratio(2 * tp, 2 * tp + fp + fn)


class _LocalMetric(evaluate.Metric):
    score = None  # (references, predictions) -> float

    def _info(self):
        return evaluate.MetricInfo(
            description=f"{type(self).__name__} (hubtransfer local module)",
            citation="",
            inputs_description="predictions and references: integer class ids",
            features=_FEATURES,
        )

    def _compute(self, predictions, references):
        return {type(self).__name__.lower(): type(self).score(references, predictions)}


class Accuracy(_LocalMetric):
    score = staticmethod(accuracy_score)


class F1(_LocalMetric):
    """Macro-averaged F1."""

    score = staticmethod(f1_score)


class Precision(_LocalMetric):
    """Macro-averaged precision."""

    score = staticmethod(precision_score)


class Recall(_LocalMetric):
    """Macro-averaged recall."""

    score = staticmethod(recall_score)


for _cls in (Accuracy, F1, Precision, Recall):
    METRICS.register(_cls.__name__.lower(), _cls)

DEFAULT_METRICS = ("accuracy", "f1", "precision", "recall")


def load_metric(name: str) -> evaluate.Metric:
    """A local evaluate module by name (ValueError with a did-you-mean for unknown names)."""
    return METRICS.get(name)(keep_in_memory=True)


def classification_metrics(predictions, references, names=DEFAULT_METRICS) -> dict[str, float]:
    """accuracy, macro F1 / precision / recall through the evaluate modules."""
    out: dict[str, float] = {}
    for name in names:
        out.update(load_metric(name).compute(predictions=predictions, references=references))
    return out


class ClassificationScorer:
    """What evaluation computes for single-label classification: argmax predictions (taken on the device,
    before gathering), accuracy and macro F1 / precision / recall, and the confusion matrix.

    A task supplies its own scorer (``TaskSpec.scorer``): ``reduce`` turns one batch's logits and labels
    into what is gathered across processes, ``score`` turns the gathered batches into
    ``{"metrics", "predictions", "references", ...}``. Higher metric values are better (early stopping
    and the best model maximise them).
    """

    def __init__(self, labels: list[str]):
        self.num_labels = len(labels)

    def reduce(self, logits, labels):
        return logits.argmax(-1), labels

    def score(self, predictions: list, references: list) -> dict:
        preds, refs = np.concatenate(predictions), np.concatenate(references)
        return {
            "metrics": classification_metrics(preds, refs),
            "predictions": preds,
            "references": refs,
            "confusion": confusion(preds, refs, self.num_labels),
        }


def per_class(confusion_matrix: list[list[int]], labels: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class from a confusion matrix (rows true, columns predicted)."""
    m = np.asarray(confusion_matrix, dtype=float)
    tp, predicted, support = np.diag(m), m.sum(axis=0), m.sum(axis=1)
    out = {}
    for i, name in enumerate(labels):
        p = tp[i] / predicted[i] if predicted[i] else 0.0
        r = tp[i] / support[i] if support[i] else 0.0
        out[name] = {
            "precision": float(p),
            "recall": float(r),
            "f1": float(2 * p * r / (p + r)) if p + r else 0.0,
            "support": int(support[i]),
        }
    return out


def confusion(predictions, references, num_labels: int) -> list[list[int]]:
    """Rows are true labels, columns predictions."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(references, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return matrix.tolist()


class TokenScorer:
    """Entity-level precision / recall / F1 and token accuracy for IOB2 tagging (token classification).

    ``reduce`` takes the argmax per token on the device; positions labelled -100 (special tokens,
    later sub-tokens of a word, padding) are not words and are dropped in ``score``, which scores
    one tag per word. Entity scores follow the CoNLL-2003 convention (the conlleval script): an
    entity counts only when its type and its exact span match, micro-averaged over entities.
    They come from seqeval (its default mode reads spans as conlleval does, so a predicted entity
    that starts with I- still counts as an entity, as the pipeline's grouping also takes it),
    plus ``f1_TYPE`` per entity type. Returns no confusion matrix: tag-by-tag counts say little
    about entities.
    """

    def __init__(self, labels: list[str]):
        self.labels = list(labels)

    def reduce(self, logits, labels):
        return logits.argmax(-1), labels

    def score(self, predictions: list, references: list) -> dict:
        preds, refs = [], []
        for p_batch, r_batch in zip(predictions, references):
            for p_row, r_row in zip(p_batch, r_batch):
                words = r_row != -100
                preds.append([self.labels[i] for i in p_row[words]])
                refs.append([self.labels[i] for i in r_row[words]])
        return {"metrics": entity_metrics(refs, preds), "predictions": preds, "references": refs}


def entity_metrics(references: list[list[str]], predictions: list[list[str]]) -> dict[str, float]:
    """precision / recall / f1 (micro over entities), accuracy (over words) and ``f1_TYPE`` per entity type."""
    from seqeval.metrics import (  # late: only token tasks need it
        classification_report,
        f1_score,
        precision_score,
        recall_score,
    )

    words = sum(len(r) for r in references)
    correct = sum(p == r for pr, rr in zip(predictions, references) for p, r in zip(pr, rr))
    out = {
        "f1": float(f1_score(references, predictions, zero_division=0)),
        "precision": float(precision_score(references, predictions, zero_division=0)),
        "recall": float(recall_score(references, predictions, zero_division=0)),
        "accuracy": correct / words if words else 0.0,
    }
    with warnings.catch_warnings():  # numpy warns on the averages of a split without any entity; those rows are skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        report = classification_report(references, predictions, output_dict=True, zero_division=0)
    for name, row in sorted(report.items()):
        if " avg" not in name:  # the rows besides the averages are the entity types
            out[f"f1_{name}"] = float(row["f1-score"])
    return out


# Metrics that are a share of the examples (or a mean of such shares): a binomial standard error describes their noise.
# They are the classification metrics computed by default.
SHARE_METRICS = DEFAULT_METRICS


def standard_error(value: float, n: int) -> float:
    """Binomial standard error of a share-like metric (accuracy, F1) measured on ``n`` examples."""
    v = min(max(value, 0.0), 1.0)
    return math.sqrt(v * (1 - v) / n) if n > 0 else float("inf")
