"""Disk-backed, content-addressed repository storage for the local Hub server.

Layout under ``ROOT``::

    blobs/<aa>/<sha256>                  file contents, named by their sha256 (shared)
    tmp/                                 partial uploads and half-built repos
    repos/<models|datasets>/<ns>/<name>/ one directory per repository
        meta.json                        {type, id, private, owner, createdAt}
        refs.json                        {"branches": {name: sha}, "tags": {name: sha}}
        commits/<sha1>.json              commit manifests, named by the sha1 of their content
        lfs/<sha256>                     empty marker: this repo owns that LFS object
        lock                             flock()ed while refs are read-modified-written

Repo ids without a namespace (legacy ``name``) live under ``repos/<type>s/@/<name>``;
``@`` cannot appear in a valid namespace, so the two forms never collide.

Crash safety: every JSON file is written to a temporary file and moved into place with
``os.replace``.  A commit first stores its blobs, then its manifest, and only then swaps
``refs.json``; a crash at any earlier point leaves the previous revision in place (with at
most some unreferenced objects behind).

Isolation: blobs are shared between repositories, but a commit may only reference an LFS
object that was uploaded *to that repository* (or is already in its history), recorded by a
marker under ``lfs/``.  Without that rule anyone who knows the sha256 of a file in a private
repo could link it into their own repo and download it.  Commits are stored per repository
for the same reason: a revision given as a sha only resolves inside its own repo.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_TYPES = ("model", "dataset")
DEFAULT_BRANCH = "main"

# Namespaces that collide with URL prefixes of the Hub (``/datasets/...``, ``/api/...``).
RESERVED_NAMESPACES = frozenset({"api", "datasets", "models", "spaces", "buckets", "new", "settings", "docs"})
# Repo names that are also action words in API URLs: ``/api/models/a/refs`` must mean one thing.
RESERVED_NAMES = frozenset(
    {
        "refs",
        "tree",
        "revision",
        "commit",
        "commits",
        "preupload",
        "branch",
        "tag",
        "paths-info",
        "settings",
        "resolve",
        "xet-read-token",
        "xet-write-token",
    }
)

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_BRANCH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$")
MAX_NAMESPACE_LEN = 64
MAX_NAME_LEN = 96
MAX_PATH_LEN = 1024
MAX_REF_LEN = 200
_COPY_CHUNK = 1024 * 1024


class HubError(Exception):
    """An error that maps to an HTTP answer: status, Hub ``X-Error-Code`` and message."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.headers: dict[str, str] = {}  # extra response headers, e.g. X-Repo-Commit
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class InvalidInput(HubError):
    """Malformed repo id, path, revision or payload (400)."""


class RepoNotFound(HubError):
    status, code = 404, "RepoNotFound"


class RevisionNotFound(HubError):
    status, code = 404, "RevisionNotFound"


class EntryNotFound(HubError):
    status, code = 404, "EntryNotFound"


class Conflict(HubError):
    status = 409


class ParentCommitMismatch(HubError):
    """``parentCommit`` is not the head of the branch any more (the Hub answers 412)."""

    status = 412


# ----------------------------------------------------------------------------- validation


def validate_repo_type(repo_type: str | None) -> str:
    """Return ``model`` or ``dataset``; ``None`` means model, anything else is refused."""
    repo_type = repo_type or "model"
    if repo_type not in REPO_TYPES:
        raise InvalidInput(f"Unsupported repo type {repo_type!r}: this server hosts models and datasets only.")
    return repo_type


def _validate_segment(value: str, what: str, max_len: int) -> None:
    if not value or len(value) > max_len or not _NAME_RE.match(value) or ".." in value:
        raise InvalidInput(
            f"Invalid {what} {value!r}: use 1-{max_len} characters among [A-Za-z0-9._-], not starting with"
            " '.' or '-' and without '..'."
        )
    if value.endswith(".git"):
        # ``<repo>.git/info/lfs`` is the LFS route; a name ending in .git would be ambiguous.
        raise InvalidInput(f"Invalid {what} {value!r}: must not end with '.git'.")


