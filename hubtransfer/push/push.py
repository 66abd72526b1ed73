"""Push a finished run folder to a Hub repo (branch created when missing), with retries.

One commit carries every file, so the remote never holds half a model. Transient failures
(5xx, dropped connections, timeouts) are retried with exponential backoff; after the last try
the local folder is untouched and ``hubtransfer push OUTPUT_DIR`` resumes. Files the remote
already holds are skipped by huggingface_hub, so pushing the same run twice makes no commit.
"""

from __future__ import annotations

import logging
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


@dataclass
class PushResult:
    repo_id: str
    revision: str
    commit: str | None
    url: str
    new_commit: bool


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
    api: HfApi | None = None,
    tries: int = 5,
    base_delay: float = 1.0,
) -> PushResult:
    """Upload ``folder`` to ``repo_id`` at branch ``revision``.

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
    except Exception as exc:
        raise PushError(
            f"push of '{folder}' to {repo_id}@{revision} failed ({type(exc).__name__}: {_safe(exc)}). "
            f"The local run is complete; retry with: hubtransfer push {folder}"
        ) from None
    commit = getattr(info, "oid", None)
    return PushResult(
        repo_id, revision, commit, f"{api.endpoint}/{repo_id}/tree/{revision}", new_commit=commit != before
    )


def _head(api: HfApi, repo_id: str, revision: str) -> str | None:
    refs = with_retries(lambda: api.list_repo_refs(repo_id), what="list_repo_refs")
    return next((b.target_commit for b in refs.branches if b.name == revision), None)


def _safe(exc: BaseException) -> str:
    # Error texts can quote request headers; keep only the first line and never an Authorization value.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (
        text if "authorization" not in text.lower() and "hf_" not in text else "details withheld (may hold credentials)"
    )
