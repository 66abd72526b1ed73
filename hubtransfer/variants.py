"""Many fine-tuning runs of one recipe, each in its own folder, resumable as a whole.

A run whose folder already holds a finished run of the very same resolved recipe is read back
instead of trained again; an interrupted run continues from its own checkpoints (``finetune``
resumes them). So re-running an interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

import gc
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from hubtransfer.choices import resolved
from hubtransfer.errors import RecipeError
from hubtransfer.files import METRICS_LOG, RECIPE, RUN_MARKER
from hubtransfer.job import load_recipe
from hubtransfer.recipe.load import set_key
from hubtransfer.recipe.schema import Recipe
from hubtransfer.run import finetune
from hubtransfer.train.state import comparable


@dataclass
class Variant:
    """One run of a sweep: a name (its folder), the recipe changes, and what the report needs to know of it."""

    name: str
    changes: dict  # dotted recipe keys -> values
    meta: dict = field(default_factory=dict)


@dataclass
class VariantRun:
    variant: Variant
    recipe: Recipe
    run: dict  # the run record (hubtransfer_run.json)
    history: list[dict]  # validation per evaluation (metrics.jsonl)
    reused: bool


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def with_changes(recipe: Recipe, changes: dict) -> Recipe:
    """``recipe`` with dotted keys replaced (``{"train.lr": 1e-4}``), validated again."""
    d = recipe.to_dict()
    for key, value in changes.items():
        set_key(d, key.split("."), value)
    return load_recipe(d)


def variant_recipe(recipe: Recipe, variant: Variant, root: Path) -> Recipe:
    """The variant's recipe: its own folder under ``root``, never pushed, never a candidates list, and no linear
    probe: a sweep compares training choices, and a probe kept in place of a small run's fine-tuned weights would
    put a point of another method on its curves."""
    return with_changes(
        recipe,
        {
            "train.linear_probe": False,
            **variant.changes,
            "output_dir": str(root / slug(variant.name)),
            "overwrite_output_dir": True,
            "hub.push": False,
            "candidates": [],
        },
    )


def run_variants(recipe: Recipe, variants: list[Variant], root: Path, desc: str = "runs") -> list[VariantRun]:
    """Fine-tune every variant of ``recipe`` into ``root/<name>``; finished runs of the same recipe are reused."""
    names = [v.name for v in variants]
    if len(set(map(slug, names))) != len(names):
        raise ValueError(f"variant names must map to distinct folders, got {names}")
    out = []
    bar = tqdm(variants, desc=desc, unit="run", dynamic_ncols=True)
    for variant in bar:
        bar.set_postfix_str(variant.name)
        r = variant_recipe(recipe, variant, root)
        folder = Path(r.output_dir)
        reused = finished(folder, r)
        if not reused:
            finetune(r)
            gc.collect()  # this run's model and optimizer go before the next run's arrive
        out.append(VariantRun(variant, r, *read_run(folder), reused))
    return out


def finished(folder: Path, recipe: Recipe) -> bool:
    """Whether ``folder`` holds a finished run of ``recipe`` (where it was written may differ: a moved folder counts).

    The saved recipe is read back through the schema, so a setting added to hubtransfer since, at its
    default, does not make an old run look different."""
    saved = folder / RECIPE
    if not ((folder / RUN_MARKER).is_file() and saved.is_file()):
        return False
    try:
        old = load_recipe(saved)
        # The saved recipe names what the run chose from the data ('auto' keys); so does ``recipe`` once those are
        # written in.
        new = resolved(recipe, json.loads((folder / RUN_MARKER).read_text(encoding="utf-8")))
    except (RecipeError, ValueError):  # a recipe this version cannot read is not a run of this recipe
        return False
    return comparable(old.to_dict()) == comparable(new.to_dict())


def read_run(folder: Path) -> tuple[dict, list[dict]]:
    run = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))
    log = folder / METRICS_LOG
    history = (
        [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        if log.is_file()
        else []
    )
    return run, history
