"""A run killed with SIGKILL mid-epoch and started again ends exactly as the uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import write_sentiment_csv

WORKER = Path(__file__).with_name("_kill_worker.py")


def _run(tiny_bert, data, out, kill_at=0, lr_auto=False):
    env = {**os.environ, "KILL_AT_STEP": str(kill_at), **({"LR_AUTO": "1"} if lr_auto else {})}
    return subprocess.run(
        [sys.executable, str(WORKER), str(tiny_bert), str(data), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


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
    assert (tmp_path / "whole" / "model.safetensors").read_bytes() == (
        tmp_path / "resumed" / "model.safetensors"
    ).read_bytes()
    assert not staging.exists() and not (tmp_path / "resumed" / "checkpoints").exists()


def test_a_run_killed_after_its_learning_rate_search_resumes_without_searching_again(tiny_bert, tmp_path):
    data = write_sentiment_csv(tmp_path / "r.csv")
    whole = _run(tiny_bert, data, tmp_path / "whole", lr_auto=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    search = json.loads((tmp_path / "whole" / "hubtransfer_run.json").read_text())["training"]["lr_search"]
    assert search["rung_step"] == 7 and search["extra_steps"] == 14  # 3 candidates x 7 of 36 steps

    # 21 optimizer steps of search, a checkpoint of the winner at step 7, then 10 and 15; killed as step 19 begins.
    killed = _run(tiny_bert, data, tmp_path / "resumed", kill_at=21 + 12, lr_auto=True)
    assert killed.returncode == -signal.SIGKILL
    assert "lr search at step 7 of 36" in killed.stderr
    resumed = _run(tiny_bert, data, tmp_path / "resumed", lr_auto=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming from step-15" in resumed.stderr and "lr search at" not in resumed.stderr
    a, b = (json.loads((tmp_path / d / "hubtransfer_run.json").read_text()) for d in ("whole", "resumed"))
    assert a["metrics"] == b["metrics"] and a["training"]["lr"] == b["training"]["lr"] == search["chosen"]
    timeless = lambda r: {k: v for k, v in r.items() if k != "seconds"}
    assert timeless(b["training"]["lr_search"]) == timeless(search)  # the record came back from the checkpoint
    assert _curve(tmp_path / "whole") == _curve(tmp_path / "resumed")
    assert (tmp_path / "whole" / "model.safetensors").read_bytes() == (
        tmp_path / "resumed" / "model.safetensors"
    ).read_bytes()


def _curve(run_dir):
    """metrics.jsonl without its timings (wall-clock time differs between any two runs)."""
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k != "train_seconds"} for rec in lines]
