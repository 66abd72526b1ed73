"""Run under `accelerate launch --multi_gpu --num_processes 2` (CPU: gloo): fine-tune a tiny recipe, report what this
rank wrote."""

import builtins
import json
import os
import sys
import time
from pathlib import Path

import transformers.modeling_utils as modeling_utils
from accelerate import PartialState

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import text_recipe

from hubtransfer.run import finetune
from hubtransfer.train import checkpoints as checkpoint


def main(root: Path) -> None:
    writes: list[str] = []
    real_open, real_save = builtins.open, modeling_utils.safe_save_file

    def spy_open(file, mode="r", *a, **k):
        if any(m in mode for m in "wax") and str(file).startswith(str(root / "runs")):
            writes.append(str(file))
        return real_open(file, mode, *a, **k)

    def spy_save(tensors, filename, *a, **k):
        writes.append(str(filename))
        return real_save(tensors, filename, *a, **k)

    real_restore = checkpoint.BestWeights.restore

    def late_restore(self, model):
        # Rank 1 reads the best-weights file late: rank 0 must not delete it before every rank has read it.
        if os.environ.get("RANK") == "1":
            time.sleep(2)
        return real_restore(self, model)

    builtins.open, modeling_utils.safe_save_file = spy_open, spy_save
    checkpoint.BestWeights.restore = late_restore
    try:
        result = finetune(
            text_recipe(root / "bert", root / "r.csv", root / "runs" / "out", train__lr=1e-2, train__epochs=2)
        )
    finally:
        builtins.open, modeling_utils.safe_save_file = real_open, real_save
    rank = PartialState().process_index  # after finetune: its Accelerator set the state up
    checksum = float(sum(p.detach().double().sum() for p in result.model.parameters()))
    report = {
        "rank": rank,
        "world": PartialState().num_processes,
        "test": result.metrics["test"],
        "checksum": checksum,
        "writes": writes,
    }
    (root / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
