"""The model card (README.md) of a finished run folder.

Metadata is built with huggingface_hub's :class:`ModelCardData` and :class:`EvalResult` (never by
writing YAML by hand) and the body is rendered from ``template.md`` next to this file by
:meth:`ModelCard.from_template`. Everything comes from the files ``hubtransfer.finetune`` writes
into the run folder, so a card can be rebuilt later without the training process. Nothing here
touches the network or reads the environment: cards can hold no token, and :func:`check_card`
refuses one that looks like it does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from hubtransfer.card.evidence import section
from hubtransfer.card.folder import (
    HUB_ID,
    RunFolder,
    dataset_ids,
    is_hub_id,
    metric_rows,
    source_kind,
    task_of,
    text_of,
)
from hubtransfer.card.format import pretty_task
from hubtransfer.card.sections import body_context, head_spec
from hubtransfer.files import README

TEMPLATE = Path(__file__).with_name("template.md")

# Hub user access tokens: "hf_" and then 30+ letters/digits (the dev tokens of the local Hub hold "_").
_TOKEN = re.compile(r"hf_[A-Za-z0-9]{30,}")
# Metric keys whose Hub (evaluate) metric type differs: the average rides in metric_args; accuracy on
# multi-hot rows is subset accuracy (sklearn's accuracy_score on multi-label data).
_HUB_METRIC_TYPES = {"f1_micro": "f1", "f1_macro": "f1", "subset_accuracy": "accuracy"}


# --------------------------------------------------------------------------- public API


def build_card(
    run_dir: str | Path,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    base_model_id: str | None = None,
    extra_sections: dict[str, str] | None = None,
) -> ModelCard:
    """Model card for a finished run folder.

    Args:
        run_dir: a folder written by ``hubtransfer.finetune`` (holds ``hubtransfer_run.json``).
        repo_id: the Hub repo the model goes to; names the model and the usage snippet.
        license: the Hub licence id (e.g. ``apache-2.0``); omitted from the metadata when None.
        base_model_id: the Hub id of the base checkpoint when the run loaded it from a local folder.
        extra_sections: ``{title: markdown}`` appended as ``## title`` sections, in order.

    Returns:
        The card; ``str(card)`` is the README.md text.

    Raises:
        FileNotFoundError: the folder holds no finished run.
        ValueError: ``base_model_id`` is not a Hub id, or the card fails :func:`check_card`.
    """
    run = RunFolder(Path(run_dir))
    if base_model_id is not None and not HUB_ID.match(base_model_id):
        raise ValueError(f"base_model_id '{base_model_id}' is not a Hub model id (org/name)")
    base = base_model_id or (run.base_model if is_hub_id(run.base_model) else None)
    if run.record.init == "random":
        base = None  # no pretrained weight survives: naming a base model would claim a transfer that did not happen
    name = repo_id or run.default_name
    card_data = _card_data(run, name, base, license)
    extra = dict(extra_sections or {})

    evidence = section(run.folder)
    if evidence:
        extra.setdefault("Transfer evidence", evidence)
    context = body_context(run, name, repo_id, base, extra)
    card = ModelCard.from_template(card_data, template_path=str(TEMPLATE), **context)
    check_card(card)
    return card


def write_card(run_dir: str | Path, **kwargs: Any) -> Path:
    """Build the card of ``run_dir`` (keyword arguments as :func:`build_card`) and save it as README.md.

    Returns:
        The path of the README.md written.
    """
    card = build_card(run_dir, **kwargs)  # raises before anything is written
    path = Path(run_dir) / README
    card.save(path)
    return path


def check_card(card: ModelCard) -> None:
    """The validation that works offline; raises ValueError naming the first problem.

    * the metadata survives ``ModelCardData(**card.data.to_dict())`` and ``ModelCard(str(card))``
      unchanged (this is also what the local Hub's ``/api/validate-yaml`` runs);
    * the model-index converts to EvalResults and back unchanged;
    * no text that looks like a Hugging Face token.
    """
    text = str(card)
    _refuse_tokens(text)
    meta = card.data.to_dict()
    if ModelCardData(**meta).to_dict() != meta:
        raise ValueError("card metadata changes when re-read by ModelCardData")
    if ModelCard(text).data.to_dict() != meta:
        raise ValueError("card metadata changes when README.md is re-parsed")
    index = meta.get("model-index")
    if index is not None:
        name, results = model_index_to_eval_results(index)
        if eval_results_to_model_index(name, results) != index:
            raise ValueError("model-index does not round-trip through EvalResult")


# --------------------------------------------------------------------------- run folder


# --------------------------------------------------------------------------- sources


# --------------------------------------------------------------------------- metadata


def _card_data(run: RunFolder, name: str, base: str | None, license: str | None) -> ModelCardData:
    hub_data = source_kind(run.source) == "hub"
    return ModelCardData(
        base_model=base,
        # A relation without a base means nothing; an unmerged adapter is an "adapter" of its base.
        base_model_relation=("adapter" if run.adapter_only else "finetune") if base else None,
        datasets=[run.source] if hub_data else None,
        license=license,
        # An unmerged adapter is a peft repo: the Hub lists it as an adapter of base_model.
        library_name="peft" if run.adapter_only else "transformers",
        pipeline_tag=task_of(run).pipeline_tag,  # None where no transformers pipeline serves the task (multi-task)
        tags=_tags(run),
        model_name=name,
        eval_results=_eval_results(run),
        # Not Hub metadata keys: ModelCardData keeps them as they are. What tells two versions apart.
        hubtransfer=_release(run),
    )


def _release(run: RunFolder) -> dict | None:
    """The recipe hash, data fingerprint and base revision sha of the run (None for runs recorded before them)."""
    release = run.record.release
    return {k: v for k, v in release.items() if v is not None} if release else None


def _tags(run: RunFolder) -> list[str]:
    """Hub tags: the tool, the task, and how the transfer was done."""
    strategy = re.sub(r"[^a-z0-9]+", "-", run.record.strategy.strategy.lower())  # "top:2" -> "top-2"
    tags = ["hubtransfer", run.task, "transfer-learning", f"strategy-{strategy}"]
    if task_of(run).labeled:  # a masked-LM run keeps its pretraining head
        tags.append(f"head-{head_spec(run).get('type', 'linear')}")
    if run.adapter:
        tags += [run.adapter["method"], "peft"] if run.adapter_only else [run.adapter["method"], "merged-adapter"]
    if run.remote_code:
        tags.append("custom_code")  # what the Hub shows for auto_map models; the local Hub only reads the card
    return tags


def _eval_results(run: RunFolder) -> list[EvalResult]:
    """One EvalResult per test metric; the model-index is derived from these by huggingface_hub."""
    dataset_type, dataset_name = dataset_ids(run.source)
    spec = run.recipe.get("data", {})
    hub_data = source_kind(run.source) == "hub"
    test = run.record.metrics.test
    task_type = text_of(run).index_task or run.task
    return [
        EvalResult(
            task_type=task_type,
            task_name=pretty_task(task_type),
            dataset_type=dataset_type,
            dataset_name=dataset_name,
            dataset_config=spec.get("config") if hub_data else None,
            dataset_revision=spec.get("revision") if hub_data else None,
            dataset_split="test",
            # A head's metric "head/accuracy" is an accuracy (its name says which head); some keys have Hub names of
            # their own.
            metric_type=_HUB_METRIC_TYPES.get(key, key.rsplit("/", 1)[-1]),
            metric_name=f"Test {label}",
            metric_value=test[key],
            metric_args=args,
        )
        for key, label, args in metric_rows(run)
        if key in test
    ]


# --------------------------------------------------------------------------- body


# --------------------------------------------------------------------------- formatting


# --------------------------------------------------------------------------- licences and tokens


def _refuse_tokens(text: str) -> None:
    match = _TOKEN.search(text)
    if match:
        line = text.count("\n", 0, match.start()) + 1
        # The message never repeats the value: it would end up in logs.
        raise ValueError(
            f"refusing to write a model card holding what looks like a Hugging Face token (line {line}); "
            "remove it from the run folder's files (recipe.yaml, hubtransfer_run.json) and build the card again"
        )
