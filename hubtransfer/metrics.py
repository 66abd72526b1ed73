"""Classification metrics as local ``evaluate`` modules.

``evaluate.load("accuracy")`` fetches the module's code from the Hub, which fails offline, so the
modules are defined here (the ``evaluate.Metric`` API, sklearn underneath) and looked up in a
registry. They keep no files (``keep_in_memory``): predictions are gathered across processes
by Accelerate before ``compute`` runs.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from hubtransfer.registry import Registry

METRICS: Registry[type] = Registry("metric")
_FEATURES = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})


class _LocalMetric(evaluate.Metric):
    score = None  # sklearn function
    averaged = False

    def _info(self):
        return evaluate.MetricInfo(
            description=f"{type(self).__name__} (hubtransfer local module)",
            citation="",
            inputs_description="predictions and references: integer class ids",
            features=_FEATURES,
        )

    def _compute(self, predictions, references, average: str = "macro"):
        kwargs = {"average": average, "zero_division": 0} if self.averaged else {}
        name = type(self).__name__.lower()
        return {name: float(type(self).score(references, predictions, **kwargs))}


class Accuracy(_LocalMetric):
    score = staticmethod(accuracy_score)


class F1(_LocalMetric):
    score = staticmethod(f1_score)
    averaged = True


class Precision(_LocalMetric):
    score = staticmethod(precision_score)
    averaged = True


class Recall(_LocalMetric):
    score = staticmethod(recall_score)
    averaged = True


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


def confusion(predictions, references, num_labels: int) -> list[list[int]]:
    """Rows are true labels, columns predictions."""
    return confusion_matrix(np.asarray(references), np.asarray(predictions), labels=list(range(num_labels))).tolist()
