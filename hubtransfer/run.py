"""``finetune(recipe)``: the whole flow in one call, the same code path as ``hubtransfer train``."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import set_seed

from hubtransfer import choices
from hubtransfer.card import evidence as evidence_report
from hubtransfer.card.card import license_of, write_card
from hubtransfer.checks import diagnostics
from hubtransfer.data.prepare import PreparedData, prepare_task_data
from hubtransfer.errors import OutputDirError
from hubtransfer.evidence import default_dir
from hubtransfer.push.push import push_folder
from hubtransfer.recipe.load import load_recipe
from hubtransfer.recipe.schema import Recipe
from hubtransfer.save import plots
from hubtransfer.save.environment import cpu_flags, cpu_model
from hubtransfer.sources.checkpoint import fetch_config, resolve_model_dir, sentence_pooling_of
from hubtransfer.strategies import lora as adapters
from hubtransfer.strategies.base import apply_strategy, parse_strategy
from hubtransfer.tasks.metrics import per_class
from hubtransfer.tasks.model import build_model, check_task_fits, save_model
from hubtransfer.tasks.problems import configure_model, task_for, tuned_for_test
from hubtransfer.train import checkpoints as checkpoint
from hubtransfer.train.batches import make_loaders
from hubtransfer.train.evaluate import evaluate
from hubtransfer.train.features import (
    FeatureClassifier,
    FeatureDataset,
    collate_features,
    key_parts,
    split_features,
    split_head,
)
from hubtransfer.train.loop import fit
from hubtransfer.train.precision import autocast_dtype, resolve_precision

logger = logging.getLogger(__name__)

RUN_MARKER = "hubtransfer_run.json"  # written last: its presence means the folder holds a finished run


@dataclass
class FinetuneResult:
    """What a run produced: test metrics, the trained model (best weights) and where it was saved."""

    metrics: dict
    model: torch.nn.Module
    output_dir: Path
    history: list[dict]
    run: dict


def finetune(recipe: Recipe | str | Path | dict, overrides: list[str] | None = None) -> FinetuneResult:
    """Fine-tune a pretrained checkpoint as the recipe says and save it.

    Every check (recipe, output folder, checkpoint config, data columns and labels) runs before
    the weights load and before the output folder is touched. The run is written into a staging
    folder that replaces ``output_dir`` only once complete, so a failed run leaves nothing half-written.

    Args:
        recipe: a Recipe, a YAML path or a mapping.
        overrides: ``key.sub=value`` strings applied on top.

    Returns:
        FinetuneResult with test metrics (``metrics["test"]``), the model and the output folder.

    Example:
        >>> result = finetune("recipes/text/minilm_rotten_tomatoes.yaml", ["train.epochs=1"])  # doctest: +SKIP
        >>> result.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    if not isinstance(recipe, Recipe) or overrides:
        recipe = load_recipe(recipe.to_dict() if isinstance(recipe, Recipe) else recipe, overrides)
    task = task_for(recipe.task, recipe.problem)
    out_dir = Path(recipe.output_dir)
    check_output_dir(out_dir, recipe.overwrite_output_dir)
    mixed, why = resolve_precision(recipe.train.precision)
    accelerator = make_accelerator(recipe, mixed, project_dir=out_dir.parent / f".{out_dir.name}.incomplete")
    _setup_logging(accelerator)
    logger.info("precision: %s (%s)", mixed, why)
    set_seed(recipe.train.seed)

    config = fetch_config(recipe.model)
    chosen = [c for c in [choices.choose_pooling(recipe, task, sentence_pooling_of(recipe.model))] if c is not None]
    recipe = choices.apply(recipe, chosen)
    check_task_fits(config, task, recipe)
    with accelerator.main_process_first():
        data = prepare_task_data(task, recipe)
    logger.info("data: %s", data.info["sizes"])
    model_dir = resolve_model_dir(recipe.model)
    found = choices.from_data(recipe, task, data, task.load_processor(model_dir, recipe), accelerator.num_processes)
    recipe, chosen = choices.apply(recipe, found), chosen + found
    choices.log(chosen)
    processor = task.load_processor(model_dir, recipe)
    with accelerator.main_process_first():
        encoded = task.encode(data, processor, recipe)
    model = build_model(task, model_dir, recipe, data.labels)
    configure_model(model, recipe, data)  # problem_type (loss, pipeline) and a regression head's starting bias
    if parse_strategy(recipe.strategy).kind == "lora":
        model, plan = adapters.wrap(model, recipe, base_reference(recipe, model_dir), task.name)
    else:
        plan = apply_strategy(model, recipe.strategy)
    logger.info("strategy %s: %s of %s parameters train (%.2f%%)", plan["strategy"], f"{plan['trainable_params']:,}", f"{plan['total_params']:,}", 100 * plan["trainable_share"])
    extra = {"precision": mixed, "precision_reason": why, "choices": chosen}
    trainer = _Trainable(model, encoded, task.collate(processor, recipe))
    if plan["strategy"] == "head" and recipe.train.cache_features:
        trainer, extra["features"] = _feature_route(trainer, recipe, task, data, processor, model_dir, accelerator, mixed)
    probe = None
    if parse_strategy(recipe.strategy).kind == "lp-ft":
        probe = lambda: _linear_probe(recipe, task, data, processor, model_dir, accelerator, mixed, trainer)  # noqa: E731
    result = _train_and_save(recipe, task, accelerator, model, processor, trainer, data, plan, extra, out_dir, model_dir, probe)
    if recipe.hub.push and PartialState().is_main_process:
        # After the local folder is complete: a failed push loses nothing (`hubtransfer push` resumes).
        pushed = push_folder(out_dir, recipe.hub.repo_id, private=recipe.hub.private, revision=recipe.hub.revision, commit_message=recipe.hub.commit_message)
        logger.info("pushed to %s (%s)", pushed.url, "new commit" if pushed.new_commit else "already up to date")
        result.run["pushed"] = pushed.__dict__
    return result


