"""Developing a source model (masked-LM on unlabeled text) and measuring whether it helped (hubtransfer source)."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import FILLER, WORDS_NEG, WORDS_POS, text_recipe, write_sentiment_csv
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

from hubtransfer.cli import main as cli
from hubtransfer.evidence.source_effect import source_effect
from hubtransfer.job import load_recipe
from hubtransfer.run import finetune
from hubtransfer.tasks.masked_lm import MIN_CHUNK, chunk_texts, fixed_masks


def _unlabeled_csv(path, n=300):
    """Only a text column: masked-LM needs no labels."""
    import random

    rng = random.Random(1)
    words = WORDS_POS + WORDS_NEG + FILLER
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["body"])
        for i in range(n):
            w.writerow([" ".join(rng.choices(words, k=rng.randint(6, 30))) + f" {i}"])
    return path


def _mlm_recipe(tiny_bert, data, out, **train):
    return {
        "task": "fill-mask",
        "model": {"id": str(tiny_bert)},
        "data": {"source": str(data), "text_column": "body", "max_length": 12},
        "strategy": "full",
        "train": {"epochs": 3, "lr": 5e-3, "batch_size": 16, "precision": "no", "eval_at_start": True, **train},
        "output_dir": str(out),
    }


def test_long_texts_become_consecutive_chunks(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    text = " ".join(["good movie"] * 20 + ["the"])  # 41 tokens
    chunks = chunk_texts([text, "bad"], tok, max_length=12)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert all(c[0] == tok.cls_token_id and c[-1] == tok.sep_token_id and len(c) <= 12 for c in chunks)
    body = [t for c in chunks for t in c[1:-1]]
    assert body == ids[: len(body)] and len(ids) - len(body) < MIN_CHUNK  # every token but a short tail, in order
    assert len(chunks) == 4  # 41 tokens in pieces of 10 (the 1-token tail and the 1-token text are dropped)


def test_evaluation_masks_are_fixed_and_skip_special_tokens(tiny_bert):
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    chunks = chunk_texts([" ".join(["good movie the plot"] * 50)], tok, max_length=64)
    a, b = fixed_masks(chunks, tok), fixed_masks(chunks, tok)
    assert a == b
    inputs, labels = a
    targets = [(x, y) for row_x, row_y in zip(chunks, labels) for x, y in zip(row_x, row_y) if y != -100]
    share = len(targets) / sum(len(c) - 2 for c in chunks)
    assert 0.10 < share < 0.20 and all(x == y for x, y in targets)  # labels are the original tokens
    assert all(row[0] == -100 and row[-1] == -100 for row in labels)  # [CLS] / [SEP] never scored
    masked = sum(x == tok.mask_token_id for row in inputs for x in row)
    assert 0.7 < masked / len(targets) < 0.9  # BERT's rule: ~80% of the chosen tokens become [MASK]


def test_masked_lm_run_learns_and_saves_a_stock_source_model(tiny_bert, tmp_path):
    result = finetune(_mlm_recipe(tiny_bert, _unlabeled_csv(tmp_path / "u.csv"), tmp_path / "mlm"))
    start, best = result.history[0]["validation"], result.run["metrics"]["validation_best"]
    assert best["perplexity"] < 0.5 * start["perplexity"] and best["accuracy"] > start["accuracy"]
    assert result.run["data"]["labels"] == [] and result.run["metrics"]["test"]["masked_tokens"] > 0
    out = result.output_dir
    model = AutoModelForMaskedLM.from_pretrained(out)  # the stock class, nothing custom
    fill = pipeline("fill-mask", model=model, tokenizer=str(out))
    assert len(fill(f"the movie was {fill.tokenizer.mask_token}")) == 5
    from hubtransfer.inference import predict

    top = predict(out, [f"the movie was {fill.tokenizer.mask_token}"], top_k=3)[
        0
    ]  # hubtransfer predict on a source model
    assert len(top) == 3 and all(t["sequence"].startswith("the movie was") for t in top)
    card = (out / "README.md").read_text()
    assert "## Labels" not in card and "masked-token accuracy" in card and "pipeline_tag: fill-mask" in card
    assert "A source model" in card and not (out / "confusion_matrix.json").exists()


def test_source_model_transfers_and_the_report_compares_both_starts(tiny_bert, tmp_path):
    source = finetune(_mlm_recipe(tiny_bert, _unlabeled_csv(tmp_path / "u.csv"), tmp_path / "mlm")).output_dir
    target = load_recipe(
        text_recipe(source, write_sentiment_csv(tmp_path / "r.csv"), tmp_path / "target", train__epochs=1)
    )
    report = source_effect(
        target,
        str(tiny_bert),
        sizes=[60, 10_000],
        seeds=2,
        seeds_up_to=60,
        min_steps=8,
        report_dir=tmp_path / "ev",
        source_run=source,
    )
    rows = {r["n"]: r for r in report["sizes"]}
    assert sorted(rows) == [60, 192]  # 10,000 means the whole training split (192)
    assert len(rows[60]["source"]) == 2 and len(rows[192]["source"]) == 1
    (a,), (b,) = (
        rows[192]["original"],
        rows[192]["source"],
    )  # one seed: the noise is the test set's binomial sampling (24 examples)
    assert rows[192]["noise"] == "test-set sampling" and rows[192]["stderr"] == pytest.approx(
        ((a * (1 - a) + b * (1 - b)) / 24) ** 0.5
    )
    assert rows[60]["difference"] == pytest.approx(
        sum(s - o for o, s in zip(rows[60]["original"], rows[60]["source"])) / 2
    )
    assert (
        report["source_training"]["task"] == "fill-mask" and "not counted in the target budget" in report["summary"][-1]
    )
    assert (tmp_path / "ev" / "source.png").is_file() and (tmp_path / "ev" / "source.md").is_file()
    # The source-start runs really loaded the source encoder: its weights, not the original's.
    run = tmp_path / "ev" / "runs" / "source" / "source-n192-seed0"
    assert json.loads((run / "hubtransfer_run.json").read_text())["base_model"] == str(source)
    # Step 0 of the classifier from the source model equals the source's encoder weights.
    enc = load_file(source / "model.safetensors")["bert.encoder.layer.0.attention.self.query.weight"]
    again = finetune(
        text_recipe(
            source, write_sentiment_csv(tmp_path / "r.csv"), tmp_path / "t0", train__max_steps=1, train__lr=1e-12
        )
    )
    assert torch.allclose(again.model.bert.encoder.layer[0].attention.self.query.weight, enc, atol=1e-6)


def test_source_cli_prints_the_comparison_and_refuses_bad_arguments(tiny_bert, tmp_path, capsys):
    data = write_sentiment_csv(tmp_path / "r.csv")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps(text_recipe(tiny_bert, data, tmp_path / "t", train__epochs=1)))
    with pytest.raises(SystemExit) as bad:  # argparse refuses before any work
        cli(["source", str(recipe), "--original", str(tiny_bert), "--seeds", "0"])
    assert bad.value.code == 2 and "--seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["source", str(recipe)])  # --original is required
    code = cli(
        [
            "source",
            str(recipe),
            "--original",
            str(tiny_bert),
            "--sizes",
            "50",
            "--min-steps",
            "4",
            "--out",
            str(tmp_path / "ev"),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "source − original (points)" in printed and "source.md" in printed
