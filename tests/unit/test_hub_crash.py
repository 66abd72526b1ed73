"""SIGKILL of the local Hub in the middle of a large upload: the repo stays at its previous revision,
readable, and the retried push succeeds. Server and clients run as separate processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import TOKEN

from hubtransfer.localhub.env import local_env
from hubtransfer.localhub.local import start_hub, stop_hub

CLIENT = textwrap.dedent(
    """
    import json, sys
    from huggingface_hub import HfApi
    api = HfApi()
    cmd, repo = sys.argv[1], "local-user/crash"
    if cmd == "create":
        api.create_repo(repo, private=True)
        api.upload_file(path_or_fileobj=b"first", path_in_repo="a.txt", repo_id=repo)
    elif cmd == "upload":
        api.upload_file(path_or_fileobj=sys.argv[2], path_in_repo="big.bin", repo_id=repo)
    info = api.model_info(repo, files_metadata=True)
    print(json.dumps({"sha": info.sha, "files": sorted(s.rfilename for s in info.siblings)}))
    """
)


def _client(endpoint: str, home: Path, *args: str, wait: bool = True):
    env = local_env(endpoint, token=TOKEN, home=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def _wait_for_partial_upload(root: Path, min_bytes: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.stat().st_size >= min_bytes for p in (root / "tmp").glob("*.upload")):
            return
        time.sleep(0.01)
    raise AssertionError("the upload never got under way")


def test_sigkill_mid_upload_keeps_previous_revision(tmp_path):
    root, home = tmp_path / "hub", tmp_path / "home"
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:  # 600 MB: long enough on loopback to be caught half-way
        block = os.urandom(1 << 20)
        for _ in range(600):
            f.write(block)
    server, endpoint = start_hub(root, tmp_path / "server1.log")
    try:
        before = _client(endpoint, home, "create")
        uploader = _client(endpoint, home, "upload", str(big), wait=False)
        _wait_for_partial_upload(root, 20 << 20)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        uploader.communicate(timeout=300)
        assert uploader.returncode != 0  # the client saw the server die
    finally:
        stop_hub(server)
    server, endpoint = start_hub(root, tmp_path / "server2.log")
    try:
        after_crash = _client(endpoint, home, "info")
        assert after_crash == before  # same revision, same files, and the server reads it back
        assert "big.bin" not in after_crash["files"]
        retried = _client(endpoint, home, "upload", str(big))
        assert "big.bin" in retried["files"] and retried["sha"] != before["sha"]
    finally:
        stop_hub(server)
