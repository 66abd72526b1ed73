"""A release's card must tell the truth about its weights: download the model by its tag into a fresh cache, recompute
the test metrics from those weights, and compare them with the card's model-index and the run record.

The recomputation runs in a process of its own (``hubtransfer eval``): a fresh interpreter with no state from the
training process (and outside a multi-process launch's process group), as a user evaluating the release would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from huggingface_hub import ModelCard, constants, snapshot_download

from hubtransfer.files import RUN_MARKER

# A launcher's variables would make the evaluation process try to join the training processes' group.
_LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT")


def verify_release(repo_id: str, revision: str, *, cache_dir: str | Path) -> dict:
    """Recompute the test metrics of ``repo_id`` at ``revision`` (a tag or commit) from its downloaded weights.

    Returns ``{"revision", "recomputed", "recorded", "card", "equal"}``: ``equal`` when the recomputed metrics are
    the run record's, float for float, and every metric value in the card's model-index is one of them.
    """
    folder = Path(snapshot_download(repo_id, revision=revision, cache_dir=str(cache_dir)))
    recorded = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))["metrics"]["test"]
    card = [r.metric_value for r in ModelCard.load(folder / "README.md").data.eval_results or []]
    recomputed = _evaluate(folder)
    equal = recomputed == recorded and all(v in recomputed.values() for v in card)
    return {"revision": revision, "recomputed": recomputed, "recorded": recorded, "card": card, "equal": equal}


def _evaluate(folder: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS and not k.startswith("ACCELERATE_")}
    # The Hub this process pushed to (an adapter's base model is fetched from it), as this process resolved it.
    env.update(
        HF_ENDPOINT=constants.ENDPOINT,
        HF_HOME=str(constants.HF_HOME),
        HF_HUB_OFFLINE="1" if constants.HF_HUB_OFFLINE else "0",
        HF_HUB_DISABLE_XET="1" if constants.HF_HUB_DISABLE_XET else "0",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "hubtransfer.cli", "eval", str(folder), "--split", "test"],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"evaluating the downloaded release failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)["test"]
