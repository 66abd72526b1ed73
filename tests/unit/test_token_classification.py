"""token-classification (NER) on a tiny BERT: label alignment and entity metrics by hand, then the whole flow."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FILLER, WORDS_NEG, WORDS_POS, text_recipe
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from hubtransfer.cli import main
from hubtransfer.data.prepare import prepare_data
from hubtransfer.errors import DataError, RecipeError
from hubtransfer.inference import evaluate_saved, predict
from hubtransfer.job import job_for, load_recipe
from hubtransfer.recipe.sections import DataSpec
from hubtransfer.run import finetune
from hubtransfer.tasks.metrics import TokenScorer, entity_metrics
from hubtransfer.tasks.token_classification import IGNORE, align_labels, encode, load_processor
from hubtransfer.train.features import split_head

# A person is two words (first name, last name), a place one word: tags follow from the words, so a tiny model learns
# them.
FIRST, LAST, PLACES = WORDS_POS[:4], WORDS_POS[4:], WORDS_NEG[:4]
TAGS = ["O", "B-LOC", "B-PER", "I-PER"]


def _sentence(rng: random.Random, i: int) -> tuple[list[str], list[str]]:
    words, tags = [], []
    for _ in range(rng.randint(3, 6)):
        r = rng.random()
        if r < 0.25:
            words += [rng.choice(FIRST), rng.choice(LAST)]
            tags += ["B-PER", "I-PER"]
        elif r < 0.45:
            words.append(rng.choice(PLACES))
            tags.append("B-LOC")
        else:
            words.append(rng.choice(FILLER))
            tags.append("O")
    return [*words, str(i)], [*tags, "O"]  # the row number keeps sentences distinct (no duplicates dropped)


def write_ner_jsonl(path: Path, n: int = 240, seed: int = 0, tag=lambda t: t) -> Path:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            words, tags = _sentence(rng, i)
            f.write(json.dumps({"words": words, "tags": [tag(t) for t in tags]}) + "\n")
    return path


def ner_recipe(model_dir: Path, data: Path, out: Path, **changes) -> dict:
    """conftest's text recipe as a tagger: words and tags columns, longer inputs, a faster learning rate."""
    return text_recipe(
        model_dir,
        data,
        out,
        **{
            "task": "token-classification",
            "data__text_column": "words",
            "data__label_column": "tags",
            "data__max_length": 32,
            "train__epochs": 4,
            "train__lr": 1e-2,
            **changes,
        },
    )


def _spec(data: Path, **extra) -> DataSpec:
    return DataSpec(source=str(data), text_column="words", label_column="tags", **extra)


# --------------------------------------------------------------------------- alignment and metrics by hand


def test_first_sub_token_of_each_word_gets_its_tag(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    # "fine," splits into "fine" + "," (an unknown piece): two sub-tokens of one word.
    enc = tok(["good", "fine,", "the"], is_split_into_words=True)
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "good", "fine", "[UNK]", "the", "[SEP]"]
    assert enc.word_ids() == [None, 0, 1, 1, 2, None]
    assert align_labels(enc.word_ids(), [2, 3, 0]) == [IGNORE, 2, 3, IGNORE, 0, IGNORE]


def test_encode_aligns_every_split_and_truncates(tiny_bert, tmp_path):
    rows = [(["good", "warm", "visited", "bad,"], ["B-PER", "I-PER", "O", "B-LOC"]), (["the", "film"] * 20, ["O"] * 40)]
    rows += [(["a", str(i)], ["O", "O"]) for i in range(40)]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"words": w, "tags": t}) + "\n" for w, t in rows))
    data = prepare_data(_spec(path), "text", per_token=True)
    assert data.labels == TAGS
    raw = ner_recipe(tiny_bert, path, tmp_path / "o")
    raw["data"]["max_length"] = 8
    recipe = load_recipe(raw)
    encoded = encode(data, load_processor(tiny_bert, recipe), recipe)
    items = {len(x["input_ids"]): x for split in encoded.values() for x in (split[i] for i in range(len(split)))}
    assert items[7]["labels"] == [IGNORE, 2, 3, 0, 1, IGNORE, IGNORE]  # "bad," = "bad" + ","; [CLS] / [SEP] ignored
    assert items[8]["labels"] == [IGNORE] + [0] * 6 + [
        IGNORE
    ]  # 40 words cut at 8 tokens: the rest is neither trained on nor scored


