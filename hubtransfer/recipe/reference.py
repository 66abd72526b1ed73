"""The recipe-key reference (``docs/recipe-reference.md``), generated from the schema's field descriptions so the
page cannot drift from the code: ``python -m hubtransfer.recipe.reference --write`` rewrites it, and a test fails
when the committed page differs from what this module generates."""

from __future__ import annotations

import argparse
import enum
import json
import sys
import types
import typing
from pathlib import Path

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from hubtransfer.recipe.refs import StrategyRef
from hubtransfer.recipe.schema import Recipe

PAGE = Path("docs") / "recipe-reference.md"

HEADER = """# Recipe reference

Every key a recipe may hold, its default and what it does. A recipe is YAML; any key can be set on the command
line as `key=value` (`train.lr=1e-4`, `strategy=top:2`), and `hubtransfer train RECIPE --print-recipe` prints the
resolved recipe with every default. Unknown keys are errors with a did-you-mean. `auto` values are chosen from
the data when the run starts (see [training](training.md) and [your own data](user-data.md)), logged, saved in
the run folder's `recipe.yaml` and named in the model card.

This page is generated from the schema (`hubtransfer/recipe/`): run `python -m hubtransfer.recipe.reference
--write` after changing a field; a test fails while it is stale.
"""


def _models(annotation) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (directly, in a union or as list items)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _type(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type(a) for a in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation) or (typing.Any,)
        return f"list of {_type(item)}"
    if annotation is type(None):
        return "`null`"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    if annotation is StrategyRef:
        return "str: a strategy name, `top:K` with a block count"
    return getattr(annotation, "__name__", str(annotation))


def _default(field) -> str:
    if field.is_required():
        return "required"
    value = field.default_factory() if field.default is PydanticUndefined else field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "`null`"
    if isinstance(value, (bool, int, float, list, dict)):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"  # strings, and values that print as their recipe syntax (a strategy reference)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(model: type[BaseModel], path: str, out: list[str], nested: list) -> None:
    out += ["", f"## `{path}`" if path else "## Top level", ""]
    if path and model.__doc__:
        out += [_cell(model.__doc__), ""]
    out += ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        key = f"{path}.{name}" if path else name
        sub = _models(field.annotation)
        description = field.description or (sub[0].__doc__ if sub else "")
        kind = _type(field.annotation) if not sub or typing.get_origin(field.annotation) is list else "section"
        out.append(f"| `{key}` | {kind} | {_default(field)} | {_cell(description or '')} |")
        for m in sub:
            nested.append((m, f"{key}[]" if typing.get_origin(field.annotation) is list else key))


def reference_markdown() -> str:
    """The whole page: the top-level keys, then each section (depth first, in schema order)."""
    out = [HEADER.rstrip()]
    queue: list = [(Recipe, "")]
    while queue:
        model, path = queue.pop(0)
        nested: list = []
        _section(model, path, out, nested)
        queue[:0] = nested
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print (or --write) the recipe-key reference page.")
    parser.add_argument("--write", action="store_true", help=f"write {PAGE} instead of printing it")
    args = parser.parse_args(argv)
    text = reference_markdown()
    if args.write:
        PAGE.parent.mkdir(parents=True, exist_ok=True)
        PAGE.write_text(text, encoding="utf-8")
        print(f"wrote {PAGE}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
