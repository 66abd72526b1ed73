"""The model card (README.md) of a finished run folder.

Metadata is built with huggingface_hub's :class:`ModelCardData` and :class:`EvalResult` (never by
writing YAML by hand) and the body is rendered from ``template.md`` next to this file by
:meth:`ModelCard.from_template`. Everything comes from the files ``hubtransfer.finetune`` writes
into the run folder, so a card can be rebuilt later without the training process. Nothing here
touches the network or reads the environment: cards can hold no token, and :func:`check_card`
refuses one that looks like it does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from hubtransfer.card.wording import POOLING, CardText, card_text
from hubtransfer.files import CONFUSION, CONFUSION_PNG, CURVES_PNG, METRICS_LOG, README, RECIPE, RUN_MARKER
from hubtransfer.recipe.refs import ProblemType

TEMPLATE = Path(__file__).with_name("template.md")
PACKAGED_PREFIX = "packaged:"

# The metric rows of a task's card, their note and its intended use come from hubtransfer.card.wording.
# A Hub repo id: "name" or "namespace/name". Local paths ("./x", "/x", "a/b/c") never match.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_DATA_FILE_SUFFIXES = {".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt"}
# Hub user access tokens: "hf_" and then 30+ letters/digits (the dev tokens of the local Hub hold "_").
_TOKEN = re.compile(r"hf_[A-Za-z0-9]{30,}")
_HARDWARE_KEYS = {"machine", "threads", "cuda"}  # shown under Training, not as framework versions
# Metric keys whose Hub (evaluate) metric type differs: the average rides in metric_args; accuracy on
# multi-hot rows is subset accuracy (sklearn's accuracy_score on multi-label data).
_HUB_METRIC_TYPES = {"f1_micro": "f1", "f1_macro": "f1", "subset_accuracy": "accuracy"}
_CONFUSION_TABLE_MAX_LABELS = 12  # beyond that the PNG reads better than a table


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
    run = _RunFolder(Path(run_dir))
    if base_model_id is not None and not _HUB_ID.match(base_model_id):
        raise ValueError(f"base_model_id '{base_model_id}' is not a Hub model id (org/name)")
    base = base_model_id or (run.base_model if _is_hub_id(run.base_model) else None)
    if run.run.get("init") == "random":
        base = None  # no pretrained weight survives: naming a base model would claim a transfer that did not happen
    name = repo_id or run.default_name
    card_data = _card_data(run, name, base, license)
    extra = dict(extra_sections or {})
    from hubtransfer.card.evidence import section  # the reports copied into the run folder's evidence/

    evidence = section(run.folder)
    if evidence:
        extra.setdefault("Transfer evidence", evidence)
    context = _context(run, name, repo_id, base, extra)
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


class _RunFolder:
    """The files of a finished run, read once."""

    def __init__(self, folder: Path):
        if not (folder / RUN_MARKER).is_file():
            raise FileNotFoundError(f"'{folder}' holds no finished hubtransfer run ({RUN_MARKER} is missing)")
        self.folder = folder
        self.run: dict = _read_json(folder / RUN_MARKER)
        self.recipe_text = (folder / RECIPE).read_text(encoding="utf-8")
        self.recipe: dict = yaml.safe_load(self.recipe_text) or {}
        self.config: dict = _read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
        self.history = _read_jsonl(folder / METRICS_LOG)
        confusion = folder / CONFUSION
        self.confusion: dict | None = _read_json(confusion) if confusion.is_file() else None

    @property
    def task(self) -> str:
        return self.run["task"]

    @property
    def base_model(self) -> str:
        return self.run["base_model"]

    @property
    def data(self) -> dict:
        return self.run["data"]

    @property
    def source(self) -> str:
        return self.data["source"]

    @property
    def default_name(self) -> str:
        # The card is written into a staging folder (".name.incomplete") that is renamed to
        # output_dir afterwards, so the recipe's output_dir names the model, not the folder.
        out = self.recipe.get("output_dir")
        return Path(out).name if out else self.folder.name

    @property
    def labels(self) -> list[tuple[int, str]]:
        """(id, name) as the saved model reports them (config.json), else as the data listed them."""
        if not _task(self).labeled:  # a masked-LM config carries transformers' placeholder labels
            return []
        id2label = self.config.get("id2label")
        if id2label:
            return sorted((int(i), str(n)) for i, n in id2label.items())
        return list(enumerate(self.data["labels"]))

    @property
    def adapter(self) -> dict | None:
        """The peft adapter of a ``lora`` run ({method, r, alpha, target_modules, merged, ...}), else None."""
        return self.run["strategy"].get("adapter")

    @property
    def adapter_only(self) -> bool:
        """The folder holds an unmerged adapter (peft format), not a full model."""
        return bool(self.adapter) and not self.adapter.get("merged")

    @property
    def remote_code(self) -> bool:
        """True for a custom head: config.json maps the auto class to modeling_hubtransfer.py."""
        return bool(self.config.get("auto_map"))

    def has(self, name: str) -> bool:
        """Whether the run folder holds the file ``name``."""
        return (self.folder / name).is_file()


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- sources


def _is_hub_id(text: str) -> bool:
    """A Hub repo id rather than a local path (an existing local path always wins, as when loading)."""
    if not _HUB_ID.match(text) or Path(text).suffix.lower() in _DATA_FILE_SUFFIXES:
        return False
    return not Path(text).expanduser().exists()


def _source_kind(source: str) -> str:
    if source.startswith(PACKAGED_PREFIX):
        return "packaged"
    return "hub" if _is_hub_id(source) else "local"


def _local_name(path: str) -> str:
    # Only the last component: a full path says nothing on the Hub and may expose a user name.
    return Path(path.rstrip("/\\")).name or "data"


def _dataset_ids(source: str) -> tuple[str, str]:
    """(dataset_type, dataset_name) for the model-index; local data gets an id no Hub dataset can have."""
    kind = _source_kind(source)
    if kind == "hub":
        return source, source
    if kind == "packaged":
        return source, f"{source[len(PACKAGED_PREFIX) :]} (packaged with hubtransfer)"
    name = _local_name(source)
    return f"local:{name}", f"{name} (local data)"


def _data_md(source: str) -> str:
    kind = _source_kind(source)
    if kind == "hub":
        return f"the Hub dataset `{source}`"
    if kind == "packaged":
        return f"the `{source[len(PACKAGED_PREFIX) :]}` data packaged with hubtransfer (`{source}`)"
    return f"local data `{_local_name(source)}`"


# --------------------------------------------------------------------------- metadata


def _card_data(run: _RunFolder, name: str, base: str | None, license: str | None) -> ModelCardData:
    hub_data = _source_kind(run.source) == "hub"
    return ModelCardData(
        base_model=base,
        # A relation without a base means nothing; an unmerged adapter is an "adapter" of its base.
        base_model_relation=("adapter" if run.adapter_only else "finetune") if base else None,
        datasets=[run.source] if hub_data else None,
        license=license,
        # An unmerged adapter is a peft repo: the Hub lists it as an adapter of base_model.
        library_name="peft" if run.adapter_only else "transformers",
        pipeline_tag=_task(run).pipeline_tag,  # None where no transformers pipeline serves the task (multi-task)
        tags=_tags(run),
        model_name=name,
        eval_results=_eval_results(run),
    )


def _tags(run: _RunFolder) -> list[str]:
    """Hub tags: the tool, the task, and how the transfer was done."""
    strategy = re.sub(r"[^a-z0-9]+", "-", run.run["strategy"]["strategy"].lower())  # "top:2" -> "top-2"
    tags = ["hubtransfer", run.task, "transfer-learning", f"strategy-{strategy}"]
    if _task(run).labeled:  # a masked-LM run keeps its pretraining head
        tags.append(f"head-{_head(run).get('type', 'linear')}")
    if run.adapter:
        tags += [run.adapter["method"], "peft"] if run.adapter_only else [run.adapter["method"], "merged-adapter"]
    if run.remote_code:
        tags.append("custom_code")  # what the Hub shows for auto_map models; the local Hub only reads the card
    return tags


def _eval_results(run: _RunFolder) -> list[EvalResult]:
    """One EvalResult per test metric; the model-index is derived from these by huggingface_hub."""
    dataset_type, dataset_name = _dataset_ids(run.source)
    spec = run.recipe.get("data", {})
    hub_data = _source_kind(run.source) == "hub"
    test = run.run["metrics"]["test"]
    task_type = _text(run).index_task or run.task
    return [
        EvalResult(
            task_type=task_type,
            task_name=_pretty(task_type),
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
        for key, label, args in _card_metrics(run)
        if key in test
    ]


# --------------------------------------------------------------------------- body


def _context(run: _RunFolder, name: str, repo_id: str | None, base: str | None, extra: dict[str, str]) -> dict:
    """Every value the template shows, formatted; keys never clash with ModelCardData's. A task's ``card_context``
    replaces or adds values (multi-task: labels, head and usage per head)."""
    context = {
        "title": name,
        "task": run.task,
        "task_pretty": _pretty(run.task),
        **_base_context(run, base),
        **_data_context(run),
        **_training_context(run),
        **_results_context(run),
        **_choices_context(run),
        **_usage_context(run, repo_id),
        "labels": [(i, _cell(n)) for i, n in run.labels],
        "label_names": ", ".join(f"`{n}`" for _, n in run.labels),
        "use_md": _text(run).use.format(
            input_kind=_input_kind(run),
            n_labels=len(run.labels),
            label_names=", ".join(f"`{n}`" for _, n in run.labels),
            **{f"target_{k}": v for k, v in (run.data.get("target") or {}).items()},
        ),
        "env": [(k, v) for k, v in run.run.get("environment", {}).items() if k not in _HARDWARE_KEYS],
        "recipe_yaml": run.recipe_text.rstrip(),
        "extra_sections": [(title, body.strip()) for title, body in extra.items()],
    }
    own = _text(run).context
    if own is not None:
        context.update(own(run, context))
    return context


def _base_context(run: _RunFolder, base: str | None) -> dict:
    local = not _is_hub_id(run.base_model)
    revision = run.run.get("base_model_revision")
    if run.run.get("init") == "random":
        arch = run.base_model if _is_hub_id(run.base_model) else _local_name(run.base_model)
        return {
            "base_md": f"a randomly initialised network with the architecture of `{arch}` (no pretrained weights)",
            "base_name": arch,
            "base_note": (
                "This model was trained from scratch (model.init=random), as a baseline; it names no `base_model`."
            ),
        }
    if base is None:
        folder = _local_name(run.base_model)
        return {
            "base_md": f"a checkpoint from the local folder `{folder}`",
            "base_name": folder,
            "base_note": (
                "The base checkpoint was a local folder, not a Hub repository, so this card names no `base_model`."
            ),
        }
    rev = f" (revision `{revision}`)" if not local and revision and revision != "main" else ""
    origin = " (loaded from a local copy)" if local else ""
    return {"base_md": f"`{base}`{rev}{origin}", "base_name": base, "base_note": None}


def _data_context(run: _RunFolder) -> dict:
    data, spec = run.data, run.recipe.get("data", {})
    hub_data = _source_kind(run.source) == "hub"
    dropped = data.get("duplicates_dropped") or {}
    return {
        "data_md": _data_md(run.source),
        "data_terms": data.get("terms"),
        "dataset_config": spec.get("config") if hub_data else None,
        "dataset_revision": spec.get("revision") if hub_data else None,
        "split_method": data.get("method", "not recorded"),
        "split_seed": data.get("split_seed", "not recorded"),
        "splits_from_source": _join(data.get("splits_from_source")),
        "splits_carved": ", ".join(data.get("splits_carved_from_train") or []),
        "test_carved": "test" in (data.get("splits_carved_from_train") or []),
        "fractions": ", ".join(f"{k} {v:g}" for k, v in (data.get("fractions") or {}).items()) or "none",
        "duplicates": ", ".join(f"{n:,} ({split})" for split, n in dropped.items()) or "none",
        "limits_note": _limits_note(spec),
        "sizes": [(split, f"{n:,}") for split, n in data["sizes"].items()],
        "n_train": f"{data['sizes']['train']:,}",
        "n_test": f"{data['sizes']['test']:,}",
    }


def _limits_note(spec: dict) -> str | None:
    # Sizes above already reflect the caps; say so, since they change what the numbers mean.
    parts = []
    if spec.get("max_train_samples"):
        parts.append(f"training capped at the first {spec['max_train_samples']:,} examples of the fixed split")
    if spec.get("max_eval_samples"):
        parts.append(f"validation and test capped at {spec['max_eval_samples']:,} examples each")
    return "; ".join(parts) + "." if parts else None


def _head(run: _RunFolder) -> dict:
    return run.recipe.get("head") or {}


def _head_md(run: _RunFolder) -> str:
    if not _task(run).labeled:
        return "its masked-LM head, kept (not replaced): the pretraining objective continues on new text"
    if _task(run).per_token:
        return "a new linear layer on each token's final hidden state (a word's tag is read at its first sub-token)"
    head = _head(run)
    features = POOLING.get(head.get("pooling", "native"), f"{head.get('pooling')} pooling")
    if head.get("type") == "mlp":
        sizes = " → ".join(str(s) for s in head.get("hidden_sizes", []))
        kind = f"a new MLP head (hidden sizes {sizes}, dropout {head.get('dropout', 0):g})"
    else:
        kind = "a new linear classification layer"
    code = " (custom head, `modeling_hubtransfer.py`)" if run.remote_code else ""
    return f"{kind} on {features}{code}"


def _adapter_md(adapter: dict) -> str:
    targets = ", ".join(f"`{t}`" for t in adapter.get("target_modules") or [])
    how = (
        "merged into the base weights after training, so this repository holds a plain transformers model"
        if adapter.get("merged")
        else (
            "saved alone in peft's format (`adapter_config.json`, `adapter_model.safetensors`); "
            "it loads on top of the base model"
        )
    )
    return (
        f"{adapter['method'].upper()} rank {adapter['r']}, alpha {adapter['alpha']:g}, dropout "
        f"{adapter['dropout']:g}, on {targets}; "
        f"the head ({', '.join(f'`{m}`' for m in adapter.get('modules_to_save') or [])}) trains in full. The adapter "
        f"is {how}"
    )


def _strategy_md(name: str) -> str:
    from hubtransfer.strategies import get_strategy  # late: the card module stays light for `hubtransfer push`

    try:
        return get_strategy(name).describe()
    except ValueError:  # a run folder from a version with another strategy
        return name


def _training_context(run: _RunFolder) -> dict:
    plan, training = run.run["strategy"], run.run.get("training", {})
    env = run.run.get("environment", {})
    return {
        "strategy": plan["strategy"],
        "strategy_md": _strategy_md(plan["strategy"]),
        "adapter_md": _adapter_md(run.adapter) if run.adapter else None,
        "head_md": _head_md(run),
        "trainable_params": f"{plan['trainable_params']:,}",
        "total_params": f"{plan['total_params']:,}",
        "trainable_share": _percent(plan["trainable_share"]),
        "precision": training.get("precision", "not recorded"),
        "precision_reason": training.get("precision_reason", "reason not recorded"),
        "steps": f"{training.get('steps', 0):,}",
        "best_step": run.run["metrics"].get("best_step") or "n/a",
        "watched_metric": _watched_metric(run),
        "early_stopping_md": _early_stopping_md(run),
        "train_time": _duration(training.get("train_seconds")),
        "wall_time": _duration(training.get("wall_seconds")),
        "throughput": _number(training.get("train_samples_per_second")),
        "hardware": _hardware(env),
        "hparams": _hparams(run.recipe),
    }


def _watched_metric(run: _RunFolder) -> str:
    return ((run.recipe.get("train") or {}).get("early_stopping") or {}).get("metric", "accuracy")


def _early_stopping_md(run: _RunFolder) -> str:
    stopping = (run.recipe.get("train") or {}).get("early_stopping") or {}
    if not stopping.get("patience"):
        return "off; training ran its full schedule."
    outcome = "stopped training early" if run.run.get("training", {}).get("stopped_early") else "did not trigger"
    return (
        f"patience {stopping['patience']} evaluations on validation {stopping.get('metric', 'accuracy')} "
        f"(min_delta {stopping.get('min_delta', 0):g}); it {outcome}."
    )


def _hardware(env: dict) -> str:
    device = env.get("cuda") or "CPU"
    cpu = env.get("cpu") or env.get("machine", "unknown machine")
    flags = f", {'/'.join(env['bf16_flags'])}" if env.get("bf16_flags") else ""
    threads = f", {env['threads']} threads" if env.get("threads") else ""
    return f"{device} ({cpu}{flags}{threads})"


def _choices_context(run: _RunFolder) -> dict:
    """What the run chose from the data (the recipe's ``auto`` keys), its checks, and the classical baseline beside
    it."""
    rows = [
        (f"`{c['key']}`", _cell(_value(c["value"])), _cell(_value(c["requested"])), _cell(c["why"]))
        for c in run.run.get("choices", [])
    ]
    base, test = run.run.get("baseline"), run.run["metrics"]["test"]
    baseline_md = None
    if base:
        names = [(k, label) for k, label, _ in _card_metrics(run) if k in base["test"]]
        cells = "; ".join(
            f"{label.lower()} {_metric(base['test'][k])} (this model {_metric(test.get(k))})" for k, label in names
        )
        baseline_md = f"{_cell(base['name'])}, C = {base['C']:g}, fitted on the same training split: {cells}"
    per_class = run.run["metrics"].get("test_per_class") or {}
    return {
        "choices": rows,
        "checks": [_cell(f["message"]) for f in run.run.get("diagnostics", [])],
        "checks_ran": "diagnostics" in run.run,
        "baseline_md": baseline_md,
        "per_class": [
            (_cell(name), _metric(v["precision"]), _metric(v["recall"]), _metric(v["f1"]), f"{v['support']:,}")
            for name, v in per_class.items()
        ],
    }


def _hparams(recipe: dict) -> list[tuple[str, str]]:
    """The recipe's train and head sections as (dotted key, value) rows, as overrides spell them."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                rows.append((f"{prefix}{key}", _cell(_value(value))))

    for section in ("train", "head"):
        walk(f"{section}.", recipe.get(section) or {})
    return rows


def _results_context(run: _RunFolder) -> dict:
    test = run.run["metrics"]["test"]
    best_val = run.run["metrics"].get("validation_best") or {}
    headline = _card_metrics(run)[0]
    return {
        "headline": f"{_metric(test.get(headline[0]))} {headline[1].lower()}",
        "metrics_note": _text(run).metrics_note.format(n_labels=len(run.labels)),
        "metric_names": [label for _, label, _ in _card_metrics(run)],
        "test_rows": [
            (label, _metric(test.get(key)), _metric(best_val.get(key))) for key, label, _ in _card_metrics(run)
        ],
        "history": [_history_row(rec, run.run["metrics"].get("best_step"), _card_metrics(run)) for rec in run.history],
        "curves_png": run.has(CURVES_PNG),
        "confusion_png": run.has(CONFUSION_PNG),
        "confusion": _confusion_table(run.confusion),
        "per_label": [
            (_cell(name), _metric(v["f1"]), f"{v['threshold']:.3f}", f"{v['support']:,}")
            for name, v in (run.run["metrics"].get("test_per_label") or {}).items()
        ],
    }


def _task(run: _RunFolder):
    from hubtransfer.tasks import get_task  # late: the card module stays light for `hubtransfer push`

    return get_task(run.task)


def _text(run: _RunFolder) -> CardText:
    return card_text(run.task, run.recipe.get("problem", ProblemType.SINGLE_LABEL.value))


def _card_metrics(run: _RunFolder) -> tuple:
    """(key in metrics.json, display name, metric_args for the model-index) rows; the first is the headline.
    Rows may depend on the run (multi-task: one set per head); a task with a ``card_metric_prefix`` adds a row
    per test metric of that prefix (F1 per entity type)."""
    text = _text(run)
    rows = text.metrics(run.run) if callable(text.metrics) else text.metrics
    prefix = text.metric_prefix
    if not prefix:
        return rows
    keys = sorted(k for k in run.run["metrics"]["test"] if k.startswith(prefix))
    return rows + tuple((k, f"F1 {k[len(prefix) :]}", None) for k in keys)


def _history_row(rec: dict, best_step: int | None, metrics: tuple) -> list[str]:
    val = rec.get("validation") or {}
    step = f"{rec['step']:,}" + (" (best)" if rec["step"] == best_step else "")
    epoch = f"{rec['epoch']:.2f}" if rec.get("epoch") is not None else "–"
    loss = f"{rec['train_loss']:.4f}" if rec.get("train_loss") is not None else "–"
    return [step, epoch, loss] + [_metric(val.get(key)) for key, _, _ in metrics]


def _confusion_table(confusion: dict | None) -> dict | None:
    if not confusion or len(confusion.get("labels", [])) > _CONFUSION_TABLE_MAX_LABELS:
        return None
    labels = [_cell(str(x)) for x in confusion["labels"]]
    rows = [(name, [f"{v:,}" for v in row]) for name, row in zip(labels, confusion["matrix"])]
    return {"labels": labels, "rows": rows}


def _usage_context(run: _RunFolder, repo_id: str | None) -> dict:
    hub = run.recipe.get("hub") or {}
    revision = hub.get("revision") if repo_id and hub.get("revision") not in (None, "main") else None
    task = _task(run)
    text = task.modality == "text"
    return {
        # Without a repo id the snippet loads the run folder where training wrote it.
        "model_ref": repo_id or run.recipe.get("output_dir") or str(run.folder),
        "revision": revision,
        "remote_code": run.remote_code,
        "adapter_only": run.adapter_only,
        "peft_class": task.peft_class,
        "example_input": _text(run).example_input
        or ('"This is the text to classify."' if text else '"path/to/image.jpg"'),
        # Extra pipeline() arguments of the task, as Python source (e.g. aggregation_strategy="simple").
        "pipeline_args": "".join(f", {k}={v!r}".replace("'", '"') for k, v in task.pipeline_kwargs.items()),
        "is_text": text,
        "input_kind": _input_kind(run),
    }


def _input_kind(run: _RunFolder) -> str:
    return "text" if _task(run).modality == "text" else "images"


# --------------------------------------------------------------------------- formatting


def _pretty(task: str) -> str:
    return task.replace("-", " ").title()


def _metric(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "–"


def _number(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "not recorded"


def _percent(share: float) -> str:
    # Head-only runs train a tiny share; two decimals would print "0.00%".
    pct = 100 * share
    return f"{pct:.2f}%" if pct >= 0.01 or pct == 0 else f"{pct:.2g}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds:,.1f} s ({seconds / 60:.1f} min)"


def _join(items: list | None) -> str:
    return ", ".join(str(x) for x in items) if items else "none"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "none" if value is None else str(value)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell: a '|' would split the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")


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
