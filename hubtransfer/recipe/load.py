"""Loading a recipe: YAML or a mapping, key.sub=value overrides, and error messages that name the key, the value and the
fix (with a did-you-mean for unknown keys)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hubtransfer.errors import RecipeError
from hubtransfer.recipe.schema import Recipe


def parse_recipe(source: str | Path | dict | None = None, overrides: list[str] | None = None) -> Recipe:
    """A recipe from a YAML file (or a dict) with ``key.sub=value`` overrides, checked by the schema alone
    (:func:`hubtransfer.job.load_recipe` also checks the task, problem and strategy names).

    Args:
        source: a YAML path, a mapping, or None (overrides alone).
        overrides: strings such as ``train.lr=1e-4`` or ``strategy=head``; values are parsed as YAML.

    Returns:
        The validated :class:`Recipe`.

    Raises:
        RecipeError: every problem found, each naming the key, the value and a fix.

    Example:
        >>> r = parse_recipe({"task": "text-classification", "model": {"id": "a/b"},
        ...                  "data": {"source": "packaged:rotten-tomatoes"}}, ["train.lr=1e-4"])
        >>> r.train.lr
        0.0001
    """
    raw = _read_source(source)
    problems: list[str] = []
    for item in overrides or []:
        try:
            _apply_override(raw, item)
        except ValueError as e:
            problems.append(str(e))
    if problems:
        raise RecipeError(problems)
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise RecipeError(_explain(e, raw)) from None


def _read_source(source) -> dict:
    if source is None:
        return {}
    if isinstance(source, dict):
        return _deep_copy(source)
    path = Path(source)
    if not path.is_file():
        raise RecipeError([f"recipe file '{source}' does not exist; pass the path of a YAML recipe (see recipes/)"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise RecipeError(
            [f"recipe file '{source}' is not valid YAML{at}: {getattr(e, 'problem', e)}; fix the syntax"]
        ) from None
    except UnicodeDecodeError:
        raise RecipeError([f"recipe file '{source}' is not UTF-8 text; save it as UTF-8"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(
            [
                f"recipe file '{source}' must hold a mapping of keys (task:, model:, data:, ...), got a "
                f"{type(data).__name__}"
            ]
        )
    return data


def _deep_copy(d):
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


_OVERRIDE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)=(.*)$", re.S)


def _apply_override(raw: dict, item: str) -> None:
    m = _OVERRIDE.match(item)
    if not m:
        raise ValueError(f"override '{item}' is not of the form key.sub=value (e.g. train.lr=1e-4)")
    keys, text = m.group(1).split("."), m.group(2)
    try:
        value = yaml.safe_load(text) if text != "" else None
    except yaml.YAMLError:
        value = text  # a plain string with YAML-special characters
    try:
        set_key(raw, keys, value)
    except ValueError as e:
        raise ValueError(f"override '{item}': {e}") from None


def set_key(raw: dict, keys: list[str], value: Any) -> None:
    """``raw[k0][k1]... = value``, creating missing sections (what an override and a sweep's change do)."""
    node = raw
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            raise ValueError(f"'{k}' holds a value, not a section")
        node = child
    node[keys[-1]] = value


def _explain(err: ValidationError, raw: dict) -> list[str]:
    out = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        key = ".".join(loc) or "(recipe)"
        if e["type"] == "extra_forbidden":
            out.append(_unknown_key(loc))
        elif e["type"] == "missing":
            desc = _field_help(loc)
            out.append(
                f"{key}: required but missing{f' ({desc})' if desc else ''}; add it to the recipe or pass {key}=..."
            )
        elif e["type"] == "value_error":
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            out.append(msg if key in msg or key == "(recipe)" else f"{key}: {msg}")
        else:
            got = _lookup(raw, e["loc"])
            out.append(f"{key}: {e['msg'].rstrip('.')}, got {got!r}; fix the value{_hint(loc)}")
    return out


def _unknown_key(loc: list[str]) -> str:
    known = _fields_at(loc[:-1])
    guess = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    key = ".".join(loc)
    dym = f" Did you mean '{'.'.join([*loc[:-1], guess[0]])}'?" if guess else ""
    return f"{key}: unknown key.{dym} Known keys here: {sorted(known)}"


def _model_at(loc: list[str]):
    model: Any = Recipe
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is None:
            return None
    return model


def _fields_at(loc: list[str]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model else []


def _field_help(loc: list[str]) -> str | None:
    model = _model_at(loc[:-1])
    field = model.model_fields.get(loc[-1]) if model else None
    return field.description if field else None


def _hint(loc: list[str]) -> str:
    desc = _field_help(loc)
    return f" ({desc})" if desc else ""


def _lookup(raw, loc):
    node = raw
    for p in loc:
        if (isinstance(node, dict) and p in node) or (isinstance(node, list) and isinstance(p, int) and p < len(node)):
            node = node[p]
        else:
            return None
    return node