def test_entity_metrics_by_hand():
    refs = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O"]]
    # PER right; the LOC span predicted as ORG (wrong type); the ORG span cut to its first word (partial span).
    preds = [["B-PER", "I-PER", "O", "B-ORG", "O", "B-ORG", "O", "O"]]
    m = entity_metrics(refs, preds)
    # 3 true entities, 3 predicted, 1 exact match: precision = recall = F1 = 1/3.
    assert (
        m["precision"] == pytest.approx(1 / 3)
        and m["recall"] == pytest.approx(1 / 3)
        and m["f1"] == pytest.approx(1 / 3)
    )
    assert m["accuracy"] == pytest.approx(6 / 8)  # two of eight words wrong
    assert (m["f1_PER"], m["f1_LOC"], m["f1_ORG"]) == (1.0, 0.0, 0.0)


def test_scorer_reads_only_labelled_positions():
    labels = ["O", "B-LOC", "B-PER", "I-PER"]
    scorer = TokenScorer(labels)
    logits = torch.full((2, 5, 4), -1.0)
    # Predictions at ignored positions (special tokens, later sub-tokens, padding) must not count.
    for b, row in enumerate([[2, 2, 3, 1, 1], [0, 1, 0, 2, 2]]):
        for t, c in enumerate(row):
            logits[b, t, c] = 1.0
    refs = torch.tensor([[IGNORE, 2, 3, IGNORE, 1], [IGNORE, 1, IGNORE, IGNORE, IGNORE]])
    p, r = scorer.reduce(logits, refs)
    out = scorer.score([p.numpy()], [r.numpy()])
    assert out["references"] == [["B-PER", "I-PER", "B-LOC"], ["B-LOC"]]
    assert out["predictions"] == [["B-PER", "I-PER", "B-LOC"], ["B-LOC"]]
    assert out["metrics"]["f1"] == 1.0 and out["metrics"]["accuracy"] == 1.0 and "confusion" not in out


# --------------------------------------------------------------------------- data checks


@pytest.mark.parametrize(
    "tag, expected",
    [
        (
            lambda t: t.replace("B-", "S-"),
            r"IOB2 tags \('O', 'B-TYPE', 'I-TYPE'\); the train split has 2 other tag\(s\): \['S-LOC', 'S-PER'\]",
        ),
        (
            lambda t: {"O": 0, "B-LOC": 1, "B-PER": 2, "I-PER": 3}[t],
            r"4 other tag\(s\): \['0', '1', '2', '3'\]\. Convert them to IOB2",
        ),
        (lambda t: t.replace("B-", "I-"), r"entit\(ies\) starting with I- .*which is IOB1\. Convert to IOB2"),
    ],
)
def test_tags_that_are_not_iob2_are_refused(tmp_path, tag, expected):
    data = write_ner_jsonl(tmp_path / "d.jsonl", n=60, tag=tag)
    with pytest.raises(DataError, match=expected):
        prepare_data(_spec(data), "text", per_token=True)


def test_tag_unknown_to_train_in_test_split_is_refused(tmp_path):
    folder = tmp_path / "splits"
    folder.mkdir()
    write_ner_jsonl(folder / "train.jsonl", n=60)
    (folder / "test.jsonl").write_text(
        json.dumps({"words": ["the", "acme", "film"], "tags": ["O", "B-ORG", "O"]}) + "\n"
    )
    with pytest.raises(DataError, match=r"tags \{'test': \['B-ORG'\]\} appear in a split but not in train"):
        prepare_data(_spec(folder), "text", per_token=True)


def test_words_and_tags_must_pair_up(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"words": "good warm", "tags": ["B-PER", "I-PER"]}) + "\n")
    with pytest.raises(DataError, match="needs a list of words per row"):
        prepare_data(_spec(path), "text", per_token=True)
    path.write_text(json.dumps({"words": ["good", "warm"], "tags": ["B-PER"]}) + "\n")
    with pytest.raises(DataError, match="one tag per word; 1 row"):
        prepare_data(_spec(path), "text", per_token=True)


