"""Evaluate or use a model that hubtransfer saved (a local folder)."""

from __future__ import annotations

import json
from pathlib import Path

from accelerate import Accelerator
from transformers import AutoConfig, pipeline
from transformers.utils import logging as transformers_logging

from hubtransfer.data import prepare_data
from hubtransfer.loop import evaluate, make_loaders
from hubtransfer.model import load_trained, quiet_transformers
from hubtransfer.recipe import load_recipe
from hubtransfer.problems import PROBLEMS, SINGLE_LABEL, over_thresholds, problem_of_config, saved_scorer, task_for
from hubtransfer.tasks import get_task

RECIPE_FILE = "recipe.yaml"


def _task_of(folder: Path) -> str:
    recipe = folder / RECIPE_FILE
    if recipe.is_file():
        return load_recipe(recipe).task
    arch = " ".join(AutoConfig.from_pretrained(folder).architectures or [])
    if "ImageClassification" in arch:
        return "image-classification"
    if "SequenceClassification" in arch:
        return "text-classification"
    raise ValueError(f"'{folder}' has no {RECIPE_FILE} and its architecture ({arch or 'none'}) names no known task")


def _require_folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"'{folder}' is not a saved model folder (no config.json); pass the output_dir of a run")
    return path


def evaluate_saved(folder: str | Path, split: str = "test", overrides: list[str] | None = None) -> dict:
    """Re-evaluate a saved run on a split of its own recipe's data (the split is deterministic).

    Returns:
        {"metrics": {...}, "confusion": [[...]], "n": examples}
    """
    path = _require_folder(folder)
    recipe = load_recipe(path / RECIPE_FILE, overrides)
    task = task_for(recipe.task, recipe.problem)
    data = prepare_data(recipe.data, task.modality, task.labeled, recipe.problem)
    processor = task.load_processor(path, recipe)
    encoded = task.encode(data, processor, recipe)
    loaders, _ = make_loaders(encoded, task.collate(processor, recipe), recipe)
    if split not in loaders:
        raise ValueError(f"split '{split}' is not one of {sorted(loaders)}")
    accelerator = Accelerator()
    model, loader = accelerator.prepare(load_trained(path, task), loaders[split])
    out = evaluate(model, loader, accelerator, saved_scorer(task, data.labels, model.config))
    return {"metrics": out["metrics"], "confusion": out.get("confusion"), "n": len(out["references"])}


def predict(folder: str | Path, inputs: list, top_k: int = 1) -> list:
    """Labels and scores for texts, or for image paths / PIL images, through a transformers pipeline.

    Custom heads load through hubtransfer's own class, so no code from the folder runs. Per input, a list
    of ``{"label", "score"}``: single-label, the ``top_k`` best labels; multi-label, every label whose
    sigmoid score reaches its saved threshold (best first; ``top_k`` does not apply, the list may be
    empty); regression, one entry, the target's name and the predicted value.
    """
    pipe, config, call = _pipeline(folder)
    problem = problem_of_config(config)
    if problem == SINGLE_LABEL:
        return pipe(list(inputs), top_k=top_k, **call)
    scores = pipe(list(inputs), top_k=None, function_to_apply=PROBLEMS.get(problem).pipeline_function, **call)
    return [over_thresholds(s, config) for s in scores] if problem == "multi-label" else scores


def label_scores(folder: str | Path, inputs: list) -> list[dict[str, float]]:
    """Per input, every label's score as the saved problem type defines it (softmax, sigmoid, or the raw value)."""
    pipe, config, call = _pipeline(folder)
    function = PROBLEMS.get(problem_of_config(config)).pipeline_function or "softmax"
    return [{s["label"]: s["score"] for s in row} for row in pipe(list(inputs), top_k=None, function_to_apply=function, **call)]


def _pipeline(folder: str | Path):
    path = _require_folder(folder)
    task_name = _task_of(path)
    task = get_task(task_name)
    model = load_trained(path, task)
    kwargs = {"tokenizer": str(path)} if task.modality == "text" else {"image_processor": str(path)}
    with quiet_transformers(transformers_logging.CRITICAL):
        # pipeline() logs an error-level "not supported" list for classes it does not map (our custom heads); it runs them fine.
        pipe = pipeline(task_name, model=model, **kwargs)
    call = {"truncation": True} if task.modality == "text" else {}
    return pipe, model.config, call
