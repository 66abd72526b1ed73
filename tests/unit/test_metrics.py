"""The local evaluate modules give sklearn's numbers (macro averages, zero_division=0) without importing it."""

import numpy as np
import pytest
from sklearn import metrics as sk

from hubtransfer.tasks.metrics import classification_metrics, confusion, load_metric


@pytest.mark.parametrize("seed,classes,n", [(0, 2, 50), (1, 5, 200), (2, 7, 30), (3, 3, 5)])
def test_scores_equal_sklearn(seed, classes, n):
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, classes, n)
    preds = np.where(rng.random(n) < 0.6, refs, rng.integers(0, classes, n))
    preds[:2] = classes + 1  # a class predicted but never true: counted in the macro average, as sklearn does
    ours = classification_metrics(preds, refs)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(refs, preds))
    for name, fn in (("f1", sk.f1_score), ("precision", sk.precision_score), ("recall", sk.recall_score)):
        assert ours[name] == pytest.approx(fn(refs, preds, average="macro", zero_division=0)), name
    labels = list(range(classes + 2))
    assert confusion(preds, refs, classes + 2) == sk.confusion_matrix(refs, preds, labels=labels).tolist()


def test_modules_follow_the_evaluate_api():
    metric = load_metric("f1")
    metric.add_batch(predictions=[0, 1], references=[0, 0])
    metric.add_batch(predictions=[1], references=[1])
    assert metric.compute() == {"f1": pytest.approx(sk.f1_score([0, 0, 1], [0, 1, 1], average="macro"))}
    with pytest.raises(ValueError, match="Did you mean 'accuracy'"):
        load_metric("acuracy")


def test_training_imports_no_sklearn():
    import subprocess
    import sys

    code = (
        "import hubtransfer.run, hubtransfer.train.loop, hubtransfer.tasks.metrics, sys; "
        "print('sklearn' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
