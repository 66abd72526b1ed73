"""Run the real-asset recipes and print the README's results table (markdown).

Run: python scripts/results_table.py [--only NAME ...] [--out results/core.json]
Each recipe trains on the real checkpoint and data, pulled by Hub id from a local Hub this
script starts and seeds (unless HF_ENDPOINT names one); the table lists split sizes, strategy,
trainable share, test accuracy / macro-F1 (token-classification rows, in a table of their own: entity
F1 / precision / recall and token accuracy), training throughput and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hubtransfer.localhub.local import configure_clients, start_hub, stop_hub  # noqa: E402  (stdlib only)

RECIPES = {
    "minilm-full": "recipes/text/minilm_rotten_tomatoes.yaml",
    "minilm-head": "recipes/text/minilm_rotten_tomatoes_head.yaml",
    "effnet-full": "recipes/vision/efficientnet_lite0_animal_shapes.yaml",
    "effnet-head": "recipes/vision/efficientnet_lite0_animal_shapes_head.yaml",
    "minilm-layer-decay": "recipes/text/minilm_rotten_tomatoes.yaml",
    "minilm-gradual": "recipes/text/minilm_rotten_tomatoes.yaml",
    "minilm-lora": "recipes/text/minilm_rotten_tomatoes_lora.yaml",
    "minilm-ner": "recipes/text/minilm_conll2003_ner.yaml",
    "minilm-clothing-regression": "recipes/text/minilm_clothing_reviews_regression.yaml",
    "minilm-movie-genres-multilabel": "recipes/text/minilm_movie_genres_multilabel.yaml",
    "effnet-animal-pairs-multilabel": "recipes/vision/efficientnet_lite0_animal_pairs_multilabel.yaml",
}
# The table's headline and other test metrics per problem type: (key, name).
METRIC_COLUMNS = {
    "single-label": [("accuracy", "acc"), ("f1", "macro-F1")],
    "multi-label": [("f1_micro", "micro-F1"), ("f1_macro", "macro-F1"), ("subset_accuracy", "subset acc")],
    "regression": [("r_squared", "R²"), ("rmse", "RMSE"), ("mae", "MAE"), ("pearsonr", "Pearson r")],
    "token-classification": [
        ("f1", "entity F1"),
        ("precision", "entity precision"),
        ("recall", "entity recall"),
        ("accuracy", "token acc"),
    ],
}
# Rows that are a shipped recipe with a change (shown in the table's strategy column).
OVERRIDES = {
    "minilm-layer-decay": ["train.layer_decay=0.8", "train.lr=8e-5"],
    "minilm-gradual": ["strategy=gradual", "train.epochs=3"],
}


def run(name: str, path: str) -> dict:
    from hubtransfer.run import finetune
    from hubtransfer.save.environment import describe_machine

    started = time.perf_counter()
    result = finetune(
        ROOT / path, [f"output_dir=runs/results/{name}", "overwrite_output_dir=true", *OVERRIDES.get(name, [])]
    )
    run = result.run
    return {
        "name": name,
        "task": run["task"],
        "recipe": path,
        "model": run["base_model"],
        "data": run["data"]["source"],
        "sizes": run["data"]["sizes"],
        "strategy": run["strategy"]["strategy"],
        "problem": result_problem(path),
        "baseline": baseline(path),
        "overrides": OVERRIDES.get(name, []),
        "trainable_share": run["strategy"]["trainable_share"],
        "test": run["metrics"]["test"],
        "steps": run["training"]["steps"],
        "samples_per_second": run["training"]["train_samples_per_second"],
        "precision": run["training"]["precision"],
        "seconds": round(time.perf_counter() - started, 1),
        "train_seconds": run["training"]["train_seconds"],
        "lr": run["training"].get("lr"),
        "choices": {c["key"]: c["value"] for c in run.get("choices", [])},
        "baseline_test": (run.get("baseline") or {}).get("test"),
        "diagnostics": [d["code"] for d in run.get("diagnostics", [])],
        "machine": describe_machine(),
    }


def result_problem(path: str) -> str:
    from hubtransfer.job import load_recipe

    return load_recipe(ROOT / path).problem


def baseline(path: str) -> dict | None:
    """What a model that ignores the input scores on the same test split, for multi-label and regression rows:
    regression, always the training mean; multi-label, always the training split's most frequent label set, and
    every label always on (label priors with per-label thresholds tuned on validation end there: a constant score
    either always passes its threshold or never, and always-on is the F1-best choice for any label with positives)."""
    import numpy as np

    from hubtransfer.data.prepare import prepare_data
    from hubtransfer.job import job_for, load_recipe
    from hubtransfer.recipe.refs import ProblemType
    from hubtransfer.tasks.problem_metrics import multi_label_metrics, regression_metrics

    job = job_for(load_recipe(ROOT / path))
    if job.problem.single_label:
        return None
    data = prepare_data(job.recipe.data, job.task.modality, problem=job.recipe.problem)
    train, test = np.asarray(data.splits["train"]["label"]), np.asarray(data.splits["test"]["label"])
    if job.recipe.problem is ProblemType.REGRESSION:
        return {"mean": regression_metrics(test, np.full(len(test), train.mean()))}
    sets, counts = np.unique(train, axis=0, return_counts=True)
    frequent = np.tile(sets[counts.argmax()], (len(test), 1))
    return {
        "most_frequent_set": multi_label_metrics(test.astype(int), frequent.astype(int)),
        "all_labels": multi_label_metrics(test.astype(int), np.ones_like(test, dtype=int)),
    }


def _share(share: float) -> str:
    return "100%" if share == 1 else f"{100 * share:.2g}%"


def table(rows: list[dict]) -> str:
    head = (
        "| recipe | data (train / val / test) | problem | strategy | trains | test headline | other test metrics | "
        "precision | train samples/s | wall time |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        s = r["sizes"]
        kind = "token-classification" if r.get("task") == "token-classification" else r.get("problem", "single-label")
        (key, name), *others = METRIC_COLUMNS[kind]
        rest = ", ".join(f"{n} {r['test'][k]:.3f}" for k, n in others)
        lines.append(
            f"| `{r['recipe']}`{''.join(' ' + o for o in r.get('overrides', []))} | {r['data']} ({s['train']:,} / "
            f"{s['validation']:,} / {s['test']:,}) | "
            f"{r.get('problem', 'single-label')} | {r['strategy']} | {_share(r['trainable_share'])} | {name} "
            f"**{r['test'][key]:.3f}** | {rest} | "
            f"{r.get('precision', 'no')} | {r['samples_per_second']:.0f} | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", choices=sorted(RECIPES))
    p.add_argument("--out", type=Path, default=ROOT / "results" / "core.json")
    p.add_argument("--table-only", action="store_true", help="print the table of the saved results; run nothing")
    args = p.parse_args(argv)
    if args.table_only:
        saved = json.loads(args.out.read_text())
        print(table([saved[k] for k in RECIPES if k in saved]))
        return 0
    server = None
    try:
        if not os.environ.get("HF_ENDPOINT"):
            work = ROOT / "runs" / "results"
            server, endpoint = start_hub(work / "hub")
            configure_clients(endpoint, Path(tempfile.mkdtemp(prefix="hf-home-", dir=work)))
            from huggingface_hub import HfApi

            from hubtransfer.push.seed import seed

            seed(HfApi(), ROOT / "assets")
        rows = []
        for name in args.only or RECIPES:
            rows.append(run(name, RECIPES[name]))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        stop_hub(server)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    old.update({r["name"]: r for r in rows})
    args.out.write_text(json.dumps(old, indent=2))
    print(table([old[k] for k in RECIPES if k in old]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
