"""Quality on data the defaults were not tuned on: the shipped recipes, only their data fields changed, against
references measured by hand on the same split.

Run:
    python scripts/user_data.py references [--only NAME ...]   # classical, frozen features + LR, fine-tune grid
    python scripts/user_data.py defaults [--only NAME ...]     # the shipped recipe with data.source = the user's file
    python scripts/user_data.py seeds --only NAME [--seeds 1 2] # default and reference again under other seeds
    python scripts/user_data.py table                          # the markdown table (README / docs) from the results

Sets: scripts/user_data_suite.py (half for tuning the defaults, half held out). Results: results/user_data/NAME.json,
one entry per reference and per default run, each with the machine it ran on; a finished entry is not run again.

References, each on the split the default run gets (content-hash 80/10/10 after deduplication):
- classical: tf-idf (1-2 grams) + logistic regression for text, raw pixels (32x32) + logistic regression for images,
  C chosen on validation accuracy;
- frozen + LR: the pretrained backbone's pooled features (MiniLM: mean of tokens; EfficientNet: its pooled 1280-d
  output), standardised, logistic regression with C chosen on validation accuracy;
- fine-tune: every weight trains (MiniLM with a mean-pooled linear head, EfficientNet with its own), at each learning
  rate of a grid, for at least 5 epochs and 500 optimizer steps (at most 12 epochs; the first three sets: 8 epochs,
  800 steps, at most 20), early stopping after 3 evaluations without gain, best epoch by validation accuracy; the
  learning rate with the best validation accuracy is the reference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from doc_markers import write_between  # noqa: E402
from user_data_suite import BY_NAME, SEEN, SUITE, SuiteSet, export, summary  # noqa: E402

RESULTS = ROOT / "results" / "user_data"
WORK = ROOT / "runs" / "user-data"
TEXT_MODEL = ROOT / "assets" / "all-MiniLM-L6-v2"
IMAGE_MODEL = ROOT / "assets" / "efficientnet-lite0"
DEFAULT_RECIPES = {
    "text": ROOT / "recipes" / "text" / "minilm_rotten_tomatoes.yaml",
    "image": ROOT / "recipes" / "vision" / "efficientnet_lite0_animal_shapes.yaml",
}
FT_LRS = {"text": [3e-5, 1e-4, 3e-4], "image": [3e-4, 1e-3, 3e-3]}
REF_MAX_LENGTH = 256
REF_IMAGE_SIZE = {"digits-8x8": 96, "elpv-defects": 224}
FEATURE_C = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
# The reference fine-tune's budget. The first three sets' references (sms-spam, drug-reviews, digits-8x8) ran with a
# larger one (at least 8 epochs and 800 steps, at most 20), before the long-text sets showed what that costs on 2 CPU
# cores (BBC articles at 256 tokens: about 8 s a step on one core); a larger budget only makes a reference harder to
# match.
MIN_EPOCHS, MIN_STEPS, MAX_EPOCHS, PATIENCE = 5, 500, 12, 3


# --------------------------------------------------------------------------- results files


def load_results(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"name": name}


def save_results(name: str, results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2), encoding="utf-8")
    tmp.replace(path)


def data_source(s: SuiteSet) -> Path:
    return export(s, WORK / "data")


def data_overrides(s: SuiteSet) -> list[str]:
    """What a user changes in a shipped recipe to point it at their own files: the data fields and a local
    checkpoint."""
    model = TEXT_MODEL if s.modality == "text" else IMAGE_MODEL
    out = [f"data.source={data_source(s)}", f"model.id={model}"]
    if s.modality == "text":
        out += ["data.text_column=text", "data.label_column=label"]
    return out


# --------------------------------------------------------------------------- references


def prepared(s: SuiteSet):
    from hubtransfer.data.prepare import prepare_data
    from hubtransfer.recipe.sections import DataSpec

    return prepare_data(DataSpec(source=str(data_source(s))), s.modality)


def classical(s: SuiteSet) -> dict:
    from hubtransfer.checks.baselines import classical_baseline

    data = prepared(s)
    started = time.perf_counter()
    out = classical_baseline(data, s.modality, "accuracy")
    return {
        "name": out["name"],
        "C": out["C"],
        "validation": out["validation"],
        "test": out["test"],
        "seconds": round(time.perf_counter() - started, 2),
        "sizes": {k: len(v) for k, v in data.splits.items()},
    }


def frozen_lr(s: SuiteSet) -> dict:
    """Pooled features of the frozen pretrained backbone + logistic regression, C chosen on validation accuracy."""
    import numpy as np
    import torch
    from accelerate.utils import set_seed
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from hubtransfer.job import load_recipe
    from hubtransfer.sources.checkpoint import resolve_model_dir
    from hubtransfer.strategies import apply_strategy
    from hubtransfer.tasks import get_task
    from hubtransfer.tasks.metrics import classification_metrics
    from hubtransfer.tasks.model import build_model, quiet_transformers
    from hubtransfer.train.features import key_parts, split_features, split_head
    from hubtransfer.train.precision import autocast_dtype, resolve_precision

    started = time.perf_counter()
    recipe = load_recipe(reference_recipe(s, lr=1e-3, name="frozen"))
    recipe = load_recipe({**recipe.to_dict(), "strategy": "head"})
    task = get_task(recipe.task)
    data = prepared(s)
    model_dir = resolve_model_dir(recipe.model)
    processor = task.load_processor(model_dir, recipe)
    encoded = task.encode(data, processor, recipe)
    set_seed(0)
    with quiet_transformers():
        model = build_model(task, model_dir, recipe, data.labels)
    apply_strategy(model, "head")
    split, why = split_head(model)
    assert split is not None, why
    mixed, _ = resolve_precision(recipe.train.precision)
    feats = split_features(
        split,
        encoded,
        task.collate(processor, recipe),
        key_parts=key_parts(model_dir, recipe, data.splits, s.modality, processor),
        batch_size=64,
        device=torch.device("cpu"),
        dtype=autocast_dtype(mixed),
    )
    x = {k: f.features.float().numpy() for k, f in feats.items()}
    y = {k: f.labels.numpy() for k, f in feats.items()}
    scaler = StandardScaler().fit(x["train"])
    x = {k: scaler.transform(v) for k, v in x.items()}
    tried, best = [], None
    for c in FEATURE_C:
        clf = LogisticRegression(C=c, max_iter=3000).fit(x["train"], y["train"])
        val = classification_metrics(clf.predict(x["validation"]), y["validation"])
        tried.append({"C": c, "validation": val})
        if best is None or val["accuracy"] > best[1]["accuracy"]:
            best = (clf, val, c)
    clf, val, c = best
    test = classification_metrics(clf.predict(x["test"]), y["test"])
    return {
        "C": c,
        "validation": val,
        "test": test,
        "tried": tried,
        "dim": int(x["train"].shape[1]),
        "feature_seconds": round(sum(f.seconds for f in feats.values()), 2),
        "seconds": round(time.perf_counter() - started, 2),
        "precision": mixed,
        "n_predicted_classes": len(np.unique(clf.predict(x["test"]))),
    }


def reference_recipe(s: SuiteSet, lr: float, name: str, epochs: float = MIN_EPOCHS, seed: int = 0) -> dict:
    """The hand-tuned reference's recipe: every choice written out, none left to hubtransfer's defaults."""
    text = s.modality == "text"
    recipe = {
        "task": "text-classification" if text else "image-classification",
        "model": {"id": str(TEXT_MODEL if text else IMAGE_MODEL)},
        "data": {"source": str(data_source(s))},
        "strategy": "full",
        "train": {
            "epochs": epochs,
            "lr": lr,
            "batch_size": 32,
            "warmup_ratio": 0.06,
            "scheduler": "linear",
            "precision": "auto",
            "early_stopping": {"metric": "accuracy", "patience": PATIENCE},
            "checkpoint_every": None,
            "seed": seed,
        },
        "output_dir": str(WORK / "runs" / s.name / name),
        "overwrite_output_dir": True,
    }
    if text:
        recipe["data"].update(text_column="text", label_column="label", max_length=REF_MAX_LENGTH)
        recipe["head"] = {"type": "linear", "pooling": "mean"}
    else:
        recipe["data"]["image_size"] = REF_IMAGE_SIZE[s.name]
    return _pin_new_keys(recipe)


def _pin_new_keys(recipe: dict) -> dict:
    """Keys that later versions of hubtransfer choose from the data (when present) are fixed for the references."""
    from hubtransfer.recipe.train import TrainSpec

    train = recipe["train"]
    if "class_weights" in TrainSpec.model_fields:
        train["class_weights"] = "none"
    if "baseline" in TrainSpec.model_fields:
        train["baseline"] = False
    if "linear_probe" in TrainSpec.model_fields:  # the reference is the fine-tune; frozen + LR is its own reference
        train["linear_probe"] = False
    if "keep" in TrainSpec.model_fields["early_stopping"].annotation.model_fields:  # the grids kept the best
        train["early_stopping"]["keep"] = "best"
    return recipe


def reference_epochs(n_train: int) -> int:
    per_epoch = math.ceil(n_train / 32)
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(MIN_STEPS / per_epoch)))


def finetune_reference(s: SuiteSet, lr: float, seed: int = 0, epochs: int | None = None) -> dict:
    from hubtransfer.run import finetune

    epochs = epochs or reference_epochs(len(prepared(s).splits["train"]))
    started = time.perf_counter()
    name = f"ft-lr{lr:g}" + (f"-seed{seed}" if seed else "")
    result = finetune(reference_recipe(s, lr, name, epochs, seed))
    return {"lr": lr, **run_summary(result.run, time.perf_counter() - started), "epochs_budget": epochs}


def run_summary(run: dict, wall: float) -> dict:
    training = run["training"]
    search = training.get("lr_search") or {}
    return {
        "test": run["metrics"]["test"],
        "validation": run["metrics"]["validation_best"],
        "best_step": run["metrics"]["best_step"],
        "steps": training["steps"],
        "search_steps": search.get("extra_steps", 0),
        "stopped_early": training["stopped_early"],
        "train_seconds": training["train_seconds"],
        "wall_seconds": round(wall, 1),
        "precision": training["precision"],
        "sizes": run["data"]["sizes"],
    }


def references(names: list[str], finetune: bool = True) -> None:
    from hubtransfer.save.environment import describe_machine

    machine = describe_machine()
    for s in [BY_NAME[n] for n in names]:
        res = load_results(s.name)
        res.update(modality=s.modality, half=s.half, about=s.about, licence=s.licence, package=s.package)
        res.setdefault("summary", summary(s))
        refs = res.setdefault("references", {})
        if "classical" not in refs:
            refs["classical"] = {**classical(s), "machine": machine}
            save_results(s.name, res)
        if "frozen_lr" not in refs:
            refs["frozen_lr"] = {**frozen_lr(s), "machine": machine}
            save_results(s.name, res)
        if not finetune:  # the cheap references of every set first; the fine-tune grids (hours) after
            continue
        grid = refs.setdefault("finetune_grid", {})
        for lr in FT_LRS[s.modality]:
            if f"{lr:g}" not in grid:
                grid[f"{lr:g}"] = {**finetune_reference(s, lr), "machine": machine}
                save_results(s.name, res)
        best = max(grid.values(), key=lambda r: (r["validation"]["accuracy"], -r["lr"]))
        refs["finetune"] = {
            "lr": best["lr"],
            "test": best["test"],
            "validation": best["validation"],
            "wall_seconds": best["wall_seconds"],
            "mean_wall_seconds": round(sum(r["wall_seconds"] for r in grid.values()) / len(grid), 1),
        }
        save_results(s.name, res)
        print(
            json.dumps(
                {
                    s.name: {
                        k: v.get("test", {}).get("accuracy")
                        for k, v in refs.items()
                        if isinstance(v, dict) and "test" in v
                    }
                }
            )
        )


# --------------------------------------------------------------------------- default runs


def default_run(s: SuiteSet, extra: list[str] | None = None, name: str = "default") -> dict:
    from hubtransfer.run import finetune

    out = WORK / "runs" / s.name / name
    shutil.rmtree(out.parent / f".{out.name}.incomplete", ignore_errors=True)  # a fresh run, never a resumed one
    overrides = [*data_overrides(s), f"output_dir={out}", "overwrite_output_dir=true", *(extra or [])]
    started = time.perf_counter()
    result = finetune(DEFAULT_RECIPES[s.modality], overrides)
    wall = time.perf_counter() - started
    run = result.run
    out = {
        "recipe": str(DEFAULT_RECIPES[s.modality].relative_to(ROOT)),
        "overrides": [o.replace(str(ROOT) + "/", "") for o in overrides],
        **run_summary(run, wall),
    }
    for key in ("choices", "baseline", "linear_probe", "diagnostics"):
        if key in run:
            out[key] = run[key]
    return out


def defaults(names: list[str], again: bool) -> None:
    from hubtransfer.save.environment import describe_machine

    machine = describe_machine()
    for s in [BY_NAME[n] for n in names]:
        res = load_results(s.name)
        if "default" in res and not again:
            continue
        res["default"] = {**default_run(s), "machine": machine}
        save_results(s.name, res)
        print(json.dumps({s.name: res["default"]["test"]}))


def experiment(name: str, names: list[str], extra: list[str]) -> None:
    """The default recipe with ``extra`` overrides on the tuning half: how the defaults were chosen. Results go to
    results/user_data/experiments/NAME/SET.json. Refuses held-out sets (the defaults must not see them) except those
    already seen (``SEEN``), whose results are marked ``held_out_seen``."""
    from hubtransfer.save.environment import describe_machine

    held = [n for n in names if BY_NAME[n].half != "tuning" and n not in SEEN]
    if held:
        raise SystemExit(f"experiment: {held} are held out; tune on the tuning half only (seen: {sorted(SEEN)})")
    folder = RESULTS / "experiments" / name
    folder.mkdir(parents=True, exist_ok=True)
    for s in [BY_NAME[n] for n in names]:
        out = {"set": s.name, "overrides": extra, **default_run(s, extra, f"exp-{name}"), "machine": describe_machine()}
        if s.half != "tuning":
            out["held_out_seen"] = True
        (folder / f"{s.name}.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
        print(json.dumps({name: {s.name: out["test"], "wall": out["wall_seconds"]}}))


def seed_runs(names: list[str], seeds: list[int]) -> None:
    """The default and the chosen reference fine-tune (its learning rate, its budget) again under other train.seed
    values (head init, shuffling, dropout; the split stays): how much of a gap between two single runs is the draw.
    Seed 0 is the run in the set's results file. Results: results/user_data/experiments/seeds/SET.json; a finished
    seed is not run again. Measures the defaults, chooses nothing, so held-out sets may run here."""
    from hubtransfer.save.environment import describe_machine

    machine = describe_machine()
    folder = RESULTS / "experiments" / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    for s in [BY_NAME[n] for n in names]:
        res = load_results(s.name)
        if "default" not in res or "finetune" not in res.get("references", {}):
            raise SystemExit(f"seeds: {s.name} needs its default run and its fine-tune grid first")
        path = folder / f"{s.name}.json"
        lr = res["references"]["finetune"]["lr"]
        epochs = res["references"]["finetune_grid"][f"{lr:g}"]["epochs_budget"]  # the first sets ran a larger one
        out = json.loads(path.read_text()) if path.exists() else {"set": s.name, "default": {}, "reference": {}}
        out["reference_lr"] = lr
        for seed in seeds:  # the two sides alternate, seed by seed
            for side in ("default", "reference"):
                if str(seed) in out[side]:
                    continue
                if side == "default":
                    run = default_run(s, [f"train.seed={seed}"], f"seed{seed}")
                else:
                    run = finetune_reference(s, lr, seed, epochs)
                out[side][str(seed)] = {**run, "machine": machine}
                path.write_text(json.dumps(out, indent=2), encoding="utf-8")
                print(json.dumps({s.name: {side: seed, "test": run["test"]}}), flush=True)


def seed_table() -> str:
    """Mean and range over seeds of the default and the reference, where seeds/SET.json exists."""
    lines = [
        "| set | half | test size | seeds | default: mean (range) | reference fine-tune: mean (range) | "
        "default - reference, means |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in SUITE:
        path = RESULTS / "experiments" / "seeds" / f"{s.name}.json"
        if not path.exists():
            continue
        res, extra = load_results(s.name), json.loads(path.read_text())
        imbalanced = _imbalanced(res["summary"])
        seed0 = {
            "default": res["default"],
            "reference": res["references"]["finetune_grid"][f"{extra['reference_lr']:g}"],
        }
        runs = {side: [seed0[side], *extra[side].values()] for side in ("default", "reference")}
        n = min(len(runs["default"]), len(runs["reference"]))
        metrics = ("accuracy", "f1") if imbalanced else ("accuracy",)
        scores = {side: {m: [r["test"][m] for r in rs[:n]] for m in metrics} for side, rs in runs.items()}
        cells = {
            side: " / ".join(f"{_pct(sum(xs) / n)} ({_pct(min(xs))}-{_pct(max(xs))})" for xs in by_metric.values())
            for side, by_metric in scores.items()
        }
        gaps = [f"{100 * (sum(scores['default'][m]) - sum(scores['reference'][m])) / n:+.1f}" for m in metrics]
        lines.append(
            f"| {s.name} | {s.half} | {res['references']['classical']['sizes']['test']} | {n} | {cells['default']} | "
            f"{cells['reference']} ({extra['reference_lr']:g}) | {' / '.join(gaps)} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- table


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def table() -> str:
    head = (
        "| set | half | train / val / test | classes (imbalance) | classical | frozen + LR | fine-tune grid (lr) | "
        "**default** | default - best transfer ref | default before (keep: best) | in-run linear probe | "
        "default steps (search) / ref budget | "
        "default wall | ref fine-tune wall | checks that fired |"
    )
    lines = [head, "|" + "---|" * 15]
    for s in SUITE:
        res = load_results(s.name)
        refs, d = res.get("references", {}), res.get("default")
        if not refs:
            continue
        sizes = refs["classical"]["sizes"]
        summ = res["summary"]
        imbalanced = _imbalanced(summ)
        cells = []
        for key in ("classical", "frozen_lr", "finetune"):
            r = refs.get(key)
            cells.append(
                "-" if r is None else _pair(r["test"], imbalanced) + (f" ({r['lr']:g})" if key == "finetune" else "")
            )
        ft = refs.get("finetune", {})
        # One reference fine-tune's budget: its epochs at ceil(train / 32) steps each (it may stop early).
        budget = max(
            (r["epochs_budget"] * math.ceil(sizes["train"] / 32) for r in refs.get("finetune_grid", {}).values()),
            default=0,
        )
        if d is None:
            gap, dcell, dwall, cost = "-", "not run", "-", "-"
        else:
            total = d["steps"] + d.get("search_steps", 0)
            cost = f"{total} ({d.get('search_steps', 0)}) / {budget} = {total / budget:.2f}x" if budget else f"{total}"
            best_acc = max(refs[k]["test"]["accuracy"] for k in ("frozen_lr", "finetune") if k in refs)
            best_f1 = max(refs[k]["test"]["f1"] for k in ("frozen_lr", "finetune") if k in refs)
            gap = f"{100 * (d['test']['accuracy'] - best_acc):+.1f}" + (
                f" / {100 * (d['test']['f1'] - best_f1):+.1f}" if imbalanced else ""
            )
            dcell, dwall = "**" + _pair(d["test"], imbalanced) + "**", f"{d['wall_seconds']:.0f} s"
        # The same recipe under the previous checkpoint rule (train.early_stopping.keep: best), where it was run.
        before = res.get("default_keep_best")
        bcell = "-" if before is None else _pair(before["test"], imbalanced)
        probe = (d or {}).get("linear_probe")
        # "-": a default run from before the probe existed (or over its 5,000-example 'auto' limit).
        pcell = "-" if not probe else _pair(probe["test"], imbalanced) + (" (kept)" if probe["kept"] else "")
        notes = "-" if d is None else ", ".join(x["code"].replace("_", " ") for x in d.get("diagnostics", [])) or "none"
        ref_wall = f"{ft['wall_seconds']:.0f} s" if ft.get("wall_seconds") else "-"
        lines.append(
            f"| {s.name} | {s.half} | {sizes['train']:,} / {sizes['validation']:,} / {sizes['test']:,} | "
            f"{summ['classes']} "
            f"({summ['imbalance']:.1f}x) | {cells[0]} | {cells[1]} | {cells[2]} | {dcell} | {gap} | {bcell} | "
            f"{pcell} | {cost} | "
            f"{dwall} | "
            f"{ref_wall} | {notes} |"
        )
    return "\n".join(lines)


def _imbalanced(summ: dict) -> bool:
    """Whether a set's table cells show macro-F1 beside accuracy: where the default run weighs its classes."""
    from hubtransfer.recipe.train import TrainSpec

    return summ["imbalance"] >= TrainSpec.model_fields["imbalance_ratio"].default


