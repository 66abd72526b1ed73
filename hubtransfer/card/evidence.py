"""The "Transfer evidence" section of a model card, from the reports in a run folder's ``evidence/``.

A run copies the reports of its evidence folder (``OUTPUT_DIR-evidence`` by default) into
``evidence/`` of the run folder, so they travel with the model to the Hub and the card can be
rebuilt from the folder alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

REPORTS = {  # report name -> card sub-heading
    "compare": "Pretrained vs from scratch",
    "datasize": "How much data is enough",
    "strategies": "Where to cut: strategies compared",
    "source": "Did the source model help?",
}


def attach(run_dir: Path, evidence_dir: Path) -> list[str]:
    """Copy the reports (json, md, png) of ``evidence_dir`` into ``run_dir/evidence``; returns the names copied."""
    found = [name for name in REPORTS if (evidence_dir / f"{name}.json").is_file()]
    if not found:
        return []
    target = run_dir / "evidence"
    target.mkdir(parents=True, exist_ok=True)
    for name in found:
        for src in [evidence_dir / f"{name}{suffix}" for suffix in (".json", ".md", ".png")] + (
            [evidence_dir / "recommended.yaml"] if name == "strategies" else []
        ):
            if src.is_file():
                shutil.copyfile(src, target / src.name)
    return found


def section(run_dir: Path) -> str | None:
    """Markdown of every report in ``run_dir/evidence``, or None when there is none."""
    folder = Path(run_dir) / "evidence"
    parts = []
    for name, title in REPORTS.items():
        path = folder / f"{name}.json"
        if not path.is_file():
            continue
        report = json.loads(path.read_text(encoding="utf-8"))
        parts += [f"### {title}", "", *[f"- {s}" for s in report["summary"]], "", report["table"], ""]
        if (folder / f"{name}.png").is_file():
            parts += [f"![{title}](evidence/{name}.png)", ""]
    if not parts:
        return None
    intro = (
        "Measured by `hubtransfer compare`, `datasize`, `strategies` or `source` on the same data and split as this "
        "model "
        "(the reports are in `evidence/`)."
    )
    return "\n".join([intro, "", *parts]).strip()
