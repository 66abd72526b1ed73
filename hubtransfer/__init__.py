"""hubtransfer: pull a pretrained Hub checkpoint, attach a task head, fine-tune with Accelerate, push it back.

Public API:
    finetune(recipe, overrides) -> FinetuneResult
    load_recipe(path_or_dict, overrides) -> Recipe
    evaluate_saved(folder, split) / predict(folder, inputs)
"""

__version__ = "0.1.0"

from hubtransfer.api import FinetuneResult, finetune
from hubtransfer.inference import evaluate_saved, predict
from hubtransfer.recipe import Recipe, RecipeError, load_recipe

__all__ = ["FinetuneResult", "Recipe", "RecipeError", "evaluate_saved", "finetune", "load_recipe", "predict", "__version__"]