def _pair(metrics: dict, imbalanced: bool) -> str:
    return _pct(metrics["accuracy"]) + (f" / {_pct(metrics['f1'])}" if imbalanced else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["references", "defaults", "table", "export", "experiment", "seeds"])
    parser.add_argument("--name", help="experiment: its name (results/user_data/experiments/NAME/)")
    parser.add_argument(
        "--set", nargs="*", default=[], dest="extra", help="experiment: recipe overrides, e.g. train.min_steps=300"
    )
    parser.add_argument("--only", nargs="*", default=None, help="set names (default: all)")
    parser.add_argument(
        "--no-finetune", action="store_true", help="references: classical and frozen + LR only, no fine-tune grid"
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[1, 2], help="seeds: the train.seed values to add")
    parser.add_argument("--again", action="store_true", help="defaults: run again even where a result exists")
    parser.add_argument(
        "--write",
        type=Path,
        nargs="?",
        const=ROOT / "docs" / "user-data.md",
        help="table: also write it between the markers of this file (default docs/user-data.md)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    names = args.only or [s.name for s in SUITE]
    unknown = sorted(set(names) - set(BY_NAME))
    if unknown:
        parser.error(f"unknown set(s) {unknown}; known: {sorted(BY_NAME)}")
    if args.command == "export":
        for n in names:
            print(n, data_source(BY_NAME[n]), json.dumps(summary(BY_NAME[n])))
    elif args.command == "references":
        references(names, finetune=not args.no_finetune)
    elif args.command == "defaults":
        defaults(names, args.again)
    elif args.command == "seeds":
        seed_runs(names, args.seeds)
    elif args.command == "experiment":
        if not args.name:
            parser.error("experiment needs --name")
        experiment(args.name, args.only or [s.name for s in SUITE if s.half == "tuning"], args.extra)
    else:
        text, seeds = table(), seed_table()
        if args.write:
            write_table(args.write, text)
            write_between(args.write, SEEDS_START, SEEDS_END, seeds)
        print(text + "\n\n" + seeds)
    return 0


START, END = "<!-- user-data-table:start -->", "<!-- user-data-table:end -->"
SEEDS_START, SEEDS_END = "<!-- user-data-seeds:start -->", "<!-- user-data-seeds:end -->"


def write_table(path: Path, text: str) -> None:
    """Replace what stands between the table markers of ``path`` (docs/user-data.md, README.md) by ``text``."""
    write_between(path, START, END, text)


if __name__ == "__main__":
    raise SystemExit(main())
