"""Beyond one process, tested for real on one box: two Accelerate "machines" on 127.0.0.1 (torchrun's static
rendezvous, gloo), an exact resume after a rank is killed, a rendezvous that gives up with one line, and the sharded
engines refused where Accelerate would silently not run them (CPU)."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import _tiny_bert, write_sentiment_csv
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_launch_worker.py")
LAUNCH = ROOT / "recipes" / "launch"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# 240 rows: 192 train; batch 16 per process, two processes: 6 optimizer steps an epoch, 12 in the run; checkpoints at
# steps 4 and 8.
TRAIN_ROWS, STEPS, PER_EPOCH = 192, 12, 6


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accelerate(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config), *args]


def _two_machines(root: Path, out: Path, env: dict | None = None) -> list[subprocess.CompletedProcess]:
    """Machine ranks 0 and 1 of recipes/launch/multinode.yaml, each its own launcher, one process each."""
    port = str(_port())
    procs = [
        subprocess.Popen(
            [
                *_accelerate(LAUNCH / "multinode.yaml", "--machine_rank", str(r), "--main_process_port", port),
                *("--rdzv_conf", "timeout=120", str(WORKER), str(root), str(out)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**ENV, **(env or {})},
        )
        for r in (0, 1)
    ]
    done = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return done


def _ok(proc: subprocess.CompletedProcess) -> str:
    """The ranks' own tracebacks first: torchrun's summary after them would push them out of a plain tail."""
    ranks = "\n".join(line for line in proc.stderr.splitlines() if line.startswith("[rank"))
    return ranks[-4000:] or proc.stderr[-3000:]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("multinode")
    bert = _tiny_bert(root / "bert")
    config = json.loads((bert / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (bert / "config.json").write_text(json.dumps(config))
    write_sentiment_csv(root / "r.csv")
    return root


@pytest.fixture(scope="module")
def whole(root) -> Path:
    """The uninterrupted two-machine run."""
    for proc in _two_machines(root, root / "whole"):
        assert proc.returncode == 0, _ok(proc)
    return root / "whole"


def _report(out: Path, rank: int) -> dict:
    return json.loads((out.parent / f"{out.name}-rank{rank}.json").read_text())


def _curve(report: dict) -> list[dict]:
    """The learning curve without its clock readings."""
    return [{k: v for k, v in record.items() if k != "train_seconds"} for record in report["history"]]


def _weights(out: Path, rank: int) -> dict:
    return load_file(str(out.parent / f"{out.name}-rank{rank}.safetensors"))


def test_two_machines_on_localhost_train_as_one_process_with_accumulation(root, whole):
    r0, r1 = _report(whole, 0), _report(whole, 1)
    assert (r0["world"], r1["world"]) == (2, 2) and (r0["rank"], r1["rank"]) == (0, 1)
    assert (r0["machine_rank"], r1["machine_rank"]) == ("0", "1")  # each machine its own rank in one world
    w0, w1 = _weights(whole, 0), _weights(whole, 1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)  # the same parameters on both ranks
    assert r0["test"] == r1["test"] and _curve(r0) == _curve(r1)
    # Every training example exactly once per epoch, across the two machines.
    for epoch in range(2):
        batches = [b for r in (r0, r1) for b in r["batches"][epoch * PER_EPOCH : (epoch + 1) * PER_EPOCH]]
        rows = [i for batch in batches for i in batch]
        assert len(rows) == TRAIN_ROWS and len(set(rows)) == TRAIN_ROWS
    assert len(r0["batches"]) == len(r1["batches"]) == STEPS
    # One process, batch 16, gradient accumulation 2: the same 32 examples per optimizer step.
    single = subprocess.run(
        [sys.executable, str(WORKER), str(root), str(root / "single"), "train.grad_accum=2"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    ws = _weights(root / "single", 0)
    assert ws.keys() == w0.keys()
    worst = max((ws[k].double() - w0[k].double()).abs().max().item() for k in ws)
    assert worst < 1e-5, worst
    assert json.loads((whole / "hubtransfer_run.json").read_text())["training"]["steps"] == STEPS


def test_a_rank_killed_mid_epoch_resumes_to_the_same_bytes(root, whole):
    out = root / "resumed"
    killed = _two_machines(root, out, {"KILL_RANK": "1", "KILL_AT_STEP": "10"})  # step 10: epoch 2, after step-8
    assert all(p.returncode != 0 for p in killed)
    staging = root / ".resumed.incomplete"
    assert sorted(p.name for p in (staging / "checkpoints").iterdir()) == ["step-4", "step-8"]
    assert not out.exists()
    # One process cannot continue what two started: refused in one line, the checkpoints kept.
    refused = subprocess.run(
        [sys.executable, str(WORKER), str(root), str(out)], capture_output=True, text=True, env=ENV, timeout=600
    )
    assert refused.returncode != 0
    assert "was written by 2 process(es) and this launch has 1" in refused.stderr
    assert sorted(p.name for p in (staging / "checkpoints").iterdir()) == ["step-4", "step-8"]
    main, other = _two_machines(root, out)
    assert main.returncode == 0 and other.returncode == 0, _ok(main) + _ok(other)
    assert "resuming from step-8 (step 8, epoch 1, batch 2)" in main.stderr
    assert (whole / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    for rank in (0, 1):
        assert _curve(_report(out, rank)) == _curve(_report(whole, rank))
        # each rank took back its own data shard: after the resume it trains on the batches it would have
        assert _report(out, rank)["batches"] == _report(whole, rank)["batches"][8:]


def _hubtransfer(*args: str, timeout: int = 300) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hubtransfer.cli", *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )
    return proc, time.perf_counter() - started


def _recipe_file(root: Path, name: str) -> Path:
    import yaml

    sys.path.insert(0, str(WORKER.parent))
    from _launch_worker import recipe

    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe(root, root / name)))
    return path


def _launch(root: Path, config: str, name: str, *flags: str) -> tuple[subprocess.CompletedProcess, float]:
    """`hubtransfer launch recipes/launch/CONFIG` of the tiny recipe writing to ``root / name``."""
    return _hubtransfer("launch", str(LAUNCH / config), str(_recipe_file(root, name)), *flags)


def test_a_machine_that_cannot_reach_the_main_one_gives_up_with_one_line(root):
    port = _port()
    flags = ("--machine-rank", "1", "--main-process-port", str(port), "--rendezvous-timeout", "5")
    proc, seconds = _launch(root, "multinode.yaml", "lonely", *flags)
    assert proc.returncode == 2 and seconds < 90, (proc.returncode, seconds)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: machine rank 1 could not reach the main machine at 127.0.0.1:{port} within 5 s")
    assert not (root / "lonely").exists()


def test_the_main_machine_alone_gives_up_with_one_line(root):
    flags = ("--main-process-port", str(_port()), "--rendezvous-timeout", "5")
    proc, seconds = _launch(root, "multinode.yaml", "alone", *flags)
    assert proc.returncode == 2 and seconds < 90, (proc.returncode, seconds)
    assert "only 1 of 2 machines joined (num_machines: 2)" in proc.stderr.strip().splitlines()[-1]


def test_a_sharded_engine_on_cpu_is_refused_not_silently_replaced(root):
    proc, _ = _launch(root, "gpu_fsdp2.yaml", "fsdp", "--num-processes", "2", "--main-process-port", str(_port()))
    assert proc.returncode != 0
    assert "error: the launch asks for FSDP but Accelerate" in proc.stderr
    assert "it runs FSDP on GPUs only" in proc.stderr
    assert not (root / "fsdp").exists()


def test_the_launch_configs_are_accelerate_configs():
    from accelerate.commands.config.config_args import load_config_from_file

    names = {p.name for p in LAUNCH.glob("*.yaml")}
    assert names == {
        "cpu_2proc.yaml",
        "multinode.yaml",
        "gpu_ddp.yaml",
        "gpu_fsdp2.yaml",
        "gpu_deepspeed_zero2.yaml",
        "gpu_deepspeed_zero3.yaml",
    }
    for name in names:
        config = load_config_from_file(str(LAUNCH / name))
        assert config.num_processes >= config.num_machines >= 1, name
    assert load_config_from_file(str(LAUNCH / "gpu_fsdp2.yaml")).fsdp_config["fsdp_version"] == 2
    assert load_config_from_file(str(LAUNCH / "gpu_deepspeed_zero3.yaml")).deepspeed_config["zero_stage"] == 3
