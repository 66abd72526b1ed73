"""The previous version an update starts from: its folder (downloaded at an exact revision), recipe, record, labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download

from hubtransfer.errors import ModelSourceError
from hubtransfer.files import RECIPE, RUN_MARKER
from hubtransfer.job import load_recipe
from hubtransfer.recipe.schema import Recipe
from hubtransfer.recipe.sections import UpdateSpec
from hubtransfer.save.release import base_revision_sha


@dataclass
class Parent:
    """A finished hubtransfer run to continue from."""

    folder: Path
    model_id: str  # the Hub repo (or the folder) as the recipe names it
    revision: str
    sha: str | None  # the commit the revision pointed at (None for a local folder)
    recipe: Recipe
    record: dict

    @property
    def labels(self) -> list[str]:
        return list(self.record["data"]["labels"])

    @property
    def test(self) -> dict:
        return self.record["metrics"]["test"]


def fetch_parent(spec: UpdateSpec) -> Parent:
    """Download (or open) the previous version; refuse what an update cannot continue from."""
    local = Path(spec.from_model).expanduser()
    folder = local if local.is_dir() else Path(snapshot_download(spec.from_model, revision=spec.from_revision))
    if not (folder / RUN_MARKER).is_file() or not (folder / RECIPE).is_file():
        raise ModelSourceError(
            f"update.from_model: '{spec.from_model}' at '{spec.from_revision}' is not a hubtransfer run (no "
            f"{RUN_MARKER} / {RECIPE}): an update needs the previous version's labels and data split. Train v1 with "
            "hubtransfer, or start from it as model.id in a plain recipe"
        )
    record = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))
    return Parent(
        folder=folder,
        model_id=spec.from_model,
        revision=spec.from_revision,
        sha=base_revision_sha(folder, spec.from_model),
        recipe=load_recipe(folder / RECIPE),
        record=record,
    )