def test_recipe_checks_for_the_task(tiny_bert, tmp_path):
    base = ner_recipe(tiny_bert, tmp_path / "d.jsonl", tmp_path / "o")
    assert job_for(load_recipe(base)).watched_metric == "f1"  # entity F1, not token accuracy (mostly "O")
    assert job_for(load_recipe({**base, "task": "text-classification"})).watched_metric == "accuracy"
    with pytest.raises(RecipeError, match=r"head.type / head.pooling do not apply to task 'token-classification'"):
        load_recipe({**base, "head": {"pooling": "mean"}})
    with pytest.raises(RecipeError, match=r"'recal' is not computed for token-classification. Did you mean 'recall'\?"):
        load_recipe({**base, "train": {**base["train"], "early_stopping": {"metric": "recal"}}})


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def ner_run(tiny_bert, tmp_path_factory):
    root = tmp_path_factory.mktemp("ner-run")
    data = write_ner_jsonl(root / "ner.jsonl")
    return finetune(ner_recipe(tiny_bert, data, root / "out"))


SENTENCE = "the film good warm was bad"  # PER "good warm", LOC "bad"


def test_ner_run_learns_and_writes_no_confusion_matrix(ner_run):
    test = ner_run.metrics["test"]
    assert test["f1"] >= 0.9 and test["accuracy"] >= 0.95  # an all-"O" tagger scores F1 0
    assert set(test) == {"f1", "precision", "recall", "accuracy", "f1_LOC", "f1_PER"}
    names = {p.name for p in ner_run.output_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "metrics.json",
        "README.md",
        "training_curves.png",
    } <= names
    assert not {"confusion_matrix.json", "confusion_matrix.png"} & names
    assert ner_run.run["data"]["labels"] == TAGS


def test_stock_classes_and_pipeline_load_the_tagger(ner_run):
    out = ner_run.output_dir
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    assert model.config.id2label == dict(enumerate(TAGS))
    tok = AutoTokenizer.from_pretrained(out)
    with torch.no_grad():
        ids = (
            model(**tok(SENTENCE.split(), is_split_into_words=True, return_tensors="pt")).logits.argmax(-1)[0].tolist()
        )
    assert [TAGS[i] for i in ids[1:-1]] == ["O", "O", "B-PER", "I-PER", "O", "B-LOC"]
    entities = pipeline("token-classification", model=str(out), aggregation_strategy="simple")(SENTENCE)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in entities] == [
        ("PER", "good warm", 9, 18),
        ("LOC", "bad", 23, 26),
    ]


def test_card_reports_entity_scores(ner_run):
    text = (ner_run.output_dir / "README.md").read_text()
    f1 = ner_run.metrics["test"]["f1"]
    assert f"It reaches **{f1:.4f} entity f1**" in text
    assert f"| Entity F1 | {f1:.4f} |" in text and "| Token accuracy |" in text and "| F1 PER |" in text
    assert "type: token-classification" in text and "name: Test Entity F1" in text
    assert "Confusion matrix" not in text and "confusion_matrix" not in text
    assert 'pipeline("token-classification", model=' in text and 'aggregation_strategy="simple")' in text
    assert "Single-label classification" not in text and "4 IOB2 tags (`O`, `B-LOC`, `B-PER`, `I-PER`)" in text
    assert "| 2 | B-PER |" in text and "each token's final hidden state" in text


def test_eval_and_predict_and_cli(ner_run, capsys):
    again = evaluate_saved(ner_run.output_dir)
    assert again["metrics"]["f1"] == pytest.approx(ner_run.metrics["test"]["f1"]) and again["confusion"] is None
    assert again["n"] == ner_run.run["data"]["sizes"]["test"]
    [entities] = predict(ner_run.output_dir, [SENTENCE])
    assert [(e["entity_group"], e["word"]) for e in entities] == [("PER", "good warm"), ("LOC", "bad")]
    assert main(["predict", str(ner_run.output_dir), SENTENCE]) == 0  # scores are JSON-ready floats
    line = json.loads(capsys.readouterr().out)
    assert [e["entity_group"] for e in line["prediction"]] == ["PER", "LOC"]


