"""Cached backbone features: head-only training on them equals the uncached run; the cache keys miss on change."""

import pytest
import torch
from conftest import text_recipe, write_image_folder, write_sentiment_csv

from hubtransfer.inference import evaluate_saved
from hubtransfer.run import finetune
from hubtransfer.train.features import cache_root


def _head(tiny, data, out, **extra):
    settings = {"strategy": "head", "head__pooling": "mean", "train__lr": 5e-2, "train__epochs": 3, **extra}
    return text_recipe(tiny, data, out, **settings)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_sentiment_csv(tmp_path_factory.mktemp("feat") / "reviews.csv")


def test_cached_head_training_equals_running_the_backbone(tiny_bert, data, tmp_path):
    cached = finetune(_head(tiny_bert, data, tmp_path / "cached"))
    plain = finetune(_head(tiny_bert, data, tmp_path / "plain", train__cache_features=False))
    info = cached.run["training"]["features"]
    assert info["cached"] is True and info["pooling"] == "mean" and info["dim"] == 32
    assert "features" not in plain.run["training"]
    # Same batches, same dropout draws on the head: the trajectories match to float rounding.
    for a, b in zip(cached.history, plain.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-4)
        assert a["validation"]["accuracy"] == pytest.approx(b["validation"]["accuracy"])
    assert cached.metrics["test"] == pytest.approx(plain.metrics["test"])
    # The saved model is the full network with the trained head: evaluating it runs the backbone again.
    again = evaluate_saved(cached.output_dir)
    assert again["metrics"]["accuracy"] == pytest.approx(cached.metrics["test"]["accuracy"])
    for name in ("head.layers.1.weight", "head.layers.1.bias"):
        assert torch.allclose(
            dict(cached.model.named_parameters())[name], dict(plain.model.named_parameters())[name], atol=1e-4
        )


def test_second_run_hits_the_cache_and_a_changed_preprocessing_misses(tiny_bert, data, tmp_path):
    first = finetune(_head(tiny_bert, data, tmp_path / "a", data__split_seed=7))
    second = finetune(_head(tiny_bert, data, tmp_path / "b", data__split_seed=7))
    assert first.run["training"]["features"]["hits"] == []
    assert second.run["training"]["features"]["hits"] == ["test", "train", "validation"]
    assert second.run["training"]["features"]["extract_seconds"] == 0
    assert second.metrics["test"] == first.metrics["test"]
    changed = finetune(_head(tiny_bert, data, tmp_path / "c", data__split_seed=7, data__max_length=8))
    assert changed.run["training"]["features"]["hits"] == []
    other_pool = finetune(_head(tiny_bert, data, tmp_path / "d", data__split_seed=7, head__pooling="cls"))
    assert other_pool.run["training"]["features"]["hits"] == []
    # A changed split (other data) misses too; entries are safetensors files, never pickles.
    assert all(p.suffix == ".safetensors" for p in cache_root().iterdir())


def test_a_damaged_cache_entry_is_recomputed(tiny_bert, data, tmp_path):
    finetune(_head(tiny_bert, data, tmp_path / "a", data__split_seed=11))
    newest = sorted(cache_root().iterdir(), key=lambda p: p.stat().st_mtime)[-3:]
    for p in newest:
        p.write_bytes(b"not a safetensors file")
    again = finetune(_head(tiny_bert, data, tmp_path / "b", data__split_seed=11))
    assert again.run["training"]["features"]["hits"] == []


