"""The model card of a run folder: Hub metadata, model-index, body sections, offline validation.

Each test writes a fake finished run folder by hand (the files ``hubtransfer.finetune`` leaves),
so no model is trained or loaded and nothing touches a network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results
from PIL import Image

from hubtransfer.card.card import build_card, check_card, write_card
from hubtransfer.sources.checkpoint import license_of

HUB_BASE = "sentence-transformers/all-MiniLM-L6-v2"
HUB_DATA = "hubtransfer-local/rotten-tomatoes"
TEST = {"accuracy": 0.8312, "f1": 0.8297, "precision": 0.8335, "recall": 0.8301}
VALIDATION = {"accuracy": 0.8251, "f1": 0.8249, "precision": 0.8260, "recall": 0.8248}
HISTORY = [
    {
        "step": 319,
        "epoch": 1.0,
        "train_loss": 0.5123,
        "validation": {"accuracy": 0.8102, "f1": 0.8099, "precision": 0.8111, "recall": 0.8100},
    },
    {"step": 638, "epoch": 2.0, "train_loss": 0.3311, "validation": VALIDATION},
]
FAKE_TOKEN = "hf_" + "Ab3" * 12  # 36 letters/digits after hf_: token-shaped, not a real token


def _recipe(base: str, source: str, *, pooling: str = "native", commit_message: str | None = None) -> dict:
    return {
        "task": "text-classification",
        "model": {"id": base, "revision": "main", "trust_remote_code": False, "allow_pickle": False},
        "data": {
            "source": source,
            "config": None,
            "revision": None,
            "text_column": "text",
            "label_column": "label",
            "validation_fraction": 0.1,
            "test_fraction": 0.1,
            "split_seed": 0,
            "max_train_samples": None,
            "max_eval_samples": None,
            "max_length": 64,
            "image_size": None,
        },
        "strategy": "head",
        "head": {"type": "mlp", "hidden_sizes": [256], "dropout": 0.1, "pooling": pooling},
        "train": {
            "epochs": 2.0,
            "lr": 5e-05,
            "head_lr": 0.001,
            "weight_decay": 0.01,
            "batch_size": 32,
            "grad_accum": 1,
            "warmup_ratio": 0.06,
            "scheduler": "linear",
            "precision": "auto",
            "eval_every": "epoch",
            "early_stopping": {"metric": "accuracy", "patience": None, "min_delta": 0.0},
            "seed": 0,
            "log_with": [],
        },
        "output_dir": "runs/minilm-rt",
        "overwrite_output_dir": False,
        "hub": {"repo_id": None, "push": False, "private": True, "revision": "main", "commit_message": commit_message},
    }


def _run_record(base: str, source: str) -> dict:
    return {
        "task": "text-classification",
        "base_model": base,
        "base_model_revision": "main",
        "data": {
            "method": "exact duplicates dropped, then splits cut by sha256(split_seed:content); see hubtransfer.data",
            "split_seed": 0,
            "duplicates_dropped": {"train": 56},
            "splits_from_source": ["train"],
            "splits_carved_from_train": ["test", "validation"],
            "fractions": {"validation": 0.1, "test": 0.1},
            "source": source,
            "sizes": {"train": 10202, "validation": 1275, "test": 1275},
            "labels": ["rotten", "fresh"],
        },
        "strategy": {
            "strategy": "head",
            "trainable_params": 99074,
            "total_params": 22812290,
            "trainable_share": 99074 / 22812290,
        },
        "metrics": {"test": TEST, "validation_best": VALIDATION, "best_step": 638},
        "training": {
            "steps": 638,
            "stopped_early": False,
            "train_seconds": 300.1,
            "wall_seconds": 320.2,
            "train_samples_per_second": 68.0,
            "precision": "no",
            "precision_reason": "CPU lacks avx512_bf16/AMX: bf16 would be emulated and slower",
        },
        "environment": {
            "python": "3.11.7",
            "torch": "2.13.0+cpu",
            "transformers": "5.23.0",
            "accelerate": "1.15.0",
            "datasets": "5.2.0",
            "machine": "x86_64",
            "threads": 2,
            "cuda": None,
        },
    }


def make_run(
    folder: Path,
    *,
    base: str = HUB_BASE,
    source: str = HUB_DATA,
    custom_head: bool = False,
    pngs: bool = True,
    commit_message: str | None = None,
) -> Path:
    """A finished run folder as hubtransfer.finetune leaves it (weights are a stub: the card never reads them)."""
    folder.mkdir(parents=True)
    config = {"architectures": ["BertForSequenceClassification"], "id2label": {"0": "rotten", "1": "fresh"}}
    if custom_head:
        config.update(
            auto_map={"AutoModelForSequenceClassification": "modeling_hubtransfer.TextClassifier"},
            hubtransfer_head={"pooling": "mean", "hidden_sizes": [256], "dropout": 0.1},
        )
        (folder / "modeling_hubtransfer.py").write_text("# stub\n")
    recipe = _recipe(base, source, pooling="mean" if custom_head else "native", commit_message=commit_message)
    files = {
        "config.json": config,
        "hubtransfer_run.json": _run_record(base, source),
        "metrics.json": {"test": TEST, "validation_best": VALIDATION, "best_step": 638},
        "split.json": _run_record(base, source)["data"],
        "confusion_matrix.json": {"labels": ["rotten", "fresh"], "matrix": [[530, 107], [108, 530]]},
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2))
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in HISTORY))
    (folder / "model.safetensors").write_bytes(b"stub")
    if pngs:
        for name in ("training_curves.png", "confusion_matrix.png"):
            Image.new("RGB", (8, 8), "white").save(folder / name)
    return folder


@pytest.fixture
def run(tmp_path) -> Path:
    return make_run(tmp_path / "run")


# --------------------------------------------------------------------------- metadata


def test_metadata_for_hub_model_and_dataset(run):
    data = build_card(run, repo_id="me/minilm-rt", license="apache-2.0").data
    assert data.base_model == HUB_BASE
    assert data.base_model_relation == "finetune"
    assert data.datasets == [HUB_DATA]
    assert (data.license, data.library_name, data.pipeline_tag) == ("apache-2.0", "transformers", "text-classification")
    assert data.tags == ["hubtransfer", "text-classification", "transfer-learning", "strategy-head", "head-mlp"]


def test_license_is_omitted_when_unknown(run):
    assert "license" not in build_card(run).data.to_dict()


def test_model_index_has_the_four_test_metrics(run):
    data = build_card(run, repo_id="me/minilm-rt").data
    results = {r.metric_type: r for r in data.eval_results}
    assert set(results) == {"accuracy", "f1", "precision", "recall"}
    for key, value in TEST.items():
        result = results[key]
        assert result.metric_value == value
        assert (result.task_type, result.dataset_type, result.dataset_split) == (
            "text-classification",
            HUB_DATA,
            "test",
        )
    assert results["f1"].metric_args == {"average": "macro"}
    assert data.model_name == "me/minilm-rt"


def test_model_name_without_repo_id_is_the_output_folder_name(tmp_path):
    # finetune writes the card into ".minilm-rt.incomplete" and renames it: the recipe's output_dir names the model.
    run = make_run(tmp_path / ".minilm-rt.incomplete")
    card = build_card(run)
    assert card.data.model_name == "minilm-rt"
    assert 'model="runs/minilm-rt"' in card.text


# --------------------------------------------------------------------------- body


def test_body_sections(run):
    text = build_card(run, repo_id="me/minilm-rt").text
    for heading in (
        "Labels",
        "Data and split",
        "Training",
        "Results",
        "How to use",
        "Intended use and limitations",
        "Framework versions",
        "Reproduce",
    ):
        assert f"\n## {heading}\n" in text
    assert "| 0 | rotten |" in text and "| 1 | fresh |" in text
    assert "| train | 10,202 |" in text and "| test | 1,275 |" in text
    assert "56 (train)" in text and "split seed 0" in text
    assert "**99,074** of 22,812,290 parameters trained (**0.43%**)" in text
    assert "| `train.head_lr` | 0.001 |" in text and "| `head.hidden_sizes` | 256 |" in text
    assert "CPU lacks avx512_bf16/AMX" in text
    assert "| Accuracy | 0.8312 | 0.8251 |" in text


def test_per_evaluation_table_and_images(run):
    text = build_card(run).text
    assert "| 319 | 1.00 | 0.5123 | 0.8102 | 0.8099 | 0.8111 | 0.8100 |" in text
    assert "| 638 (best) | 2.00 | 0.3311 | 0.8251 | 0.8249 | 0.8260 | 0.8248 |" in text
    assert "](training_curves.png)" in text and "](confusion_matrix.png)" in text


def test_the_card_says_when_the_kept_weights_are_not_the_highest_scoring(tmp_path, run):
    """train.early_stopping.keep: last_within_se kept step 638, a hair below step 319 on validation: the card names
    both and why, and marks each in the per-evaluation table; where they are one evaluation, the sentence is the
    usual one."""
    assert "those of step 638, the evaluation with the best validation accuracy." in build_card(run).text
    history = [dict(HISTORY[0], validation=dict(HISTORY[0]["validation"], accuracy=0.8259)), HISTORY[1]]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    # A recipe without the rule (keep: best, as records before it) never gets the sentence.
    assert "within one standard error" not in build_card(run).text
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["train"]["early_stopping"] = {"metric": "accuracy", "patience": None, "keep": "last_within_se"}
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    text = build_card(run).text
    assert (
        "those of step 638, the last evaluation within one standard error of the best validation accuracy (step 319: "
        "0.8259; step 638: 0.8251; `train.early_stopping.keep: last_within_se`" in text
    )
    assert "| 319 (best) | 1.00 | 0.5123 | 0.8259 |" in text and "| 638 (kept) | 2.00 | 0.3311 | 0.8251 |" in text


def test_images_are_linked_only_when_present(tmp_path):
    text = build_card(make_run(tmp_path / "run", pngs=False)).text
    assert ".png)" not in text


def test_pipeline_snippet_for_a_stock_head(run):
    text = build_card(run, repo_id="me/minilm-rt").text
    assert 'pipeline("text-classification", model="me/minilm-rt")' in text
    assert "trust_remote_code=True" not in text


def test_pipeline_snippet_for_a_custom_head(tmp_path):
    card = build_card(make_run(tmp_path / "run", custom_head=True), repo_id="me/minilm-rt")
    assert 'pipeline("text-classification", model="me/minilm-rt", trust_remote_code=True)' in card.text
    assert "`modeling_hubtransfer.py`" in card.text and "auto_map" in card.text
    assert "custom_code" in card.data.tags


def test_intended_use_is_specific(run):
    text = build_card(run).text
    assert "exactly one of 2 labels (`rotten`, `fresh`)" in text
    assert f"Trained on 10,202 examples of the Hub dataset `{HUB_DATA}`" in text
    assert "English" in text and "held-out test split" in text


def test_reproduce_block_and_extra_sections(run):
    text = build_card(run, extra_sections={"Transfer evidence": "Head-only beats scratch."}).text
    assert "```yaml\ntask: text-classification\n" in text and "output_dir: runs/minilm-rt" in text
    assert "hubtransfer train recipe.yaml" in text
    assert text.rstrip().endswith("## Transfer evidence\n\nHead-only beats scratch.")


# --------------------------------------------------------------------------- local sources


def test_local_base_model_is_not_a_base_model(tmp_path):
    card = build_card(make_run(tmp_path / "run", base="./assets/all-MiniLM-L6-v2"))
    assert "base_model" not in card.data.to_dict() and "base_model_relation" not in card.data.to_dict()
    assert "local folder `all-MiniLM-L6-v2`" in card.text


def test_local_base_model_with_its_hub_id(tmp_path):
    card = build_card(make_run(tmp_path / "run", base="/tmp/x/all-MiniLM-L6-v2"), base_model_id=HUB_BASE)
    assert card.data.base_model == HUB_BASE and card.data.base_model_relation == "finetune"
    with pytest.raises(ValueError, match="not a Hub model id"):
        build_card(tmp_path / "run", base_model_id="./assets/all-MiniLM-L6-v2")


def test_packaged_source_gives_a_valid_model_index_without_datasets(tmp_path):
    card = build_card(make_run(tmp_path / "run", source="packaged:rotten-tomatoes"), repo_id="me/minilm-rt")
    meta = card.data.to_dict()
    assert "datasets" not in meta
    dataset = meta["model-index"][0]["results"][0]["dataset"]
    assert dataset == {
        "name": "rotten-tomatoes (packaged with hubtransfer)",
        "type": "packaged:rotten-tomatoes",
        "split": "test",
    }
    check_card(card)
    assert ModelCard(str(card)).data.eval_results == card.data.eval_results


def test_local_data_file_keeps_its_path_out_of_the_metadata(tmp_path):
    card = build_card(make_run(tmp_path / "run", source="/home/someone/data/reviews.csv"))
    meta = card.data.to_dict()
    assert "datasets" not in meta
    assert meta["model-index"][0]["results"][0]["dataset"]["type"] == "local:reviews.csv"
    assert "/home/someone" not in yaml.safe_dump(meta)


# --------------------------------------------------------------------------- validation


def test_card_round_trips_offline(run):
    card = build_card(run, repo_id="me/minilm-rt", license="mit")
    meta = card.data.to_dict()
    assert ModelCardData(**meta).to_dict() == meta
    reparsed = ModelCard(str(card))
    assert reparsed.data.to_dict() == meta
    assert reparsed.data.eval_results == card.data.eval_results
    name, results = model_index_to_eval_results(meta["model-index"])
    assert eval_results_to_model_index(name, results) == meta["model-index"]


def test_local_hub_validate_yaml_accepts_the_card(tmp_path):
    testclient = pytest.importorskip("starlette.testclient")
    from hubtransfer.localhub.server import create_app

    cards = [
        build_card(make_run(tmp_path / "hub-data"), repo_id="me/a", license="apache-2.0"),
        build_card(make_run(tmp_path / "packaged", source="packaged:rotten-tomatoes", base="./x", custom_head=True)),
    ]
    client = testclient.TestClient(create_app(tmp_path / "hub", tokens={}))
    for card in cards:
        response = client.post("/api/validate-yaml", json={"content": str(card), "repoType": "model"})
        assert response.status_code == 200, response.text
    # The endpoint does reject a broken model-index, so the 200s above mean something.
    broken = "---\nmodel-index:\n- name: x\n---\n"
    assert client.post("/api/validate-yaml", json={"content": broken, "repoType": "model"}).status_code == 400


def test_token_like_text_is_refused(tmp_path):
    run = make_run(tmp_path / "run", commit_message=f"upload with {FAKE_TOKEN}")
    with pytest.raises(ValueError, match="looks like a Hugging Face token") as info:
        write_card(run, repo_id="me/minilm-rt")
    assert FAKE_TOKEN not in str(info.value)
    assert not (run / "README.md").exists()


def test_write_card_saves_readme(run):
    path = write_card(run, repo_id="me/minilm-rt")
    assert path == run / "README.md"
    assert ModelCard.load(path).data.base_model == HUB_BASE


def test_a_folder_without_a_finished_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished hubtransfer run"):
        build_card(tmp_path)


# --------------------------------------------------------------------------- licences


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"README.md": "---\nlicense: MIT\n---\n# x\n", "LICENSE": "Apache License\nVersion 2.0"}, "mit"),
        ({"LICENSE": "\n   Apache License\n   Version 2.0, January 2004\n"}, "apache-2.0"),
        ({"LICENSE.txt": "MIT License\n\nPermission is hereby granted, free of charge, to any person"}, "mit"),
        ({"README.md": "# no front matter\nLicence: Apache-2.0\n"}, None),
        ({}, None),
    ],
)
def test_license_of(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert license_of(tmp_path) == expected
