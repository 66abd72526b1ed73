"""A local, Hugging Face Hub-compatible HTTP server (Starlette + uvicorn).

It speaks the subset of the Hub protocol that the stock clients use -- ``huggingface_hub``
2.4 (``HfApi``, ``hf_hub_download``, ``snapshot_download``, ``HfFileSystem``), transformers
5.x (``from_pretrained`` / ``push_to_hub``) and datasets 5.x (``load_dataset`` /
``push_to_hub``) -- for model and dataset repositories stored by :class:`HubStore`.

Endpoints (``{T}`` is ``models`` or ``datasets``, ``{R}`` is ``ns/name`` or legacy ``name``,
``{P}`` is ``""`` for models and ``/datasets`` for datasets)::

    GET    /api/whoami-v2
    POST   /api/repos/create                 {name, organization, type, visibility|private}
    DELETE /api/repos/delete                 {name, organization, type}
    POST   /api/validate-yaml                {content, repoType}
    GET    /api/{T}/{R}[/revision/{rev}]     repo info (?blobs=1, ?expand=...)
    PUT    /api/{T}/{R}/settings             {private | visibility}
    GET    /api/{T}/{R}/tree/{rev}[/{path}]  ?recursive=&expand=&cursor=  (Link: rel="next")
    POST   /api/{T}/{R}/paths-info/{rev}     form or JSON {paths, expand}
    GET    /api/{T}/{R}/refs                 GET /api/{T}/{R}/commits/{rev}
    POST|DELETE /api/{T}/{R}/branch/{name}   POST /api/{T}/{R}/tag/{rev}, DELETE .../tag/{name}
    POST   /api/{T}/{R}/preupload/{rev}      POST /api/{T}/{R}/commit/{rev} (ndjson)
    GET    /api/{T}/{R}/xet-{read,write}-token/{rev}   always 501 (no Xet storage here)
    POST   {P}/{R}.git/info/lfs/objects/batch   and .../verify
    PUT    /api/lfs-upload?ticket=...        signed URL handed out by the batch endpoint
    HEAD|GET {P}/{R}/resolve/{rev}/{path}    files, with Range support

What a client must do
---------------------
* Point the clients at the server: ``HfApi(endpoint=hub.endpoint)``, or set
  ``HF_ENDPOINT=http://127.0.0.1:PORT`` in the environment *before* importing
  ``huggingface_hub``/``transformers``/``datasets`` (they copy it into module constants at import
  time: ``huggingface_hub.constants.ENDPOINT`` and ``HUGGINGFACE_CO_URL_TEMPLATE``, the
  module-level ``huggingface_hub.hf_api.api.endpoint``, ``datasets.config.HF_ENDPOINT`` and
  ``HUB_DATASETS_URL``; the tests patch those at run time instead).
* Set ``HF_HUB_DISABLE_XET=1`` before importing ``huggingface_hub`` whenever ``hf_xet`` is
  installed (it is a hard dependency on x86_64/arm64).  With ``hf_xet`` present, huggingface_hub
  2.4 uploads every file that preupload marks ``lfs`` through Xet, and the only thing it asks
  this server is a Xet write token.  There is no answer to that request that makes the client
  fall back to classic LFS (``_upload_files`` picks Xet from ``is_xet_available()`` alone, and a
  failed token request aborts the upload), so the token endpoints answer 501 with an explicit
  message; hf_xet does not show the body, the caller sees ``ConnectionError: ... 501 Not
  Implemented ... /xet-write-token/<rev>``.  Preupload says "lfs" for files of ``lfs_threshold`` bytes (10 MB) or more
  and, like
  the Hub's default ``.gitattributes``, for binary formats (``*.safetensors``, ``*.bin``,
  ``*.parquet``, ... see ``DEFAULT_LFS_PATTERNS``), so ``push_to_hub`` of a model or a dataset
  needs the switch too.  Other files are "regular": they travel base64-encoded inside the
  commit and work either way.  A server started with ``lfs_threshold=None, lfs_patterns=()``
  marks every file regular, which suits Xet-enabled clients at the cost of the client building
  the whole commit body in memory (raise ``max_body_bytes`` for big files) -- but datasets'
  ``push_to_hub`` then fails (it deletes each parquet shard after preupload, expecting LFS).
  Downloads never use Xet: the server sends no ``X-Xet-Hash`` header.
* Authenticate with ``token=`` / ``HF_TOKEN`` using one of the server's tokens, and leave
  ``HF_HUB_OFFLINE`` unset (datasets also copies it into ``datasets.config`` at import).

Access policy
-------------
``tokens`` maps token -> user name.  Public repos are readable by anyone.  A repo is writable,
and when private also readable, by the user whose name is its namespace or by the user who
created it.  Any valid user may create repos in their own namespace or in a namespace that is
not another known user's name (such namespaces act as organisations owned repo by repo by
their creators).  Requests with an unknown token are treated as anonymous for reads (so a
wrong token reading a private repo gets 401 + ``X-Error-Code: RepoNotFound``, like no token)
and rejected with 401 for writes and ``whoami``.  A valid user without access to a private
repo gets 404 ``RepoNotFound``, so existence is not leaked.  Token values are never logged;
the access log (off in :class:`LocalHub`) has LFS upload tickets redacted.

Limits: JSON bodies and each ndjson commit line are capped at ``max_body_bytes`` and a whole
commit body at ``max_commit_bytes`` (413 beyond).  LFS uploads are streamed to disk in chunks
and checked against the announced sha256 and size before the blob is accepted, so a 1 GB file
costs no memory.  Every repo id and file path is validated before touching the disk.

Not implemented: pull requests (``create_pr``), Spaces, gated repos, ``.gitignore`` handling in
preupload, the LFS ``download`` operation (files are read via ``resolve``), LFS multipart
transfers, Xet, cross-repo LFS copies (``CommitOperationCopy`` within a repo works), repo
moves, case-insensitive repo ids, deleting/creating legacy un-namespaced repos through the API
(the API puts a bare name in the caller's namespace, as the Hub does), TLS, and garbage
collection of blobs left behind by deleted repos.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import functools
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from .store import (
    DEFAULT_BRANCH,
    AddFile,
    Commit,
    Conflict,
    DeleteFile,
    DeleteFolder,
    EntryNotFound,
    FileEntry,
    HubError,
    HubStore,
    InvalidInput,
    RepoMeta,
    RepoNotFound,
    TreeEntry,
    lfs_pointer,
    validate_path,
    validate_repo_id,
    validate_repo_type,
    validate_sha256,
)

logger = logging.getLogger(__name__)

DEV_TOKENS: dict[str, str] = {"hf_local_test_token": "local-user"}
DEFAULT_LFS_THRESHOLD = 10 * 1024 * 1024
# Like the Hub's default .gitattributes: these files are LFS whatever their size.  Clients rely
# on it: datasets' push_to_hub uploads each parquet shard during preupload and deletes the temp
# file before the commit, which only works if the shard is LFS.
DEFAULT_LFS_PATTERNS: tuple[str, ...] = (
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gguf",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
    "*.mp3",
    "*.wav",
    "*.flac",
    "*.ogg",
    "*.jpg",
    "*.jpeg",
    "*.png",
    "*.webp",
    "*.mp4",
)
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_COMMIT_BYTES = 2 * 1024 * 1024 * 1024
DEFAULT_PORT = 8765
TREE_PAGE_SIZE = 1000
TREE_PAGE_SIZE_EXPANDED = 50  # the Hub's page sizes; expand=True walks the history per entry
COMMITS_PAGE_SIZE = 50
LFS_TICKET_TTL_S = 3600
SMALL_FILE_LIMIT = 1024 * 1024  # README.md / config.json are parsed for repo info below this size
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(\r?\n|\Z)", re.S)


# ----------------------------------------------------------------------------- plumbing


class _SegmentPreservingPaths:
    """ASGI middleware: keep ``%2F`` inside a single path segment.

    Clients quote revisions (and tree paths) with ``safe=""``, so ``feature/x`` arrives as
    ``feature%2Fx``; the server's default decoding would turn it into two segments and break
    routing.  We rebuild ``scope["path"]`` from ``raw_path`` with every segment decoded and
    re-quoted, so route parameters hold quoted values that handlers ``unquote`` once.
    """

    def __init__(self, app: Callable):
        self.app = app

    async def __call__(self, scope, receive, send):
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            segments = raw.decode("latin-1").split("/")
            scope = dict(scope, path="/".join(quote(unquote(seg), safe="") for seg in segments))
        await self.app(scope, receive, send)


class _RedactTickets(logging.Filter):
    """Hide signed LFS upload tickets from uvicorn's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            args = list(record.args)
            args[2] = re.sub(r"ticket=[^&\s]+", "ticket=REDACTED", args[2])
            record.args = tuple(args)
        return True


