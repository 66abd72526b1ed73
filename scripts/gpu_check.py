"""The GPU check (docs/distributed.md): one script for a lent GPU machine, about 10 minutes on one H100.

1. Throughput: ``bench_trainer.py --case bert-base vit-b16`` (hubtransfer vs the tuned Trainer: samples/s, model
   TFLOP/s, MFU, peak GPU memory) -> results/bench_trainer_gpu.json.
2. Engines: one short real recipe (MiniLM on rotten tomatoes, 512 examples, one epoch, fp32) under each launch config
   of recipes/launch/ with one process (gpu_ddp, gpu_fsdp2, gpu_deepspeed_zero2, gpu_deepspeed_zero3). Each saved
   model must load with stock ``pipeline()``; its logits on fixed sentences are compared with the DDP run's.
   -> results/gpu_check.json with the device named, and a table.

Packages the GPU machine lacks travel as wheels in a folder carried with the working tree (``--wheels``); they are
installed into a private target first. ``--smoke`` runs the same code paths on CPU with a tiny model: engines that
refuse CPU are recorded with their message (the check that the script itself works, tests/slow).

Run: python scripts/gpu_check.py [--wheels .whl] [--smoke] [--skip-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("gpu_ddp", "gpu_fsdp2", "gpu_deepspeed_zero2", "gpu_deepspeed_zero3")
SENTENCES = ["a gripping, beautifully acted film", "tedious and far too long", "neither good nor bad, just there"]
RECIPE = ROOT / "recipes" / "text" / "minilm_rotten_tomatoes.yaml"


def install_wheels(folder: Path) -> dict:
    """Install every wheel of ``folder`` into a private target on the path (the machine's own packages untouched)."""
    target = Path("/tmp/hubtransfer-site")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--upgrade"),
            *("--target", str(target), *map(str, sorted(folder.glob("*.whl")))),
        ],
        check=True,
    )
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(target), str(ROOT), os.environ.get("PYTHONPATH")]))}
    os.environ.update(env)
    sys.path[:0] = [str(target)]
    return env


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recipe_overrides(out: Path, smoke: bool, model: Path) -> list[str]:
    return [
        f"model.id={model}",
        "data.source=packaged:rotten-tomatoes",
        "head.pooling=native",  # the stock head: pipeline() loads it without trust_remote_code
        f"data.max_train_samples={64 if smoke else 512}",
        f"data.max_eval_samples={32 if smoke else 256}",
        "data.max_length=64",
        "train.epochs=1",
        "train.lr=5e-5",
        "train.precision=no",
        "train.checkpoint_every=null",
        "train.baseline=false",
        "train.linear_probe=false",
        f"output_dir={out}",
        "overwrite_output_dir=true",
    ]


def run_engine(name: str, work: Path, smoke: bool, model: Path) -> dict:
    """One launch config, one process; its saved model loaded with pipeline() and its logits on SENTENCES."""
    out = work / name
    cmd = [sys.executable, "-m", "hubtransfer.cli", "launch", str(ROOT / "recipes" / "launch" / f"{name}.yaml")]
    cmd += [str(RECIPE), *_recipe_overrides(out, smoke, model), "--num-processes", "1"]
    cmd += ["--main-process-port", str(_port())]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    record = {"engine": name, "returncode": proc.returncode, "seconds": round(time.perf_counter() - started, 1)}
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:") or "Error:" in line]
        record["refused"] = (errors or proc.stderr.splitlines()[-1:] or [""])[0][:600]
        return record
    import torch
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(out), device=0 if torch.cuda.is_available() else -1)
    inputs = classify.tokenizer(SENTENCES, return_tensors="pt", padding=True).to(classify.model.device)
    with torch.no_grad():
        record["logits"] = classify.model(**inputs).logits.float().cpu().tolist()
    record["pipeline"] = classify(SENTENCES[0])[0]
    record["test"] = json.loads((out / "hubtransfer_run.json").read_text())["metrics"]["test"]
    return record


def compare_to_ddp(records: list[dict]) -> None:
    """Each engine's largest logit difference from the DDP run (one process: the same arithmetic up to order)."""
    ddp = next((r for r in records if r["engine"] == "gpu_ddp" and "logits" in r), None)
    for r in records:
        if ddp is not None and "logits" in r:
            r["max_logit_diff_vs_ddp"] = max(
                abs(a - b) for row, ref in zip(r["logits"], ddp["logits"]) for a, b in zip(row, ref)
            )


def table(report: dict) -> str:
    lines = [
        f"Device: {report['device']}; torch {report['torch']}, accelerate {report['accelerate']}.",
        "",
        "| launch config | result | seconds | test accuracy | max logit diff vs DDP |",
        "|---|---|---|---|---|",
    ]
    for r in report["engines"]:
        result = "saved, pipeline() loads it" if "logits" in r else f"refused: {r.get('refused', '')}"
        acc = f"{r['test']['accuracy']:.4f}" if "test" in r else "-"
        diff = f"{r['max_logit_diff_vs_ddp']:.2e}" if "max_logit_diff_vs_ddp" in r else "-"
        lines.append(f"| {r['engine']} | {result} | {r['seconds']} | {acc} | {diff} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wheels", type=Path, help="folder of wheels to install first (carried with the working tree)")
    p.add_argument("--smoke", action="store_true", help="tiny model, CPU allowed: the script's own check")
    p.add_argument("--skip-bench", action="store_true", help="the engines only")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check.json")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "gpu-check")
    args = p.parse_args(argv)
    if args.wheels:
        install_wheels(args.wheels)
    import accelerate
    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("error: no CUDA device; run on a GPU machine, or with --smoke for the CPU check", file=sys.stderr)
        return 2
    if not args.skip_bench:
        env = {**os.environ, **({"HUBTRANSFER_BENCH_SMOKE": "1"} if args.smoke else {})}
        bench = [sys.executable, str(ROOT / "scripts" / "bench_trainer.py"), "--case", "bert-base", "vit-b16"]
        subprocess.run([*bench, "--repeats", "1"], check=True, env=env)
    model = args.work / "tiny-bert" if args.smoke else ROOT / "assets" / "all-MiniLM-L6-v2"
    if args.smoke:
        _tiny_model(model)
    records = [run_engine(name, args.work, args.smoke, model) for name in ENGINES]
    compare_to_ddp(records)
    report = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (smoke)",
        "torch": torch.__version__,
        "accelerate": accelerate.__version__,
        "smoke": args.smoke,
        "engines": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    return 0


def _tiny_model(folder: Path) -> None:
    """A small BERT with the MiniLM tokenizer (smoke runs: the code paths, not the numbers)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(ROOT / "assets" / "all-MiniLM-L6-v2")
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    config.intermediate_size = 64
    BertForSequenceClassification(config).save_pretrained(folder)
    tok.save_pretrained(folder)


if __name__ == "__main__":
    raise SystemExit(main())
