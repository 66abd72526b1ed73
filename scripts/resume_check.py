"""Kill a real fine-tune with SIGKILL mid-epoch, run it again, and compare with an uninterrupted run.

Run: python scripts/resume_check.py [--kill-at 70] [recipe key=value ...]
Default: EfficientNet-Lite0 head-only on 2,000 animal-shape images, 2 epochs, a checkpoint every 20 steps.
Prints both runs' test metrics, step counts and whether the saved weights are byte-identical.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "recipes" / "vision" / "efficientnet_lite0_animal_shapes_head.yaml"
DEFAULTS = [
    "model.id=./assets/efficientnet-lite0",
    "data.source=packaged:animal-shapes",
    "data.max_train_samples=2000",
    "train.epochs=2",
    "train.checkpoint_every=20",
]
RUNNER = """
import sys
sys.path.insert(0, "scripts")
from resume_check import kill_at_optimizer_step
if int(sys.argv[1]):
    kill_at_optimizer_step(int(sys.argv[1]))
from hubtransfer.cli import main
sys.exit(main(["train", *sys.argv[2:]]))
"""


def kill_at_optimizer_step(n: int) -> None:
    """SIGKILL this process as its n-th AdamW step begins (counting every run of the process, an lr search's too):
    no cleanup, no flush, as a crash or an OOM kill. Also the kill of the tests' kill-and-resume workers."""
    import os
    import signal

    import torch

    real_step, calls = torch.optim.AdamW.step, [0]

    def step(self, *a, **k):
        calls[0] += 1
        if calls[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step(self, *a, **k)

    torch.optim.AdamW.step = step


def train(kill_at: int, out: Path, overrides: list[str]) -> tuple[int, float]:
    started = time.perf_counter()
    cmd = [sys.executable, "-c", RUNNER, str(kill_at), str(RECIPE), *DEFAULTS, *overrides, f"output_dir={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return proc.returncode, time.perf_counter() - started


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kill-at", type=int, default=70, help="optimizer step at which the process kills itself")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "resume-check")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    import shutil

    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    rc, t_whole = train(0, args.work / "whole", args.overrides)
    assert rc == 0, "uninterrupted run failed"
    rc, t_killed = train(args.kill_at, args.work / "resumed", args.overrides)
    kept = sorted(p.name for p in (args.work / ".resumed.incomplete" / "checkpoints").iterdir())
    rc2, t_resumed = train(0, args.work / "resumed", args.overrides)
    a, b = (json.loads((args.work / d / "hubtransfer_run.json").read_text()) for d in ("whole", "resumed"))
    same_weights = (args.work / "whole" / "model.safetensors").read_bytes() == (
        args.work / "resumed" / "model.safetensors"
    ).read_bytes()
    print(
        json.dumps(
            {
                "killed_returncode": rc,
                "checkpoints_after_kill": kept,
                "resumed_returncode": rc2,
                "whole": {"test": a["metrics"]["test"], "steps": a["training"]["steps"], "seconds": round(t_whole, 1)},
                "resumed": {
                    "test": b["metrics"]["test"],
                    "steps": b["training"]["steps"],
                    "seconds_killed_run": round(t_killed, 1),
                    "seconds_resume": round(t_resumed, 1),
                },
                "metrics_equal": a["metrics"] == b["metrics"],
                "history_equal": _curve(args.work / "whole") == _curve(args.work / "resumed"),
                "weights_byte_identical": same_weights,
            },
            indent=2,
        )
    )
    return 0 if same_weights and a["metrics"] == b["metrics"] else 1


def _curve(run_dir: Path) -> list[dict]:
    """metrics.jsonl without its timings (wall-clock time differs between any two runs)."""
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k != "train_seconds"} for rec in lines]


if __name__ == "__main__":
    sys.exit(main())