@dataclass
class _Trainable:
    """What the loop trains and on which inputs: the model on encoded inputs, or its head on cached features."""

    model: torch.nn.Module
    encoded: dict
    collate: object


def _feature_route(trainer: _Trainable, recipe, task, data: PreparedData, processor, model_dir: Path, accelerator, mixed: str):
    """Head-only: the frozen part runs once per split (or comes from the cache); the head trains on its vectors."""
    split, why = split_head(trainer.model)
    if split is None:
        logger.info("features not cached: %s; the backbone runs every epoch", why)
        return trainer, {"cached": False, "reason": why}
    parts = key_parts(model_dir, recipe, data.splits, task.modality, processor)
    trainer.model.to(accelerator.device)
    dtype = autocast_dtype(mixed)
    with accelerator.main_process_first():  # the main process fills the cache; the others then read it
        feats = split_features(split, trainer.encoded, trainer.collate, key_parts=parts,
                               batch_size=recipe.train.eval_batch_size, device=accelerator.device, dtype=dtype)
    encoded = {s: FeatureDataset(f.features, f.labels, getattr(trainer.encoded[s], "lengths", None)) for s, f in feats.items()}
    info = {"cached": True, "hits": sorted(s for s, f in feats.items() if f.hit), "extract_seconds": round(sum(f.seconds for f in feats.values()), 2),
            "extract_seconds_by_split": {s: round(f.seconds, 3) for s, f in feats.items()},
            "pooling": split.pooling, "dim": int(next(iter(feats.values())).features.shape[1])}
    logger.info("features: %s", json.dumps(info))
    return _Trainable(FeatureClassifier(split.head, trainer.model.config), encoded, collate_features), info


