"""Columns and labels: the input and label columns checked, labels unified across splits (single-label names, per-word
IOB2 tags; multi-label and regression in hubtransfer.data.problem_labels)."""

from __future__ import annotations

import difflib

from datasets import ClassLabel, Dataset, DatasetDict, Sequence, Value

from hubtransfer.data import tags as tagging
from hubtransfer.errors import DataError
from hubtransfer.recipe.refs import ProblemType
from hubtransfer.recipe.sections import DataSpec


def standard_columns(
    dd: DatasetDict, input_col: str, label_col: str | None, modality: str, per_token: bool = False
) -> DatasetDict:
    key = "data.text_column" if modality == "text" else "data.image_column"
    wanted = [(input_col, key)] + ([(label_col, "data.label_column")] if label_col else [])
    for split, ds in dd.items():
        for col, k in wanted:
            if col not in ds.column_names:
                guess = difflib.get_close_matches(col, ds.column_names, n=1, cutoff=0.5)
                dym = f" Did you mean {k}={guess[0]}?" if guess else ""
                raise DataError(f"{k}: column '{col}' is not in the {split} split.{dym} Columns: {ds.column_names}")
        if len(ds) == 0:
            raise DataError(f"data.source: the {split} split is empty; check the source (or its filters)")
        if per_token:
            _require_word_lists(ds[input_col], ds[label_col], split, key)
        elif modality == "text":
            _require_texts(ds[input_col], split, key)
    dd = DatasetDict({s: ds.select_columns([c for c, _ in wanted]) for s, ds in dd.items()})
    renames = {c: n for c, n in ((input_col, modality), (label_col, "label")) if c and c != n}
    return dd.rename_columns(renames) if renames else dd


def _require_texts(texts: list, split: str, key: str) -> None:
    """Empty or missing texts carry no signal and usually mean a broken export: name the rows."""
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        rows = ", ".join(map(str, bad[:5])) + (" ..." if len(bad) > 5 else "")
        raise DataError(
            f"{key}: {len(bad)} empty or missing text(s) in the {split} split (rows {rows}); drop or fill those rows"
        )


def _require_word_lists(words: list, tags: list, split: str, key: str) -> None:
    """Per-token data: every row a non-empty list of words with exactly one tag per word."""
    bad = [i for i, w in enumerate(words) if not isinstance(w, list) or not w or not all(isinstance(x, str) for x in w)]
    if bad:
        got = type(words[bad[0]]).__name__
        raise DataError(
            f"{key}: token classification needs a list of words per row; {len(bad)} row(s) of the {split} split "
            f"are not a non-empty list of strings (rows {_rows(bad)}, e.g. a {got}). Split sentences into words "
            "(a JSON list per row) and drop empty ones"
        )
    uneven = [i for i, (w, t) in enumerate(zip(words, tags)) if not isinstance(t, list) or len(t) != len(w)]
    if uneven:
        raise DataError(
            f"data.label_column: token classification needs one tag per word; {len(uneven)} row(s) of the {split} "
            "split "
            f"have a different number of tags and words (rows {_rows(uneven)}); fix those rows"
        )


def _rows(indices: list[int]) -> str:
    return ", ".join(map(str, indices[:5])) + (" ..." if len(indices) > 5 else "")


def unify_tags(dd: DatasetDict) -> tuple[DatasetDict, list[str]]:
    """One Sequence(ClassLabel) for all splits: the tag set of the training split ("O" first, then sorted).
    Tags may arrive as names or as a Sequence(ClassLabel); they must follow IOB2 (see :mod:`hubtransfer.tags`)."""
    dd = DatasetDict({s: _tag_names(ds) for s, ds in dd.items()})
    try:
        for split, ds in dd.items():
            tagging.check_iob2(ds["label"], split)
        names = tagging.tag_set(dd["train"]["label"])
    except ValueError as e:
        raise DataError(f"data.label_column: {e}") from None
    extra = {s: sorted(set().union(*map(set, ds["label"])) - set(names)) for s, ds in dd.items() if s != "train"}
    extra = {s: v for s, v in extra.items() if v}
    if extra:
        raise DataError(
            f"data.label_column: tags {extra} appear in a split but not in train; the model cannot learn them. "
            "Fix the data, merge the splits, or map those tags to ones train has"
        )
    index = {n: i for i, n in enumerate(names)}
    feature = Sequence(ClassLabel(names=names))
    dd = dd.map(lambda b: {"label": [[index[t] for t in row] for row in b["label"]]}, batched=True)
    return dd.cast_column("label", feature), names


def _tag_names(ds: Dataset) -> Dataset:
    """Tags as names: a Sequence(ClassLabel) column is decoded, anything else is taken as it is (checked later)."""
    inner = getattr(ds.features["label"], "feature", None)
    if isinstance(inner, ClassLabel):
        features = ds.features.copy()
        features["label"] = Sequence(Value("string"))
        return ds.map(
            lambda b: {"label": [[inner.int2str(int(t)) for t in row] for row in b["label"]]},
            batched=True,
            features=features,
        )
    return ds


def unify_labels(dd: DatasetDict, label_col: str, min_classes: int = 2) -> tuple[DatasetDict, list[str]]:
    """One ClassLabel for all splits; labels may arrive as ClassLabel, strings or ints. ``min_classes``: 1 for the new
    data of an update, which may add a single label to those the previous version knows."""
    feat = dd["train"].features["label"]
    if isinstance(feat, ClassLabel):
        names = list(feat.names)
        for split, ds in dd.items():
            other = ds.features["label"]
            if not isinstance(other, ClassLabel) or list(other.names) != names:
                raise DataError(f"data.label_column: the {split} split's labels differ from train's ({names})")
        _require_classes(dd["train"]["label"], names, min_classes)
        return dd, names
    seen = {s: set(ds["label"]) for s, ds in dd.items()}
    if None in set().union(*seen.values()):
        raise DataError(f"data.label_column '{label_col}' has empty values; drop or fill those rows")
    extra = {s: sorted(map(str, v - seen["train"])) for s, v in seen.items() if v - seen["train"]}
    if extra:
        raise DataError(
            f"data.label_column: labels {extra} appear in a split but not in train; the model cannot learn them. Fix "
            "the data or merge the splits"
        )
    names = [str(v) for v in sorted(seen["train"], key=lambda v: (isinstance(v, str), v))]
    _require_classes(dd["train"]["label"], names, min_classes)
    index = {v: i for i, v in enumerate(sorted(seen["train"], key=lambda v: (isinstance(v, str), v)))}
    label = ClassLabel(names=names)
    dd = dd.map(lambda b: {"label": [index[v] for v in b["label"]]}, batched=True)
    return dd.cast_column("label", label), names


def problem_labels(dd: DatasetDict, spec: DataSpec, problem: ProblemType) -> tuple[DatasetDict, list[str]]:
    from hubtransfer.data import problem_labels as problem_data  # late: it imports this module's DataError

    if problem is ProblemType.MULTI_LABEL:
        return problem_data.multi_hot(dd, spec.label_column, spec.label_separator)
    return problem_data.regression_targets(dd, spec.label_column)


def _require_classes(values, names, least: int = 2) -> None:
    present = len(set(values))
    if present < least:
        raise DataError(
            f"data.label_column: the training split holds {present} class(es) ({names}); classification needs at "
            f"least {least}"
        )
