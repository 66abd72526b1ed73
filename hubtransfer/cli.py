"""``hubtransfer train | eval | predict``: thin wrappers over the Python API.

User errors (a bad recipe, data or checkpoint) print one clear message and exit with 2;
no traceback, nothing written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path



def _user_errors() -> tuple[type[BaseException], ...]:
    from hubtransfer.api import OutputDirError
    from hubtransfer.data import DataError
    from hubtransfer.loop import TrainingError
    from hubtransfer.model import ModelSourceError
    from hubtransfer.recipe import RecipeError
    from hubtransfer.tasks.image_classification import ImageDataError

    return (RecipeError, DataError, ModelSourceError, OutputDirError, ImageDataError, TrainingError, FileNotFoundError)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hubtransfer", description="Transfer learning from Hub checkpoints, by recipe.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="fine-tune by a recipe", description="Fine-tune by a YAML recipe; key.sub=value overrides follow it.")
    t.add_argument("recipe", help="YAML recipe (see recipes/)")
    t.add_argument("overrides", nargs="*", help="key.sub=value, e.g. train.lr=1e-4 strategy=head")
    t.add_argument("--print-recipe", action="store_true", help="print the resolved recipe with every default and exit")

    e = sub.add_parser("eval", help="evaluate a saved run on a split of its data")
    e.add_argument("folder", help="output_dir of a run")
    e.add_argument("--split", default="test", choices=["train", "validation", "test"])

    r = sub.add_parser("predict", help="labels + scores for texts or image files")
    r.add_argument("folder", help="output_dir of a run (or any saved classifier folder)")
    r.add_argument("inputs", nargs="*", help="texts, or image paths for an image model")
    r.add_argument("--file", help="a text file with one input per line")
    r.add_argument("--top-k", type=int, default=1)
    return p


def _train(args) -> int:
    from hubtransfer.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.print_recipe:
        print(recipe.to_yaml(), end="")
        return 0
    from hubtransfer.api import finetune

    result = finetune(recipe)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        PartialState().destroy_process_group()
        return 0
    PartialState().destroy_process_group()
    print(json.dumps({"test": result.metrics["test"], "output_dir": str(result.output_dir)}, indent=2))
    return 0


def _eval(args) -> int:
    from hubtransfer.inference import evaluate_saved

    out = evaluate_saved(args.folder, args.split)
    print(json.dumps({args.split: out["metrics"], "n": out["n"]}, indent=2))
    return 0


def _predict(args) -> int:
    from hubtransfer.inference import predict

    inputs = list(args.inputs)
    if args.file:
        inputs += [line.rstrip("\n") for line in Path(args.file).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not inputs:
        raise FileNotFoundError("predict needs inputs: texts / image paths as arguments, or --file")
    for item, pred in zip(inputs, predict(args.folder, inputs, top_k=args.top_k)):
        print(json.dumps({"input": item, "prediction": pred}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after flags (`train r.yaml --print-recipe train.lr=1e-4`): collect them too.
    args, extra = parser.parse_known_args(argv)
    if extra and not (args.command == "train" and all("=" in x and not x.startswith("-") for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    handler = {"train": _train, "eval": _eval, "predict": _predict}[args.command]
    try:
        return handler(args)
    except _user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
