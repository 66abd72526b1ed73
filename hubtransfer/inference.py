"""Evaluate or use a model that hubtransfer saved (a local folder)."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoImageProcessor, AutoTokenizer, pipeline
from transformers.utils import logging as transformers_logging

from hubtransfer.data.prepare import prepare_task_data
from hubtransfer.files import RECIPE, RUN_MARKER
from hubtransfer.job import job_for, load_recipe
from hubtransfer.recipe.refs import ProblemType
from hubtransfer.tasks import get_task
from hubtransfer.tasks.model import load_trained, quiet_transformers, saved_config
from hubtransfer.tasks.problems import over_thresholds, problem_of_config, saved_scorer
from hubtransfer.train.batches import make_loaders
from hubtransfer.train.evaluate import evaluate
from hubtransfer.train.session import make_accelerator


def _task_of(folder: Path) -> str:
    recipe = folder / RECIPE
    if recipe.is_file():
        return load_recipe(recipe).task
    arch = " ".join(saved_config(folder).architectures or [])
    if "ImageClassification" in arch:
        return "image-classification"
    if "SequenceClassification" in arch:
        return "text-classification"
    if "TokenClassification" in arch:
        return "token-classification"
    raise ValueError(f"'{folder}' has no {RECIPE} and its architecture ({arch or 'none'}) names no known task")


def _require_folder(folder: str | Path) -> Path:
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"'{folder}' is not a saved model folder (no config.json); pass the output_dir of a run"
        )
    return path


def evaluate_saved(
    folder: str | Path, split: str = "test", overrides: list[str] | None = None, precision: str | None = None
) -> dict:
    """Re-evaluate a saved run on a split of its own recipe's data (the split is deterministic).

    ``precision``: 'no', 'bf16' or 'fp16'; None: the precision the run trained and tested in (its record), so the
    recorded test metrics come back exactly.

    Returns:
        {"metrics": {...}, "confusion": [[...]] (None for token classification), "n": examples}
    """
    path = _require_folder(folder)
    if precision is None:
        record = path / RUN_MARKER
        trained = json.loads(record.read_text(encoding="utf-8"))["training"] if record.is_file() else {}
        precision = trained.get("precision", "no")
    job = job_for(load_recipe(path / RECIPE, overrides))
    recipe, task = job.recipe, job.task
    data = prepare_task_data(task, recipe)
    processor = task.load_processor(path, recipe)
    encoded = task.encode(data, processor, recipe)
    loaders = make_loaders(encoded, task.collate(processor, recipe), recipe)
    if split not in loaders:
        raise ValueError(f"split '{split}' is not one of {sorted(loaders)}")
    accelerator = make_accelerator(recipe, precision)
    model, loader = accelerator.prepare(load_trained(path, task), loaders[split])
    out = evaluate(model, loader, accelerator, saved_scorer(job, data.labels, model.config))
    return {"metrics": out["metrics"], "confusion": out.get("confusion"), "n": len(out["references"])}


def predict(folder: str | Path, inputs: list, top_k: int = 1) -> list:
    """Predictions for texts, or for image paths / PIL images, through a transformers pipeline; one list per input.

    Single-label: the ``top_k`` best ``{"label", "score"}``. Multi-label: every label whose sigmoid score reaches
    its saved threshold (best first; ``top_k`` does not apply, the list may be empty). Regression: one entry, the
    target's name and the predicted value. Token classification: the entities of each text (``entity_group``,
    ``score``, ``word``, ``start``, ``end``; words grouped by ``aggregation_strategy="simple"``). Fill-mask: the
    ``top_k`` fillers. Multi-task: each head's prediction. Scores are Python floats (JSON-ready). Custom heads load
    through hubtransfer's own class, so no code from the folder runs.
    """
    path = _require_folder(folder)
    task = get_task(_task_of(path))
    if task.predict is not None:  # no transformers pipeline serves the task (multi-task)
        model = load_trained(path, task)
        return task.predict(model, task.load_processor(path, load_recipe(path / RECIPE)), list(inputs), top_k)
    pipe, config = _pipeline(path, task)
    problem = problem_of_config(config)
    if problem.single_label or not task.input_classification:
        return run_pipeline(pipe, task, inputs, top_k)
    call = {"truncation": True} if task.modality == "text" else {}
    scores = pipe(list(inputs), top_k=None, function_to_apply=problem.pipeline_function, **call)
    return [over_thresholds(s, config) for s in scores] if problem.type is ProblemType.MULTI_LABEL else scores


def label_scores(folder: str | Path, inputs: list) -> list[dict[str, float]]:
    """Per input, every label's score as the saved problem type defines it (softmax, sigmoid, or the raw value)."""
    path = _require_folder(folder)
    pipe, config = _pipeline(path, get_task(_task_of(path)))
    function = problem_of_config(config).pipeline_function or "softmax"
    call = {"truncation": True} if pipe.tokenizer is not None else {}
    return [
        {s["label"]: s["score"] for s in row}
        for row in pipe(list(inputs), top_k=None, function_to_apply=function, **call)
    ]


def _pipeline(path: Path, task):
    """The folder's model in its task's pipeline, and the model's config."""
    model = load_trained(path, task)
    # The processor gets the model's config (hubtransfer's own class): given a path alone, the auto processor classes
    # read config.json themselves, and a custom head's auto_map there makes transformers ask on stdin.
    if task.modality == "text":
        kwargs = {"tokenizer": AutoTokenizer.from_pretrained(path, config=model.config)}
    else:
        kwargs = {"image_processor": AutoImageProcessor.from_pretrained(path, config=model.config)}
    with quiet_transformers(transformers_logging.CRITICAL):
        # pipeline() logs an error-level "not supported" list for classes it does not map (our custom heads); it runs
        # them fine.
        pipe = pipeline(task.name, model=model, **kwargs, **task.pipeline_kwargs)
    return pipe, model.config


def run_pipeline(pipe, task, inputs: list, top_k: int = 1) -> list[list[dict]]:
    """One list of predictions per input: the top_k labels (classification), the entities (token classification)
    or the top_k fillers of the mask (fill-mask)."""
    if task.per_token:
        # A token pipeline truncates to the tokenizer's model_max_length, which hubtransfer saves as data.max_length.
        out = pipe(list(inputs))
    elif not task.labeled:  # fill-mask: its pipeline takes tokenizer options in a dict of their own
        out = pipe(list(inputs), top_k=top_k, tokenizer_kwargs={"truncation": True})
        out = [out] if len(inputs) == 1 else out  # one input: the pipeline returns its list unwrapped
    else:
        out = pipe(list(inputs), top_k=top_k, **({"truncation": True} if task.modality == "text" else {}))
    return [[_plain(p) for p in row] for row in out]


def _plain(prediction: dict) -> dict:
    """numpy scalars (token pipelines return float32 scores) as Python numbers, so the result is JSON-ready."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in prediction.items()}
