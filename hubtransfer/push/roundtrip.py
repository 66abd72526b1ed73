"""Pull a pushed model back by repo id, with stock transformers, and compare it with the local run."""

from __future__ import annotations

from pathlib import Path

import transformers
from transformers import pipeline

from hubtransfer.inference import _task_of, label_scores, predict, run_pipeline
from hubtransfer.tasks import get_task
from hubtransfer.tasks.model import quiet_transformers, saved_config
from hubtransfer.tasks.peft_models import is_adapter_folder
from hubtransfer.tasks.problems import problem_of_config


def compare_with_hub(
    repo_id: str, local_dir: str | Path, inputs: list, *, cache_dir: str | Path, revision: str = "main"
) -> dict:
    """Predictions of the Hub copy (fresh cache, stock classes) and of the local folder.

    Classification compares each input's top label and its score; token classification each text's entity
    groups (type, span, words) and their scores. ``equal``: the same predictions, scores within 1e-5.

    Models with a custom head carry their modeling file; loading those needs trust_remote_code,
    which is granted here only because the code is the file hubtransfer itself wrote.
    """
    task = get_task(_task_of(Path(local_dir)))
    config = saved_config(repo_id, revision=revision, cache_dir=cache_dir)
    if task.predict is not None:  # no pipeline serves the task: the task's own predict on the Hub copy
        return _compare_own_predict(repo_id, local_dir, inputs, task, config, revision=revision, cache_dir=cache_dir)
    remote_code = bool(getattr(config, "auto_map", None))
    if is_adapter_folder(local_dir):
        model = load_adapter_repo(repo_id, task, config, revision=revision, cache_dir=cache_dir)
    else:
        auto = getattr(transformers, task.auto_class)
        model = auto.from_pretrained(repo_id, revision=revision, cache_dir=cache_dir, trust_remote_code=remote_code)
    proc_cls = transformers.AutoTokenizer if task.modality == "text" else transformers.AutoImageProcessor
    # The auto processor classes read config.json too: left unset, trust_remote_code makes transformers ask on
    # stdin (and wait 15 s) whenever config.json carries an auto_map.
    processor = proc_cls.from_pretrained(repo_id, revision=revision, cache_dir=cache_dir, trust_remote_code=remote_code)
    kwargs = {"tokenizer": processor} if task.modality == "text" else {"image_processor": processor}
    with quiet_transformers(transformers.logging.CRITICAL):  # the custom-head "not supported" list, as in predict()
        pipe = pipeline(task.name, model=model, **kwargs, **task.pipeline_kwargs)
    problem = problem_of_config(config)
    if (
        not problem.single_label and task.input_classification
    ):  # multi-label / regression: every label's score must agree
        call = {"truncation": True} if task.modality == "text" else {}
        function = problem.pipeline_function
        hub = [
            {s["label"]: s["score"] for s in row}
            for row in pipe(list(inputs), top_k=None, function_to_apply=function, **call)
        ]
        local = label_scores(local_dir, inputs)
        return {"hub": hub, "local": local, "equal": _close(hub, local)}
    hub, local = run_pipeline(pipe, task, inputs), predict(local_dir, inputs, top_k=1)
    if not task.per_token:  # one top label per input
        hub, local = [p[0] for p in hub], [p[0] for p in local]
    equal = _close(hub, local)
    return {"hub": hub, "local": local, "equal": equal}


def _compare_own_predict(repo_id: str, local_dir, inputs: list, task, config, **hub) -> dict:
    """The Hub copy through the stock auto class and its shipped modeling file vs hubtransfer's loader on the folder."""
    auto, remote_code = getattr(transformers, task.auto_class), bool(getattr(config, "auto_map", None))
    model = auto.from_pretrained(repo_id, trust_remote_code=remote_code, **hub)
    tokenizer = transformers.AutoTokenizer.from_pretrained(repo_id, trust_remote_code=remote_code, **hub)
    hub_preds, local = task.predict(model, tokenizer, list(inputs), 1), predict(local_dir, inputs, top_k=1)
    return {"hub": hub_preds, "local": local, "equal": _close(hub_preds, local), "class": type(model).__name__}


def _close(a, b, tol: float = 1e-5) -> bool:
    """Equal predictions: same structure and labels, numbers (scores, regression values) within ``tol``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) < tol
    return a == b


def load_adapter_repo(repo_id: str, task, config, **hub):
    """A pushed adapter as its card says to load it: peft's AutoPeftModel class on the base named in
    adapter_config.json, with the labels of the repo's config.json."""
    import peft

    auto = getattr(peft, task.peft_class)
    return auto.from_pretrained(
        repo_id,
        id2label=config.id2label,
        label2id=config.label2id,
        ignore_mismatched_sizes=True,
        problem_type=config.problem_type,
        **hub,
    )