def _header_safe(text: str) -> str:
    """One line of ASCII: latin-1 is legal in a header, but clients decode headers as UTF-8 or ASCII and
    fail on a lone byte such as é (found by fuzzing a repo id): non-ASCII is written as \\x.. escapes."""
    return re.sub(r"[\r\n]+", " ", text).encode("ascii", "backslashreplace").decode("ascii")[:1000]


def _error_response(exc: HubError) -> JSONResponse:
    headers = {"X-Error-Message": _header_safe(exc.message), **exc.headers}
    if exc.code:
        headers["X-Error-Code"] = exc.code
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


async def _on_hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return _error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Log method and path only: headers (tokens) and query strings (tickets) stay out of logs.
    logger.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "Internal server error"}, status_code=500)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes", "on")


def _param(request: Request, key: str, default: str | None = None) -> str | None:
    """A path parameter, unquoted once (see ``_SegmentPreservingPaths``)."""
    value = request.path_params.get(key)
    return default if value is None else unquote(value)


def _repo_id(request: Request) -> str:
    name = _param(request, "name")
    namespace = _param(request, "ns")
    return validate_repo_id(f"{namespace}/{name}" if namespace is not None else name)


def _cursor(request: Request) -> int:
    raw = request.query_params.get("cursor", "0")
    if not raw.isdigit():
        raise InvalidInput("Invalid cursor.")
    return int(raw)


def _paginated(request: Request, items: list, offset: int, page_size: int) -> tuple[list, dict[str, str]]:
    """Slice a page and build the GitHub-style ``Link`` header the client follows."""
    headers = {}
    if offset + page_size < len(items):
        next_url = request.url.include_query_params(cursor=str(offset + page_size))
        headers["Link"] = f'<{next_url}>; rel="next"'
    return items[offset : offset + page_size], headers


def _front_matter(text: str) -> dict | None:
    """YAML metadata at the top of a README.md, or ``None`` (raises ``yaml.YAMLError``)."""
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return None
    data = yaml.safe_load(match.group(1))
    return data if data is not None else {}


# ----------------------------------------------------------------------------- JSON shapes


