"""The same recipe under `accelerate launch --multi_gpu --num_processes 2` on CPU (torchrun + gloo):
ranks agree and only rank 0 writes. (`--multi_gpu` picks the torchrun launcher; `--cpu` would start one process.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _tiny_bert, write_sentiment_csv

WORKER = Path(__file__).with_name("_worker.py")


def test_two_ranks_agree_and_only_rank0_writes(tmp_path):
    _tiny_bert(tmp_path / "bert")
    write_sentiment_csv(tmp_path / "r.csv")
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29517",
        str(WORKER),
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    # The ranks' own tracebacks ("[rankN]: ...") first: torchrun's summary after them would push them out of a plain
    # tail.
    assert proc.returncode == 0, (
        "\n".join(line for line in proc.stderr.splitlines() if line.startswith("[rank"))[-6000:] or proc.stderr[-3000:]
    )
    r0, r1 = (json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["checksum"] == pytest.approx(r1["checksum"], rel=1e-9)  # the same weights on both ranks
    assert r0["test"] == r1["test"]
    assert r1["writes"] == []  # rank 1 writes nothing
    assert any(w.endswith("model.safetensors") for w in r0["writes"])
    run = json.loads((tmp_path / "runs" / "out" / "hubtransfer_run.json").read_text())
    # 192 training examples, batch 16 per process, 2 processes: 6 optimizer steps an epoch.
    assert run["training"]["steps"] == 12
    assert (
        run["data"]["sizes"]["test"] == 24
        and sum(map(sum, json.loads((tmp_path / "runs" / "out" / "confusion_matrix.json").read_text())["matrix"])) == 24
    )
