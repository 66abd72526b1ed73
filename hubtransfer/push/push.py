"""Push a finished run folder to a Hub repo (branch created when missing), with retries.

One commit carries every file, so the remote never holds half a model. Transient failures
(5xx, dropped connections, timeouts) are retried with exponential backoff; after the last try
the local folder is untouched and ``hubtransfer push OUTPUT_DIR`` resumes. Files the remote
already holds are skipped by huggingface_hub, so pushing the same run twice makes no commit.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx2 as httpx  # the HTTP client huggingface_hub 2.x is built on
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from hubtransfer.errors import PushError

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Written by hubtransfer but of no use on the Hub: staging markers and tracker logs stay local.
IGNORE = [".*", "**/.*", "hubtransfer/**", "*.tmp"]


_VERSION = re.compile(r"^v(\d+)$")


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit: str | None
    url: str
    new_commit: bool
    tag: str | None = None  # the release tag on ``commit`` (None: not tagged)


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: server-side 5xx and 429, and transport failures."""
    if isinstance(exc, HfHubHTTPError):
        status = getattr(exc.response, "status_code", None)
        return status is None or status >= 500 or status == 429
    return isinstance(exc, (httpx.TransportError, ConnectionError, TimeoutError))


def with_retries(fn: Callable[[], T], *, tries: int = 5, base_delay: float = 1.0, what: str = "request") -> T:
    """Call ``fn``; retry transient failures with delays base, 2*base, 4*base, ..."""
    for attempt in range(1, tries + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc) or attempt == tries:
                raise
            delay = base_delay * 2 ** (attempt - 1)
            logger.warning("%s failed (%s); retry %d/%d in %.1fs", what, type(exc).__name__, attempt, tries - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def push_folder(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = True,
    revision: str = "main",
    commit_message: str | None = None,
    tag: str | None = None,
    api: HfApi | None = None,
    tries: int = 5,
    base_delay: float = 1.0,
) -> PushResult:
    """Upload ``folder`` to ``repo_id`` at branch ``revision``; with ``tag``, tag the commit (``"auto"``: the next
    free ``vN``, or the ``vN`` the commit already has when the same folder is pushed again).

    Raises:
        PushError: after the last retry, or at once for errors retrying cannot fix (auth, bad id).
    """
    api = api or HfApi()
    folder = Path(folder)
    retry = dict(tries=tries, base_delay=base_delay)
    try:
        with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True), what="create_repo", **retry)
        if revision != "main":
            with_retries(
                lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), what="create_branch", **retry
            )
        before = _head(api, repo_id, revision)
        if tag and tag != "auto":  # a taken name is refused before anything is uploaded
            _check_tag_free(api, repo_id, tag, before, retry)
        info = with_retries(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                revision=revision,
                commit_message=commit_message or f"Upload {folder.name} with hubtransfer",
                ignore_patterns=IGNORE,
            ),
            what="upload",
            **retry,
        )
    except PushError:
        raise
    except Exception as exc:
        raise PushError(
            f"push of '{folder}' to {repo_id}@{revision} failed ({type(exc).__name__}: {_safe(exc)}). "
            f"The local run is complete; retry with: hubtransfer push {folder}"
        ) from None
    commit = getattr(info, "oid", None) or _head(api, repo_id, revision)
    tagged = _tag(api, repo_id, commit, tag, retry) if tag else None
    return PushResult(
        repo_id, revision, commit, f"{api.endpoint}/{repo_id}/tree/{revision}", new_commit=commit != before, tag=tagged
    )


def _tags(api: HfApi, repo_id: str, retry: dict) -> dict[str, str]:
    refs = with_retries(lambda: api.list_repo_refs(repo_id), what="list_repo_refs", **retry)
    return {t.name: t.target_commit for t in refs.tags}


def _check_tag_free(api: HfApi, repo_id: str, tag: str, head: str | None, retry: dict) -> None:
    taken = _tags(api, repo_id, retry).get(tag)
    if taken is not None and taken != head:
        raise PushError(
            f"tag '{tag}' of {repo_id} already names commit {taken[:12]}; nothing pushed. Set hub.tag to a new "
            "name (or 'auto' for the next vN), or hub.tag=null for an untagged push"
        )


def _tag(api: HfApi, repo_id: str, commit: str, tag: str, retry: dict) -> str:
    """Tag ``commit``: ``tag`` itself, or for ``"auto"`` the ``vN`` it already has or the next free one."""
    tags = _tags(api, repo_id, retry)
    if tag == "auto":
        mine = sorted((int(m.group(1)) for name, sha in tags.items() if sha == commit and (m := _VERSION.match(name))))
        if mine:
            return f"v{mine[0]}"
        tag = f"v{1 + max((int(m.group(1)) for name in tags if (m := _VERSION.match(name))), default=0)}"
    elif tags.get(tag) not in (None, commit):
        raise PushError(
            f"tag '{tag}' of {repo_id} already names commit {tags[tag][:12]}, not this push ({commit[:12]}); the "
            "upload itself is done. Set hub.tag to a new name (or 'auto' for the next vN) and push again"
        )
    if tags.get(tag) != commit:
        with_retries(lambda: api.create_tag(repo_id, tag=tag, revision=commit), what="create_tag", **retry)
    return tag


def _head(api: HfApi, repo_id: str, revision: str) -> str | None:
    refs = with_retries(lambda: api.list_repo_refs(repo_id), what="list_repo_refs")
    return next((b.target_commit for b in refs.branches if b.name == revision), None)


def _safe(exc: BaseException) -> str:
    # Error texts can quote request headers; keep only the first line and never an Authorization value.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (
        text if "authorization" not in text.lower() and "hf_" not in text else "details withheld (may hold credentials)"
    )