def _lfs_json(entry: FileEntry, sha_key: str) -> dict:
    return {sha_key: entry.blob, "size": entry.size, "pointerSize": len(lfs_pointer(entry.blob, entry.size))}


def _tree_json(item: TreeEntry, last_commit: Commit | None = None) -> dict:
    data: dict = {"type": "directory" if item.is_dir else "file", "oid": item.oid, "size": item.size, "path": item.path}
    if item.entry is not None and item.entry.lfs:
        data["lfs"] = _lfs_json(item.entry, "oid")
    if last_commit is not None:
        data["lastCommit"] = {"id": last_commit.id, "title": last_commit.title, "date": last_commit.time}
    return data


def _sibling_json(path: str, entry: FileEntry, with_blobs: bool) -> dict:
    data: dict = {"rfilename": path}
    if with_blobs:
        data.update(size=entry.size, blobId=entry.git_oid)
        if entry.lfs:
            data["lfs"] = _lfs_json(entry, "sha256")
    return data


def _commit_json(commit: Commit) -> dict:
    return {
        "id": commit.id,
        "title": commit.title,
        "message": commit.message,
        "authors": [{"user": commit.author}] if commit.author else [],
        "date": commit.time,
    }


def _repo_url(base: str, repo_type: str, repo_id: str) -> str:
    return f"{base}/datasets/{repo_id}" if repo_type == "dataset" else f"{base}/{repo_id}"


# ----------------------------------------------------------------------------- the application


