"""Multi-task vs one head at a time, on the same data, split and settings.

Writes results/multitask/{results.json,README.md}.

    flock /tmp/cpu.lock python scripts/multitask.py [--recipe FILE] [--model ./assets/all-MiniLM-L6-v2] [key=value ...]

Runs the multi-task recipe once, then, for every head, the same recipe as task text-classification on that
head's label column (same backbone, pooling, head type, schedule, seed, data caps). Reports each head's test
metrics side by side and the wall time of the multi-task run against the sum of the single-task runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hubtransfer.data.prepare import prepare_task_data
from hubtransfer.job import load_recipe
from hubtransfer.run import finetune
from hubtransfer.tasks import get_task

METRICS = ("accuracy", "f1")


def single_task(recipe, head):
    """The multi-task recipe reduced to one head: text-classification on that head's label column."""
    d = recipe.to_dict()
    d.update(task="text-classification", heads=[], output_dir=f"{recipe.output_dir}-{head.name}-alone")
    d["data"]["label_column"] = head.label_column
    return load_recipe(d)


def timed(recipe) -> tuple[dict, float]:
    started = time.perf_counter()
    result = finetune(recipe)
    return result.metrics["test"], time.perf_counter() - started


def same_split(multi, single) -> bool:
    """Both runs hold the same texts in every split, in the same order (the split keys hash the text alone)."""
    a, b = prepare_task_data(get_task(multi.task), multi), prepare_task_data(get_task(single.task), single)
    return all(a.splits[s]["text"] == b.splits[s]["text"] for s in ("train", "validation", "test"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="recipes/text/minilm_clothing_reviews_multitask.yaml")
    parser.add_argument("--model", default="./assets/all-MiniLM-L6-v2", help="model.id (a local copy: no Hub needed)")
    parser.add_argument("--out", default="results/multitask")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    recipe = load_recipe(
        args.recipe,
        [f"model.id={args.model}", "output_dir=runs/multitask/multi", "overwrite_output_dir=true", *args.overrides],
    )
    multi, multi_seconds = timed(recipe)
    rows, total = [], 0.0
    for head in recipe.heads:
        single = single_task(recipe, head)
        if head is recipe.heads[0]:
            assert same_split(recipe, single), "the multi-task and single-task splits differ"
        alone, seconds = timed(single)
        total += seconds
        rows.append(
            {
                "head": head.name,
                "label_column": head.label_column,
                "seconds_alone": round(seconds, 1),
                **{f"multi_{m}": multi[f"{head.name}/{m}"] for m in METRICS},
                **{f"alone_{m}": alone[m] for m in METRICS},
            }
        )
    report = {
        "recipe": recipe.to_dict(),
        "heads": rows,
        "multi_task_seconds": round(multi_seconds, 1),
        "single_task_seconds_sum": round(total, 1),
        "multi_task_mean_accuracy": multi["accuracy"],
        "single_task_mean_accuracy": sum(r["alone_accuracy"] for r in rows) / len(rows),
        "same_split_checked": True,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "README.md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))


def markdown(report: dict) -> str:
    d = report["recipe"]["data"]
    lines = [
        f"Test split ({d['max_eval_samples'] or 'all'} examples), {d['max_train_samples'] or 'all'} training examples, "
        f"{report['recipe']['train']['epochs']:g} epochs, strategy `{report['recipe']['strategy']}`, one seed.",
        "",
        "| head | multi-task accuracy | alone accuracy | multi-task macro F1 | alone macro F1 | alone wall time |",
        "|:--|--:|--:|--:|--:|--:|",
    ]
    for r in report["heads"]:
        lines.append(
            f"| {r['head']} | {r['multi_accuracy']:.4f} | {r['alone_accuracy']:.4f} | {r['multi_f1']:.4f} | "
            f"{r['alone_f1']:.4f} | "
            f"{r['seconds_alone']:.0f} s |"
        )
    lines.append(
        f"| **mean / total** | **{report['multi_task_mean_accuracy']:.4f}** | "
        f"**{report['single_task_mean_accuracy']:.4f}** | | | "
        f"{report['single_task_seconds_sum']:.0f} s |"
    )
    lines += [
        "",
        f"Wall time: one multi-task run {report['multi_task_seconds']:.0f} s vs "
        f"{report['single_task_seconds_sum']:.0f} s "
        f"for the {len(report['heads'])} single-task runs together "
        f"({report['multi_task_seconds'] / report['single_task_seconds_sum']:.2f}x).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
