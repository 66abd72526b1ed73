"""Fine-tune a tiny recipe; with KILL_AT_STEP=N, SIGKILL this process when optimizer step N begins (counting every
candidate's steps of a learning-rate search, with LR_AUTO=1)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import kill_at_optimizer_step, text_recipe

from hubtransfer.run import finetune


def main(model: str, data: str, out: str) -> None:
    kill_at = int(os.environ.get("KILL_AT_STEP", "0"))
    if kill_at:
        kill_at_optimizer_step(kill_at)
    lr = {"lr": "auto", "lr_search": {"candidates": [3e-3, 1e-2, 3e-2]}} if os.environ.get("LR_AUTO") else {"lr": 1e-2}
    finetune(
        text_recipe(
            model, data, out, train__epochs=3, train__checkpoint_every=5, **{f"train__{k}": v for k, v in lr.items()}
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
