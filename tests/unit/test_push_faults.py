"""Push under injected faults: 5xx answers, connections dropped before or after the server acted,
slow answers. Pushes retry and then succeed or fail cleanly; the remote never holds a partial model."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import pytest
from conftest import TOKEN, TOKENS, text_recipe, write_sentiment_csv
from huggingface_hub import HfApi

from hubtransfer.errors import PushError
from hubtransfer.localhub.server import LocalHub
from hubtransfer.push.push import push_folder

COMMIT = re.compile(r"^/api/models/.+/commit/")


@dataclass
class Faults:
    """Actions for the next requests matching ``pattern``: 503, drop-before, drop-after, slow."""

    pattern: re.Pattern = COMMIT
    plan: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def __call__(self, app):
        async def faulty(scope, receive, send):
            if scope["type"] != "http" or not self.pattern.match(scope["path"]) or not self.plan:
                return await app(scope, receive, send)
            action = self.plan.pop(0)
            self.seen.append(action)
            if action == "503":
                await send(
                    {"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"application/json")]}
                )
                return await send({"type": "http.response.body", "body": b'{"error": "injected"}'})
            if action == "slow":
                await asyncio.sleep(1.0)
                return await app(scope, receive, send)
            if action == "drop-after":  # the server commits, the client never hears of it
                await app(scope, receive, _discard)
            # A response that starts and then breaks off: the client sees the connection drop.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
            await send({"type": "http.response.body", "body": b"{", "more_body": True})
            raise ConnectionResetError("injected drop")

        return faulty


async def _discard(message):
    return None


@pytest.fixture(scope="module")
def run_dir(tiny_bert, tmp_path_factory):
    from hubtransfer.run import finetune

    root = tmp_path_factory.mktemp("fault-run")
    return finetune(
        text_recipe(tiny_bert, write_sentiment_csv(root / "r.csv"), root / "out", train__epochs=1)
    ).output_dir


@pytest.fixture
def faulty_hub(tmp_path, clients):
    faults = Faults()
    with LocalHub(tmp_path / "hub", tokens=TOKENS, middleware=faults) as hub:
        yield hub, faults, HfApi(endpoint=hub.endpoint, token=TOKEN)


def _files(api, repo):
    return set(api.list_repo_files(repo))


@pytest.mark.parametrize(
    "plan", [["503", "503"], ["drop-before"], ["503", "slow"]], ids=["5xx", "dropped", "5xx-then-slow"]
)
def test_push_retries_through_faults(faulty_hub, run_dir, plan):
    _hub, faults, api = faulty_hub
    faults.plan = list(plan)
    result = push_folder(run_dir, "local-user/faulty", api=api, base_delay=0.05)
    assert faults.seen == plan and not faults.plan
    assert result.new_commit and "model.safetensors" in _files(api, "local-user/faulty")


def test_lost_answer_after_commit_does_not_duplicate(faulty_hub, run_dir):
    _hub, faults, api = faulty_hub
    faults.plan = ["drop-after"]
    push_folder(run_dir, "local-user/lost-answer", api=api, base_delay=0.05)
    commits = api.list_repo_commits("local-user/lost-answer")
    # The first commit landed; the retry found every file already there and made no second one.
    assert len(commits) == 2 and "model.safetensors" in _files(api, "local-user/lost-answer")


def test_persistent_faults_fail_cleanly_with_nothing_partial(faulty_hub, run_dir):
    _hub, faults, api = faulty_hub
    faults.plan = ["503"] * 3
    with pytest.raises(PushError, match="hubtransfer push"):
        push_folder(run_dir, "local-user/down", api=api, tries=3, base_delay=0.05)
    assert _files(api, "local-user/down") <= {".gitattributes"}  # the repo exists, no model file in it