def test_evidence_commands_refuse_token_tasks(ner_run, capsys):
    recipe = ner_run.output_dir / "recipe.yaml"
    for command in ("compare", "datasize", "strategies", "rank"):
        assert main([command, str(recipe)]) == 2
        err = capsys.readouterr().err
        assert f"`hubtransfer {command}` does not support task 'token-classification'" in err
        assert "['image-classification', 'text-classification']" in err


def test_head_strategy_trains_the_tagger_on_the_running_backbone(tiny_bert, tmp_path):
    model = AutoModelForTokenClassification.from_pretrained(tiny_bert, num_labels=4, ignore_mismatched_sizes=True)
    assert split_head(model)[0] is None  # per-token features are not cached
    data = write_ner_jsonl(tmp_path / "d.jsonl")
    before = AutoModelForTokenClassification.from_pretrained(tiny_bert).bert.embeddings.word_embeddings.weight.clone()
    result = finetune(
        ner_recipe(
            tiny_bert,
            data,
            tmp_path / "o",
            strategy="head",
            train={"epochs": 3, "lr": 5e-2, "batch_size": 16, "precision": "no", "warmup_ratio": 0.0},
        )
    )
    features = result.run["training"]["features"]
    assert features["cached"] is False and "one vector per token" in features["reason"]
    assert result.run["strategy"]["trainable_params"] == 32 * 4 + 4  # the new classifier alone
    after = AutoModelForTokenClassification.from_pretrained(result.output_dir).bert.embeddings.word_embeddings.weight
    assert torch.equal(before, after)
    assert (
        result.metrics["test"]["accuracy"] > 0.6 and result.metrics["test"]["f1"] > 0.2
    )  # random 32-d features: learnable, not easy


def test_lora_saves_a_token_classification_adapter(tiny_bert, tmp_path):
    data = write_ner_jsonl(tmp_path / "d.jsonl")
    result = finetune(
        ner_recipe(
            tiny_bert,
            data,
            tmp_path / "o",
            strategy="lora",
            peft={"r": 4},
            train={"epochs": 4, "lr": 5e-2, "batch_size": 16, "precision": "no", "warmup_ratio": 0.0},
        )
    )
    cfg = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert (
        cfg["task_type"] == "TOKEN_CLS" and "classifier" in cfg["modules_to_save"]
    )  # peft adds its TOKEN_CLS defaults
    assert "AutoPeftModelForTokenClassification" in (result.output_dir / "README.md").read_text()
    from peft import AutoPeftModelForTokenClassification
    from transformers import AutoConfig

    # As the card's snippet loads it: the labels from the folder's config, the base's own output layer replaced.
    config = AutoConfig.from_pretrained(result.output_dir)
    model = AutoPeftModelForTokenClassification.from_pretrained(
        str(result.output_dir), id2label=config.id2label, label2id=config.label2id, ignore_mismatched_sizes=True
    ).eval()
    tok = AutoTokenizer.from_pretrained(result.output_dir)
    batch = tok(SENTENCE.split(), is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        ours = result.model.eval()(**batch).logits
        loaded = model(**batch).logits
    assert np.allclose(ours.numpy(), loaded.numpy(), atol=1e-5)
    assert [e["entity_group"] for e in predict(result.output_dir, [SENTENCE])[0]] == ["PER", "LOC"]


def test_pushed_tagger_gives_the_same_entities_from_the_hub(ner_run, hub, clients, tmp_path, monkeypatch):
    from conftest import TOKEN
    from huggingface_hub import HfApi

    from hubtransfer.push.push import push_folder
    from hubtransfer.push.roundtrip import compare_with_hub

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    push_folder(ner_run.output_dir, "local-user/tiny-ner", private=False)
    card = HfApi(endpoint=hub.endpoint, token=TOKEN).model_info("local-user/tiny-ner").card_data
    assert card.pipeline_tag == "token-classification"
    check = compare_with_hub(
        "local-user/tiny-ner", ner_run.output_dir, [SENTENCE, "bad was the film"], cache_dir=tmp_path / "fresh"
    )
    assert check["equal"], check
    assert [e["entity_group"] for e in check["hub"][0]] == ["PER", "LOC"] and check["hub"][1][0]["word"] == "bad"
