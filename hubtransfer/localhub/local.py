"""Start a local Hub in its own process and point this process's clients at it.

Standard library only: callers use it *before* importing huggingface_hub / transformers /
datasets, which read the endpoint once at import (see :mod:`hubtransfer.localhub.env`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

DEV_TOKEN = "hf_local_test_token"  # the development token table's only entry (user 'local-user'); not a real credential


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hub(root: Path, log_path: Path | None = None, timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """``hubtransfer hub serve`` on a free loopback port; returns (process, endpoint) once it answers."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(log_path or root.parent / "hub-server.log", "w")  # noqa: SIM115  (the server process writes it for its lifetime)
    cmd = [sys.executable, "-m", "hubtransfer.cli", "hub", "serve", "--root", str(root), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the local Hub exited at start; see {log.name}")
        try:
            urllib.request.urlopen(f"{endpoint}/api/models/none/none", timeout=1)
        except urllib.error.HTTPError:
            return proc, endpoint  # it answers (404 for a repo that does not exist)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the local Hub did not answer within {timeout:.0f} s; see {log.name}")


def stop_hub(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def configure_clients(endpoint: str, home: Path, token: str = DEV_TOKEN) -> None:
    """Environment of this process for a local Hub; call before any Hugging Face library is imported."""
    if "huggingface_hub" in sys.modules:
        raise RuntimeError(
            "configure_clients() must run before huggingface_hub is imported (it reads HF_ENDPOINT once)"
        )
    os.environ.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1", HF_TOKEN=token, HF_HOME=str(home))
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.pop(name, None)


@contextlib.contextmanager
def local_hub(work: Path):
    """A script's Hub: the one ``HF_ENDPOINT`` names, else one started under ``work/hub`` and stopped on exit; this
    process's clients point at it with a fresh HF_HOME under ``work``. Yields (endpoint, whether it was started)."""
    server, endpoint = None, os.environ.get("HF_ENDPOINT")
    try:
        if not endpoint:
            server, endpoint = start_hub(work / "hub")
        configure_clients(endpoint, Path(tempfile.mkdtemp(prefix="hf-home-", dir=work)))
        yield endpoint, server is not None
    finally:
        stop_hub(server)