def _linear_probe(recipe: Recipe, task, data: PreparedData, processor, model_dir: Path, accelerator, mixed: str, trainer: _Trainable) -> dict:
    """LP-FT's first phase: only the new head trains (on cached features where it can) for
    ``train.probe_epochs`` at ``train.probe_lr``; the best head by validation stays in the model."""
    d = recipe.to_dict()
    d["strategy"] = "head"
    d["train"].update(epochs=recipe.train.probe_epochs, max_steps=None, lr=recipe.train.probe_lr, head_lr=None, warmup_ratio=0.0,
                      checkpoint_every=None, eval_at_start=False, early_stopping={"metric": recipe.train.early_stopping.metric, "patience": None})
    probe_recipe = load_recipe(d)
    apply_strategy(trainer.model, "head")
    head = _Trainable(trainer.model, trainer.encoded, trainer.collate)
    info = {}
    if probe_recipe.train.cache_features:
        head, info = _feature_route(head, probe_recipe, task, data, processor, model_dir, accelerator, mixed)
    loaders, sampler = make_loaders(head.encoded, head.collate, probe_recipe)
    logger.info("lp-ft: probe phase, head only, %g epochs at lr %g", probe_recipe.train.epochs, probe_recipe.train.lr)
    result = fit(head.model, loaders, sampler, probe_recipe, accelerator, task.scorer(data.labels), None,
                 class_weights=choices.class_weight_tensor(probe_recipe, data.labels))
    accelerator.free_memory()  # forget the probe's model/optimizer: the fine-tuning phase's checkpoints hold only its own
    apply_strategy(trainer.model, "full")
    best = result.best or {}
    return {"epochs": probe_recipe.train.epochs, "lr": probe_recipe.train.lr, "steps": result.steps,
            "train_seconds": round(result.train_seconds, 2), "validation_best": best.get("validation"),
            "features_cached": bool(info.get("cached")), "extract_seconds": info.get("extract_seconds", 0.0)}


