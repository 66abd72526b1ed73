"""Updating a pushed model as data grows: continue from v1 at its tag, keep its labels and split, each method, the
head grown for new labels, both versions on both tests, and the forgetting gate before the push."""

from __future__ import annotations

import csv
import json
import math
import random

import pytest
import torch
from conftest import FILLER, TOKEN, WORDS_NEG, WORDS_POS, _tiny_bert, text_recipe, write_sentiment_csv

from hubtransfer.errors import PushError
from hubtransfer.run import finetune
from hubtransfer.tasks import get_task
from hubtransfer.tasks.model import load_trained, output_layer
from hubtransfer.update.versions import Versions, gate
from hubtransfer.update.versions import section as versions_section

REPO = "local-user/tiny-versions"


def _write(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["sentence", "sentiment"])
        w.writeheader()
        w.writerows(rows)
    return path


def _mixed_csv(path, n=120, seed=3):
    """A third class for class-incremental updates: a positive and a negative word together."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS_POS), rng.choice(WORDS_NEG), *rng.sample(FILLER, 3), str(500 + i)]
        rng.shuffle(words)
        rows.append({"sentence": " ".join(words), "sentiment": "mixed"})
    return _write(path, rows)


def _flipped(source, path):
    """The same texts with the opposite labels: fine-tuning on them alone must forget v1."""
    with open(source) as f:
        rows = list(csv.DictReader(f))
    return _write(path, [{**r, "sentiment": "neg" if r["sentiment"] == "pos" else "pos"} for r in rows])


@pytest.fixture(scope="module")
def v1(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    bert, data = _tiny_bert(root / "bert"), write_sentiment_csv(root / "old.csv")
    finetune(text_recipe(bert, data, root / "v1", train__epochs=3, train__lr=1e-2))
    return root


def _update(root, out, method, data, **extra):
    recipe = text_recipe(root / "bert", data, out, **{"train__epochs": 2, "train__lr": 1e-2, **extra})
    recipe["update"] = {"from_model": str(root / "v1"), "method": method, **recipe.get("update", {})}
    return finetune(recipe)


@pytest.mark.parametrize("method", ["naive", "replay", "distill", "interpolate", "joint"])
def test_each_method_trains_v2_and_reports_both_versions_on_both_tests(v1, method):
    new = write_sentiment_csv(v1 / f"new-{method}.csv", n=160, seed=7)
    result = _update(v1, v1 / f"v2-{method}", method, new)
    u = result.run["update"]
    previous = json.loads((v1 / "v1" / "hubtransfer_run.json").read_text())
    assert u["method"] == method and u["parent"] == f"{v1 / 'v1'}@main"
    # v1 on its own old test, re-evaluated: what it recorded
    assert u["old_test"]["previous"] == previous["metrics"]["test"]["accuracy"]
    assert u["new_test"]["new"] == result.metrics["test"]["accuracy"]
    assert u["forgetting_points"] == round(100 * (u["old_test"]["previous"] - u["old_test"]["new"]), 2)
    info = result.run["data"]["update"]
    old_train = info["old_sizes"]["train"]
    replayed = {"joint": old_train, "replay": old_train}.get(method, 0)  # replay_fraction 1.0 by default
    assert info["old_examples_replayed"] == replayed
    assert (
        result.run["data"]["sizes"]["validation"] == info["old_sizes"]["validation"] + info["new_sizes"]["validation"]
    )
    assert (u["alpha"] is not None) == (method == "interpolate")
    card = (v1 / f"v2-{method}" / "README.md").read_text()
    assert "## Versions" in card and f"method `{method}`" in card


def test_new_labels_grow_the_head_keeping_the_previous_rows(v1):
    new = _mixed_csv(v1 / "mixed.csv")
    result = _update(v1, v1 / "v2-mixed", "replay", new)
    assert result.run["data"]["labels"] == ["neg", "pos", "mixed"]  # the previous order first, then the new label
    assert result.run["data"]["update"]["new_labels"] == ["mixed"]
    task = get_task("text-classification")
    before = output_layer(load_trained(v1 / "v1", task), 2)[2]
    after = output_layer(load_trained(v1 / "v2-mixed", task), 3)[2]
    assert after.out_features == 3 and before.out_features == 2
    assert load_trained(v1 / "v2-mixed", task).config.id2label == {0: "neg", 1: "pos", 2: "mixed"}
    # trained from v1's rows (not a fresh head): still closer to them than to a random head's scale
    assert torch.linalg.norm(after.weight[:2] - before.weight) < torch.linalg.norm(before.weight)


def test_the_gate_refuses_to_push_a_version_that_forgets_and_force_pushes_it(v1, hub, clients, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    flipped = _flipped(v1 / "old.csv", v1 / "flipped.csv")
    hub_spec = {"push": True, "repo_id": REPO}
    with pytest.raises(PushError, match=r"push refused: v2 \(naive\) loses .* points of old-test accuracy"):
        _update(v1, v1 / "v2-flipped", "naive", flipped, train__epochs=3, hub=hub_spec)
    assert (v1 / "v2-flipped" / "hubtransfer_run.json").is_file()  # the run folder is complete, only not pushed
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    assert not api.repo_exists(REPO)
    result = _update(v1, v1 / "v2-forced", "naive", flipped, train__epochs=3, hub=hub_spec, update={"force": True})
    assert result.run["update"]["forgetting_points"] > 1 and result.run["pushed"]["tag"] == "v1"


def test_gate_and_section_read_the_numbers():
    v = Versions(
        parent="me/rt@v1",
        parent_sha="a" * 40,
        method="naive",
        old_test={"previous": 0.90, "new": 0.85},
        new_test={"previous": 0.70, "new": 0.88},
        data={"new_train": 500, "old_examples_replayed": 0, "new_labels": []},
    )
    assert v.forgetting == 5.0 and v.backward_transfer == -5.0 and v.average == pytest.approx(0.865)
    line = gate(v, 1.0, force=False)
    assert line.startswith("push refused: v2 (naive) loses 5.00 points of old-test accuracy against me/rt@v1")
    assert "update.method=replay | distill | interpolate | joint" in line and "update.force=true" in line
    assert gate(v, 5.0, force=False) is None and gate(v, 1.0, force=True) is None
    text = versions_section(v)
    assert "| previous (me/rt@v1) | 0.9000 | 0.7000 | 0.8000 |" in text and "commit `aaaaaaaaaaaa`" in text


def test_hubtransfer_update_from_the_command_line_with_a_label_map(v1, tmp_path, capsys):
    """New data that names the same classes otherwise: update.label_map puts them on the previous labels."""
    import yaml

    from hubtransfer.cli import main

    renamed = tmp_path / "renamed.csv"
    with open(write_sentiment_csv(tmp_path / "src.csv", n=160, seed=11)) as f:
        rows = [{**r, "sentiment": {"pos": "yes", "neg": "no"}[r["sentiment"]]} for r in csv.DictReader(f)]
    _write(renamed, rows)
    recipe = tmp_path / "v2.yaml"
    recipe.write_text(yaml.safe_dump(text_recipe(v1 / "bert", renamed, tmp_path / "v2", train__epochs=1)))
    argv = ["update", str(recipe), "--from", str(v1 / "v1"), "--method", "naive"]
    assert main([*argv, "update.label_map={yes: pos, no: neg}"]) == 2  # YAML's booleans: the error says to quote
    assert "quote the label names" in capsys.readouterr().err
    assert main([*argv, "update.label_map={'yes': pos, 'no': neg}"]) == 0
    run = json.loads((tmp_path / "v2" / "hubtransfer_run.json").read_text())
    assert run["data"]["labels"] == ["neg", "pos"] and run["update"]["method"] == "naive"
    assert main([*argv, "update.label_map={maybe: pos}", "overwrite_output_dir=true"]) == 2
    assert "update.label_map names labels the new data does not have: ['maybe']" in capsys.readouterr().err


def test_update_epochs_scale_min_steps_by_the_new_share_with_one_epoch_at_least():
    from types import SimpleNamespace

    from hubtransfer.train.budget import update_epochs

    t = SimpleNamespace(min_steps=450, max_auto_epochs=20)
    assert update_epochs(t, 184, 3986 / 7774) == round(231 / 184, 2)  # 450 x 0.513 = 231 steps
    assert update_epochs(t, 184, 0.1) == 1.0  # 45 steps would not see every new example once
    assert update_epochs(t, 10, 1.0) == 20.0  # never above max_auto_epochs


def test_a_continuing_update_takes_the_previous_rate_and_a_budget_for_the_new_share(v1):
    new = write_sentiment_csv(v1 / "new-auto.csv", n=160, seed=11)
    auto = {"train__epochs": "auto", "train__lr": "auto", "train__min_steps": 40}
    result = _update(v1, v1 / "v2-auto", "replay", new, **auto)
    chosen = {c["key"]: c for c in result.run["choices"]}
    parent = json.loads((v1 / "v1" / "hubtransfer_run.json").read_text())
    assert chosen["train.lr"]["value"] == 1e-2 and chosen["train.lr"]["requested"] == "auto"
    assert "no search again" in chosen["train.lr"]["why"]
    assert [c["key"] for c in result.run["choices"]].count("train.lr") == 1  # no search chose another
    info, sizes = result.run["data"]["update"], result.run["data"]["sizes"]
    new_train = info["new_sizes"]["train"] - info["new_train_dropped_as_old_held_out"]
    share = new_train / (new_train + info["old_sizes"]["train"])
    per_epoch = math.ceil(sizes["train"] / 16)
    steps = max(per_epoch, math.ceil(40 * share))
    assert chosen["train.epochs"]["value"] == round(steps / per_epoch, 2)
    assert chosen["train.epochs"]["detail"] == {"steps_per_epoch": per_epoch, "steps": steps}
    assert parent["metrics"]["test"]  # v1's record is what the rate was read from
    # 'joint' starts from the base: the recipe's own budget rule, no rate taken from v1
    joint = _update(v1, v1 / "v2-auto-joint", "joint", new, train__epochs="auto", train__min_steps=40)
    budget = {c["key"]: c for c in joint.run["choices"]}["train.epochs"]
    assert "an update" not in budget["why"] and budget["value"] >= 2
