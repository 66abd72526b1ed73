"""Pull a pushed model back by repo id, with stock transformers, and compare it with the local run."""

from __future__ import annotations

from pathlib import Path

import transformers
from transformers import AutoConfig, pipeline

from hubtransfer.adapters import is_adapter_folder
from hubtransfer.inference import _task_of, label_scores, predict
from hubtransfer.model import quiet_transformers
from hubtransfer.problems import PROBLEMS, SINGLE_LABEL, problem_of_config
from hubtransfer.tasks import get_task


def compare_with_hub(repo_id: str, local_dir: str | Path, inputs: list, *, cache_dir: str | Path, revision: str = "main") -> dict:
    """Predictions of the Hub copy (fresh cache, stock classes) and of the local folder.

    Models with a custom head carry their modeling file; loading those needs trust_remote_code,
    which is granted here only because the code is the file hubtransfer itself wrote.
    """
    task = get_task(_task_of(Path(local_dir)))
    config = AutoConfig.from_pretrained(repo_id, revision=revision, cache_dir=cache_dir)
    if is_adapter_folder(local_dir):
        model = load_adapter_repo(repo_id, task, config, revision=revision, cache_dir=cache_dir)
    else:
        remote_code = bool(getattr(config, "auto_map", None))
        auto = getattr(transformers, task.auto_class)
        model = auto.from_pretrained(repo_id, revision=revision, cache_dir=cache_dir, trust_remote_code=remote_code)
    proc_cls = transformers.AutoTokenizer if task.modality == "text" else transformers.AutoImageProcessor
    processor = proc_cls.from_pretrained(repo_id, revision=revision, cache_dir=cache_dir)
    kwargs = {"tokenizer": processor} if task.modality == "text" else {"image_processor": processor}
    call = {"truncation": True} if task.modality == "text" else {}
    with quiet_transformers(transformers.logging.CRITICAL):  # the custom-head "not supported" list, as in predict()
        pipe = pipeline(task.name, model=model, **kwargs)
    problem = problem_of_config(config)
    if problem != SINGLE_LABEL:  # multi-label / regression: every label's score (sigmoid, or the raw value) must agree
        function = PROBLEMS.get(problem).pipeline_function
        hub = [{s["label"]: s["score"] for s in row} for row in pipe(list(inputs), top_k=None, function_to_apply=function, **call)]
        local = label_scores(local_dir, inputs)
        equal = all(h.keys() == l.keys() and all(abs(h[k] - l[k]) < 1e-5 for k in h) for h, l in zip(hub, local))
        return {"hub": hub, "local": local, "equal": equal}
    hub = [p[0] for p in pipe(list(inputs), top_k=1, **call)]
    local = [p[0] for p in predict(local_dir, inputs, top_k=1)]
    equal = all(h["label"] == l["label"] and abs(h["score"] - l["score"]) < 1e-5 for h, l in zip(hub, local))
    return {"hub": hub, "local": local, "equal": equal}


def load_adapter_repo(repo_id: str, task, config, **hub):
    """A pushed adapter as its card says to load it: peft's AutoPeftModel class on the base named in
    adapter_config.json, with the labels of the repo's config.json."""
    import peft

    auto = peft.AutoPeftModelForSequenceClassification if task.modality == "text" else peft.AutoPeftModel
    return auto.from_pretrained(repo_id, id2label=config.id2label, label2id=config.label2id, ignore_mismatched_sizes=True,
                                problem_type=config.problem_type, **hub)
