"""Experiment: weight averages of a default run's fine-tuned weights and its own linear probe (WiSE-FT from the
probe), scored on validation and test, to see whether a point between the two holds what each knows.

Run after ``python scripts/user_data.py defaults --only NAME`` (it reads that run's saved weights):
    python scripts/probe_average.py NAME [NAME ...]

The probe is fitted again exactly as the run fits it (same features, same C grid); the pretrained backbone with the
probe's weights in its output layer is the start (alpha 0), the saved fine-tuned model the end (alpha 1). Results:
results/user_data/experiments/probe-average/NAME.json, with the machine. Test scores are reported for the whole
curve because this is a study of the curve, not a choice: the run itself would choose on validation only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from user_data import DEFAULT_RECIPES, RESULTS, WORK, data_overrides  # noqa: E402
from user_data_suite import BY_NAME  # noqa: E402

ALPHAS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
OUT = RESULTS / "experiments" / "probe-average"


def curve(name: str) -> dict:
    from hubtransfer import run as flow
    from hubtransfer.checks.probe import adopt
    from hubtransfer.job import job_for, load_recipe
    from hubtransfer.save.environment import describe_machine
    from hubtransfer.tasks.model import build_model, load_trained, quiet_transformers
    from hubtransfer.tasks.problems import configure_model
    from hubtransfer.train.batches import make_loaders
    from hubtransfer.train.evaluate import evaluate
    from hubtransfer.update.model import interpolate

    s = BY_NAME[name]
    folder = WORK / "runs" / name / "default"
    if not (folder / "model.safetensors").exists():
        raise SystemExit(f"{folder} has no saved model: run `python scripts/user_data.py defaults --only {name}` first")
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [*data_overrides(s), f"output_dir={tmp}/out"]
        run = flow._start(job_for(load_recipe(DEFAULT_RECIPES[s.modality], overrides)))
        flow._sources_and_data(run)
        flow._model_and_strategy(run)
        probe = flow._linear_probe(run)
    if probe is None:
        raise SystemExit(f"{name}: the default recipe fits no linear probe here")
    task, recipe, labels = run.job.task, run.job.recipe, run.data.labels
    with quiet_transformers():
        start_model = build_model(task, run.model_dir, recipe, labels)
        end_model = load_trained(folder, task)
    configure_model(start_model, run.job.problem, run.data)
    model = run.trainer.model
    adopt(probe, start_model, start_model, None)  # the probe as a model: the pretrained weights, the probe's head
    start = {k: v.detach().clone() for k, v in start_model.state_dict().items()}
    trained = {k: v.detach().clone() for k, v in end_model.state_dict().items()}
    if set(start) != set(trained):
        raise SystemExit(f"{name}: the saved model's weights do not match the recipe's architecture")
    loaders = make_loaders(run.trainer.encoded, run.trainer.collate, recipe)
    acc, scorer = run.accelerator, run.job.scorer(labels)
    prepared = acc.prepare(model)
    splits = {k: acc.prepare(loaders[k]) for k in ("validation", "test")}
    rows = []
    for alpha in ALPHAS:
        interpolate(model, start, trained, alpha)
        row = {"alpha": alpha}
        for split, loader in splits.items():
            metrics = evaluate(prepared, loader, acc, scorer)["metrics"]
            row[split] = {k: round(metrics[k], 4) for k in ("accuracy", "f1")}
        print(json.dumps(row), flush=True)
        rows.append(row)
    return {
        "set": name,
        "run": str(folder.relative_to(ROOT)),
        "probe": {"C": probe.C, "validation": probe.validation, "test": probe.test},
        "metric": recipe.train.early_stopping.metric,
        "curve": rows,
        "machine": describe_machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", choices=sorted(BY_NAME))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        result = curve(name)
        (OUT / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
