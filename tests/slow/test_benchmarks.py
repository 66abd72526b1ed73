"""The benchmark scripts run end to end (seconds-long smoke settings: their numbers mean nothing here).

The real figures come from running the scripts by hand; these tests keep them from rotting.
"""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ROOT / "assets" / "all-MiniLM-L6-v2").is_dir(), reason="run scripts/prepare_assets.py first"
    ),
]


def _run(script: str, *args: str, tmp_path: Path) -> str:
    env = {**os.environ, "HUBTRANSFER_BENCH_SMOKE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_trainer_benchmark_runs_every_side(tmp_path):
    out = tmp_path / "bench.json"
    printed = _run("bench_trainer.py", "--repeats", "1", "--out", str(out), tmp_path=tmp_path)
    report = json.loads(out.read_text())
    pairs = {(r["case"], r["peer"]) for r in report["rows"]}
    assert pairs == {
        ("minilm-full", "trainer-a"),
        ("minilm-full", "trainer-b"),
        ("minilm-head", "trainer-frozen"),
        ("minilm-head", "trainer-frozen-eval"),
        ("effnet-full", "trainer-onthefly"),
        ("effnet-full", "trainer-onthefly-fp32"),
    }
    for row in report["rows"]:
        assert row["throughput_ratio"] > 0 and row["ours"]["peak_rss_mb"] > 100 and 0 <= row["theirs"]["accuracy"] <= 1
    for run in report["runs"]:  # every run names its machine and its invocation
        assert run["machine"]["cpu"] and run["machine"]["torch_threads"] >= 1 and run["invocation"]
        assert (run["train_n"], run["epochs"]) == (96, 1)  # the size it ran, which the table shows
    tuned = [r for r in report["runs"] if r["side"] in ("trainer-b", "trainer-frozen", "trainer-frozen-eval")]
    assert all(r["attention"]["chosen"] in ("sdpa", "eager") for r in tuned if r["case"].startswith("minilm"))
    assert "| minilm-full" in printed and "speed-up" in printed and "Peers: " in printed
    # A second invocation keeps the first's runs; a case's row comes from its latest full alternation.
    time.sleep(1.1)  # invocations are named by the second they start
    _run("bench_trainer.py", "--repeats", "1", "--case", "minilm-head", "--out", str(out), tmp_path=tmp_path)
    again = json.loads(out.read_text())
    assert again["runs"][: len(report["runs"])] == report["runs"] and len(again["invocations"]) == 2
    newest = again["runs"][-1]["invocation"]
    assert newest != report["runs"][0]["invocation"]
    for row in again["rows"]:
        expected = newest if row["case"] == "minilm-head" else report["runs"][0]["invocation"]
        assert row["ours"]["invocation"] == row["theirs"]["invocation"] == expected


def test_feature_benchmark_runs_both_sides(tmp_path):
    out = tmp_path / "features.json"
    _run("bench_features.py", "--epochs", "1", "--out", str(out), tmp_path=tmp_path)
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert report["repeats"] == 3 and report["machine"]["cpu"] and "bf16_flags" in report["machine"]
    assert {r["case"] for r in rows} == {"text", "image"}
    assert all(r["speedup"] > 0 and r["feature_pass_s"] > 0 for r in rows)


def test_gpu_cases_run_in_smoke_form_and_refuse_a_cpu_only_machine(tmp_path):
    out = tmp_path / "gpu.json"
    printed = _run(
        "bench_trainer.py", "--repeats", "1", "--case", "bert-base", "vit-b16", "--out", str(out), tmp_path=tmp_path
    )
    report = json.loads(out.read_text())
    assert {(r["case"], r["peer"]) for r in report["rows"]} == {("bert-base", "trainer-b"), ("vit-b16", "trainer-b")}
    for run in report["runs"]:  # GPU memory only with a GPU (this machine has none)
        assert run["peak_gpu_mb"] is None and run["samples_per_second"] > 0
    for row in report["rows"]:  # model FLOP/s on any device, MFU only against a GPU's peak
        assert row["ours"]["train_tflops"] > 0 and row["theirs"]["train_tflops"] > 0
        assert "mfu" not in row["ours"] and "mfu" not in row["theirs"]
    assert "model TFLOP/s (ours / peer)" in printed and printed.count("| - | - |") == 2  # no MFU, no GPU memory
    # Without the smoke switch a CPU-only machine refuses the full-size GPU cases instead of running them for hours.
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_trainer.py"),
            "--case",
            "vit-b16",
            "--out",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "HUBTRANSFER_BENCH_SMOKE"},
    )
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and not (tmp_path / "x.json").exists()