def test_stock_image_classifier_splits_at_its_output_layer(tiny_efficientnet, tmp_path):
    images = write_image_folder(tmp_path / "img", per_class=24, size=32)
    recipe = {
        "task": "image-classification",
        "model": {"id": str(tiny_efficientnet)},
        "data": {"source": str(images)},
        "strategy": "head",
        "train": {"epochs": 2, "lr": 1e-2, "batch_size": 8, "precision": "no"},
        "output_dir": str(tmp_path / "out"),
    }
    cached = finetune(recipe)
    plain = finetune(
        {**recipe, "output_dir": str(tmp_path / "plain"), "train": {**recipe["train"], "cache_features": False}}
    )
    assert cached.run["training"]["features"]["pooling"] == "native"
    assert cached.run["training"]["features"]["dim"] == 320  # EfficientNet's pooled output (hidden_dim)
    assert cached.metrics["test"] == pytest.approx(plain.metrics["test"])
    assert evaluate_saved(cached.output_dir)["metrics"]["accuracy"] == pytest.approx(cached.metrics["test"]["accuracy"])


def test_stock_bert_head_caches_the_first_token_and_trains_its_pooler_as_uncached(tiny_bert, data, tmp_path):
    # BERT's stock classifier reads its pooler, which head-only trains; the pooler reads only the first
    # token, so that token's last hidden state is what gets cached.
    recipe = text_recipe(tiny_bert, data, tmp_path / "o", strategy="head", train__epochs=2, train__lr=5e-2)
    cached = finetune(recipe)
    plain = finetune(
        {**recipe, "output_dir": str(tmp_path / "p"), "train": {**recipe["train"], "cache_features": False}}
    )
    info = cached.run["training"]["features"]
    assert info["cached"] is True and info["pooling"] == "first-token" and info["dim"] == 32
    assert cached.metrics["test"] == pytest.approx(plain.metrics["test"])
    for name in ("bert.pooler.dense.weight", "classifier.weight"):
        assert torch.allclose(
            dict(cached.model.named_parameters())[name], dict(plain.model.named_parameters())[name], atol=1e-4
        )
    assert evaluate_saved(cached.output_dir)["metrics"]["accuracy"] == pytest.approx(cached.metrics["test"]["accuracy"])


def test_a_pooler_reading_every_token_is_not_split(tiny_bert):
    from torch import nn
    from transformers import AutoModelForSequenceClassification

    from hubtransfer.strategies import apply_strategy
    from hubtransfer.train.features import split_head

    class MeanPooler(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dense = nn.Linear(dim, dim)

        def forward(self, states):
            return torch.tanh(self.dense(states.mean(1)))

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert, num_labels=2)
    model.bert.pooler = MeanPooler(32)
    apply_strategy(model, "head")
    split, why = split_head(model)
    assert split is None and "pooler" in why


def test_random_init_control_differs_and_its_card_claims_no_base(tiny_bert, data, tmp_path):
    pre = finetune(text_recipe(tiny_bert, data, tmp_path / "p", train__epochs=1))
    rnd = finetune(text_recipe(tiny_bert, data, tmp_path / "r", model__init="random", train__epochs=1))
    emb = "bert.embeddings.word_embeddings.weight"
    a, b = dict(pre.model.named_parameters())[emb], dict(rnd.model.named_parameters())[emb]
    assert not torch.allclose(a, b)
    assert b.std().item() == pytest.approx(0.02, rel=0.1)  # initializer_range
    card = (rnd.output_dir / "README.md").read_text()
    assert "base_model:" not in card and "trained from scratch" in card


def test_changed_weights_or_revision_miss(tiny_bert, data, tmp_path):
    import shutil

    from hubtransfer.train.features import model_fingerprint

    copy = tmp_path / "bert"
    shutil.copytree(tiny_bert, copy)
    first = finetune(_head(copy, data, tmp_path / "a", data__split_seed=13))
    assert first.run["training"]["features"]["hits"] == []
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # a new file (new mtime): another checkpoint as far as the cache knows
    again = finetune(_head(copy, data, tmp_path / "b", data__split_seed=13))
    assert again.run["training"]["features"]["hits"] == []
    # Hub snapshots are keyed by their commit, whatever their files' times.
    snap = tmp_path / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    assert model_fingerprint(snap) == "commit:" + "a" * 40