class _Hub:
    """Request handlers bound to one store, token table and set of limits."""

    def __init__(
        self,
        store: HubStore,
        tokens: Mapping[str, str],
        *,
        max_body_bytes: int,
        max_commit_bytes: int,
        lfs_threshold: int | None,
        lfs_patterns: tuple[str, ...],
    ):
        self.store = store
        self.tokens = dict(tokens)
        self.users = frozenset(self.tokens.values())
        self.max_body_bytes = max_body_bytes
        self.max_commit_bytes = max_commit_bytes
        self.lfs_threshold = lfs_threshold
        self.lfs_patterns = tuple(lfs_patterns)
        self._ticket_key = secrets.token_bytes(32)  # per process: tickets die with the server

    # ------------------------------------------------------------------ auth

    def _user(self, request: Request) -> str | None:
        """The user behind a valid ``Authorization: Bearer`` token, else ``None``."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.tokens.get(token.strip())

    def _require_user(self, request: Request) -> str:
        user = self._user(request)
        if user is None:
            sent = bool(request.headers.get("authorization"))
            message = "Invalid credentials in Authorization header" if sent else "Authentication required"
            raise HubError(message, status=401)
        return user

    @staticmethod
    def _owns(user: str | None, meta: RepoMeta) -> bool:
        return user is not None and user in (meta.namespace, meta.owner)

    def _not_found(self, user: str | None, repo_type: str, repo_id: str) -> RepoNotFound:
        # The Hub answers 401 to anonymous callers so that they cannot probe for private repos.
        return RepoNotFound(f"Repository {repo_type}s/{repo_id} not found", status=401 if user is None else 404)

    def _readable(self, request: Request, repo_type: str, repo_id: str) -> RepoMeta:
        user = self._user(request)
        try:
            meta = self.store.get_repo(repo_type, repo_id)
        except RepoNotFound:
            raise self._not_found(user, repo_type, repo_id) from None
        if meta.private and not self._owns(user, meta):
            raise self._not_found(user, repo_type, repo_id)
        return meta

    def _writable(self, request: Request, repo_type: str, repo_id: str) -> tuple[RepoMeta, str]:
        user = self._require_user(request)
        try:
            meta = self.store.get_repo(repo_type, repo_id)
        except RepoNotFound:
            raise self._not_found(user, repo_type, repo_id) from None
        if not self._owns(user, meta):
            if meta.private:
                raise self._not_found(user, repo_type, repo_id)
            raise HubError(f"You don't have the rights to write to {repo_type}s/{repo_id}", status=403)
        return meta, user

    # ------------------------------------------------------------------ bodies

    async def _body(self, request: Request, limit: int) -> bytes:
        """Read a request body, refusing with 413 past ``limit`` bytes."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HubError(f"Request body larger than {limit} bytes", status=413)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HubError(f"Request body larger than {limit} bytes", status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _json(self, request: Request) -> dict:
        body = await self._body(request, self.max_body_bytes)
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except ValueError:
            raise InvalidInput("Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput("Request body must be a JSON object")
        return data

    async def _ndjson(self, request: Request) -> AsyncIterator[dict]:
        """Yield ndjson items as they arrive; memory is bounded by one line."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_commit_bytes:
            raise HubError(f"Commit body larger than {self.max_commit_bytes} bytes", status=413)
        pieces: list[bytes] = []
        pending = total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > self.max_commit_bytes:
                raise HubError(f"Commit body larger than {self.max_commit_bytes} bytes", status=413)
            start = 0
            while (newline := chunk.find(b"\n", start)) >= 0:
                pieces.append(chunk[start:newline])
                line, pieces, pending = b"".join(pieces), [], 0
                start = newline + 1
                if line.strip():
                    yield _parse_ndjson_line(line)
            if start < len(chunk):
                pieces.append(chunk[start:])
                pending += len(chunk) - start
                if pending > self.max_body_bytes:
                    raise HubError(f"Commit line larger than {self.max_body_bytes} bytes", status=413)
        line = b"".join(pieces)
        if line.strip():
            yield _parse_ndjson_line(line)

    # ------------------------------------------------------------------ account & repos

    def whoami(self, request: Request) -> Response:
        user = self._require_user(request)
        return JSONResponse(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": None,
                "emailVerified": False,
                "isPro": False,
                "canPay": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "local", "role": "write"}},
            }
        )

    def _target_repo(self, body: dict, user: str) -> tuple[str, str]:
        """(repo_type, repo_id) from a create/delete body; no organization means the caller."""
        repo_type = validate_repo_type(body.get("type"))
        name, organization = body.get("name"), body.get("organization") or user
        if not isinstance(name, str) or not isinstance(organization, str):
            raise InvalidInput("'name' and 'organization' must be strings")
        return repo_type, validate_repo_id(f"{organization}/{name}")

    async def create_repo(self, request: Request) -> Response:
        user = self._require_user(request)
        body = await self._json(request)
        repo_type, repo_id = self._target_repo(body, user)
        namespace = repo_id.split("/")[0]
        if namespace != user and namespace in self.users:
            raise HubError(f"You don't have the rights to create a repo under {namespace}", status=403)
        visibility = body.get("visibility")
        if visibility not in (None, "public", "private"):
            raise InvalidInput(f"Unsupported visibility {visibility!r}")
        private = visibility == "private" or (visibility is None and bool(body.get("private")))
        url = _repo_url(str(request.base_url).rstrip("/"), repo_type, repo_id)
        try:
            await run_in_threadpool(self.store.create_repo, repo_type, repo_id, private=private, owner=user)
        except Conflict as exc:
            # ``create_repo(exist_ok=True)`` reads "url" from the 409 body too.
            return JSONResponse({"error": exc.message, "url": url}, status_code=409)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id, "repo_id": repo_id, "type": repo_type})

    async def delete_repo(self, request: Request) -> Response:
        user = self._require_user(request)
        repo_type, repo_id = self._target_repo(await self._json(request), user)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        await run_in_threadpool(self.store.delete_repo, repo_type, repo_id)
        return JSONResponse({})

    async def settings(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        body = await self._json(request)
        private = body.get("private")
        if "visibility" in body:
            if body["visibility"] not in ("public", "private"):
                raise InvalidInput(f"Unsupported visibility {body['visibility']!r}")
            private = body["visibility"] == "private"
        if private is not None:
            await run_in_threadpool(self.store.set_private, repo_type, repo_id, bool(private))
        return JSONResponse({})

    async def validate_yaml(self, request: Request) -> Response:
        body = await self._json(request)
        content, repo_type = body.get("content", ""), body.get("repoType") or "model"
        if not isinstance(content, str):
            raise InvalidInput("'content' must be a string")
        errors = _metadata_errors(content, repo_type)
        if errors:
            messages = [{"message": message} for message in errors]
            return JSONResponse({"error": "; ".join(errors), "errors": messages, "warnings": []}, status_code=400)
        return JSONResponse({"errors": [], "warnings": []})

    # ------------------------------------------------------------------ reads

    def repo_info(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        meta = self._readable(request, repo_type, repo_id)
        commit = self.store.commit_at(repo_type, repo_id, _param(request, "rev"))
        data = self._info_json(meta, commit, with_blobs=_truthy(request.query_params.get("blobs")))
        expand = request.query_params.getlist("expand") + request.query_params.getlist("expand[]")
        if expand:
            data = {key: value for key, value in data.items() if key in {"_id", "id", *expand}}
        return JSONResponse(data)

    def _info_json(self, meta: RepoMeta, commit: Commit, *, with_blobs: bool) -> dict:
        card = self._card_data(commit)
        data: dict = {
            "_id": hashlib.sha1(f"{meta.repo_type}/{meta.repo_id}".encode()).hexdigest()[:24],
            "id": meta.repo_id,
            "author": meta.namespace,
            "sha": commit.id,
            "lastModified": commit.time,
            "createdAt": meta.created,
            "private": meta.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [t for t in card.get("tags") or [] if isinstance(t, str)] if card else [],
            "siblings": [_sibling_json(p, e, with_blobs) for p, e in sorted(commit.files.items())],
            "usedStorage": sum(entry.size for entry in commit.files.values()),
        }
        if card is not None:
            data["cardData"] = card
        if meta.repo_type == "model":
            data["modelId"] = meta.repo_id
            data["library_name"] = card.get("library_name") if card else None
            data["pipeline_tag"] = card.get("pipeline_tag") if card else None
            data["config"] = self._model_config(commit)
        return data

    def _small_text(self, commit: Commit, path: str) -> str | None:
        entry = commit.files.get(path)
        if entry is None:
            return None
        raw = self.store.read_blob_bytes(entry.blob, SMALL_FILE_LIMIT)
        return raw.decode("utf-8", "replace") if raw is not None else None

    def _card_data(self, commit: Commit) -> dict | None:
        text = self._small_text(commit, "README.md")
        try:
            data = _front_matter(text) if text else None
        except yaml.YAMLError:
            return None
        return data if isinstance(data, dict) else None

    def _model_config(self, commit: Commit) -> dict | None:
        """The few config.json keys the Hub echoes in model info."""
        text = self._small_text(commit, "config.json")
        try:
            config = json.loads(text) if text else None
        except ValueError:
            return None
        if not isinstance(config, dict):
            return None
        return {key: config[key] for key in ("architectures", "model_type") if key in config}

    def tree(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        self._readable(request, repo_type, repo_id)
        commit = self.store.commit_at(repo_type, repo_id, _param(request, "rev"))
        recursive = _truthy(request.query_params.get("recursive"))
        expand = _truthy(request.query_params.get("expand"))
        entries = self.store.list_tree(commit, _param(request, "path", "").strip("/"), recursive=recursive)
        page_size = TREE_PAGE_SIZE_EXPANDED if expand else TREE_PAGE_SIZE
        page, headers = _paginated(request, entries, _cursor(request), page_size)
        last: dict[str, Commit] = {}
        if expand:
            last = self.store.last_commits(repo_type, repo_id, commit, {e.path: e.is_dir for e in page})
        return JSONResponse([_tree_json(e, last.get(e.path)) for e in page], headers=headers)

    async def paths_info(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        body = await self._body(request, self.max_body_bytes)
        paths, expand = _parse_paths_info_body(body, request.headers.get("content-type", ""))
        return await run_in_threadpool(self._paths_info, request, repo_type, repo_id, paths, expand)

    def _paths_info(self, request: Request, repo_type: str, repo_id: str, paths: list[str], expand: bool):
        self._readable(request, repo_type, repo_id)
        commit = self.store.commit_at(repo_type, repo_id, _param(request, "rev"))
        found = [item for item in (self.store.path_info(commit, p) for p in paths) if item is not None]
        last: dict[str, Commit] = {}
        if expand:
            last = self.store.last_commits(repo_type, repo_id, commit, {e.path: e.is_dir for e in found})
        return JSONResponse([_tree_json(e, last.get(e.path)) for e in found])

    def refs(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        self._readable(request, repo_type, repo_id)
        refs = self.store.refs(repo_type, repo_id)

        def as_list(kind: str, prefix: str) -> list[dict]:
            return [{"name": n, "ref": f"{prefix}{n}", "targetCommit": sha} for n, sha in sorted(refs[kind].items())]

        data = {"branches": as_list("branches", "refs/heads/"), "tags": as_list("tags", "refs/tags/"), "converts": []}
        if _truthy(request.query_params.get("include_prs")):
            data["pullRequests"] = []
        return JSONResponse(data)

    def commits(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        self._readable(request, repo_type, repo_id)
        head = self.store.resolve_revision(repo_type, repo_id, _param(request, "rev"))
        offset = _cursor(request)
        # Read one commit past the page to know whether there is a next page.
        window = []
        for index, commit in enumerate(self.store.history(repo_type, repo_id, head)):
            if index >= offset + COMMITS_PAGE_SIZE + 1:
                break
            window.append(commit)
        page, headers = _paginated(request, window, offset, COMMITS_PAGE_SIZE)
        return JSONResponse([_commit_json(c) for c in page], headers=headers)

    def resolve(self, request: Request, repo_type: str) -> Response:
        """Serve a file (HEAD or GET, ranges included) with the headers the clients rely on."""
        repo_id = _repo_id(request)
        self._readable(request, repo_type, repo_id)
        commit = self.store.commit_at(repo_type, repo_id, _param(request, "rev"))
        path = validate_path(_param(request, "path", ""))
        entry = commit.files.get(path)
        if entry is None:
            error = EntryNotFound(f"{path} does not exist at revision {commit.id}")
            # The client caches the miss per commit (``.no_exist``) thanks to this header.
            error.headers["X-Repo-Commit"] = commit.id
            raise error
        headers = {"X-Repo-Commit": commit.id, "ETag": f'"{entry.oid}"'}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.blob}"', "X-Linked-Size": str(entry.size)})
        blob = self.store.blob_path(entry.blob)
        return FileResponse(blob, headers=headers, media_type="application/octet-stream", stat_result=blob.stat())

    # ------------------------------------------------------------------ refs

    async def branch(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        name = _param(request, "ref")
        if request.method == "DELETE":
            await run_in_threadpool(self.store.delete_branch, repo_type, repo_id, name)
            return JSONResponse({})
        body = await self._json(request)
        start = body.get("startingPoint")
        sha = await run_in_threadpool(self.store.create_branch, repo_type, repo_id, name, start)
        return JSONResponse({"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha})

    async def tag(self, request: Request, repo_type: str) -> Response:
        """POST /tag/{revision} {tag} creates a tag; DELETE /tag/{tag} removes one."""
        repo_id = _repo_id(request)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        ref = _param(request, "ref")
        if request.method == "DELETE":
            await run_in_threadpool(self.store.delete_tag, repo_type, repo_id, ref)
            return JSONResponse({})
        tag = (await self._json(request)).get("tag")
        if not isinstance(tag, str):
            raise InvalidInput("'tag' must be a string")
        sha = await run_in_threadpool(self.store.create_tag, repo_type, repo_id, tag, ref)
        return JSONResponse({"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": sha})

    # ------------------------------------------------------------------ uploads

    async def preupload(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        files = (await self._json(request)).get("files")
        if not isinstance(files, list):
            raise InvalidInput("'files' must be a list")
        commit = await run_in_threadpool(self.store.commit_at, repo_type, repo_id, _param(request, "rev"))
        return JSONResponse({"files": [self._upload_mode(item, commit) for item in files], "commitOid": commit.id})

    def _upload_mode(self, item: object, commit: Commit) -> dict:
        if not isinstance(item, dict) or not isinstance(item.get("size"), int) or item["size"] < 0:
            raise InvalidInput("Each file needs a 'path' and a non-negative integer 'size'")
        path = validate_path(item.get("path"))
        existing = commit.files.get(path)
        return {
            "path": path,
            "uploadMode": "lfs" if self._is_lfs(path, item["size"]) else "regular",
            "shouldIgnore": False,
            # The client skips unchanged files by comparing this with its sha256 (lfs) or git sha1.
            "oid": existing.oid if existing else None,
        }

    def _is_lfs(self, path: str, size: int) -> bool:
        """LFS for big files and for binary formats (empty files never: S3 refuses them)."""
        if size == 0:
            return False
        if self.lfs_threshold is not None and size >= self.lfs_threshold:
            return True
        name = path.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.lfs_patterns)

    async def commit(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        if _truthy(request.query_params.get("create_pr")):
            raise InvalidInput("Pull requests are not supported by this server")
        _, user = await run_in_threadpool(self._writable, request, repo_type, repo_id)
        branch = _param(request, "rev") or DEFAULT_BRANCH
        branch = branch.removeprefix("refs/heads/")
        header: dict | None = None
        operations = []
        async for item in self._ndjson(request):
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif header is None:
                raise InvalidInput("The first commit line must be the header")
            else:
                operations.append(await self._operation(repo_type, repo_id, key, value))
        if header is None or not isinstance(header.get("summary"), str) or not header["summary"].strip():
            raise InvalidInput("Missing commit header with a non-empty 'summary'")
        if not isinstance(header.get("parentCommit"), (str, type(None))):
            raise InvalidInput("'parentCommit' must be a commit sha")
        new = await run_in_threadpool(
            functools.partial(
                self.store.commit,
                repo_type,
                repo_id,
                branch,
                operations,
                title=header["summary"],
                message=str(header.get("description") or ""),
                author=user,
                parent_commit=header.get("parentCommit"),
            )
        )
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "success": True,
                "commitOid": new.id,
                "commitUrl": f"{_repo_url(base, repo_type, repo_id)}/commit/{new.id}",
                "hookOutput": "",
            }
        )

    async def _operation(self, repo_type: str, repo_id: str, key: str, value: dict):
        """Turn one ndjson line into a store operation (storing inline file content)."""
        raw_path = value.get("path")
        if key == "deletedFolder" and isinstance(raw_path, str):
            raw_path = raw_path.rstrip("/")  # folders may be given as "dir/"
        path = validate_path(raw_path)
        if key == "file":
            data = _decode_content(value)
            entry = await run_in_threadpool(self.store.put_bytes, data)
            return AddFile(path, entry)
        if key == "lfsFile":
            oid = validate_sha256(value.get("oid"))
            if not await run_in_threadpool(self.store.has_lfs, repo_type, repo_id, oid):
                raise HubError(f"LFS object {oid} for {path} was not uploaded to this repository", status=422)
            size = self.store.blob_path(oid).stat().st_size
            if value.get("size") not in (None, size):
                raise InvalidInput(f"Size mismatch for LFS file {path}")
            return AddFile(path, FileEntry(oid=oid, size=size, lfs=True, blob=oid))
        if key == "deletedFile":
            return DeleteFile(path)
        if key == "deletedFolder":
            return DeleteFolder(path)
        raise InvalidInput(f"Unsupported commit operation {key!r}")

    # ------------------------------------------------------------------ git LFS

    async def lfs_batch(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        body = await self._json(request)
        if body.get("operation") != "upload":
            raise InvalidInput("Only the LFS 'upload' operation is supported; download files via /resolve")
        objects = body.get("objects")
        if not isinstance(objects, list):
            raise InvalidInput("'objects' must be a list")
        base = str(request.base_url).rstrip("/")
        answers = [await run_in_threadpool(self._lfs_object, base, repo_type, repo_id, o) for o in objects]
        return JSONResponse(
            {"transfer": "basic", "objects": answers, "hash_algo": "sha256"},
            media_type="application/vnd.git-lfs+json",
        )

    def _lfs_object(self, base: str, repo_type: str, repo_id: str, obj: object) -> dict:
        oid = obj.get("oid") if isinstance(obj, dict) else None
        size = obj.get("size") if isinstance(obj, dict) else None
        try:
            validate_sha256(oid)
            if not isinstance(size, int) or size < 0:
                raise InvalidInput("'size' must be a non-negative integer")
        except InvalidInput as exc:
            error = {"code": 422, "message": exc.message}
            return {"oid": str(oid), "size": size if isinstance(size, int) else 0, "error": error}
        if self.store.has_lfs(repo_type, repo_id, oid):
            return {"oid": oid, "size": size}  # no actions: the client skips the upload
        prefix = "/datasets" if repo_type == "dataset" else ""
        return {
            "oid": oid,
            "size": size,
            "authenticated": True,
            "actions": {
                "upload": {
                    "href": f"{base}/api/lfs-upload?ticket={self._ticket(repo_type, repo_id, oid, size)}",
                    "expires_in": LFS_TICKET_TTL_S,
                },
                "verify": {"href": f"{base}{prefix}/{repo_id}.git/info/lfs/objects/verify"},
            },
        }

    def _ticket(self, repo_type: str, repo_id: str, oid: str, size: int) -> str:
        """A signed, expiring upload capability: the client PUTs without any auth header."""
        payload = json.dumps([repo_type, repo_id, oid, size, int(time.time()) + LFS_TICKET_TTL_S]).encode()
        signature = hmac.new(self._ticket_key, payload, hashlib.sha256).hexdigest()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + signature

    def _read_ticket(self, ticket: str) -> tuple[str, str, str, int]:
        encoded, _, signature = ticket.partition(".")
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            payload = b""
        expected = hmac.new(self._ticket_key, payload, hashlib.sha256).hexdigest()
        if not payload or not hmac.compare_digest(expected.encode(), signature.encode()):
            raise HubError("Invalid upload ticket", status=403)
        repo_type, repo_id, oid, size, expires = json.loads(payload)
        if time.time() > expires:
            raise HubError("Upload ticket expired; ask the batch endpoint again", status=403)
        return repo_type, repo_id, oid, size

    async def lfs_upload(self, request: Request) -> Response:
        """Stream an LFS object to disk, verifying its sha256 and size before accepting it."""
        repo_type, repo_id, oid, size = self._read_ticket(request.query_params.get("ticket", ""))
        await run_in_threadpool(self.store.get_repo, repo_type, repo_id)  # still there?
        with self.store.start_upload(oid, size) as upload:
            async for chunk in request.stream():
                upload.write(chunk)
            await run_in_threadpool(upload.finish)
        await run_in_threadpool(self.store.link_lfs, repo_type, repo_id, oid)
        return JSONResponse({})

    async def lfs_verify(self, request: Request, repo_type: str) -> Response:
        repo_id = _repo_id(request)
        await run_in_threadpool(self._writable, request, repo_type, repo_id)
        body = await self._json(request)
        oid, size = validate_sha256(body.get("oid")), body.get("size")
        if not await run_in_threadpool(self.store.has_lfs, repo_type, repo_id, oid):
            raise HubError(f"LFS object {oid} not found", status=404)
        if size is not None and self.store.blob_path(oid).stat().st_size != size:
            raise HubError(f"LFS object {oid} has a different size", status=422)
        return JSONResponse({"message": "Object verified"})

    def xet_token(self, request: Request, repo_type: str) -> Response:
        raise HubError(
            "This local Hub has no Xet storage. Set HF_HUB_DISABLE_XET=1 before importing huggingface_hub"
            " so that large files are uploaded with classic Git LFS.",
            status=501,
        )


def _parse_ndjson_line(line: bytes) -> dict:
    try:
        item = json.loads(line)
    except ValueError:
        raise InvalidInput("Commit body is not valid ndjson") from None
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not isinstance(item.get("value"), dict):
        raise InvalidInput("Each commit line must be {key: str, value: object}")
    return item


def _decode_content(value: dict) -> bytes:
    content, encoding = value.get("content"), value.get("encoding", "base64")
    if not isinstance(content, str):
        raise InvalidInput("'content' must be a string")
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("'content' is not valid base64") from None
    if encoding in ("utf-8", "utf8", "text"):
        return content.encode()
    raise InvalidInput(f"Unsupported encoding {encoding!r}")


def _parse_paths_info_body(body: bytes, content_type: str) -> tuple[list[str], bool]:
    """``get_paths_info`` posts a form (``paths=a&paths=b&expand=False``); accept JSON too."""
    if "json" in content_type:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise InvalidInput("Request body is not valid JSON") from None
        paths, expand = data.get("paths", []), data.get("expand", False)
        paths = [paths] if isinstance(paths, str) else paths
        expand = expand if isinstance(expand, bool) else _truthy(str(expand))
    else:
        form = parse_qs(body.decode("utf-8", "replace"))
        paths, expand = form.get("paths", []), _truthy((form.get("expand") or ["false"])[0])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise InvalidInput("'paths' must be a list of strings")
    if len(paths) > 1000:
        raise HubError("Too many paths (at most 1000 per request)", status=413)
    return paths, expand


def _metadata_errors(content: str, repo_type: str) -> list[str]:
    """Problems in a README's YAML front matter, checked with huggingface_hub's card classes."""
    try:
        data = _front_matter(content)
    except yaml.YAMLError as exc:
        return [f"Invalid YAML in README.md metadata: {exc}"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["README.md metadata must be a YAML mapping"]
    try:  # optional, cheap: the same validation the client library applies when loading cards
        from huggingface_hub.repocard_data import DatasetCardData, ModelCardData
    except ImportError:
        return []
    card_class = DatasetCardData if repo_type == "dataset" else ModelCardData
    try:
        card_class(**data)
    except Exception as exc:  # any failure is a metadata problem to report, not a server error
        return [f"Invalid metadata: {exc}"]
    return []


def _routes(hub: _Hub) -> list[Route]:
    """All routes, in matching order.

    ``{api}`` stands for ``/api/{models|datasets}/<repo>`` and ``{web}`` for ``[/datasets]/<repo>``,
    with ``<repo>`` either ``{ns}/{name}`` or a legacy ``{name}``.  For each shape the
    two-segment form is tried first, and the bare info route comes last so that
    ``/api/models/a/refs`` means "refs of a", never "info of a/refs".  Action words
    (``refs``, ``tree``, ``resolve``...) are reserved repo names in the store, which keeps the
    remaining overlaps between the two forms unreachable.
    """
    per_repo = [
        ("{api}/revision/{rev}", hub.repo_info, ["GET"]),
        ("{api}/settings", hub.settings, ["PUT"]),
        ("{api}/tree/{rev}", hub.tree, ["GET"]),
        ("{api}/tree/{rev}/{path:path}", hub.tree, ["GET"]),
        ("{api}/paths-info/{rev}", hub.paths_info, ["POST"]),
        ("{api}/refs", hub.refs, ["GET"]),
        ("{api}/commits/{rev}", hub.commits, ["GET"]),
        ("{api}/branch/{ref}", hub.branch, ["POST", "DELETE"]),
        ("{api}/tag/{ref}", hub.tag, ["POST", "DELETE"]),
        ("{api}/preupload/{rev}", hub.preupload, ["POST"]),
        ("{api}/commit/{rev}", hub.commit, ["POST"]),
        ("{api}/xet-write-token/{rev}", hub.xet_token, ["GET"]),
        ("{api}/xet-read-token/{rev}", hub.xet_token, ["GET"]),
        ("{web}/resolve/{rev}/{path:path}", hub.resolve, ["GET"]),  # HEAD comes with GET
        ("{web}.git/info/lfs/objects/batch", hub.lfs_batch, ["POST"]),
        ("{web}.git/info/lfs/objects/verify", hub.lfs_verify, ["POST"]),
    ]
    routes = [
        Route("/api/whoami-v2", hub.whoami, methods=["GET"]),
        Route("/api/repos/create", hub.create_repo, methods=["POST"]),
        Route("/api/repos/delete", hub.delete_repo, methods=["DELETE"]),
        Route("/api/validate-yaml", hub.validate_yaml, methods=["POST"]),
        Route("/api/lfs-upload", hub.lfs_upload, methods=["PUT"]),
    ]
    # Dataset routes first: "/datasets/a/resolve/..." must not be read as the model "datasets/a".
    for repo_type, plural, web_prefix in (("dataset", "datasets", "/datasets"), ("model", "models", "")):
        for template, handler, methods in [*per_repo, ("{api}", hub.repo_info, ["GET"])]:
            for form in ("{ns}/{name}", "{name}"):
                path = template.replace("{api}", f"/api/{plural}/{form}").replace("{web}", f"{web_prefix}/{form}")
                routes.append(Route(path, functools.partial(handler, repo_type=repo_type), methods=methods))
    return routes


def create_app(
    root: str | Path,
    *,
    tokens: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_commit_bytes: int = DEFAULT_MAX_COMMIT_BYTES,
    lfs_threshold: int | None = DEFAULT_LFS_THRESHOLD,
    lfs_patterns: tuple[str, ...] = DEFAULT_LFS_PATTERNS,
):
    """Build the ASGI app serving the repositories stored under ``root``.

    ``tokens`` maps token -> user name; ``None`` uses the development table ``DEV_TOKENS``
    (``hf_local_test_token`` -> ``local-user``), meant for tests and local use only.
    Preupload answers "lfs" for files of ``lfs_threshold`` bytes or more (``None``: no size
    rule) and for file names matching ``lfs_patterns`` (fnmatch on the base name).
    """
    if tokens is None:
        logger.warning("Local Hub uses the built-in development token table (user 'local-user').")
        tokens = DEV_TOKENS
    hub = _Hub(
        HubStore(root),
        tokens,
        max_body_bytes=max_body_bytes,
        max_commit_bytes=max_commit_bytes,
        lfs_threshold=lfs_threshold,
        lfs_patterns=lfs_patterns,
    )
    app = Starlette(
        routes=_routes(hub),
        middleware=[Middleware(_SegmentPreservingPaths)],
        exception_handlers={HubError: _on_hub_error, HTTPException: _on_http_error, Exception: _on_unexpected},
    )
    app.state.hub = hub
    return app


_REDACT_TICKETS = _RedactTickets()


def _uvicorn_config(app, host: str, port: int, *, quiet: bool) -> uvicorn.Config:
    logging.getLogger("uvicorn.access").addFilter(_REDACT_TICKETS)  # adding it twice is a no-op
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        lifespan="off",
        timeout_keep_alive=30,
    )


def serve(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    tokens: Mapping[str, str] | None = None,
    **app_options,
) -> None:
    """Run the server in the foreground until interrupted."""
    uvicorn.Server(_uvicorn_config(create_app(root, tokens=tokens, **app_options), host, port, quiet=False)).run()


class LocalHub:
    """Run the server on a free 127.0.0.1 port in a background thread.

    >>> with LocalHub(tmp_path) as hub:
    ...     HfApi(endpoint=hub.endpoint, token="hf_local_test_token").whoami()
    """

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        tokens: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        middleware: Callable | None = None,
        **app_options,
    ):
        """``middleware`` wraps the ASGI app (the tests inject faults with it)."""
        self.root = Path(root)
        self._middleware = middleware
        self.host = host
        self.port = port
        self.tokens = dict(DEV_TOKENS if tokens is None else tokens)
        self._app_options = app_options
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> LocalHub:
        app = create_app(self.root, tokens=self.tokens, **self._app_options)
        if self._middleware is not None:
            app = self._middleware(app)
        # Bind ourselves so that port=0 gives us the real port before the server starts.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((self.host, self.port))
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(app, self.host, self.port, quiet=True))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="local-hub", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("Local Hub server failed to start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None


def main(argv: list[str] | None = None) -> None:
    """``python -m hubtransfer.localhub.server --root DIR [--port N]``; tokens from ``--token TOKEN=USER``."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--token", action="append", default=[], help="TOKEN=USER (repeatable)")
    parser.add_argument("--lfs-threshold", type=int, default=DEFAULT_LFS_THRESHOLD)
    args = parser.parse_args(argv)
    tokens = dict(item.split("=", 1) for item in args.token) or None
    serve(args.root, args.host, args.port, tokens=tokens, lfs_threshold=args.lfs_threshold)


if __name__ == "__main__":
    main()