def _train_and_save(recipe, task, accelerator, model, processor, trainer: _Trainable, data: PreparedData, plan, extra, out_dir: Path,
                    model_dir: Path, probe=None) -> FinetuneResult:
    """Train in ``.NAME.incomplete`` (resuming its checkpoints), evaluate, save, card, then rename into place.

    ``trainer.model`` is what the loop trains: ``model`` itself, or its head on cached features (the
    head's modules are ``model``'s own, so ``model`` holds the trained weights either way)."""
    staging = out_dir.parent / f".{out_dir.name}.incomplete"
    ckpt_dir = staging / "checkpoints" if recipe.train.checkpoint_every else None
    resuming = bool(recipe.train.resume and ckpt_dir and checkpoint.checkpoints(ckpt_dir))
    if accelerator.is_main_process and not resuming:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        if recipe.train.log_with:
            accelerator.init_trackers("hubtransfer", config=_flat_hparams(recipe))
        started = time.perf_counter()
        if probe is not None and not resuming:  # a resumed LP-FT run's checkpoint already holds the probed head
            extra["probe"] = probe()
        loaders, sampler = make_loaders(trainer.encoded, trainer.collate, recipe)
        log_path = staging / "metrics.jsonl" if accelerator.is_main_process else None
        scorer = task.scorer(data.labels)
        result = fit(trainer.model, loaders, sampler, recipe, accelerator, scorer, log_path, checkpoint_dir=ckpt_dir, best_dir=staging,
                     class_weights=choices.class_weight_tensor(recipe, data.labels))
        if result.lr_search is not None:  # the recipe saved with the model names the rate it trained at
            extra["choices"] = extra["choices"] + [_lr_choice(result.lr_search)]
            recipe = choices.apply(recipe, extra["choices"][-1:])
        if parse_strategy(recipe.strategy).kind == "gradual":  # the share it reached by the last epoch, not all it might have
            plan["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
            plan["trainable_share"] = plan["trainable_params"] / plan["total_params"]
        test_loader = accelerator.prepare(loaders["test"])
        # Multi-label thresholds: tuned on the best weights' validation predictions, applied unchanged to test.
        scorer = tuned_for_test(scorer, lambda: evaluate(trainer.model, accelerator.prepare(loaders["validation"]), accelerator, scorer))
        test = evaluate(trainer.model, test_loader, accelerator, scorer)
        wall = time.perf_counter() - started
        for tracker in accelerator.trackers:
            # Not end_training(): it also destroys the process group, which the barriers below still need.
            tracker.finish()
        baseline = _classical_baseline(recipe, task, data)
        run = _run_record(recipe, data, plan, result, test, wall, extra)
        run["baseline"] = baseline
        run["diagnostics"] = diagnostics.check_run(
            history=result.history, metric=recipe.train.early_stopping.metric, best_step=run["metrics"]["best_step"],
            test=test["metrics"], baseline=baseline, confusion=test.get("confusion"), labels=data.labels,
            n_validation=data.info["sizes"]["validation"], validation_fraction=recipe.data.validation_fraction)
        # metrics.json: the numbers only (two runs of one recipe give equal files); the baseline's time is in the run record
        run["metrics"]["baseline"] = {k: v for k, v in baseline.items() if k != "seconds"} if baseline else None
        run["metrics"]["diagnostics"] = run["diagnostics"]
        run["card"] = card_facts(recipe, model_dir)
        unwrapped = accelerator.unwrap_model(model)  # ``model`` itself when only its head was prepared
        if "thresholds" in test:  # saved with the model: `hubtransfer predict` and eval apply them
            unwrapped.config.hubtransfer_thresholds = test["thresholds"]
        unwrapped = save_model(unwrapped, processor, staging, task, is_main=accelerator.is_main_process, merge=recipe.peft.merge)
        if accelerator.is_main_process:
            shutil.rmtree(staging / "checkpoints", ignore_errors=True)  # the finished model replaces them
            _write_reports(staging, recipe, data, run, result, test)
            attached = evidence_report.attach(staging, default_dir(recipe))
            if attached:
                logger.info("transfer evidence %s from %s goes into the card", attached, default_dir(recipe))
            write_card(staging, repo_id=recipe.hub.repo_id, **run["card"])  # reads the reports
            _commit(staging, out_dir)  # the rename is what marks the run complete
        accelerator.wait_for_everyone()
    except BaseException:
        # Checkpoints survive a failure (the same command resumes); a run without any leaves nothing.
        if accelerator.is_main_process and not (ckpt_dir and checkpoint.checkpoints(ckpt_dir)):
            shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("test: %s", json.dumps(run["metrics"]["test"]))
    logger.info("saved to %s", out_dir)
    return FinetuneResult(metrics=run["metrics"], model=unwrapped, output_dir=out_dir, history=result.history, run=run)


def make_accelerator(recipe: Recipe, mixed: str, project_dir: Path | None = None) -> Accelerator:
    """The run's Accelerator. Without a GPU, ``cpu=True``: only then does Accelerate join the ranks of a
    multi-process launch (torchrun / ``accelerate launch --multi_gpu``) over gloo instead of each
    process training alone."""
    # AcceleratorState is a process-wide singleton that refuses a second precision; finetune() may run
    # many times in one process (API, sweeps), so drop the previous run's state but keep the
    # process group (PartialState).
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(
        cpu=not torch.cuda.is_available(),
        mixed_precision=mixed,
        gradient_accumulation_steps=recipe.train.grad_accum,
        log_with=recipe.train.log_with or None,
        project_dir=str(project_dir) if project_dir else None,
    )


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
        raise OutputDirError(f"output_dir '{out_dir}' holds another finished run; pick another output_dir or set overwrite_output_dir=true")
    raise OutputDirError(f"output_dir '{out_dir}' holds files that are not a hubtransfer run; choose an empty or new folder")


def _commit(staging: Path, out_dir: Path) -> None:
    # Rename is atomic on one filesystem; an old run is moved aside first and removed after.
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
    os.replace(staging, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _run_record(recipe, data, plan, result, test, wall, extra) -> dict:
    import accelerate
    import datasets
    import transformers

    best = result.best or {}
    return {
        "task": recipe.task,
        "base_model": recipe.model.id,
        "base_model_revision": recipe.model.revision,
        "init": recipe.model.init,
        "data": data.info,
        "strategy": {k: plan[k] for k in ("strategy", "trainable_params", "total_params", "trainable_share", "adapter") if k in plan},
        "metrics": {"test": test["metrics"], "validation_best": best.get("validation"), "best_step": best.get("step"),
                    **({"test_per_label": test["per_label"]} if "per_label" in test else {}),
                    **({"test_per_class": per_class(test["confusion"], data.labels)} if test.get("confusion") else {})},
        "training": {
            "steps": result.steps,
            "stopped_early": result.stopped_early,
            "train_seconds": round(result.train_seconds, 2),
            "wall_seconds": round(wall, 2),
            "train_samples_per_second": round(result.samples_per_second, 2),
            "lr": result.lr,
            "lr_search": result.lr_search,
            **{k: v for k, v in extra.items() if k != "choices"},
        },
        "choices": choices.as_records(extra.get("choices", [])),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "accelerate": accelerate.__version__,
            "datasets": datasets.__version__,
            "machine": platform.machine(),
            "cpu": cpu_model(),
            "bf16_flags": cpu_flags(),
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
    }


def _write_reports(folder: Path, recipe: Recipe, data: PreparedData, run: dict, result, test) -> None:
    (folder / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    (folder / "split.json").write_text(json.dumps(data.info, indent=2), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(run["metrics"], indent=2), encoding="utf-8")
    if test.get("confusion") is not None:  # tasks whose scorer has none (token classification) write none
        (folder / "confusion_matrix.json").write_text(json.dumps({"labels": data.labels, "matrix": test["confusion"]}, indent=2), encoding="utf-8")
        plots.confusion_matrix(test["confusion"], data.labels, folder / "confusion_matrix.png")
    if result.history:
        plots.training_curves(result.history, recipe.train.early_stopping.metric, folder / "training_curves.png")
    (folder / RUN_MARKER).write_text(json.dumps(run, indent=2), encoding="utf-8")


def _lr_choice(search: dict) -> choices.Choice:
    scores = ", ".join(f"{lr:g}: {v:.4f}" for lr, v in zip(search["candidates"], search["scores"]))
    return choices.Choice("train.lr", search["chosen"], "auto", f"best validation {search['metric']} after {search['rung_step']} of "
                          f"{search['steps']} steps among the candidates ({scores})", search)


BASELINE_TASKS = ("text-classification", "image-classification")


def _classical_baseline(recipe: Recipe, task, data: PreparedData) -> dict | None:
    """The classical baseline on the run's own split (main process; single-label text or image classification)."""
    if not recipe.train.baseline or recipe.problem != "single-label" or task.name not in BASELINE_TASKS:
        return None
    if not PartialState().is_main_process:
        return None
    from hubtransfer.checks.baselines import classical_baseline

    result = classical_baseline(data, task.modality, recipe.train.early_stopping.metric)
    logger.info("classical baseline (%s): test %s (%.1f s)", result["name"], json.dumps({k: round(v, 4) for k, v in result["test"].items()}),
                result["seconds"])
    return {k: result[k] for k in ("name", "C", "validation", "test")} | {"seconds": result["seconds"]}


def base_reference(recipe: Recipe, model_dir: Path) -> str:
    """How a saved adapter names its base: the Hub id, or the absolute folder a local checkpoint came from."""
    local = Path(recipe.model.id).expanduser()
    return str(local.resolve()) if local.is_dir() else recipe.model.id


def card_facts(recipe: Recipe, model_dir: Path) -> dict:
    """What the card needs beyond the run folder, kept in the run record so a later push can rebuild it."""
    hub_id = None if Path(recipe.model.id).expanduser().exists() or recipe.model.init == "random" else recipe.model.id
    return {"license": license_of(model_dir), "base_model_id": hub_id}


def _flat_hparams(recipe: Recipe) -> dict:
    out = {}

    def walk(prefix, node):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(key + ".", v)
            elif isinstance(v, (int, float, str, bool)):
                out[key] = v

    walk("", recipe.to_dict())
    return out


def _setup_logging(accelerator: Accelerator) -> None:
    level = logging.INFO if accelerator.is_main_process else logging.WARNING
    logging.getLogger("hubtransfer").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
