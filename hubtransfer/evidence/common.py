"""What the three evidence reports share: data, step budget, the cached classical baseline, writing."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from datasets import DatasetDict

from hubtransfer.checks.baselines import classical_baseline, settings
from hubtransfer.data.prepare import PreparedData, prepare_data
from hubtransfer.job import Job
from hubtransfer.recipe.schema import Recipe
from hubtransfer.train.budget import total_steps


def load_data(job: Job) -> tuple[PreparedData, str]:
    """The job's data, prepared as its runs will (the split is fixed by content), and its modality."""
    return prepare_data(job.recipe.data, job.task.modality), job.task.modality


def steps_for(recipe: Recipe, n_train: int) -> int:
    """Optimizer steps the recipe takes on ``n_train`` training examples (one process)."""
    return total_steps(recipe, math.ceil(n_train / recipe.train.batch_size))[1]


def first_n(data: PreparedData, n: int) -> PreparedData:
    """The first ``n`` training examples of the fixed split (what ``data.max_train_samples=n`` trains on)."""
    splits = DatasetDict(
        {**data.splits, "train": data.splits["train"].select(range(min(n, len(data.splits["train"]))))}
    )
    return PreparedData(splits, data.labels, data.input_column, data.info)


def majority_share(data: PreparedData, split: str) -> float:
    """Accuracy of always answering the split's most frequent label: the floor a curve starts from."""
    labels = list(data.splits[split]["label"])
    return max(labels.count(x) for x in set(labels)) / len(labels) if labels else 0.0


def baseline(data: PreparedData, modality: str, metric: str, folder: Path, spec) -> dict:
    """The classical baseline on ``data`` (prepared from the recipe's data section ``spec``), computed once per
    spec, training size, metric and baseline settings, and kept in ``folder``."""
    parts = {
        **spec.model_dump(mode="json"),
        "n": len(data.splits["train"]),
        "metric": metric,
        "settings": settings(modality),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]
    path = folder / "baselines" / f"{modality}-{digest}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    result = classical_baseline(data, modality, metric)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def baseline_sentence(metric: str, transfer: float, base: dict, what: str = "The transferred model") -> str:
    value = base["test"][metric]
    gap = transfer - value
    if gap > 0:
        verdict = f"beat the classical baseline ({base['name']}, C={base['C']:g}) by {100 * gap:.1f} points"
    elif gap == 0:
        verdict = f"tied the classical baseline ({base['name']}, C={base['C']:g})"
    else:
        verdict = (
            f"did NOT beat the classical baseline ({base['name']}, C={base['C']:g}): "
            f"it fell {100 * -gap:.1f} points short"
        )
    return f"{what} {verdict} of test {metric} ({transfer:.4f} vs {value:.4f})."


def md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_report(folder: Path, name: str, report: dict, title: str, plot) -> None:
    """``name.json`` (everything), ``name.md`` (title, summary, table) and ``name.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    md = [f"# {title}", "", *[f"- {s}" for s in report["summary"]], "", report["table"], ""]
    (folder / f"{name}.md").write_text("\n".join(md), encoding="utf-8")
    plot(report, folder / f"{name}.png")


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "never"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"
