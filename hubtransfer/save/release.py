"""What names a release beyond its tag: the recipe's hash, the data's fingerprint and the exact base revision.

Two pushes with the same three values trained the same recipe on the same data from the same weights; the card's
metadata and the run record both carry them, so a reader can tell which of two versions changed what.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from hubtransfer.data.split import fingerprint, input_bytes
from hubtransfer.recipe.schema import Recipe
from hubtransfer.train.state import comparable

_SHA = re.compile(r"^[0-9a-f]{40}$")


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of the resolved recipe, without the keys that do not change the model (output folder, Hub target,
    resume and logging): the same value for the same training on any machine."""
    return hashlib.sha256(json.dumps(comparable(recipe.to_dict()), sort_keys=True).encode()).hexdigest()


def data_fingerprint(data, modality: str) -> str:
    """sha256 of every split's inputs and labels in order (see :func:`hubtransfer.data.split.fingerprint`) and the
    label names: the same split of the same data gives the same value."""
    h = hashlib.sha256()
    for split in ("train", "validation", "test"):
        if split in data.splits:
            h.update(f"{split}:{_split_fingerprint(data.splits[split], data.input_column, modality)}\n".encode())
    h.update(json.dumps([str(label) for label in data.labels]).encode())
    return h.hexdigest()


def _split_fingerprint(ds, column: str, modality: str) -> str:
    if column in ("text", "image") and ds.column_names == [column, "label"]:  # the feature cache's key
        return fingerprint(ds, modality)
    # Other layouts (multi-task label columns, no labels, token lists): the inputs' bytes and every other column.
    inputs = (
        input_bytes(ds, modality)
        if column in ("text", "image")
        else [json.dumps(x, default=str).encode() for x in ds[column]]
    )
    others = {c: ds[c] for c in ds.column_names if c != column}
    h = hashlib.sha256()
    for i, x in enumerate(inputs):
        h.update(hashlib.sha256(x).digest())
        h.update(json.dumps([others[c][i] for c in sorted(others)], default=str).encode() + b"\0")
    return h.hexdigest()


def base_revision_sha(model_dir: Path, model_id: str) -> str | None:
    """The commit a Hub checkpoint was read at (its snapshot folder's name); None for a local folder."""
    if Path(model_id).expanduser().is_dir():
        return None
    return model_dir.name if _SHA.match(model_dir.name) else None


def release_facts(recipe: Recipe, data, modality: str, model_dir: Path) -> dict:
    """What the run record and the card's metadata carry (``hubtransfer`` key of the card's YAML)."""
    return {
        "recipe_hash": recipe_hash(recipe),
        "data_fingerprint": data_fingerprint(data, modality),
        "base_model_revision_sha": base_revision_sha(model_dir, recipe.model.id),
    }
