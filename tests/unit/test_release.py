"""Releases: every push tagged (v1, v2, ...), the card's metadata naming the recipe hash, the data fingerprint and
the base revision, and the card's test metrics recomputed from the weights downloaded by tag."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import TOKEN, text_recipe, write_sentiment_csv
from huggingface_hub import HfApi, ModelCard, hf_hub_download

from hubtransfer.errors import PushError
from hubtransfer.job import load_recipe
from hubtransfer.push.push import push_folder
from hubtransfer.push.verify import verify_release
from hubtransfer.save.release import recipe_hash

REPO = "local-user/tiny-releases"


@pytest.fixture(scope="module")
def releases(hub, clients, tmp_path_factory):
    """v1, then v2 (another learning rate) of the same repo, pushed by finetune."""
    import os

    from conftest import _tiny_bert

    from hubtransfer.run import finetune

    root = tmp_path_factory.mktemp("releases")
    bert, data = _tiny_bert(root / "bert"), write_sentiment_csv(root / "r.csv")
    os.environ["HF_TOKEN"] = TOKEN
    try:
        runs = [
            finetune(
                text_recipe(bert, data, root / name, train__epochs=1, train__lr=lr, hub={"push": True, "repo_id": REPO})
            )
            for name, lr in (("v1", 5e-3), ("v2", 2e-2))
        ]
    finally:
        del os.environ["HF_TOKEN"]
    return root, runs


def test_each_push_is_tagged_and_verified_from_its_downloaded_weights(releases):
    _, (v1, v2) = releases
    assert (v1.run["pushed"]["tag"], v2.run["pushed"]["tag"]) == ("v1", "v2")
    for run in (v1, v2):
        verified = run.run["pushed"]["verified"]
        assert verified["revision"] == run.run["pushed"]["tag"] and verified["test"] == run.metrics["test"]


def test_the_stock_client_lists_the_tags_and_downloads_by_tag(releases, hub, clients):
    _, (v1, v2) = releases
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    tags = {t.name: t.target_commit for t in api.list_repo_refs(REPO).tags}
    assert tags == {"v1": v1.run["pushed"]["commit"], "v2": v2.run["pushed"]["commit"]}
    for tag, run in (("v1", v1), ("v2", v2)):
        path = hf_hub_download(REPO, "hubtransfer_run.json", revision=tag, token=TOKEN)
        with open(path, encoding="utf-8") as f:
            assert json.load(f)["metrics"]["test"] == run.metrics["test"]


def test_v1_pulled_back_by_its_tag_after_v2_reproduces_its_metrics_exactly(releases, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # a private repo
    _, (v1, _) = releases
    check = verify_release(REPO, "v1", cache_dir=tmp_path / "fresh")
    assert check["equal"] and check["recomputed"] == v1.metrics["test"]
    assert sorted(check["card"]) == sorted(v1.metrics["test"][k] for k in ("accuracy", "f1", "precision", "recall"))


def test_the_card_names_the_recipe_hash_data_fingerprint_and_base_revision(releases):
    root, (v1, _) = releases
    meta = [ModelCard.load(root / name / "README.md").data.to_dict()["hubtransfer"] for name in ("v1", "v2")]
    assert meta[0]["data_fingerprint"] == meta[1]["data_fingerprint"]  # the same data and split
    assert meta[0]["recipe_hash"] != meta[1]["recipe_hash"]  # another learning rate
    assert meta[0] == {k: v for k, v in v1.run["release"].items() if v is not None}
    assert v1.run["release"]["base_model_revision_sha"] is None  # a local folder has no Hub revision


def test_pushing_the_same_folder_again_keeps_its_tag_and_a_taken_tag_is_refused(releases, hub, clients):
    root, (_, v2) = releases
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    again = push_folder(root / "v2", REPO, api=api, tag="auto")
    assert not again.new_commit and again.tag == "v2"  # no new commit: it keeps the tag it has
    commits = len(api.list_repo_commits(REPO))
    with pytest.raises(PushError, match=r"tag 'v1' of local-user/tiny-releases already names commit .*nothing pushed"):
        push_folder(root / "v1", REPO, api=api, tag="v1")
    assert len(api.list_repo_commits(REPO)) == commits
    assert {t.name: t.target_commit for t in api.list_repo_refs(REPO).tags}["v2"] == v2.run["pushed"]["commit"]


def test_a_card_that_does_not_match_its_weights_fails_verification(releases, hub, clients, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    root, (v1, _) = releases
    lying = tmp_path / "lying"
    shutil.copytree(root / "v1", lying)
    card = (lying / "README.md").read_text()
    accuracy = v1.metrics["test"]["accuracy"]
    (lying / "README.md").write_text(card.replace(f"value: {accuracy}", "value: 0.999"), encoding="utf-8")
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    pushed = push_folder(lying, "local-user/tiny-lying", api=api, tag="auto")
    check = verify_release("local-user/tiny-lying", pushed.tag, cache_dir=tmp_path / "fresh")
    assert not check["equal"] and 0.999 in check["card"] and check["recomputed"] == v1.metrics["test"]


def test_the_recipe_hash_ignores_where_a_run_goes_and_follows_what_it_trains(tmp_path):
    base = text_recipe(tmp_path / "m", tmp_path / "d.csv", tmp_path / "out")
    same = yaml.safe_load(yaml.safe_dump(base)) | {"output_dir": str(tmp_path / "elsewhere")}
    same["hub"] = {"repo_id": "me/x", "push": True}
    other = yaml.safe_load(yaml.safe_dump(base))
    other["train"]["lr"] = 1e-4
    hashes = [recipe_hash(load_recipe(r)) for r in (base, same, other)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_hubtransfer_push_tags_and_verifies_a_finished_run(releases, hub, clients, monkeypatch, capsys):
    from hubtransfer.cli import main

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    root, (v1, _) = releases
    assert main(["push", str(root / "v1"), "--repo-id", "local-user/tiny-cli", "--tag", "rc1"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["tag"] == "rc1" and out["verified"] == {"revision": "rc1", "test": v1.metrics["test"]}
    assert main(["push", str(root / "v2"), "--repo-id", "local-user/tiny-cli", "--tag", "none", "--no-verify"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["tag"] is None and "verified" not in out and out["new_commit"]
