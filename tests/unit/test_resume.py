"""A run killed with SIGKILL mid-epoch and started again ends exactly as the uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import write_sentiment_csv

WORKER = Path(__file__).with_name("_kill_worker.py")


def _run(tiny_bert, data, out, kill_at=0):
    env = {**os.environ, "KILL_AT_STEP": str(kill_at)}
    return subprocess.run([sys.executable, str(WORKER), str(tiny_bert), str(data), str(out)], env=env, capture_output=True, text=True, timeout=600)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "r.csv")
    whole = _run(tiny_bert, data, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]

    # 12 steps an epoch; checkpoints at 5, 10, 15 (kept: the last 2); killed as step 18 begins (mid epoch 2).
    killed = _run(tiny_bert, data, tmp_path / "resumed", kill_at=18)
    assert killed.returncode == -signal.SIGKILL
    staging = tmp_path / ".resumed.incomplete"
    assert sorted(p.name for p in (staging / "checkpoints").iterdir()) == ["step-10", "step-15"]
    assert not (tmp_path / "resumed").exists()

    resumed = _run(tiny_bert, data, tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from step-15 (step 15, epoch 1, batch 3)" in resumed.stderr
    a, b = (json.loads((tmp_path / d / "hubtransfer_run.json").read_text()) for d in ("whole", "resumed"))
    assert a["metrics"] == b["metrics"]  # bitwise: same floats
    assert a["training"]["steps"] == b["training"]["steps"] == 36
    assert _curve(tmp_path / "whole") == _curve(tmp_path / "resumed")
    assert (tmp_path / "whole" / "model.safetensors").read_bytes() == (tmp_path / "resumed" / "model.safetensors").read_bytes()
    assert not staging.exists() and not (tmp_path / "resumed" / "checkpoints").exists()


def _curve(run_dir):
    """metrics.jsonl without its timings (wall-clock time differs between any two runs)."""
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k != "train_seconds"} for rec in lines]
