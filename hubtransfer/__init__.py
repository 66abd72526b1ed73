"""hubtransfer: pull a pretrained Hub checkpoint, attach a task head, fine-tune with Accelerate, push it back.

Public API (imported lazily, so ``import hubtransfer`` stays light and Hugging Face libraries
load only after the endpoint is settled):
    finetune(recipe, overrides) -> FinetuneResult
    load_recipe(path_or_dict, overrides) -> Recipe
    evaluate_saved(folder, split), predict(folder, inputs)
    rank(recipe, candidates, max_samples, validate) -> RankResult (transferability of candidate checkpoints)
    compare(recipe), datasize(recipe, target=...), sweep_strategies(recipe), source_effect(recipe, original)
        -> report dicts (transfer evidence)
"""

from __future__ import annotations

import importlib

# Before huggingface_hub / transformers / datasets are imported: they read the endpoint once.
from hubtransfer.localhub.env import prepare_environment

prepare_environment()

__version__ = "0.1.0"

_EXPORTS = {
    "finetune": "hubtransfer.run",
    "FinetuneResult": "hubtransfer.run",
    "load_recipe": "hubtransfer.job",
    "Recipe": "hubtransfer.recipe.schema",
    "RecipeError": "hubtransfer.errors",
    "evaluate_saved": "hubtransfer.inference",
    "predict": "hubtransfer.inference",
    "rank": "hubtransfer.select.rank",
    "RankResult": "hubtransfer.select.rank",
    "compare": "hubtransfer.evidence.compare",
    "datasize": "hubtransfer.evidence.datasize",
    "sweep_strategies": "hubtransfer.evidence.strategy_sweep",
    "source_effect": "hubtransfer.evidence.source_effect",
}
__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hubtransfer' has no attribute '{name}'")
