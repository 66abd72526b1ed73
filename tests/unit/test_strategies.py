"""Strategies: what trains for head / top:K / full on BERT-, ViT- and EfficientNet-like models."""

import pytest
from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

from hubtransfer.strategies import apply_strategy, find_blocks, parameter_groups, parse_strategy, set_train_mode


def _load(folder, kind):
    cls = AutoModelForSequenceClassification if kind == "text" else AutoModelForImageClassification
    return cls.from_pretrained(folder)


@pytest.mark.parametrize("fixture, kind, block_class, n_blocks", [
    ("tiny_bert", "text", "BertLayer", 2),
    ("tiny_vit", "image", "ViTLayer", 2),
    ("tiny_efficientnet", "image", "EfficientNetBlock", None),
])
def test_block_discovery(request, fixture, kind, block_class, n_blocks):
    model = _load(request.getfixturevalue(fixture), kind)
    _, blocks = find_blocks(model)
    assert {type(b).__name__ for b in blocks} == {block_class}
    assert len(blocks) == n_blocks if n_blocks else len(blocks) >= 2


def test_head_trains_only_head_and_pooler(tiny_bert):
    model = _load(tiny_bert, "text")
    plan = apply_strategy(model, "head")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"}
    assert 0 < plan["trainable_share"] < 0.2
    assert plan["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_top_k_trains_last_blocks_and_what_follows(tiny_efficientnet):
    model = _load(tiny_efficientnet, "image")
    _, blocks = find_blocks(model)
    apply_strategy(model, "top:1")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    last = len(blocks) - 1
    assert any(n.startswith(f"efficientnet.encoder.blocks.{last}.") for n in trainable)
    assert not any(n.startswith(f"efficientnet.encoder.blocks.{last - 1}.") for n in trainable)
    assert any(n.startswith("efficientnet.encoder.top_conv") for n in trainable)  # after the last block
    assert not any("embeddings" in n for n in trainable)


def test_top_k_more_than_blocks(tiny_vit):
    with pytest.raises(ValueError, match=r"more blocks than the backbone has \(2\); use top:2 or full"):
        apply_strategy(_load(tiny_vit, "image"), "top:5")


def test_full_trains_everything_and_frozen_bn_stays_in_eval(tiny_efficientnet):
    model = _load(tiny_efficientnet, "image")
    assert apply_strategy(model, "full")["trainable_share"] == 1.0
    apply_strategy(model, "head")
    set_train_mode(model)
    assert not model.efficientnet.embeddings.batchnorm.training  # frozen BN keeps its statistics
    assert model.classifier.training


def test_parameter_groups_split_decay_and_head_lr(tiny_bert):
    model = _load(tiny_bert, "text")
    apply_strategy(model, "top:1")
    groups = parameter_groups(model, lr=1e-5, head_lr=1e-3, weight_decay=0.01)
    assert {(g["lr"], g["weight_decay"]) for g in groups} == {(1e-5, 0.01), (1e-5, 0.0), (1e-3, 0.01), (1e-3, 0.0)}
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in model.parameters() if p.requires_grad)


def test_parse_strategy():
    assert parse_strategy("top:3").k == 3
    with pytest.raises(ValueError):
        parse_strategy("top:x")
