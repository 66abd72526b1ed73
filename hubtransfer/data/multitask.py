"""Data for multi-task runs: one text column and one label column per head, in the split single-task runs get.

The rows go through :mod:`hubtransfer.data`'s own dedup and split with every label column riding along,
so a multi-task run and a single-task run on one of its columns (same source, text column and split
settings) hold exactly the same texts in each split, in the same order: the split keys are content
hashes of the text alone. Each classification head's labels are unified like ``data.label_column``
(one ClassLabel, train's label set, labels only a held-out split has refused); a regression head's
values must be numbers.
"""

from __future__ import annotations

import difflib
import math
import re

from datasets import DatasetDict

from hubtransfer.data.labels import standard_columns, unify_labels
from hubtransfer.data.prepare import PreparedData
from hubtransfer.data.split import apply_limits, dedup_and_split
from hubtransfer.errors import DataError
from hubtransfer.recipe.schema import Recipe
from hubtransfer.sources.dataset import load_source

COLUMN = "head_{}"  # the prepared column of a head's labels


class HeadLabels(list):
    """The label names of every output, ``head/label`` (a regression head's single output is named ``head``), in
    the order of the model's concatenated logits; ``heads`` describes each head:
    ``{name, type, label_column, weight, labels}`` (``labels`` empty for regression)."""

    def __init__(self, heads: list[dict]):
        super().__init__(
            name for h in heads for name in ([f"{h['name']}/{label}" for label in h["labels"]] or [h["name"]])
        )
        self.heads = heads


def prepare_multitask(recipe: Recipe) -> PreparedData:
    """Deduplicated, fixed splits with a ``text`` column and one ``head_<name>`` column per head.

    Raises:
        DataError: a missing column, empty values, labels only a held-out split has, non-numbers for a
            regression head; the message names the head.
    """
    spec = recipe.data
    raw = load_source(spec)
    dd = standard_columns(raw, spec.text_column, None, "text")  # the text column and its empty-text check
    heads = []
    for head in recipe.heads:
        values, labels = _head_values(raw, head)
        dd = DatasetDict({s: ds.add_column(COLUMN.format(head.name), values[s]) for s, ds in dd.items()})
        heads.append(
            {
                "name": head.name,
                "type": head.type,
                "label_column": head.label_column,
                "weight": head.weight,
                "labels": labels,
            }
        )
    splits, info = dedup_and_split(dd, spec, "text")  # rows move whole: every head's label stays with its text
    splits = apply_limits(splits, spec)
    info.update(source=spec.source, sizes={k: len(v) for k, v in splits.items()}, labels=[], heads=heads)
    return PreparedData(splits=splits, labels=HeadLabels(heads), input_column="text", info=info)


def _head_values(raw: DatasetDict, head) -> tuple[dict, list[str]]:
    """({split: label ids or numbers}, label names) for one head; errors name the head."""
    where = f"heads.{head.name}.label_column '{head.label_column}'"
    for split, ds in raw.items():
        if head.label_column not in ds.column_names:
            guess = difflib.get_close_matches(head.label_column, ds.column_names, n=1, cutoff=0.5)
            dym = f" Did you mean '{guess[0]}'?" if guess else ""
            raise DataError(f"{where}: no such column in the {split} split.{dym} Columns: {ds.column_names}")
    one = DatasetDict({s: ds.select_columns([head.label_column]) for s, ds in raw.items()})
    if head.label_column != "label":
        one = one.rename_column(head.label_column, "label")
    if head.type == "regression":
        return {s: _numbers(ds["label"], where, s) for s, ds in one.items()}, []
    try:
        unified, names = unify_labels(one, head.label_column)
    except DataError as e:  # its message speaks of data.label_column: say which head instead
        raise DataError(re.sub(r"^data\.label_column( '[^']*')?:?", f"{where}:", str(e))) from None
    return {s: ds["label"] for s, ds in unified.items()}, names


def _numbers(values: list, where: str, split: str) -> list[float]:
    bad = [
        i
        for i, v in enumerate(values)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
    ]
    if bad:
        rows = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        raise DataError(
            f"{where}: a regression head needs numbers; {len(bad)} value(s) in the {split} split are not (rows {rows}, "
            f"e.g. {values[bad[0]]!r}); fix them or make it a classification head"
        )
    return [float(v) for v in values]
