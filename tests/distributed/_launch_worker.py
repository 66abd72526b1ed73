"""Fine-tune the tiny recipe of tests/distributed/test_multinode.py, under a launcher or alone; report what this
process trained on and its final weights.

argv: ROOT OUT [key.sub=value ...]. Environment: KILL_RANK / KILL_AT_STEP: SIGKILL that rank as optimizer step N
begins (as a crash or an OOM kill would, no cleanup).
"""

import json
import os
import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import kill_at_optimizer_step, text_recipe

from hubtransfer.run import finetune
from hubtransfer.train import steps


def recipe(root: Path, out: Path) -> dict:
    """Dropout off (the single-process comparison would otherwise differ by its masks), a fixed rate and length."""
    return text_recipe(
        root / "bert",
        root / "r.csv",
        out,
        train__lr=1e-2,
        train__epochs=2,
        train__checkpoint_every=4,
        train__early_stopping__patience=None,
    )


def main(root: Path, out: Path, overrides: list[str]) -> None:
    rank = int(os.environ.get("RANK", "0"))
    if os.environ.get("KILL_RANK") == str(rank):
        kill_at_optimizer_step(int(os.environ["KILL_AT_STEP"]))
    # The rows each process trains on, batch by batch: every text carries its row number as a word.
    tok = AutoTokenizer.from_pretrained(root / "bert")
    seen: list[list[int]] = []
    real_loss = steps._loss

    def spy_loss(model, batch, class_weights, extra=None):
        rows = []
        for ids in batch["input_ids"].tolist():
            words = [w for w in tok.convert_ids_to_tokens(ids) if w.isdigit()]
            rows.append(int(words[0]))
        seen.append(rows)
        return real_loss(model, batch, class_weights, extra)

    steps._loss = spy_loss
    result = finetune(recipe(root, out), overrides)
    state = PartialState()
    weights = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
    save_file(weights, str(out.parent / f"{out.name}-rank{state.process_index}.safetensors"))
    report = {"rank": state.process_index, "world": state.num_processes, "machine_rank": os.environ.get("GROUP_RANK")}
    report.update(batches=seen, test=result.metrics["test"], history=result.history)
    (out.parent / f"{out.name}-rank{state.process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
