"""The run folder: written whole into a staging folder, then renamed into place; never half-written, never
silently replacing another run."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from hubtransfer.errors import OutputDirError
from hubtransfer.files import CONFUSION, CONFUSION_PNG, CURVES_PNG, METRICS, RECIPE, RUN_MARKER, SPLIT
from hubtransfer.save import plots
from hubtransfer.save.record import RunRecord


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """A folder with another run (or unrelated files) is never silently replaced."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputDirError(f"output_dir '{out_dir}' is a file; choose a folder path")
    if not any(out_dir.iterdir()):
        return
    if (out_dir / RUN_MARKER).is_file():
        if overwrite:
            return
        raise OutputDirError(
            f"output_dir '{out_dir}' holds another finished run; pick another output_dir or set "
            "overwrite_output_dir=true"
        )
    raise OutputDirError(
        f"output_dir '{out_dir}' holds files that are not a hubtransfer run; choose an empty or new folder"
    )


def commit(staging: Path, out_dir: Path) -> None:
    """Put the finished run in place. A rename is atomic on one filesystem; an old run is moved aside first and
    removed after."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_reports(folder: Path, recipe, data, record: RunRecord, history: list[dict], confusion: list | None) -> None:
    """The resolved recipe, the split, the metrics, the confusion matrix and the curves (with their plots), and the
    run record last: its presence marks a finished run."""
    (folder / RECIPE).write_text(recipe.to_yaml(), encoding="utf-8")
    (folder / SPLIT).write_text(json.dumps(data.info, indent=2), encoding="utf-8")
    (folder / METRICS).write_text(json.dumps(record.to_dict()["metrics"], indent=2), encoding="utf-8")
    if confusion is not None:  # tasks whose scorer has none (token classification) write none
        (folder / CONFUSION).write_text(
            json.dumps({"labels": data.labels, "matrix": confusion}, indent=2), encoding="utf-8"
        )
        plots.confusion_matrix(confusion, data.labels, folder / CONFUSION_PNG)
    if history:
        plots.training_curves(history, recipe.train.early_stopping.metric, folder / CURVES_PNG)
    record.save(folder)
