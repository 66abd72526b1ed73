"""A finished run folder as the card reads it (run record, resolved recipe, per-evaluation log, confusion matrix),
read once; and what the card calls the data source."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from hubtransfer.card.wording import CardText, card_text
from hubtransfer.files import CONFUSION, METRICS_LOG, RECIPE, RUN_MARKER
from hubtransfer.recipe.refs import ProblemType
from hubtransfer.save.record import RunRecord

PACKAGED_PREFIX = "packaged:"


# The metric rows of a task's card, their note and its intended use come from hubtransfer.card.wording.
# A Hub repo id: "name" or "namespace/name". Local paths ("./x", "/x", "a/b/c") never match.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


_DATA_FILE_SUFFIXES = {".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt"}


class RunFolder:
    """The files of a finished run, read once."""

    def __init__(self, folder: Path):
        if not (folder / RUN_MARKER).is_file():
            raise FileNotFoundError(f"'{folder}' holds no finished hubtransfer run ({RUN_MARKER} is missing)")
        self.folder = folder
        self.record = RunRecord.load(folder)
        self.recipe_text = (folder / RECIPE).read_text(encoding="utf-8")
        self.recipe: dict = yaml.safe_load(self.recipe_text) or {}
        self.config: dict = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
        self.history = read_jsonl(folder / METRICS_LOG)
        confusion = folder / CONFUSION
        self.confusion: dict | None = read_json(confusion) if confusion.is_file() else None

    @property
    def task(self) -> str:
        return self.record.task

    @property
    def base_model(self) -> str:
        return self.record.base_model

    @property
    def data(self) -> dict:
        return self.record.data

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
        if not task_of(self).labeled:  # a masked-LM config carries transformers' placeholder labels
            return []
        id2label = self.config.get("id2label")
        if id2label:
            return sorted((int(i), str(n)) for i, n in id2label.items())
        return list(enumerate(self.data["labels"]))

    @property
    def adapter(self) -> dict | None:
        """The peft adapter of a ``lora`` run ({method, r, alpha, target_modules, merged, ...}), else None."""
        return self.record.strategy.adapter

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


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def is_hub_id(text: str) -> bool:
    """A Hub repo id rather than a local path (an existing local path always wins, as when loading)."""
    if not HUB_ID.match(text) or Path(text).suffix.lower() in _DATA_FILE_SUFFIXES:
        return False
    return not Path(text).expanduser().exists()


def source_kind(source: str) -> str:
    if source.startswith(PACKAGED_PREFIX):
        return "packaged"
    return "hub" if is_hub_id(source) else "local"


def local_name(path: str) -> str:
    # Only the last component: a full path says nothing on the Hub and may expose a user name.
    return Path(path.rstrip("/\\")).name or "data"


def dataset_ids(source: str) -> tuple[str, str]:
    """(dataset_type, dataset_name) for the model-index; local data gets an id no Hub dataset can have."""
    kind = source_kind(source)
    if kind == "hub":
        return source, source
    if kind == "packaged":
        return source, f"{source[len(PACKAGED_PREFIX) :]} (packaged with hubtransfer)"
    name = local_name(source)
    return f"local:{name}", f"{name} (local data)"


def data_md(source: str) -> str:
    kind = source_kind(source)
    if kind == "hub":
        return f"the Hub dataset `{source}`"
    if kind == "packaged":
        return f"the `{source[len(PACKAGED_PREFIX) :]}` data packaged with hubtransfer (`{source}`)"
    return f"local data `{local_name(source)}`"


def task_of(run: RunFolder):
    from hubtransfer.tasks import get_task  # late: the card module stays light for `hubtransfer push`

    return get_task(run.task)


def text_of(run: RunFolder) -> CardText:
    return card_text(run.task, run.recipe.get("problem", ProblemType.SINGLE_LABEL.value))


def metric_rows(run: RunFolder) -> tuple:
    """(key in metrics.json, display name, metric_args for the model-index) rows; the first is the headline.
    Rows may depend on the run (multi-task: one set per head); a task with a ``card_metric_prefix`` adds a row
    per test metric of that prefix (F1 per entity type)."""
    text = text_of(run)
    rows = text.metrics(run.record) if callable(text.metrics) else text.metrics
    prefix = text.metric_prefix
    if not prefix:
        return rows
    keys = sorted(k for k in run.record.metrics.test if k.startswith(prefix))
    return rows + tuple((k, f"F1 {k[len(prefix) :]}", None) for k in keys)