def validate_repo_id(repo_id: str) -> str:
    """Check ``ns/name`` or legacy ``name``; return it unchanged or raise ``InvalidInput``."""
    if not isinstance(repo_id, str):
        raise InvalidInput("Repo id must be a string.")
    parts = repo_id.split("/")
    if len(parts) > 2:
        raise InvalidInput(f"Invalid repo id {repo_id!r}: expected 'namespace/name' or 'name'.")
    if len(parts) == 2:
        _validate_segment(parts[0], "namespace", MAX_NAMESPACE_LEN)
        if parts[0].lower() in RESERVED_NAMESPACES:
            raise InvalidInput(f"Invalid repo id {repo_id!r}: namespace {parts[0]!r} is reserved.")
    elif parts[0].lower() in RESERVED_NAMESPACES:
        raise InvalidInput(f"Invalid repo id {repo_id!r}: {parts[0]!r} is reserved.")
    _validate_segment(parts[-1], "repo name", MAX_NAME_LEN)
    if parts[-1].lower() in RESERVED_NAMES:
        raise InvalidInput(f"Invalid repo id {repo_id!r}: {parts[-1]!r} is reserved.")
    return repo_id


def validate_path(path: str) -> str:
    """Check a file path inside a repo (relative, POSIX, no ``..``/empty segments, no ``.git``)."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("File path must be a non-empty string.")
    if len(path) > MAX_PATH_LEN:
        raise InvalidInput(f"File path is longer than {MAX_PATH_LEN} characters.")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise InvalidInput(f"Invalid file path {path!r}: backslashes and control characters are not allowed.")
    if path.startswith("/"):
        raise InvalidInput(f"Invalid file path {path!r}: must be relative.")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput(f"Invalid file path {path!r}: empty, '.' or '..' segment.")
        if segment == ".git":
            raise InvalidInput(f"Invalid file path {path!r}: '.git' folders cannot be written.")
    return path


def validate_branch_name(name: str) -> str:
    """Check a new branch or tag name (a conservative subset of git's ref-name rules)."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_REF_LEN
        or not _BRANCH_RE.match(name)
        or ".." in name
        or "//" in name
        or "/." in name
        or name.endswith(("/", ".", ".lock"))
        or name.startswith("refs/")
        or _SHA1_RE.match(name)
    ):
        raise InvalidInput(f"Invalid reference name {name!r}.")
    return name


def validate_sha256(oid: str) -> str:
    """Check a lowercase hex sha256 (the LFS oid)."""
    if not isinstance(oid, str) or not _SHA256_RE.match(oid):
        raise InvalidInput(f"Invalid sha256 oid {oid!r}.")
    return oid


# ----------------------------------------------------------------------------- small helpers


