"""The names of what a run folder holds, in one place."""

from __future__ import annotations

from pathlib import Path

RUN_MARKER = "hubtransfer_run.json"  # the run record, written last: its presence means the folder holds a finished run
RECIPE = "recipe.yaml"  # the resolved recipe: every default, and every 'auto' key as chosen from the data
SPLIT = "split.json"
METRICS = "metrics.json"
METRICS_LOG = "metrics.jsonl"  # one line per evaluation
CONFUSION = "confusion_matrix.json"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "training_curves.png"
README = "README.md"  # the model card
CHECKPOINTS = "checkpoints"
EVIDENCE = "evidence"  # transfer-evidence reports carried into the card
MODELING_FILE = "modeling_hubtransfer.py"  # custom heads ship their class beside the weights


def evidence_dir(output_dir: str | Path) -> Path:
    """Where a recipe's transfer-evidence reports go unless told otherwise, and where its runs look for them."""
    return Path(str(output_dir) + "-evidence")


def staging_dir(out_dir: Path) -> Path:
    """Where a run is written before it replaces ``out_dir`` (``.NAME.incomplete`` beside it)."""
    return out_dir.parent / f".{out_dir.name}.incomplete"