def test_training_flops_count_of_a_vit(tmp_path, monkeypatch):
    """The MFU numerator for a tiny ViT counted by hand: per layer q, k, v, o (4 x 32 x 32) and the MLP (2 x 32 x 64),
    two layers, plus the 16 px patch projection (32 x 3 x 16 x 16); 197 tokens at 224 px."""
    monkeypatch.setenv("HUBTRANSFER_BENCH_SMOKE", "1")
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import importlib

    bench = importlib.import_module("bench_trainer")
    weights = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 3 * 16 * 16
    assert bench.train_flops_per_example("vit-b16", tmp_path) == 6 * weights * 197 + 12 * 2 * 32 * 197**2


def test_the_gpu_check_script_runs_on_cpu_in_smoke_form(tmp_path):
    """scripts/gpu_check.py's engine half on CPU: DDP trains, saves and reloads through pipeline(); the sharded engines
    are refused with a line saying why (Accelerate runs them on GPUs only), or DeepSpeed's absence is named."""
    out = tmp_path / "gpu_check.json"
    _run(
        "gpu_check.py",
        "--smoke",
        "--skip-bench",
        "--out",
        str(out),
        "--work",
        str(tmp_path / "work"),
        tmp_path=tmp_path,
    )
    engines = {r["engine"]: r for r in json.loads(out.read_text())["engines"]}
    assert engines["gpu_ddp"]["returncode"] == 0 and engines["gpu_ddp"]["max_logit_diff_vs_ddp"] == 0.0
    assert engines["gpu_ddp"]["pipeline"]["label"] in ("fresh", "rotten")
    assert "asks for FSDP but Accelerate" in engines["gpu_fsdp2"]["refused"]
    for zero in ("gpu_deepspeed_zero2", "gpu_deepspeed_zero3"):
        refused = engines[zero]["refused"]
        assert "asks for DeepSpeed but Accelerate" in refused or "DeepSpeed is not installed" in refused


def test_the_update_benchmark_runs_every_method_in_smoke_form(tmp_path):
    out = tmp_path / "update"
    printed = _run(
        "update_bench.py",
        *("--settings", "text-growth", "--seeds", "0", "--out", str(out), "--work", str(tmp_path / "work")),
        *("--methods", "naive", "replay", "replay:0.25", "distill", "interpolate", "joint"),
        tmp_path=tmp_path,
    )
    res = json.loads((out / "text-growth.json").read_text())
    assert res["smoke"] and res["machine"]["cpu"]
    methods = ["naive", "replay:1.0", "replay:0.25", "distill", "interpolate", "joint"]  # replay names its fraction
    assert [r["method"] for r in res["runs"]] == methods == [r["method"] for r in res["rows"]]
    quarter = json.loads(
        (tmp_path / "work" / "text-growth" / "v2-replay-0.25-seed0" / "hubtransfer_run.json").read_text()
    )
    info = quarter["data"]["update"]
    assert info["old_examples_replayed"] == math.ceil(0.25 * info["old_sizes"]["train"])
    for run in res["runs"]:
        assert run["forgetting_points"] == round(100 * (run["old_test"]["previous"] - run["old_test"]["new"]), 2)
        assert (run["alpha"] is not None) == (run["method"] == "interpolate")
    joint = next(r for r in res["rows"] if r["method"] == "joint")
    assert joint["time_share_of_joint"] == 1.0 and "| interpolate |" in printed


def test_the_release_script_pulls_v1_back_by_its_tag_after_v2(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)  # the script starts its own local Hub
    out = tmp_path / "release.json"
    _run("update_release.py", "--work", str(tmp_path / "work"), "--out", str(out), tmp_path=tmp_path)
    res = json.loads(out.read_text())
    v1, v2 = res["v1"], res["v2"]
    assert res["smoke"] and (v1["tag"], v2["tag"]) == ("v1", "v2") and v1["commit"] != v2["commit"]
    assert v2["update"]["parent_sha"] == v1["commit"] and v2["update"]["method"] == "replay"
    for name, release in (("v1", v1), ("v2", v2)):
        pulled = res["pulled_after_v2"][name]
        assert pulled["equal"] and pulled["recomputed"] == release["test"] == pulled["recorded"]
    assert res["stock_client"]["tags"] == {"v1": v1["commit"], "v2": v2["commit"]}
    assert res["tags_resolve_to_pushed_commits"]