def utc_now_iso() -> str:
    """Current time in the Hub's format, e.g. ``2024-05-01T12:00:00.123Z``."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a regular file (what the Hub uses as its ETag)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that git would store in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _write_json_atomic(path: Path, data: object, tmp_dir: Path) -> None:
    """Write JSON to a temp file in ``tmp_dir`` then ``os.replace`` it onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_json(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------------------- data classes


@dataclass(frozen=True)
class FileEntry:
    """One file of a commit: ``oid`` is the git sha1 (regular) or sha256 (LFS); ``blob`` is always sha256."""

    oid: str
    size: int
    lfs: bool
    blob: str

    def to_json(self) -> dict:
        return {"oid": self.oid, "size": self.size, "lfs": self.lfs, "blob": self.blob}

    @classmethod
    def from_json(cls, data: dict) -> FileEntry:
        return cls(oid=data["oid"], size=int(data["size"]), lfs=bool(data["lfs"]), blob=data["blob"])

    @property
    def git_oid(self) -> str:
        """What ``git`` would call this file: the pointer's sha1 for LFS files."""
        return git_blob_sha1(lfs_pointer(self.blob, self.size)) if self.lfs else self.oid


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot of a repository."""

    id: str
    parent: str | None
    title: str
    message: str
    author: str | None
    time: str
    files: dict[str, FileEntry] = field(repr=False)

    def body(self) -> dict:
        return {
            "parent": self.parent,
            "title": self.title,
            "message": self.message,
            "author": self.author,
            "time": self.time,
            "files": {path: entry.to_json() for path, entry in sorted(self.files.items())},
        }


@dataclass(frozen=True)
class RepoMeta:
    """Repository settings (``meta.json``)."""

    repo_type: str
    repo_id: str
    private: bool
    owner: str | None
    created: str

    @property
    def namespace(self) -> str | None:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else None

    def to_json(self) -> dict:
        return {
            "type": self.repo_type,
            "id": self.repo_id,
            "private": self.private,
            "owner": self.owner,
            "createdAt": self.created,
        }


@dataclass(frozen=True)
class AddFile:
    """Commit operation: point ``path`` at an already stored blob."""

    path: str
    entry: FileEntry


@dataclass(frozen=True)
class DeleteFile:
    path: str


@dataclass(frozen=True)
class DeleteFolder:
    path: str


Operation = AddFile | DeleteFile | DeleteFolder


@dataclass(frozen=True)
class TreeEntry:
    """A file or folder as listed by the tree endpoint."""

    path: str
    is_dir: bool
    oid: str
    size: int
    entry: FileEntry | None = None


# ----------------------------------------------------------------------------- blob upload


class BlobUpload:
    """Stream bytes into a temp file, then adopt it as a blob once its sha256 and size match.

    Memory stays bounded by the chunk size whatever the file size.
    """

    def __init__(self, store: HubStore, expected_sha256: str, expected_size: int):
        self._store = store
        self.expected_sha256 = validate_sha256(expected_sha256)
        self.expected_size = expected_size
        self._hash = hashlib.sha256()
        self.size = 0
        fd, self._tmp = tempfile.mkstemp(dir=store.tmp_dir, suffix=".upload")
        self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        """Append a chunk; refuse to grow past the announced size."""
        self.size += len(chunk)
        if self.size > self.expected_size:
            raise InvalidInput(f"Upload is larger than the announced {self.expected_size} bytes.")
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> str:
        """Verify size and hash, move the file into ``blobs/`` and return the sha256."""
        self._file.flush()
        os.fsync(self._file.fileno())  # the blob must be on disk before a commit can point at it
        self._file.close()
        digest = self._hash.hexdigest()
        if self.size != self.expected_size:
            raise InvalidInput(f"Upload has {self.size} bytes, expected {self.expected_size}.")
        if digest != self.expected_sha256:
            raise InvalidInput(f"Upload sha256 {digest} does not match the expected oid {self.expected_sha256}.")
        self._store._adopt_blob(Path(self._tmp), digest)
        return digest

    def abort(self) -> None:
        """Drop the partial upload."""
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __enter__(self) -> BlobUpload:
        return self

    def __exit__(self, *exc_info) -> None:
        self.abort()  # after finish() the temp file is gone already, so this is a no-op


# ----------------------------------------------------------------------------- the store


class HubStore:
    """All repositories of one local Hub, rooted at ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.repos_dir = self.root / "repos"
        for folder in (self.blobs_dir, self.tmp_dir, self.repos_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._sweep_tmp()

    def _sweep_tmp(self, max_age_s: float = 24 * 3600) -> None:
        """Drop leftovers of crashed uploads/commits (old enough not to belong to a live one)."""
        cutoff = time.time() - max_age_s
        for leftover in self.tmp_dir.iterdir():
            with contextlib.suppress(OSError):
                if leftover.lstat().st_mtime < cutoff:
                    if leftover.is_dir() and not leftover.is_symlink():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink()

    # ------------------------------------------------------------------ blobs

    def blob_path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (validated, so it cannot leave ``blobs/``)."""
        validate_sha256(sha256)
        return self.blobs_dir / sha256[:2] / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def _adopt_blob(self, tmp: Path, sha256: str) -> None:
        """Move a verified temp file into place (or drop it if the blob already exists)."""
        target = self.blob_path(sha256)
        if target.exists():
            tmp.unlink()
            return
        target.parent.mkdir(exist_ok=True)
        os.replace(tmp, target)

    def put_bytes(self, data: bytes) -> FileEntry:
        """Store an in-memory file as a regular (non-LFS) entry."""
        sha256 = hashlib.sha256(data).hexdigest()
        if not self.has_blob(sha256):
            fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, suffix=".blob")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._adopt_blob(Path(tmp), sha256)
        return FileEntry(oid=git_blob_sha1(data), size=len(data), lfs=False, blob=sha256)

    def start_upload(self, sha256: str, size: int) -> BlobUpload:
        """Begin a streamed LFS upload; use as a context manager and call ``finish()``."""
        if not isinstance(size, int) or size < 0:
            raise InvalidInput("Upload size must be a non-negative integer.")
        return BlobUpload(self, sha256, size)

    def read_blob_bytes(self, sha256: str, limit: int) -> bytes | None:
        """Small blobs only (README, config.json); ``None`` if larger than ``limit``."""
        path = self.blob_path(sha256)
        if path.stat().st_size > limit:
            return None
        return path.read_bytes()

    # ------------------------------------------------------------------ repos

    def repo_dir(self, repo_type: str, repo_id: str) -> Path:
        """Directory of a repository; ids are validated so the result stays under ``repos/``."""
        repo_type = validate_repo_type(repo_type)
        validate_repo_id(repo_id)
        namespace, _, name = repo_id.rpartition("/")
        return self.repos_dir / f"{repo_type}s" / (namespace or "@") / name

    def _existing_repo_dir(self, repo_type: str, repo_id: str) -> Path:
        folder = self.repo_dir(repo_type, repo_id)
        if not (folder / "meta.json").is_file():
            raise RepoNotFound(f"Repository {repo_type}s/{repo_id} not found.")
        return folder

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool, owner: str | None) -> RepoMeta:
        """Create a repo with an empty initial commit on ``main``; ``Conflict`` if it exists."""
        final = self.repo_dir(repo_type, repo_id)
        if final.exists():
            raise Conflict(f"You already created this {repo_type} repo: {repo_id}")
        meta = RepoMeta(repo_type, repo_id, bool(private), owner, utc_now_iso())
        staging = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="repo-"))
        try:
            (staging / "commits").mkdir()
            (staging / "lfs").mkdir()
            (staging / "lock").touch()
            initial = self._build_commit(None, "initial commit", "", owner, {})
            _write_json_atomic(staging / "commits" / f"{initial.id}.json", initial.body(), self.tmp_dir)
            _write_json_atomic(staging / "meta.json", meta.to_json(), self.tmp_dir)
            _write_json_atomic(
                staging / "refs.json", {"branches": {DEFAULT_BRANCH: initial.id}, "tags": {}}, self.tmp_dir
            )
            final.parent.mkdir(parents=True, exist_ok=True)
            # rename() of a directory is atomic, and fails if a (non-empty) repo appeared meanwhile.
            os.rename(staging, final)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if final.exists():
                raise Conflict(f"You already created this {repo_type} repo: {repo_id}") from exc
            raise
        return meta

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        """Remove a repo: its refs, commits and LFS links (shared blobs stay until a GC)."""
        folder = self._existing_repo_dir(repo_type, repo_id)
        trash = self.tmp_dir / f"deleted-{uuid.uuid4().hex}"
        os.rename(folder, trash)  # atomic: readers see the repo either whole or gone
        shutil.rmtree(trash, ignore_errors=True)

    def get_repo(self, repo_type: str, repo_id: str) -> RepoMeta:
        """Read ``meta.json`` or raise ``RepoNotFound``."""
        data = _read_json(self._existing_repo_dir(repo_type, repo_id) / "meta.json")
        return RepoMeta(data["type"], data["id"], bool(data["private"]), data.get("owner"), data["createdAt"])

    def set_private(self, repo_type: str, repo_id: str, private: bool) -> RepoMeta:
        """Change the visibility of a repo."""
        folder = self._existing_repo_dir(repo_type, repo_id)
        with self._locked(folder):
            meta = self.get_repo(repo_type, repo_id)
            meta = RepoMeta(meta.repo_type, meta.repo_id, bool(private), meta.owner, meta.created)
            _write_json_atomic(folder / "meta.json", meta.to_json(), self.tmp_dir)
        return meta

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        """Serialise writers of one repo, across threads and processes (a fresh fd per holder)."""
        with open(folder / "lock", "a+b") as lock_file:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------------ LFS ownership

    def link_lfs(self, repo_type: str, repo_id: str, sha256: str) -> None:
        """Record that this repo received (and verified) the LFS object ``sha256``."""
        folder = self._existing_repo_dir(repo_type, repo_id)
        (folder / "lfs" / validate_sha256(sha256)).touch()

    def has_lfs(self, repo_type: str, repo_id: str, sha256: str) -> bool:
        """Whether this repo may reference the LFS object ``sha256``."""
        folder = self._existing_repo_dir(repo_type, repo_id)
        return (folder / "lfs" / validate_sha256(sha256)).exists() and self.has_blob(sha256)

    # ------------------------------------------------------------------ refs

    def refs(self, repo_type: str, repo_id: str) -> dict[str, dict[str, str]]:
        """``{"branches": {name: sha}, "tags": {name: sha}}``."""
        return _read_json(self._existing_repo_dir(repo_type, repo_id) / "refs.json")

    def resolve_revision(self, repo_type: str, repo_id: str, revision: str | None) -> str:
        """Branch, tag, ``refs/heads/x``, ``refs/tags/x`` or a full commit sha of this repo."""
        revision = revision or DEFAULT_BRANCH
        refs = self.refs(repo_type, repo_id)
        if revision.startswith("refs/heads/"):
            found = refs["branches"].get(revision[len("refs/heads/") :])
        elif revision.startswith("refs/tags/"):
            found = refs["tags"].get(revision[len("refs/tags/") :])
        else:
            found = refs["branches"].get(revision) or refs["tags"].get(revision)
        if found is None and _SHA1_RE.match(revision) and self._commit_path(repo_type, repo_id, revision).is_file():
            found = revision
        if found is None:
            raise RevisionNotFound(f"Invalid rev id: {revision}")
        return found

    def create_branch(self, repo_type: str, repo_id: str, branch: str, starting_point: str | None = None) -> str:
        """Create ``branch`` at ``starting_point`` (default: head of main); return its commit."""
        return self._create_ref(repo_type, repo_id, "branches", branch, starting_point)

    def create_tag(self, repo_type: str, repo_id: str, tag: str, revision: str | None = None) -> str:
        """Create ``tag`` at ``revision`` (default: head of main); return its commit."""
        return self._create_ref(repo_type, repo_id, "tags", tag, revision)

    def _create_ref(self, repo_type: str, repo_id: str, kind: str, name: str, target: str | None) -> str:
        validate_branch_name(name)
        folder = self._existing_repo_dir(repo_type, repo_id)
        with self._locked(folder):
            refs = self.refs(repo_type, repo_id)
            if name in refs[kind]:
                raise Conflict(f"Reference already exists: refs/{'heads' if kind == 'branches' else 'tags'}/{name}")
            sha = self.resolve_revision(repo_type, repo_id, target)
            refs[kind][name] = sha
            _write_json_atomic(folder / "refs.json", refs, self.tmp_dir)
        return sha

    def delete_branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        """Delete a branch other than ``main``."""
        if branch == DEFAULT_BRANCH:
            raise HubError(f"Cannot delete the default branch '{DEFAULT_BRANCH}'.", status=403)
        self._delete_ref(repo_type, repo_id, "branches", branch)

    def delete_tag(self, repo_type: str, repo_id: str, tag: str) -> None:
        self._delete_ref(repo_type, repo_id, "tags", tag)

    def _delete_ref(self, repo_type: str, repo_id: str, kind: str, name: str) -> None:
        folder = self._existing_repo_dir(repo_type, repo_id)
        with self._locked(folder):
            refs = self.refs(repo_type, repo_id)
            if refs[kind].pop(name, None) is None:
                raise RevisionNotFound(f"Invalid rev id: {name}")
            _write_json_atomic(folder / "refs.json", refs, self.tmp_dir)

    # ------------------------------------------------------------------ commits

    def _commit_path(self, repo_type: str, repo_id: str, sha: str) -> Path:
        if not _SHA1_RE.match(sha):
            raise RevisionNotFound(f"Invalid rev id: {sha}")
        return self.repo_dir(repo_type, repo_id) / "commits" / f"{sha}.json"

    def read_commit(self, repo_type: str, repo_id: str, sha: str) -> Commit:
        """Load a commit of this repo by its full sha."""
        try:
            data = _read_json(self._commit_path(repo_type, repo_id, sha))
        except FileNotFoundError:
            raise RevisionNotFound(f"Invalid rev id: {sha}") from None
        files = {path: FileEntry.from_json(entry) for path, entry in data["files"].items()}
        return Commit(sha, data["parent"], data["title"], data["message"], data["author"], data["time"], files)

    def commit_at(self, repo_type: str, repo_id: str, revision: str | None) -> Commit:
        """Resolve a revision and load its commit."""
        return self.read_commit(repo_type, repo_id, self.resolve_revision(repo_type, repo_id, revision))

    def history(self, repo_type: str, repo_id: str, sha: str, limit: int = 10_000) -> Iterator[Commit]:
        """Walk first parents from ``sha`` (newest first)."""
        current: str | None = sha
        while current is not None and limit > 0:
            commit = self.read_commit(repo_type, repo_id, current)
            yield commit
            current = commit.parent
            limit -= 1

    @staticmethod
    def _build_commit(parent: str | None, title: str, message: str, author: str | None, files: dict) -> Commit:
        draft = Commit("", parent, title, message, author, utc_now_iso(), files)
        body = json.dumps(draft.body(), sort_keys=True, separators=(",", ":")).encode()
        return Commit(hashlib.sha1(body).hexdigest(), parent, title, message, author, draft.time, files)

    def commit(
        self,
        repo_type: str,
        repo_id: str,
        branch: str,
        operations: Iterable[Operation],
        *,
        title: str,
        message: str = "",
        author: str | None = None,
        parent_commit: str | None = None,
    ) -> Commit:
        """Apply operations on top of ``branch`` and move the branch, atomically.

        Blobs must already be stored.  ``parent_commit`` (a sha or a >=5-char prefix) must be
        the current head, else ``ParentCommitMismatch``.  A commit without changes is still
        created, as the Hub does.
        """
        folder = self._existing_repo_dir(repo_type, repo_id)
        operations = list(operations)
        with self._locked(folder):
            refs = self.refs(repo_type, repo_id)
            head = refs["branches"].get(branch)
            if head is None:
                raise RevisionNotFound(f"Invalid rev id: {branch} (commits can only be made to an existing branch)")
            if parent_commit is not None and not _is_same_commit(head, parent_commit):
                raise ParentCommitMismatch("A commit has happened since. Please refresh and try again.")
            tree = _MutableTree(self.read_commit(repo_type, repo_id, head).files)
            for operation in operations:
                self._apply(repo_type, repo_id, tree, operation)
            files = tree.files
            new = self._build_commit(head, title, message, author, files)
            _write_json_atomic(folder / "commits" / f"{new.id}.json", new.body(), self.tmp_dir)
            refs["branches"][branch] = new.id
            _write_json_atomic(folder / "refs.json", refs, self.tmp_dir)  # the commit point
        return new

    def _apply(self, repo_type: str, repo_id: str, tree: _MutableTree, op: Operation) -> None:
        """Apply one operation to the tree being built."""
        if isinstance(op, AddFile):
            path = validate_path(op.path)
            if op.entry.lfs and not self.has_lfs(repo_type, repo_id, op.entry.blob):
                raise HubError(f"LFS object {op.entry.blob} was not uploaded to this repository.", status=422)
            tree.add(path, op.entry)
        elif isinstance(op, DeleteFile):
            tree.delete_file(validate_path(op.path))
        else:
            tree.delete_folder(validate_path(op.path.rstrip("/")))

    # ------------------------------------------------------------------ trees

    def list_tree(self, commit: Commit, path: str = "", *, recursive: bool = False) -> list[TreeEntry]:
        """Children of folder ``path`` ('' = root), folders included, sorted by path.

        Raises ``EntryNotFound`` when ``path`` is not a folder of the commit.
        """
        prefix = validate_path(path) + "/" if path else ""
        if path and not any(p.startswith(prefix) for p in commit.files):
            raise EntryNotFound(f"{path} does not exist on this revision (or is not a folder).")
        folders: dict[str, list[str]] = {}
        entries: list[TreeEntry] = []
        for file_path, entry in commit.files.items():
            if not file_path.startswith(prefix):
                continue
            rest = file_path[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                folder = prefix + "/".join(rest[:depth])
                folders.setdefault(folder, []).append(file_path)
            if recursive or len(rest) == 1:
                entries.append(TreeEntry(file_path, False, entry.git_oid, entry.size, entry))
        for folder, members in folders.items():
            if recursive or "/" not in folder[len(prefix) :]:
                entries.append(TreeEntry(folder, True, _folder_oid(commit.files, members), 0))
        return sorted(entries, key=lambda e: e.path)

    def path_info(self, commit: Commit, path: str) -> TreeEntry | None:
        """The file or folder at ``path``, or ``None``."""
        path = validate_path(path.rstrip("/"))
        entry = commit.files.get(path)
        if entry is not None:
            return TreeEntry(path, False, entry.git_oid, entry.size, entry)
        members = [p for p in commit.files if p.startswith(path + "/")]
        return TreeEntry(path, True, _folder_oid(commit.files, members), 0) if members else None

    def last_commits(self, repo_type: str, repo_id: str, head: Commit, paths: dict[str, bool]) -> dict[str, Commit]:
        """For each path (value: is a folder) find the newest commit that changed it."""
        pending = dict(paths)
        found: dict[str, Commit] = {}
        for commit in self.history(repo_type, repo_id, head.id, limit=2000):
            parent_files = self.read_commit(repo_type, repo_id, commit.parent).files if commit.parent else {}
            changed = {p for p in set(commit.files) | set(parent_files) if commit.files.get(p) != parent_files.get(p)}
            for path, is_dir in list(pending.items()):
                hit = any(c.startswith(path + "/") for c in changed) if is_dir else path in changed
                if hit:
                    found[path] = commit
                    del pending[path]
            if not pending:
                break
        return found


def _is_same_commit(head: str, parent: str) -> bool:
    parent = parent.lower()
    return len(parent) >= 5 and head.startswith(parent)


class _MutableTree:
    """A file map plus per-folder file counts, so file/folder clashes are checked in O(depth)."""

    def __init__(self, files: dict[str, FileEntry]):
        self.files = dict(files)
        self.folder_counts: dict[str, int] = {}
        for path in self.files:
            self._count(path, +1)

    def _count(self, path: str, delta: int) -> None:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            self.folder_counts[folder] = self.folder_counts.get(folder, 0) + delta

    def add(self, path: str, entry: FileEntry) -> None:
        """Add or replace a file; a path cannot be both a file and a folder."""
        if self.folder_counts.get(path, 0) > 0:
            raise Conflict(f"Cannot add {path}: a folder with this name exists.")
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in self.files:
                raise Conflict(f"Cannot add {path}: {'/'.join(parts[:depth])} is a file.")
        if path not in self.files:
            self._count(path, +1)
        self.files[path] = entry

    def delete_file(self, path: str) -> None:
        if self.files.pop(path, None) is None:
            raise EntryNotFound(f"A file with this name doesn't exist: {path}")
        self._count(path, -1)

    def delete_folder(self, path: str) -> None:
        if self.folder_counts.get(path, 0) <= 0:
            raise EntryNotFound(f"A folder with this name doesn't exist: {path}")
        prefix = path + "/"
        for doomed in [p for p in self.files if p.startswith(prefix)]:
            self.delete_file(doomed)


def _folder_oid(files: dict[str, FileEntry], members: list[str]) -> str:
    """A stable id for a folder's content (not git's tree hash, but changes exactly when it does)."""
    digest = hashlib.sha1()
    for path in sorted(members):
        digest.update(f"{path}\x00{files[path].git_oid}\n".encode())
    return digest.hexdigest()
