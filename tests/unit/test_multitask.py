"""task multi-task: one backbone, several heads trained together, saved in a form that loads back."""

import csv
import json
import random

import pytest
import torch
from conftest import FILLER, TOKEN, WORDS_NEG, WORDS_POS
from huggingface_hub import HfApi
from transformers import AutoModel, AutoTokenizer

from hubtransfer.cli import main
from hubtransfer.data.multitask import prepare_multitask
from hubtransfer.data.prepare import prepare_data
from hubtransfer.errors import DataError, RecipeError
from hubtransfer.inference import evaluate_saved, predict
from hubtransfer.job import load_recipe
from hubtransfer.run import finetune
from hubtransfer.tasks import get_task
from hubtransfer.tasks.model import build_model, load_trained

TOPICS = ["movie", "film", "story"]
OTHER = [w for w in FILLER if w not in TOPICS]
TEXTS = ["good great movie", "awful dull story", "the film was fine", "cold boring film and plot"]
HEADS = [
    {"name": "sentiment", "label_column": "sentiment"},
    {"name": "topic", "label_column": "topic", "weight": 2.0},
    {"name": "stars", "label_column": "stars", "type": "regression", "weight": 0.5},
]


def write_multitask_csv(path, n=240, seed=0, duplicates=0):
    """Sentiment from the positive / negative words, topic from one of three nouns, stars = 1 + 2 * positive + topic /
    2."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        s, t = i % 2, (i // 2) % 3
        words = rng.sample(WORDS_POS if s else WORDS_NEG, 2) + [TOPICS[t]] * 2 + rng.sample(OTHER, 2) + [str(i)]
        rng.shuffle(words)
        rows.append(
            {
                "sentence": " ".join(words),
                "sentiment": "pos" if s else "neg",
                "topic": TOPICS[t],
                "stars": 1 + 2 * s + t / 2,
            }
        )
    rows += rows[:duplicates]  # exact copies: dropped by the dedup, labels and all
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def mt_recipe(model_dir, data, out, heads=HEADS, **extra):
    recipe = {
        "task": "multi-task",
        "model": {"id": str(model_dir)},
        "data": {"source": str(data), "text_column": "sentence", "max_length": 16},
        "heads": heads,
        "head": {"pooling": "mean"},
        "strategy": "full",
        "train": {"epochs": 6, "lr": 1e-2, "batch_size": 16, "precision": "no", "warmup_ratio": 0.0},
        "output_dir": str(out),
    }
    recipe.update(extra)
    return recipe


# --------------------------------------------------------------------------- recipe


@pytest.mark.parametrize(
    "change, message",
    [
        ({"heads": HEADS[:1]}, r"needs at least 2 heads, got 1"),
        ({"heads": [HEADS[0], {**HEADS[1], "name": "sentiment"}]}, r"name \['sentiment'\] appears more than once"),
        (
            {"heads": [HEADS[0], {**HEADS[1], "label_column": "sentiment"}]},
            r"label_column \['sentiment'\] appears more than once",
        ),
        ({"heads": [HEADS[0], {**HEADS[1], "name": "to.pic"}]}, r"heads\.1\.name: String should match pattern"),
        ({"heads": [HEADS[0], {**HEADS[1], "weight": 0}]}, r"heads\.1\.weight"),
        ({"task": "text-classification"}, r"only task 'multi-task' reads it"),
        (
            {"train": {"early_stopping": {"metric": "topic/r_squared"}}},
            r"'topic/r_squared' is not computed.*'topic/accuracy'.*'stars/r_squared'",
        ),
        (
            {"heads": [{**HEADS[2], "name": "a"}, {**HEADS[2], "name": "b", "label_column": "x"}]},
            r"every head is a regression; .* a/r_squared",
        ),
        ({"strategy": "lora"}, r"lora"),
    ],
)
def test_recipe_refuses_bad_heads(tmp_path, change, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe({**mt_recipe("m", "d.csv", tmp_path), **change})


def test_recipe_accepts_a_heads_metric_to_watch(tmp_path):
    recipe = load_recipe(mt_recipe("m", "d.csv", tmp_path), ["train.early_stopping.metric=stars/r_squared"])
    assert recipe.train.early_stopping.metric == "stars/r_squared" and [h.weight for h in recipe.heads] == [
        1.0,
        2.0,
        0.5,
    ]


# --------------------------------------------------------------------------- data


def test_labels_stay_with_their_text_and_the_split_is_the_single_task_one(tmp_path):
    data = write_multitask_csv(tmp_path / "d.csv", duplicates=10)
    recipe = load_recipe(mt_recipe("m", data, tmp_path / "out"))
    prepared = prepare_multitask(recipe)
    assert prepared.info["duplicates_dropped"] == {"train": 10} and prepared.info["sizes"] == {
        "train": 192,
        "validation": 24,
        "test": 24,
    }
    assert prepared.labels == ["sentiment/neg", "sentiment/pos", "topic/film", "topic/movie", "topic/story", "stars"]
    with open(data) as f:
        source = {r["sentence"]: r for r in csv.DictReader(f)}
    topics = prepared.labels.heads[1]["labels"]
    for split, ds in prepared.splits.items():
        for row in ds:  # every label is its own text's, after the dedup and the hash-ordered split
            truth = source[row["text"]]
            assert (["neg", "pos"][row["head_sentiment"]], topics[row["head_topic"]], row["head_stars"]) == (
                truth["sentiment"],
                truth["topic"],
                float(truth["stars"]),
            )
        single = prepare_data(recipe.data.model_copy(update={"label_column": "topic"}), "text")
        assert single.splits[split]["text"] == ds["text"]


def test_missing_and_bad_label_columns_name_the_head(tmp_path):
    data = write_multitask_csv(tmp_path / "d.csv")
    wrong = [HEADS[0], {**HEADS[1], "label_column": "topik"}]
    with pytest.raises(
        DataError, match=r"heads\.topic\.label_column 'topik': no such column .* Did you mean 'topic'\?"
    ):
        prepare_multitask(load_recipe(mt_recipe("m", data, tmp_path / "o", heads=wrong)))
    as_number = [HEADS[0], {**HEADS[1], "type": "regression"}]
    with pytest.raises(
        DataError, match=r"heads\.topic\.label_column 'topic': a regression head needs numbers; 240 value\(s\).*'movie'"
    ):
        prepare_multitask(load_recipe(mt_recipe("m", data, tmp_path / "o", heads=as_number)))


def test_a_label_only_a_held_out_split_has_is_refused(tmp_path):
    for split, rows in (("train", range(0, 60)), ("test", range(60, 80))):
        write_multitask_csv(tmp_path / "full.csv", n=80)
        lines = (tmp_path / "full.csv").read_text().splitlines()
        (tmp_path / f"{split}.csv").write_text("\n".join([lines[0]] + [lines[1 + i] for i in rows]) + "\n")
    text = (tmp_path / "test.csv").read_text().replace(",story,", ",novel,", 1)
    (tmp_path / "test.csv").write_text(text)
    (tmp_path / "full.csv").unlink()
    with pytest.raises(
        DataError,
        match=r"heads\.topic\.label_column 'topic':.*\{'test': \['novel'\]\} appear in a split but not in train",
    ):
        prepare_multitask(load_recipe(mt_recipe("m", tmp_path, tmp_path / "o")))


# --------------------------------------------------------------------------- model


def test_loss_is_the_weighted_sum_of_the_heads_losses(tiny_bert, tmp_path):
    data = write_multitask_csv(tmp_path / "d.csv")
    recipe = load_recipe(mt_recipe(tiny_bert, data, tmp_path / "out"))
    task = get_task("multi-task")
    prepared = prepare_multitask(recipe)
    tok = task.load_processor(tiny_bert, recipe)
    batch = task.collate(tok, recipe)([task.encode(prepared, tok, recipe)["train"][i] for i in range(8)])
    model = build_model(task, tiny_bert, recipe, prepared.labels).eval()
    with torch.no_grad():
        out = model(**batch)
    logits, y = out.logits, batch["labels"]
    assert logits.shape == (8, 6) and y.shape == (8, 3)
    f = torch.nn.functional
    by_hand = (
        1.0 * f.cross_entropy(logits[:, 0:2], y[:, 0].long())
        + 2.0 * f.cross_entropy(logits[:, 2:5], y[:, 1].long())
        + 0.5 * f.mse_loss(logits[:, 5], y[:, 2])
    )
    assert out.loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert out.loss.item() > 1.0  # an untrained model: the three terms are all there, not one


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def mt_run(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("mt-run")
    return finetune(mt_recipe(tiny_bert, write_multitask_csv(root / "d.csv"), root / "out"))


def test_every_head_learns(mt_run):
    test = mt_run.metrics["test"]
    # Measured on this data and seed: sentiment 1.0, topic 1.0, stars R² 0.92; chance is 0.5 / 0.33 / 0.
    assert test["sentiment/accuracy"] >= 0.9 and test["topic/accuracy"] >= 0.8 and test["stars/r_squared"] >= 0.8
    assert test["accuracy"] == pytest.approx((test["sentiment/accuracy"] + test["topic/accuracy"]) / 2)
    assert test["f1"] == pytest.approx((test["sentiment/f1"] + test["topic/f1"]) / 2)
    assert not (mt_run.output_dir / "confusion_matrix.json").exists()


def test_saved_folder_reloads_with_and_without_remote_code(mt_run):
    out = mt_run.output_dir
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "modeling_hubtransfer.HubtransferConfig",
        "AutoModel": "modeling_hubtransfer.HubtransferMultiTask",
    }
    assert (config["model_type"], config["backbone_model_type"]) == ("hubtransfer", "bert")
    with pytest.raises(ValueError, match="trust_remote_code"):  # never a bare BertModel in its place
        AutoModel.from_pretrained(out, trust_remote_code=False)
    assert [h["name"] for h in config["hubtransfer_heads"]] == ["sentiment", "topic", "stars"]
    tok = AutoTokenizer.from_pretrained(out, trust_remote_code=True)  # as the card's snippet: no question on stdin
    batch = tok(TEXTS, return_tensors="pt", padding=True)
    ours = load_trained(out, get_task("multi-task")).eval()
    stock = AutoModel.from_pretrained(out, trust_remote_code=True).eval()
    assert (
        type(ours).__module__ == "hubtransfer.tasks.modeling_hubtransfer"
        and type(stock).__module__ != type(ours).__module__
    )
    with torch.no_grad():
        trained, a, b = mt_run.model.eval()(**batch).logits, ours(**batch).logits, stock(**batch).logits
    assert torch.allclose(a, trained, atol=1e-5) and torch.allclose(b, trained, atol=1e-5)
    preds = predict(out, TEXTS)
    assert [p["sentiment"][0]["label"] for p in preds] == ["pos", "neg", "pos", "neg"]
    assert [p["topic"][0]["label"] for p in preds] == ["movie", "story", "film", "film"]
    assert all(0 < p["sentiment"][0]["score"] <= 1 and isinstance(p["stars"]["value"], float) for p in preds)


def test_cli_predict_and_eval_give_every_head(mt_run, capsys):
    assert main(["predict", str(mt_run.output_dir), "great lovely film", "--top-k", "2"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert set(line["prediction"]) == {"sentiment", "topic", "stars"} and len(line["prediction"]["topic"]) == 2
    assert line["prediction"]["sentiment"][0]["label"] == "pos"
    again = evaluate_saved(mt_run.output_dir)
    assert (
        again["metrics"]["topic/accuracy"] == pytest.approx(mt_run.metrics["test"]["topic/accuracy"])
        and again["n"] == 24
    )


def test_card_lists_every_heads_metrics_and_labels(mt_run):
    card = (mt_run.output_dir / "README.md").read_text()
    test = mt_run.metrics["test"]
    for row in (
        "sentiment: accuracy",
        "sentiment: F1 (macro)",
        "topic: accuracy",
        "topic: F1 (macro)",
        "stars: RMSE",
        "stars: R²",
    ):
        assert f"| {row} |" in card, row
    assert f"| topic: accuracy | {test['topic/accuracy']:.4f} |" in card
    assert "| topic | topic | classification | 2 | 0: film, 1: movie, 2: story |" in card
    assert "Accuracy (mean of 2 heads)" in card and "AutoModel.from_pretrained" in card and "split_logits" in card
    assert "pipeline(" not in card and "pipeline_tag" not in card  # no pipeline serves several heads
    from huggingface_hub import ModelCard

    results = ModelCard(card).data.eval_results
    assert [r.metric_name for r in results][2:] == [
        "Test sentiment: accuracy",
        "Test sentiment: F1 (macro)",
        "Test topic: accuracy",
        "Test topic: F1 (macro)",
        "Test stars: RMSE",
        "Test stars: MAE",
        "Test stars: R²",
    ]
    assert {r.task_type for r in results} == {"text-classification"} and results[6].metric_type == "rmse"


def test_head_strategy_trains_only_the_heads(tiny_bert, tmp_path):
    data = write_multitask_csv(tmp_path / "d.csv")
    result = finetune(mt_recipe(tiny_bert, data, tmp_path / "out", strategy="head"))
    features = result.run["training"]["features"]
    assert features["cached"] is False and "multi-task" in features["reason"]
    before = AutoModel.from_pretrained(tiny_bert).state_dict()
    after = result.model.state_dict()
    assert not any(k.startswith("backbone.pooler.") for k in after)  # mean pooling: the unused pooler is dropped
    moved = [k for k, v in before.items() if not k.startswith("pooler.") and not torch.equal(v, after[f"backbone.{k}"])]
    assert moved == [] and result.run["strategy"]["trainable_params"] == (32 * 2 + 2) + (32 * 3 + 3) + (
        32 + 1
    )  # the three heads, nothing else
    assert result.metrics["test"]["sentiment/accuracy"] > 0.5


def test_pushed_multitask_model_loads_back_from_the_hub(hub, clients, tiny_bert, tmp_path, monkeypatch):
    from hubtransfer.push.roundtrip import compare_with_hub

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    data = write_multitask_csv(tmp_path / "d.csv")
    result = finetune(
        mt_recipe(
            tiny_bert,
            data,
            tmp_path / "out",
            train={"epochs": 1, "lr": 1e-2, "batch_size": 16, "precision": "no"},
            hub={"push": True, "repo_id": "local-user/tiny-multitask"},
        )
    )
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    files = set(api.list_repo_files("local-user/tiny-multitask"))
    assert {"modeling_hubtransfer.py", "config.json", "model.safetensors", "README.md"} <= files
    check = compare_with_hub("local-user/tiny-multitask", result.output_dir, TEXTS, cache_dir=tmp_path / "fresh")
    assert check["equal"], check
    assert check["class"] == "HubtransferMultiTask" and set(check["hub"][0]) == {"sentiment", "topic", "stars"}
