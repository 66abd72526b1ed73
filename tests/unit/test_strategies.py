"""Strategies: what trains for head / top:K / full on BERT-, ViT- and EfficientNet-like models."""

import pytest
import torch
from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

from hubtransfer.strategies import apply_strategy, get_strategy
from hubtransfer.strategies.base import find_blocks, parameter_groups, set_train_mode


def _load(folder, kind):
    cls = AutoModelForSequenceClassification if kind == "text" else AutoModelForImageClassification
    return cls.from_pretrained(folder)


@pytest.mark.parametrize(
    "fixture, kind, block_class, n_blocks",
    [
        ("tiny_bert", "text", "BertLayer", 2),
        ("tiny_vit", "image", "ViTLayer", 2),
        ("tiny_efficientnet", "image", "EfficientNetBlock", None),
    ],
)
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


def test_a_strategy_name_becomes_one_object():
    top = get_strategy("top:3")
    assert (top.k, str(top), top.head_only) == (3, "top:3", False) and get_strategy("head").head_only
    for bad, fragment in (
        ("top:x", "'top:K' (K >= 1"),
        ("top", "'top:K' (K >= 1"),
        ("full:2", "'full'"),
        ("ful", "is not one of"),
    ):
        with pytest.raises(ValueError, match=fragment.replace("(", "\\(")):
            get_strategy(bad)


def test_block_depths_and_layer_decay_rates(tiny_bert):
    from hubtransfer.strategies.base import block_depths

    model = _load(tiny_bert, "text")
    apply_strategy(model, "full")
    depths = block_depths(model)
    assert depths["classifier.weight"] == 0 and depths["bert.pooler.dense.weight"] == 0
    assert depths["bert.encoder.layer.1.attention.self.query.weight"] == 1  # the top block
    assert depths["bert.encoder.layer.0.output.dense.weight"] == 2
    assert depths["bert.embeddings.word_embeddings.weight"] == 3  # below the lowest block
    groups = parameter_groups(model, 1e-3, 1e-2, 0.01, layer_decay=0.5)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert rate[id(named["classifier.weight"])] == 1e-2  # head_lr, no decay
    assert rate[id(named["bert.encoder.layer.1.attention.self.query.weight"])] == pytest.approx(5e-4)
    assert rate[id(named["bert.encoder.layer.0.output.dense.weight"])] == pytest.approx(2.5e-4)
    assert rate[id(named["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1.25e-4)
    assert sum(len(g["params"]) for g in groups) == len(named)


def test_gradual_unfreezing_adds_one_block_per_epoch(tiny_bert):
    from hubtransfer.strategies.gradual import Gradual

    model = _load(tiny_bert, "text")
    counts = [Gradual().on_epoch(model, epoch) for epoch in range(5)]
    assert counts[0] < counts[1] < counts[2] < counts[3] == counts[4] == sum(p.numel() for p in model.parameters())
    Gradual().on_epoch(model, 1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert (
        "bert.encoder.layer.1.output.dense.weight" in trainable
        and "bert.encoder.layer.0.output.dense.weight" not in trainable
    )


def test_gradual_and_layer_decay_runs_keep_the_best_weights_of_everything(
    tiny_bert, tmp_path, sentiment_csv, monkeypatch
):
    from conftest import text_recipe
    from safetensors.torch import load_file

    import hubtransfer.train.steps as loop
    from hubtransfer.run import finetune

    top, emb = "bert.encoder.layer.1.output.dense.weight", "bert.embeddings.word_embeddings.weight"
    seen = []
    real = loop._evaluate_step

    def snapshot(model, *args):
        seen.append(dict(model.named_parameters())[top].detach().clone())
        return real(model, *args)

    monkeypatch.setattr(loop, "_evaluate_step", snapshot)
    result = finetune(
        text_recipe(
            tiny_bert,
            sentiment_csv,
            tmp_path / "g",
            strategy="gradual",
            train__epochs=3,
            train__layer_decay=0.8,
            train__early_stopping__keep="best",  # the first evaluation's weights, restored after two more epochs
        )
    )
    assert [r["step"] for r in result.history] == [12, 24, 36]
    # by the third epoch the head and both blocks train, the embeddings not yet: that is the share reported
    share = result.run["strategy"]["trainable_share"]
    emb_numel = sum(p.numel() for n, p in result.model.named_parameters() if n.startswith("bert.embeddings."))
    assert share == pytest.approx(1 - emb_numel / sum(p.numel() for p in result.model.parameters()))
    original = load_file(str(tiny_bert / "model.safetensors"))
    assert torch.equal(seen[0], original[top])  # epoch 1: head only
    assert not torch.equal(seen[1], original[top])  # epoch 2: the top block joined
    # Epoch 3 trains the lowest block, not yet the embeddings: they come out unchanged.
    assert torch.equal(original[emb], dict(result.model.named_parameters())[emb].detach())
    # The best evaluation (this seeded tiny model never beats its first) is restored for every weight that trained
    # during the run, including the top block that was still frozen then.
    assert result.run["metrics"]["best_step"] == 12
    assert torch.equal(original[top], dict(result.model.named_parameters())[top].detach())
    assert "gradual unfreezing" in (result.output_dir / "README.md").read_text()
