"""Which Hub the process talks to, and what the stock clients need to talk to a local one.

huggingface_hub, transformers and datasets read ``HF_ENDPOINT`` (and ``HF_HUB_DISABLE_XET``) once,
at import. hubtransfer therefore decides both before they are imported (``hubtransfer/__init__``
calls :func:`prepare_environment` first thing):

* ``HF_ENDPOINT`` unset: huggingface.co, nothing changed.
* ``HF_ENDPOINT`` on this machine (127.0.0.0/8, localhost, ::1): our local Hub, which stores
  large files with classic LFS, not Xet. With ``hf_xet`` installed (a hard dependency of
  huggingface_hub on x86_64/arm64) uploads would go through Xet and fail, so
  ``HF_HUB_DISABLE_XET=1`` is set for this process unless the user chose a value.

Other tools (a plain ``python`` using transformers against the local Hub) need the same two
variables set by hand: ``HF_ENDPOINT=http://127.0.0.1:8765 HF_HUB_DISABLE_XET=1``.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

LOCAL_HOSTS = {"localhost", "::1"}


def is_local_endpoint(url: str | None) -> bool:
    """True for an endpoint on this machine (loopback)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    return host in LOCAL_HOSTS or host.startswith("127.")


def prepare_environment() -> None:
    """Set what the stock clients need for a local endpoint, before they are imported."""
    if is_local_endpoint(os.environ.get("HF_ENDPOINT")):
        os.environ.setdefault("HF_HUB_DISABLE_XET", "1")


def local_env(endpoint: str, token: str | None = None, home: str | None = None) -> dict[str, str]:
    """Environment for a child process that should use a local Hub (the demo and the tests use it)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    env.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1")
    if token:
        env["HF_TOKEN"] = token
    if home:
        env["HF_HOME"] = home
    return env
