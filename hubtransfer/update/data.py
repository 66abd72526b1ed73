"""The data of an update: the previous version's split read back, the new data, one label map for both, and the
training set each method trains on."""

from __future__ import annotations

import hashlib
import math

from datasets import ClassLabel, Dataset, DatasetDict, Value, concatenate_datasets

from hubtransfer.data.prepare import PreparedData
from hubtransfer.data.split import input_bytes
from hubtransfer.errors import DataError


def merged_labels(old: list[str], new: list[str]) -> list[str]:
    """The previous labels in their order (their head rows keep their meaning), then the new ones."""
    return [*old, *(label for label in new if label not in old)]


def relabel(ds: Dataset, names: list[str], merged: list[str]) -> Dataset:
    """``ds``'s integer labels (indices into ``names``) as indices into ``merged``, under a ClassLabel of ``merged``."""
    index = {i: merged.index(name) for i, name in enumerate(names)}
    ds = ds.cast_column("label", Value("int64"))  # the old ClassLabel would refuse the merged ids
    ds = ds.map(lambda batch: {"label": [index[i] for i in batch["label"]]}, batched=True, desc="labels")
    return ds.cast_column("label", ClassLabel(names=merged))


def _keys(ds: Dataset, modality: str) -> list[str]:
    return [hashlib.sha256(c).hexdigest() for c in input_bytes(ds, modality)]


def without(ds: Dataset, held_out: Dataset, modality: str) -> tuple[Dataset, int]:
    """``ds`` without the examples of ``held_out`` (by content): new training data must not hold an old test or
    validation example, or the old test would measure memory, not forgetting."""
    seen = set(_keys(held_out, modality))
    keep = [i for i, k in enumerate(_keys(ds, modality)) if k not in seen]
    return ds.select(keep), len(ds) - len(keep)


def renamed(labels: list[str], label_map: dict[str, str]) -> list[str]:
    """The new data's label names under ``label_map`` ({new: old}); a key the new data lacks is refused."""
    unknown = sorted(set(label_map) - set(labels))
    if unknown:
        raise DataError(
            f"update.label_map names labels the new data does not have: {unknown}; its labels are {labels}. Map "
            "those, or drop the keys"
        )
    return [label_map.get(label, label) for label in labels]


def update_data(
    old: PreparedData,
    new: PreparedData,
    method: str,
    fraction: float,
    seed: int,
    modality: str,
    label_map: dict[str, str] | None = None,
):
    """(the training data of the update, the old test split), both under the merged label map.

    Training: the new train split (for 'joint' also all the old one; for 'replay' also ``fraction`` of it, a seeded
    draw); validation: old and new validation together (what each method's choices are made on); test: the new test
    split (the old one is evaluated beside it)."""
    if old.input_column != new.input_column:
        raise DataError(
            f"the new data's input column '{new.input_column}' is not the previous version's '{old.input_column}'"
        )
    new_names = renamed(new.labels, label_map or {})
    labels = merged_labels(old.labels, new_names)
    o = {s: relabel(ds, old.labels, labels) for s, ds in old.splits.items()}
    n = {s: relabel(ds, new_names, labels) for s, ds in new.splits.items()}
    held_out = concatenate_datasets([o["validation"], o["test"]])
    n_train, leaked = without(n["train"], held_out, modality)
    train = n_train
    replayed = 0
    if method == "joint":
        replayed = len(o["train"])
    elif method == "replay":
        replayed = math.ceil(fraction * len(o["train"]))
    if replayed:
        train = concatenate_datasets([n_train, o["train"].shuffle(seed=seed).select(range(replayed))])
    splits = DatasetDict(
        train=train, validation=concatenate_datasets([n["validation"], o["validation"]]), test=n["test"]
    )
    info = dict(new.info)
    info.update(
        labels=labels,
        sizes={s: len(ds) for s, ds in splits.items()},
        update={
            "old_source": old.info.get("source"),
            "old_sizes": {s: len(ds) for s, ds in o.items()},
            "new_sizes": {s: len(ds) for s, ds in new.splits.items()},
            "old_examples_replayed": replayed,
            "new_train_dropped_as_old_held_out": leaked,
            "new_labels": [label for label in labels if label not in old.labels],
        },
    )
    return PreparedData(splits, labels, new.input_column, info), o["test"]
