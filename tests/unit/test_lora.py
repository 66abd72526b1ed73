"""strategy=lora: peft adapters on a frozen backbone, saved in peft's format, merged on request, loaded back from a
Hub."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TOKEN, text_recipe, write_sentiment_csv
from huggingface_hub import HfApi
from safetensors.torch import load_file

from hubtransfer.errors import RecipeError
from hubtransfer.inference import predict
from hubtransfer.job import load_recipe
from hubtransfer.run import finetune
from hubtransfer.strategies.base import find_blocks
from hubtransfer.strategies.lora import lora_targets

TEXTS = ["good great movie", "bad awful dull", "the plot was fine", "boring and flat"]


def _lora(tiny_bert, tmp_path, name="out", **extra):
    data = write_sentiment_csv(tmp_path / "r.csv")
    return text_recipe(tiny_bert, data, tmp_path / name, strategy="lora", train__lr=5e-2, peft__r=4, **extra)


def test_recipe_refuses_what_lora_cannot_follow(tiny_bert, tmp_path):
    with pytest.raises(RecipeError, match=r"head.type=linear, head.pooling=native"):
        load_recipe(_lora(tiny_bert, tmp_path, head={"pooling": "mean"}))
    with pytest.raises(RecipeError, match="layer_decay does not apply"):
        load_recipe(_lora(tiny_bert, tmp_path, train__layer_decay=0.8))
    with pytest.raises(RecipeError, match=r"peft\.alpah: unknown key. Did you mean 'peft\.alpha'"):
        load_recipe(_lora(tiny_bert, tmp_path, peft__alpah=8))
    with pytest.raises(RecipeError, match=r"peft.method"):
        load_recipe(_lora(tiny_bert, tmp_path, peft__method="prefix"))


def test_targets_per_architecture(tiny_bert, tiny_vit, tiny_efficientnet):
    from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification

    assert lora_targets(AutoModelForSequenceClassification.from_pretrained(tiny_bert)) == [
        "query",
        "value",
    ]  # peft's own map
    vit = AutoModelForImageClassification.from_pretrained(tiny_vit)  # not in peft's map: every Linear of the blocks
    linears = {n.rsplit(".", 1)[-1] for n, m in find_blocks(vit)[1].named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(lora_targets(vit)) == linears and len(linears) >= 4 and "classifier" not in linears
    effnet = AutoModelForImageClassification.from_pretrained(tiny_efficientnet)
    names = lora_targets(effnet)  # no Linear in the blocks: their pointwise convolutions
    assert names and all(
        m.kernel_size == (1, 1)
        for n, m in effnet.named_modules()
        if n.rsplit(".", 1)[-1] in names and hasattr(m, "kernel_size")
    )


def test_only_adapters_and_head_train_and_the_folder_is_a_peft_adapter(tiny_bert, tmp_path):
    before = load_file(tiny_bert / "model.safetensors")
    result = finetune(_lora(tiny_bert, tmp_path))
    plan = result.run["strategy"]
    assert plan["strategy"] == "lora" and 0 < plan["trainable_share"] < 0.1
    assert plan["adapter"]["target_modules"] == ["query", "value"] and plan["adapter"]["modules_to_save"] == [
        "bert.pooler.dense",
        "classifier",
    ]
    out = result.output_dir
    files = {p.name for p in out.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "config.json",
    } <= files and "model.safetensors" not in files
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert (
        cfg["base_model_name_or_path"] == str(tiny_bert.resolve()) and cfg["task_type"] == "SEQ_CLS" and cfg["r"] == 4
    )
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "neg", "1": "pos"}
    saved = load_file(out / "adapter_model.safetensors")
    assert any("lora_A" in k for k in saved) and any("classifier" in k for k in saved)
    assert not any("encoder.layer.0.attention.self.query.weight" in k for k in saved)  # base weights are not copied
    # The frozen base weights did not move; the adapters did.
    base = result.model.get_base_model()
    query = base.bert.encoder.layer[0].attention.self.query
    assert torch.equal(query.base_layer.weight, before["bert.encoder.layer.0.attention.self.query.weight"])
    assert query.lora_B["default"].weight.abs().sum() > 0  # B starts at zero: non-zero means it trained
    card = (out / "README.md").read_text()
    assert "library_name: peft" in card and "AutoPeftModelForSequenceClassification" in card and "LORA rank 4" in card
    # Loaded back from the folder alone (base named in adapter_config.json): the same predictions as in memory.
    result.model.eval()
    again = predict(out, TEXTS)
    from transformers import pipeline

    live = pipeline("text-classification", model=result.model, tokenizer=str(out))(TEXTS, top_k=1)
    assert [a[0]["label"] for a in again] == [b[0]["label"] for b in live]
    assert all(abs(a[0]["score"] - b[0]["score"]) < 1e-5 for a, b in zip(again, live))


def test_merged_run_is_a_stock_model_with_the_adapters_predictions(tiny_bert, tmp_path):
    adapter = finetune(_lora(tiny_bert, tmp_path, "adapter")).output_dir
    merged = finetune(_lora(tiny_bert, tmp_path, "merged", peft__merge=True)).output_dir
    files = {p.name for p in merged.iterdir()}
    assert "model.safetensors" in files and "adapter_config.json" not in files
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(merged)  # stock class, no peft
    a, m = predict(adapter, TEXTS), predict(merged, TEXTS)
    assert [x[0]["label"] for x in a] == [y[0]["label"] for y in m]
    assert all(abs(x[0]["score"] - y[0]["score"]) < 1e-4 for x, y in zip(a, m))
    assert "library_name: transformers" in (merged / "README.md").read_text()


def test_pushed_adapter_loads_back_through_peft_from_the_hub(hub, clients, tiny_bert, tmp_path, monkeypatch):
    from hubtransfer.push.roundtrip import compare_with_hub

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo("local-user/tiny-base", private=False)
    api.upload_folder(folder_path=str(tiny_bert), repo_id="local-user/tiny-base")
    recipe = _lora(tiny_bert, tmp_path, hub={"push": True, "repo_id": "local-user/tiny-lora"})
    recipe["model"]["id"] = "local-user/tiny-base"  # the base by Hub id: the adapter names it so
    result = finetune(recipe)
    assert (
        json.loads((result.output_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
        == "local-user/tiny-base"
    )
    card = api.model_info("local-user/tiny-lora").card_data
    assert (
        card.library_name == "peft"
        and card.base_model == "local-user/tiny-base"
        and card.base_model_relation == "adapter"
    )
    check = compare_with_hub("local-user/tiny-lora", result.output_dir, TEXTS, cache_dir=tmp_path / "fresh")
    assert check["equal"], check


def test_image_lora_on_pointwise_convolutions(tiny_efficientnet, image_folder, tmp_path):
    recipe = {
        "task": "image-classification",
        "model": {"id": str(tiny_efficientnet)},
        "data": {"source": str(image_folder)},
        "strategy": "lora",
        "peft": {"r": 2},
        "output_dir": str(tmp_path / "out"),
        "train": {"epochs": 1, "lr": 1e-2, "batch_size": 8, "precision": "no"},
    }
    result = finetune(recipe)
    cfg = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert cfg["task_type"] is None and cfg["auto_mapping"]["base_model_class"] == "EfficientNetForImageClassification"
    assert result.run["strategy"]["trainable_share"] < 0.5
    images = sorted(image_folder.rglob("*.png"))[:3]
    assert len(predict(result.output_dir, [str(p) for p in images])) == 3
