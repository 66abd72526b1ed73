"""End to end on tiny random checkpoints: train, save, reload with stock transformers, fail cleanly."""

import json
import shutil

import numpy as np
import pytest
import torch
from conftest import text_recipe, write_image_folder, write_sentiment_csv
from transformers import AutoModelForImageClassification, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from hubtransfer.cli import main
from hubtransfer.errors import DataError, ImageDataError, ModelSourceError, OutputDirError, RecipeError
from hubtransfer.inference import evaluate_saved, predict
from hubtransfer.job import load_recipe
from hubtransfer.run import finetune


@pytest.fixture(scope="module")
def text_run(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("text-run")
    data = write_sentiment_csv(root / "reviews.csv")
    result = finetune(text_recipe(tiny_bert, data, root / "out", train__lr=1e-2, train__epochs=4))
    return result, data


def test_text_run_learns_and_writes_everything(text_run):
    result, _ = text_run
    assert result.metrics["test"]["accuracy"] >= 0.9  # the synthetic task is easy; chance is 0.5
    names = {p.name for p in result.output_dir.iterdir()}
    for f in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "metrics.jsonl",
        "recipe.yaml",
        "split.json",
        "confusion_matrix.json",
        "confusion_matrix.png",
        "training_curves.png",
        "hubtransfer_run.json",
    ):
        assert f in names, f
    assert len(result.history) == 4  # one evaluation per epoch
    matrix = json.loads((result.output_dir / "confusion_matrix.json").read_text())["matrix"]
    assert sum(map(sum, matrix)) == 24
    assert not list(result.output_dir.parent.glob(".*.incomplete"))


def test_stock_from_pretrained_and_pipeline_reproduce_the_model(text_run):
    result, _ = text_run
    out = result.output_dir
    texts = ["good great movie", "awful boring plot", "the film was fine and warm", "cold dull story"]
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        ours = result.model.eval()(**tok(texts, return_tensors="pt", padding=True)).logits.argmax(-1).tolist()
        stock = model(**tok(texts, return_tensors="pt", padding=True)).logits.argmax(-1).tolist()
    piped = [model.config.label2id[p["label"]] for p in pipeline("text-classification", model=str(out))(texts)]
    assert ours == stock == piped
    assert model.config.id2label == {0: "neg", 1: "pos"}


