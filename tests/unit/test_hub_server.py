"""The local Hub server driven by the stock clients (huggingface_hub, transformers, datasets).

The server runs in a background thread on a free 127.0.0.1 port (``LocalHub``); every client
call goes over real HTTP.

What the tests had to change on the client side (see ``clients``):
* ``HF_ENDPOINT`` is copied into module constants when the libraries are imported, and other
  tests may have imported them already, so instead of the environment variable the tests
  patch ``huggingface_hub.constants.ENDPOINT`` / ``HUGGINGFACE_CO_URL_TEMPLATE``, the
  module-level ``huggingface_hub.hf_api.api.endpoint`` (used by ``create_repo``, ``create_commit``
  ... that transformers calls) and ``datasets.config.HF_ENDPOINT`` / ``HUB_DATASETS_URL``.
  ``HfApi`` objects get ``endpoint=`` explicitly.
* ``huggingface_hub.constants.HF_HUB_DISABLE_XET = True``: hf_xet is installed, and the client
  would send every LFS-mode file (``*.safetensors``, ``*.parquet``, files >= 10 MB) through Xet,
  which this server does not implement.  ``is_xet_available()`` reads the constant at call time.
* Caches (hub, datasets, token files) point into a temporary HF_HOME; tokens are always passed
  explicitly (``token=False`` for anonymous calls) so no stored token is picked up.
* Offline mode is switched off (``constants.HF_HUB_OFFLINE``, ``datasets.config.HF_HUB_OFFLINE``):
  tests/conftest.py sets ``HF_HUB_OFFLINE=1`` for the fast suite, and the libraries copy it at import.

Run with ``python -m pytest tests/unit/test_hub_server.py`` (``-m slow`` adds the 120 MB LFS test).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import OTHER_TOKEN, TOKEN, TOKENS
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubtransfer.localhub import server as hub_server
from hubtransfer.localhub.server import LocalHub
from hubtransfer.localhub.store import (
    AddFile,
    DeleteFile,
    HubStore,
    InvalidInput,
    validate_branch_name,
    validate_path,
    validate_repo_id,
)

MB = 1024 * 1024


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def api(hub, clients) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture
def cache_dir(tmp_path) -> str:
    return str(tmp_path / "download-cache")


def _new_repo(api: HfApi, name: str, **kwargs) -> str:
    return api.create_repo(f"local-user/{name}", **kwargs).repo_id


def _raw(hub: LocalHub, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """Send a request byte-for-byte (no client-side URL normalisation), return (status, headers, body)."""
    host = urlsplit(hub.endpoint)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()  # headers: case-insensitive
    finally:
        connection.close()


def _auth(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _post_commit(hub: LocalHub, repo_id: str, lines: list[dict], token: str = TOKEN):
    """POST a hand-written ndjson commit (for payloads the stock client refuses to build)."""
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    headers = {**_auth(token), "Content-Type": "application/x-ndjson"}
    return _raw(hub, "POST", f"/api/models/{repo_id}/commit/main", body, headers)


# ----------------------------------------------------------------------------- account & repos


def test_whoami_accepts_known_tokens_only(hub, clients, caplog):
    assert HfApi(endpoint=hub.endpoint, token=TOKEN).whoami()["name"] == "local-user"
    with pytest.raises(HfHubHTTPError) as info:
        HfApi(endpoint=hub.endpoint, token="hf_wrong_token_value").whoami()
    assert info.value.response.status_code == 401
    assert "hf_wrong_token_value" not in caplog.text


def test_create_repo_model_and_dataset_public_and_private(api):
    model = _new_repo(api, "create-model")
    private_dataset = api.create_repo("local-user/create-ds", repo_type="dataset", private=True)
    assert private_dataset.repo_type == "dataset" and private_dataset.repo_id == "local-user/create-ds"
    assert api.model_info(model).private is False
    assert api.dataset_info("local-user/create-ds").private is True
    # Model and dataset namespaces are separate: the same name can exist in both.
    assert api.create_repo("local-user/create-ds").repo_id == "local-user/create-ds"

    with pytest.raises(HfHubHTTPError) as info:
        api.create_repo(model)
    assert info.value.response.status_code == 409
    assert api.create_repo(model, exist_ok=True).repo_id == model  # relies on the 409


def test_create_repo_in_another_users_namespace_is_forbidden(api):
    with pytest.raises(HfHubHTTPError) as info:
        api.create_repo("other-user/not-mine")
    assert info.value.response.status_code == 403


def test_delete_repo(api):
    repo_id = _new_repo(api, "to-delete", repo_type="dataset")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, repo_type="dataset")
    api.delete_repo(repo_id, repo_type="dataset")
    assert not api.repo_exists(repo_id, repo_type="dataset")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(repo_id, repo_type="dataset")
    api.delete_repo(repo_id, repo_type="dataset", missing_ok=True)


# ----------------------------------------------------------------------------- uploads & downloads


def test_upload_file_and_download(hub, api, cache_dir):
    repo_id = _new_repo(api, "small-file")
    commit = api.upload_file(path_or_fileobj=b"hello world\n", path_in_repo="docs/hello.txt", repo_id=repo_id)
    assert commit.oid == api.model_info(repo_id).sha

    path = hf_hub_download(repo_id, "docs/hello.txt", endpoint=hub.endpoint, token=TOKEN, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b"hello world\n"

    status, headers, _ = _raw(hub, "HEAD", f"/{repo_id}/resolve/main/docs/hello.txt")
    assert status == 200
    assert headers["X-Repo-Commit"] == commit.oid
    git_sha1 = hashlib.sha1(b"blob 12\x00hello world\n").hexdigest()
    assert headers["ETag"] == f'"{git_sha1}"'
    assert headers["Content-Length"] == "12"
    assert "X-Linked-Etag" not in headers

    status, headers, body = _raw(hub, "GET", f"/{repo_id}/resolve/main/docs/hello.txt", headers={"Range": "bytes=6-10"})
    assert (status, body) == (206, b"world")


def test_upload_folder_snapshot_tree_and_info(hub, api, tmp_path, cache_dir):
    repo_id = _new_repo(api, "folder")
    folder = tmp_path / "folder"
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\ntags:\n- local\n---\n# Model\n")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (folder / "sub" / "a.txt").write_text("a")
    (folder / "sub" / "deeper" / "b.txt").write_text("b")
    api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="add folder")

    files = ["README.md", "config.json", "sub/a.txt", "sub/deeper/b.txt"]
    assert sorted(api.list_repo_files(repo_id)) == files
    top = {item.path: type(item).__name__ for item in api.list_repo_tree(repo_id)}
    assert top == {"README.md": "RepoFile", "config.json": "RepoFile", "sub": "RepoFolder"}
    assert [i.path for i in api.list_repo_tree(repo_id, path_in_repo="sub")] == ["sub/a.txt", "sub/deeper"]
    expanded = list(api.list_repo_tree(repo_id, path_in_repo="sub", expand=True))
    assert all(i.last_commit.title == "add folder" for i in expanded)

    info = api.model_info(repo_id, files_metadata=True)
    assert sorted(s.rfilename for s in info.siblings) == files
    assert info.card_data["license"] == "mit" and info.tags == ["local"]
    assert info.config == {"model_type": "bert", "architectures": ["BertModel"]}
    assert [c.title for c in api.list_repo_commits(repo_id)] == ["add folder", "initial commit"]

    local = Path(snapshot_download(repo_id, endpoint=hub.endpoint, token=TOKEN, cache_dir=cache_dir))
    assert (local / "sub" / "deeper" / "b.txt").read_text() == "b"
    assert (local / "README.md").read_text().startswith("---")


def test_tree_pagination_follows_link_header(api, monkeypatch):
    repo_id = _new_repo(api, "paged")
    operations = [CommitOperationAdd(f"f{i}.txt", str(i).encode()) for i in range(5)]
    api.create_commit(repo_id, operations, commit_message="five files")
    monkeypatch.setattr(hub_server, "TREE_PAGE_SIZE", 2)
    assert sorted(i.path for i in api.list_repo_tree(repo_id)) == [f"f{i}.txt" for i in range(5)]


def test_delete_operations_and_paths_info(api, tmp_path):
    repo_id = _new_repo(api, "deletes")
    for rel in ("keep/x.txt", "keep/y.txt", "drop/z.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    api.upload_folder(folder_path=tmp_path, repo_id=repo_id)
    api.delete_file("keep/x.txt", repo_id=repo_id)
    api.delete_folder("drop", repo_id=repo_id)
    assert api.list_repo_files(repo_id) == ["keep/y.txt"]
    infos = api.get_paths_info(repo_id, ["keep", "keep/y.txt", "missing.txt"])
    assert [(type(i).__name__, i.path) for i in infos] == [("RepoFolder", "keep"), ("RepoFile", "keep/y.txt")]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("keep/x.txt", repo_id=repo_id)


def _check_lfs_roundtrip(hub: LocalHub, api: HfApi, name: str, size: int, tmp_path: Path, cache_dir: str):
    repo_id = _new_repo(api, name)
    big = tmp_path / "weights.dat"
    chunk = os.urandom(MB)
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        for index in range(size // MB):
            block = chunk[:-1] + bytes([index % 256])  # distinct blocks, cheap to generate
            f.write(block)
            digest.update(block)
    api.upload_file(path_or_fileobj=str(big), path_in_repo="weights.dat", repo_id=repo_id)

    (entry,) = api.list_repo_tree(repo_id)
    assert entry.lfs is not None and entry.lfs.sha256 == digest.hexdigest() and entry.size == size
    status, headers, _ = _raw(hub, "HEAD", f"/{repo_id}/resolve/main/weights.dat")
    assert status == 200
    assert headers["X-Linked-Etag"] == f'"{digest.hexdigest()}"' == headers["ETag"]
    assert headers["X-Linked-Size"] == str(size)

    path = hf_hub_download(repo_id, "weights.dat", endpoint=hub.endpoint, token=TOKEN, cache_dir=cache_dir)
    with open(path, "rb") as f:
        assert hashlib.file_digest(f, "sha256").hexdigest() == digest.hexdigest()


def test_lfs_upload_20mb(hub, api, tmp_path, cache_dir):
    _check_lfs_roundtrip(hub, api, "lfs-20mb", 20 * MB, tmp_path, cache_dir)


@pytest.mark.slow
def test_lfs_upload_120mb(hub, api, tmp_path, cache_dir):
    _check_lfs_roundtrip(hub, api, "lfs-120mb", 120 * MB, tmp_path, cache_dir)


def test_lfs_put_is_verified_and_signed(hub, api):
    repo_id = _new_repo(api, "lfs-raw")
    data = b"x" * 1000
    oid = hashlib.sha256(data).hexdigest()
    batch = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": len(data)}]}
    status, _, body = _raw(hub, "POST", f"/{repo_id}.git/info/lfs/objects/batch", json.dumps(batch).encode(), _auth())
    assert status == 200
    href = urlsplit(json.loads(body)["objects"][0]["actions"]["upload"]["href"])
    target = f"{href.path}?{href.query}"

    assert _raw(hub, "PUT", target, b"y" * 1000)[0] == 400  # wrong content
    assert _raw(hub, "PUT", target, data + b"!")[0] == 400  # longer than announced
    assert _raw(hub, "PUT", target[:-3] + "000", data)[0] == 403  # tampered signature
    assert _raw(hub, "PUT", target, data)[0] == 200
    status, _, body = _raw(hub, "POST", f"/{repo_id}.git/info/lfs/objects/batch", json.dumps(batch).encode(), _auth())
    assert "actions" not in json.loads(body)["objects"][0]  # already uploaded


def test_lfs_object_of_another_repo_cannot_be_committed(hub, api):
    """Blobs are shared on disk, but a repo may only reference LFS objects uploaded to it."""
    source = _new_repo(api, "lfs-source", private=True)
    api.upload_file(path_or_fileobj=b"secret weights", path_in_repo="w.bin", repo_id=source)
    oid = hashlib.sha256(b"secret weights").hexdigest()
    thief = HfApi(endpoint=hub.endpoint, token=OTHER_TOKEN)
    target = thief.create_repo("other-user/lfs-thief").repo_id
    lines = [
        {"key": "header", "value": {"summary": "steal"}},
        {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid}},
    ]
    assert _post_commit(hub, target, lines, token=OTHER_TOKEN)[0] == 422


def test_xet_token_endpoint_explains_itself(hub, api):
    repo_id = _new_repo(api, "xet")
    status, _headers, body = _raw(hub, "GET", f"/api/models/{repo_id}/xet-write-token/main", headers=_auth())
    assert status == 501 and "HF_HUB_DISABLE_XET" in json.loads(body)["error"]


# ----------------------------------------------------------------------------- branches & commits


def test_branches_refs_and_download_from_branch(hub, api, cache_dir):
    repo_id = _new_repo(api, "branches")
    first = api.upload_file(path_or_fileobj=b"first", path_in_repo="which.txt", repo_id=repo_id)
    api.upload_file(path_or_fileobj=b"main", path_in_repo="which.txt", repo_id=repo_id)
    api.create_branch(repo_id, branch="old", revision=first.oid)  # startingPoint
    for branch in ("dev", "feature/x"):  # the slash travels as %2F in URLs
        api.create_branch(repo_id, branch=branch)
        api.upload_file(path_or_fileobj=branch.encode(), path_in_repo="which.txt", repo_id=repo_id, revision=branch)
    api.create_branch(repo_id, branch="dev", exist_ok=True)
    with pytest.raises(HfHubHTTPError):
        api.create_branch(repo_id, branch="dev")
    api.create_tag(repo_id, tag="v1", revision="dev")

    refs = api.list_repo_refs(repo_id)
    assert sorted(b.name for b in refs.branches) == ["dev", "feature/x", "main", "old"]
    assert [t.name for t in refs.tags] == ["v1"]
    expectations = {"main": b"main", "dev": b"dev", "feature/x": b"feature/x", "v1": b"dev", "old": b"first"}
    for revision, expected in expectations.items():
        path = hf_hub_download(
            repo_id, "which.txt", revision=revision, endpoint=hub.endpoint, token=TOKEN, cache_dir=cache_dir
        )
        assert Path(path).read_bytes() == expected

    api.delete_branch(repo_id, branch="feature/x")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo_id, revision="feature/x")
    with pytest.raises(HfHubHTTPError) as info:
        api.delete_branch(repo_id, branch="main")
    assert info.value.response.status_code == 403


def test_parent_commit_conflict(api):
    repo_id = _new_repo(api, "parent")
    first = api.upload_file(path_or_fileobj=b"1", path_in_repo="n.txt", repo_id=repo_id)
    api.create_commit(repo_id, [CommitOperationAdd("n.txt", b"2")], commit_message="2", parent_commit=first.oid)
    with pytest.raises(HfHubHTTPError) as info:
        api.create_commit(repo_id, [CommitOperationAdd("n.txt", b"3")], commit_message="3", parent_commit=first.oid)
    assert info.value.response.status_code == 412
    assert next(c.title for c in api.list_repo_commits(repo_id)) == "2"  # the rejected commit left no trace


def test_commit_without_changes_is_still_created(hub, api):
    repo_id = _new_repo(api, "empty-commit")
    before = api.model_info(repo_id).sha
    status, _, answer = _post_commit(hub, repo_id, [{"key": "header", "value": {"summary": "nothing"}}])
    assert status == 200
    assert json.loads(answer)["commitOid"] == api.model_info(repo_id).sha != before


def test_missing_entries_revisions_and_repos(hub, api, cache_dir):
    repo_id = _new_repo(api, "errors")
    for path, code in [
        (f"/{repo_id}/resolve/main/adapter_config.json", "EntryNotFound"),
        (f"/{repo_id}/resolve/nope/config.json", "RevisionNotFound"),
        ("/local-user/does-not-exist/resolve/main/config.json", "RepoNotFound"),
    ]:
        status, headers, _ = _raw(hub, "HEAD", path, headers=_auth())
        assert (status, headers.get("X-Error-Code")) == (404, code)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "adapter_config.json", endpoint=hub.endpoint, token=TOKEN, cache_dir=cache_dir)
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files(repo_id, revision="nope")


# ----------------------------------------------------------------------------- access control & validation


def test_private_repo_needs_the_owners_token(hub, api, cache_dir):
    repo_id = _new_repo(api, "secret", private=True)
    api.upload_file(path_or_fileobj=b"s3cr3t", path_in_repo="secret.txt", repo_id=repo_id)

    for token in (False, "hf_wrong_token"):
        headers = _auth(token) if token else {}
        status, headers, _ = _raw(hub, "HEAD", f"/{repo_id}/resolve/main/secret.txt", headers=headers)
        assert (status, headers.get("X-Error-Code")) == (401, "RepoNotFound")
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.endpoint, token=token).model_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(repo_id, "secret.txt", endpoint=hub.endpoint, token=token, cache_dir=cache_dir)
    with pytest.raises(RepositoryNotFoundError) as info:
        HfApi(endpoint=hub.endpoint, token=OTHER_TOKEN).model_info(repo_id)
    assert info.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=hub.endpoint, token=False).upload_file(path_or_fileobj=b"x", path_in_repo="x", repo_id=repo_id)

    path = hf_hub_download(repo_id, "secret.txt", endpoint=hub.endpoint, token=TOKEN, cache_dir=cache_dir)
    assert Path(path).read_bytes() == b"s3cr3t"

    api.update_repo_settings(repo_id, private=False)
    assert HfApi(endpoint=hub.endpoint, token=False).list_repo_files(repo_id) == ["secret.txt"]


def test_public_repo_is_read_only_for_other_users(hub, api):
    repo_id = _new_repo(api, "public-ro")
    other = HfApi(endpoint=hub.endpoint, token=OTHER_TOKEN)
    assert other.list_repo_files(repo_id) == []
    with pytest.raises(HfHubHTTPError) as info:
        other.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert info.value.response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/local-user/escape/resolve/main/../../../etc/passwd",
        "/local-user/escape/resolve/main/%2E%2E/%2E%2E/meta.json",
        "/local-user/escape/resolve/main/a%5Cb",
        "/local-user/escape/resolve/main/a//b",
        "/local-user/../resolve/main/config.json",
        "/api/models/local-user/..",
        "/api/models/local-user/escape/tree/main/%2E%2E",
    ],
)
def test_dotdot_in_paths_and_repo_ids_is_refused(hub, api, path):
    api.create_repo("local-user/escape", exist_ok=True)
    status, _, body = _raw(hub, "GET", path, headers=_auth())
    assert status == 400, body
    assert "error" in json.loads(body)


def test_invalid_repo_names_and_commit_paths_are_refused(hub, api):
    for name in ("..", ".hidden", "-dash", "a" * 200, "bad/slash", "x.git"):
        body = json.dumps({"name": name, "organization": "local-user"}).encode()
        assert _raw(hub, "POST", "/api/repos/create", body, _auth())[0] == 400, name
    repo_id = _new_repo(api, "bad-paths")
    for bad in ("../x", "a/../../x", "/abs", "a\\b", "a//b", ".git/config"):
        add = {"key": "file", "value": {"path": bad, "content": "", "encoding": "base64"}}
        assert _post_commit(hub, repo_id, [{"key": "header", "value": {"summary": "s"}}, add])[0] == 400, bad


def test_body_size_limits(tmp_path, clients):
    with LocalHub(tmp_path / "limited", tokens=TOKENS, max_body_bytes=1024, max_commit_bytes=4096) as small:
        api = HfApi(endpoint=small.endpoint, token=TOKEN)
        repo_id = api.create_repo("local-user/limits").repo_id
        status, _, _ = _raw(small, "POST", "/api/validate-yaml", b'{"content": "' + b"x" * 2000 + b'"}', _auth())
        assert status == 413
        with pytest.raises(HfHubHTTPError) as info:
            api.upload_file(path_or_fileobj=b"z" * 5000, path_in_repo="big.txt", repo_id=repo_id)
        assert info.value.response.status_code == 413


def test_validate_yaml_reports_bad_metadata(api):
    repo_id = _new_repo(api, "yaml")
    with pytest.raises(ValueError, match="Invalid metadata"):
        api.upload_file(path_or_fileobj=b"---\nfoo: [unclosed\n---\n", path_in_repo="README.md", repo_id=repo_id)


# ----------------------------------------------------------------------------- store internals


def test_store_validators():
    assert validate_repo_id("ns/name-1.0_x") == "ns/name-1.0_x"
    assert validate_path("a/b.c") == "a/b.c"
    for bad in ("..", "ns/..", "ns/.x", "-a", "a/b/c", "", "a" * 100, "datasets/x", "a/refs"):
        with pytest.raises(InvalidInput):
            validate_repo_id(bad)
    assert validate_branch_name("feature/x-1.0") == "feature/x-1.0"
    for bad in (".x", "a..b", "a/.b", "refs/heads/x", "x.lock", "0" * 40, "a b"):
        with pytest.raises(InvalidInput):
            validate_branch_name(bad)
    for bad in ("", "/a", "a/../b", "a\\b", "a\x00b", "a//b", "./a", ".git/x"):
        with pytest.raises(InvalidInput):
            validate_path(bad)


def test_store_crash_during_commit_keeps_previous_revision(tmp_path, monkeypatch):
    store = HubStore(tmp_path)
    store.create_repo("model", "u/r", private=False, owner="u")
    first = store.commit("model", "u/r", "main", [AddFile("a.txt", store.put_bytes(b"a"))], title="a")

    real_replace = os.replace

    def crash_on_refs(src, dst):
        if str(dst).endswith("refs.json"):
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_refs)
    with pytest.raises(OSError):
        store.commit("model", "u/r", "main", [DeleteFile("a.txt")], title="delete")
    monkeypatch.undo()
    assert store.resolve_revision("model", "u/r", "main") == first.id
    assert list(store.commit_at("model", "u/r", "main").files) == ["a.txt"]
    assert list((tmp_path / "tmp").glob("*.json")) == []


# ----------------------------------------------------------------------------- transformers & datasets


def test_transformers_push_to_hub_and_from_pretrained(hub, clients, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModel, BertConfig, BertModel

    config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    model = BertModel(config)
    model.push_to_hub("local-user/tiny-bert", token=TOKEN, private=True)

    loaded_config = AutoConfig.from_pretrained("local-user/tiny-bert", token=TOKEN, cache_dir=tmp_path)
    assert loaded_config.hidden_size == 16
    loaded = AutoModel.from_pretrained("local-user/tiny-bert", token=TOKEN, cache_dir=tmp_path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name


def test_datasets_push_to_hub_and_load_dataset(hub, clients, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.endpoint)
    template = hub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"
    monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL", template)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # copied from the env at import
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False, raising=False)
    for name in ("HF_DATASETS_CACHE", "HF_MODULES_CACHE", "DOWNLOADED_DATASETS_PATH", "EXTRACTED_DATASETS_PATH"):
        monkeypatch.setattr(datasets.config, name, tmp_path / name.lower())

    table = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    table.push_to_hub("local-user/tiny-dataset", token=TOKEN)
    loaded = datasets.load_dataset("local-user/tiny-dataset", cache_dir=str(tmp_path / "cache"), token=TOKEN)
    assert loaded["train"].to_dict() == {"text": ["a", "b", "c"], "label": [0, 1, 0]}
