"""The linear probe beside a fine-tune: logistic regression on the pretrained backbone's frozen features, reported
beside the model, kept instead of the fine-tuned weights when it is higher on validation, and said so."""

import json

import numpy as np
import pytest
import torch
from conftest import text_recipe, write_sentiment_csv
from safetensors.torch import load_file

from hubtransfer.card.card import build_card
from hubtransfer.checks import diagnostics
from hubtransfer.checks.probe import _raw_weights
from hubtransfer.errors import RecipeError
from hubtransfer.job import job_for, load_recipe
from hubtransfer.run import finetune
from hubtransfer.tasks.model import build_model
from hubtransfer.train.features import output_split


@pytest.mark.parametrize("classes", [2, 4])
def test_probe_weights_in_one_linear_layer_give_the_fitted_models_answers(classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)) * rng.uniform(0.1, 50, size=6) + rng.normal(size=6) * 20
    y = rng.integers(0, classes, size=300)
    x[y == 1, 0] += 30  # something to learn
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=1.0, max_iter=3000).fit(scaler.transform(x), y)
    # One label more than the training split holds: a class the fit never saw must never be predicted.
    weight, bias = _raw_weights(clf.coef_, clf.intercept_, clf.classes_, scaler, classes + 1)
    assert weight.shape == (classes + 1, 6) and bias.shape == (classes + 1,)
    logits = torch.nn.functional.linear(torch.tensor(x, dtype=torch.float32), torch.tensor(weight), torch.tensor(bias))
    assert np.array_equal(logits.argmax(1).numpy(), clf.predict(scaler.transform(x)))
    assert (logits.argmax(1) != classes).all()


def test_a_run_keeps_the_probe_when_fine_tuning_loses_and_says_so(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "d.csv", n=600)
    # A learning rate far too low to move anything in one epoch: the fine-tune stays at chance on validation.
    out = tmp_path / "probe"
    run = finetune(text_recipe(tiny_bert, data, out, train__lr=1e-6, train__epochs=1, train__linear_probe="auto"))
    probe = run.run["linear_probe"]
    assert probe["kept"] and probe["validation"]["accuracy"] > probe["fine_tuned_validation"]["accuracy"] + 0.3
    # The saved model is the probe: the network's own test evaluation equals scikit-learn's answers.
    assert run.metrics["test"] == probe["test"] and run.metrics["validation_best"] == probe["validation"]
    codes = [f["code"] for f in run.run["diagnostics"]]
    assert "linear_probe_kept" in codes and "below_linear_probe" not in codes
    # The backbone is the pretrained checkpoint's, unchanged; only the output layer differs.
    saved, pretrained = load_file(out / "model.safetensors"), load_file(tiny_bert / "model.safetensors")
    backbone = [k for k in saved if not k.startswith("classifier.")]
    assert backbone and all(torch.equal(saved[k], pretrained[k]) for k in backbone)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["linear_probe"]["kept"] and "seconds" not in metrics["linear_probe"]
    card = str(build_card(out))
    assert "**Linear probe** on the same split" in card and "the saved model is this probe" in card


def test_a_fine_tune_that_wins_keeps_its_weights_and_no_probe_line_fires(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "d.csv", n=600)
    run = finetune(
        text_recipe(tiny_bert, data, tmp_path / "ft", train__lr=1e-2, train__epochs=6, train__linear_probe=True)
    )
    probe = run.run["linear_probe"]
    assert not probe["kept"] and run.metrics["test"]["accuracy"] == 1.0 > probe["test"]["accuracy"]
    assert [f["code"] for f in run.run["diagnostics"]] == ["small_validation"]
    card = str(build_card(tmp_path / "ft"))
    assert "**Linear probe** on the same split" in card and "the saved model is this probe" not in card


def test_below_the_linear_probe_fires_on_test_unless_the_probe_is_the_model():
    probe = {
        "name": "linear probe",
        "C": 1.0,
        "validation": {"accuracy": 0.8},
        "test": {"accuracy": 0.9},
        "kept": False,
    }
    below = diagnostics.below_baseline(
        {"accuracy": 0.85}, probe, "accuracy", "below_linear_probe", "a linear probe of its own backbone"
    )
    assert below["code"] == "below_linear_probe" and "accuracy 0.8500 vs 0.9000" in below["message"]
    assert diagnostics.below_baseline({"accuracy": 0.95}, probe, "accuracy") is None
    kept = probe | {"kept": True, "fine_tuned_validation": {"accuracy": 0.7}}
    assert "accuracy 0.7000 vs 0.8000" in diagnostics.linear_probe_kept(kept, "accuracy")["message"]
    assert diagnostics.linear_probe_kept(probe, "accuracy") is None


def test_the_probe_splits_only_where_the_output_layer_reads_the_backbones_features(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "d.csv", n=60)

    def model_of(**extra):
        job = job_for(load_recipe(text_recipe(tiny_bert, data, tmp_path / "x", **extra)))
        return build_model(job.task, tiny_bert, job.recipe, ["neg", "pos"])

    assert output_split(model_of()) is not None  # BERT's classifier on its (pretrained) pooler
    assert output_split(model_of(head__pooling="mean")) is not None  # a custom mean-pooled linear head
    assert output_split(model_of(head__type="mlp", head__hidden_sizes=[8])) is None  # a new hidden layer first


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"strategy": "head"}, "trains the head alone"),
        ({"model__init": "random"}, "randomly initialised"),
        ({"head__type": "mlp", "head__hidden_sizes": [8]}, "more than one new layer"),
    ],
)
def test_linear_probe_true_is_refused_where_it_cannot_apply(tiny_bert, tmp_path, extra, fragment):
    data = write_sentiment_csv(tmp_path / "d.csv", n=60)
    with pytest.raises(RecipeError, match=fragment):
        finetune(text_recipe(tiny_bert, data, tmp_path / "x", train__linear_probe=True, **extra))
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_a_convolutional_backbone_still_trains_after_its_probe(tiny_efficientnet, tmp_path):
    """The probe's feature pass switches a convolutional network to channels-last and back; done inside inference
    mode that made every parameter an inference tensor, and the fine-tune after it failed in its first backward."""
    from conftest import write_image_folder

    images = write_image_folder(tmp_path / "imgs", per_class=20)
    recipe = {
        "task": "image-classification",
        "model": {"id": str(tiny_efficientnet)},
        "data": {"source": str(images)},
        "strategy": "full",
        "train": {"epochs": 2, "lr": 1e-3, "batch_size": 8, "precision": "no", "linear_probe": True},
        "output_dir": str(tmp_path / "out"),
    }
    run = finetune(recipe)
    assert run.run["training"]["steps"] > 0 and "test" in run.run["linear_probe"]


def test_the_probe_replaces_the_fine_tune_only_when_it_leads_by_more_than_a_standard_error():
    from hubtransfer.checks.probe import LinearProbe, keep_probe

    probe = LinearProbe(1.0, {"f1": 0.9808}, {"f1": 0.95}, 0.0, 0.0, np.zeros((2, 1)), np.zeros(2))
    # sms-spam's case: 0.005 ahead on 453 validation messages, under the standard error 0.0072: the fine-tune stays.
    assert not keep_probe(probe, {"f1": 0.9762}, "f1", 453)
    assert keep_probe(probe, {"f1": 0.9500}, "f1", 453)  # 0.031 ahead: more than the standard error 0.0102
    assert not keep_probe(probe, {"f1": 0.9808}, "f1", 10_000)  # a tie keeps the fine-tune
    assert keep_probe(probe, None, "f1", 453)  # no validation score at all: the probe is the measured model