def test_eval_reproduces_the_test_metric(text_run):
    result, _ = text_run
    again = evaluate_saved(result.output_dir)
    assert again["metrics"]["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert again["n"] == 24


def test_cli_eval_and_predict(text_run, capsys):
    result, _ = text_run
    assert main(["eval", str(result.output_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["test"]["accuracy"] == pytest.approx(result.metrics["test"]["accuracy"])
    assert main(["predict", str(result.output_dir), "great lovely film", "awful dull plot", "--top-k", "2"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["input"] for x in lines] == ["great lovely film", "awful dull plot"]
    assert all(len(x["prediction"]) == 2 and abs(sum(p["score"] for p in x["prediction"]) - 1) < 1e-4 for x in lines)


def test_output_dir_with_another_run_is_kept(text_run):
    result, data = text_run
    before = (result.output_dir / "model.safetensors").read_bytes()
    with pytest.raises(OutputDirError, match="holds another finished run"):
        finetune(text_recipe(result.output_dir.parent, data, result.output_dir))
    assert (result.output_dir / "model.safetensors").read_bytes() == before


def test_mean_pooled_mlp_head_loads_with_stock_remote_code(tiny_bert, tmp_path, monkeypatch):
    data = write_sentiment_csv(tmp_path / "r.csv")
    r = finetune(
        text_recipe(
            tiny_bert,
            data,
            tmp_path / "out",
            strategy="head",
            head={"type": "mlp", "hidden_sizes": [16], "pooling": "mean"},
            train__lr=1e-2,
            train__epochs=2,
        )
    )
    assert r.run["strategy"]["trainable_share"] < 0.1
    assert (tmp_path / "out" / "modeling_hubtransfer.py").is_file()
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (config["model_type"], config["backbone_model_type"]) == ("hubtransfer", "bert")
    texts = ["good great", "awful dull", "the plot was warm"]
    # Without trust_remote_code, stock transformers must refuse, not build BERT's own pooler head around these weights:
    # it asks (the user answers no) and stops.
    asked = []
    with monkeypatch.context() as m, pytest.raises(ValueError, match="trust_remote_code"):
        m.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "n")
        pipeline("text-classification", model=str(tmp_path / "out"))
    assert asked and "custom code" in asked[0]
    stock = pipeline("text-classification", model=str(tmp_path / "out"), trust_remote_code=True)(texts)
    ours = predict(tmp_path / "out", texts)
    assert [p["label"] for p in stock] == [p[0]["label"] for p in ours]
    assert [p["score"] for p in stock] == pytest.approx([p[0]["score"] for p in ours], abs=1e-5)


def test_image_run_top_k_and_pipeline(tiny_vit, image_folder, tmp_path):
    recipe = {
        "task": "image-classification",
        "model": {"id": str(tiny_vit)},
        "data": {"source": str(image_folder)},
        "strategy": "top:1",
        "train": {"epochs": 3, "lr": 3e-3, "batch_size": 8, "precision": "no"},
        "output_dir": str(tmp_path / "out"),
    }
    r = finetune(recipe)
    assert r.metrics["test"]["accuracy"] >= 0.75  # bright vs dark squares
    model = AutoModelForImageClassification.from_pretrained(tmp_path / "out")
    assert model.config.id2label == {0: "bright", 1: "dark"}
    preds = pipeline("image-classification", model=str(tmp_path / "out"))([str(image_folder / "dark" / "0.png")])
    assert preds[0][0]["label"] in ("bright", "dark")


def test_early_stopping_and_tensorboard(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "r.csv")
    r = finetune(
        text_recipe(
            tiny_bert,
            data,
            tmp_path / "out",
            train__lr=1e-9,
            train__epochs=6,
            train__early_stopping={"metric": "accuracy", "patience": 1},
            train__log_with=["tensorboard"],
        )
    )
    assert r.run["training"]["stopped_early"] and len(r.history) == 2  # lr 1e-9: no gain after the first evaluation
    assert list((tmp_path / "out").rglob("events.out.tfevents.*"))


def test_seeded_runs_are_identical(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "r.csv")
    a = finetune(text_recipe(tiny_bert, data, tmp_path / "a", train__epochs=1))
    b = finetune(text_recipe(tiny_bert, data, tmp_path / "b", train__epochs=1))
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


# ------------------------------------------------------------------ clear failures, nothing written


def _assert_nothing_written(out):
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))


def test_missing_label_column(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "r.csv")
    with pytest.raises(DataError, match=r"data.label_column: column 'label' is not in the train split"):
        finetune(text_recipe(tiny_bert, data, tmp_path / "out", data__label_column="label"))
    _assert_nothing_written(tmp_path / "out")


def test_empty_dataset(tiny_bert, tmp_path):
    (tmp_path / "empty.csv").write_text("sentence,sentiment\n")
    with pytest.raises(DataError, match=r"holds no rows|is empty"):
        finetune(text_recipe(tiny_bert, tmp_path / "empty.csv", tmp_path / "out"))
    _assert_nothing_written(tmp_path / "out")


def test_unreadable_image(tiny_vit, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", per_class=6)
    (folder / "dark" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    recipe = {
        "task": "image-classification",
        "model": {"id": str(tiny_vit)},
        "data": {"source": str(folder)},
        "output_dir": str(tmp_path / "out"),
    }
    with pytest.raises((ImageDataError, DataError), match="cannot be read"):
        finetune(recipe)
    _assert_nothing_written(tmp_path / "out")


def test_checkpoint_path_that_does_not_exist(tmp_path, sentiment_csv):
    with pytest.raises(ModelSourceError, match="local folder '/no/such/model' does not exist"):
        finetune(text_recipe("/no/such/model", sentiment_csv, tmp_path / "out"))
    _assert_nothing_written(tmp_path / "out")


def test_text_checkpoint_on_image_task(tiny_bert, image_folder, tmp_path):
    recipe = {
        "task": "image-classification",
        "model": {"id": str(tiny_bert)},
        "data": {"source": str(image_folder)},
        "output_dir": str(tmp_path / "out"),
    }
    with pytest.raises(
        ModelSourceError, match=r"is a bert \(text\) checkpoint, which has no image-classification model"
    ):
        finetune(recipe)
    _assert_nothing_written(tmp_path / "out")


def test_pickled_weights_refused_unless_allowed(tiny_bert, tmp_path, sentiment_csv):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_bert, folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(ModelSourceError, match=r"only pickled weights .*allow_pickle=true"):
        finetune(text_recipe(folder, sentiment_csv, tmp_path / "out"))
    _assert_nothing_written(tmp_path / "out")


def test_misspelled_key_fails_before_work(tiny_bert, tmp_path, sentiment_csv):
    recipe = text_recipe(tiny_bert, sentiment_csv, tmp_path / "out")
    recipe["train"]["epoch"] = 3
    with pytest.raises(RecipeError, match=r"Did you mean 'train.epochs'\?"):
        finetune(recipe)
    _assert_nothing_written(tmp_path / "out")


def test_nan_loss_stops_with_a_clear_message(tiny_bert, tmp_path, sentiment_csv):
    with pytest.raises(Exception, match=r"training loss became nan|lower train.lr"):
        finetune(
            text_recipe(
                tiny_bert, sentiment_csv, tmp_path / "out", train__lr=1e12, train__max_grad_norm=None, train__epochs=2
            )
        )
    _assert_nothing_written(tmp_path / "out")


def test_bf16_autocast_and_step_interval_evaluation(tiny_bert, tmp_path, sentiment_csv):
    r = finetune(
        text_recipe(
            tiny_bert, sentiment_csv, tmp_path / "out", train__precision="bf16", train__eval_every=5, train__epochs=2
        )
    )
    assert r.run["training"]["precision"] == "bf16"
    assert [h["step"] for h in r.history] == [5, 10, 15, 20, 24]  # every 5 steps, and the last step
    assert all(h["train_loss"] == h["train_loss"] for h in r.history)  # finite (not NaN)
    assert r.model.dtype == torch.float32  # autocast: weights stay fp32, as saved


def test_precision_auto_explains_its_choice():
    from hubtransfer.train.precision import resolve_precision

    choice, why = resolve_precision("auto")
    assert choice in ("no", "bf16", "fp16") and why
    assert resolve_precision("fp16") == ("fp16", "set by the recipe")


def _encoded_images(tiny_vit, tmp_path, size: int):
    """An image folder of ``size`` px squares encoded for the tiny ViT (30 px): (folder, task, processor, data, encoded,
    recipe)."""
    from transformers import AutoImageProcessor

    from hubtransfer.data.prepare import prepare_data
    from hubtransfer.recipe.sections import DataSpec
    from hubtransfer.tasks import get_task

    folder = write_image_folder(tmp_path / "img", per_class=6, size=size)
    recipe = load_recipe(
        {"task": "image-classification", "model": {"id": str(tiny_vit)}, "data": {"source": str(folder)}}
    )
    task = get_task("image-classification")
    proc = AutoImageProcessor.from_pretrained(tiny_vit)
    data = prepare_data(DataSpec(source=str(folder)), "image")
    return folder, task, proc, data, task.encode(data, proc, recipe), recipe


def test_images_are_stored_as_uint8_and_finished_per_batch_like_the_processor(tiny_vit, tmp_path):
    _folder, task, proc, data, encoded, recipe = _encoded_images(tiny_vit, tmp_path, size=40)
    assert encoded["train"].pixels.dtype == torch.uint8  # a quarter of float32's memory
    ds = data.splits["train"]
    batch = task.collate(proc, recipe)([encoded["train"][i] for i in range(4)])
    reference = proc(images=[ds[i]["image"].convert("RGB") for i in range(4)], return_tensors="pt")["pixel_values"]
    assert batch["pixel_values"].dtype == torch.float32
    assert (batch["pixel_values"] - reference).abs().max().item() < 1e-6


def test_images_smaller_than_the_processor_output_are_kept_decoded_and_processed_per_batch(tiny_vit, tmp_path):
    """20 px images for a 30 px model: kept at source size (1,200 bytes each, not 2,700), and each batch is
    exactly what the processor makes of them; a training run goes through that route."""
    from hubtransfer.tasks.image_classification import DecodedImages

    folder, task, proc, data, encoded, recipe = _encoded_images(tiny_vit, tmp_path, size=20)
    assert all(isinstance(ds, DecodedImages) for ds in encoded.values())
    assert encoded["train"][0]["image"].shape == (20, 20, 3) and encoded["train"][0]["image"].dtype == np.uint8
    ds = data.splits["train"]
    batch = task.collate(proc, recipe)([encoded["train"][i] for i in range(4)])
    reference = proc(images=[ds[i]["image"].convert("RGB") for i in range(4)], return_tensors="pt")["pixel_values"]
    assert batch["pixel_values"].shape == (4, 3, 30, 30)
    assert (batch["pixel_values"] - reference).abs().max().item() < 1e-6
    assert batch["labels"].tolist() == [ds[i]["label"] for i in range(4)]

    run = finetune(
        load_recipe(
            {
                "task": "image-classification",
                "model": {"id": str(tiny_vit)},
                "data": {"source": str(folder)},
                "train": {"epochs": 1, "batch_size": 4},
                "output_dir": str(tmp_path / "out"),
            }
        )
    )
    assert run.run["training"]["steps"] == -(-run.run["data"]["sizes"]["train"] // 4)  # every batch went through
    assert set(run.metrics["test"]) >= {"accuracy", "f1"}
