"""Label columns of multi-label and regression data (``problem`` in the recipe); see ``data.prepare_data``.

- multi-label: each row holds a list of label names (or one string split on ``data.label_separator``).
  The labels are the sorted union over the training split; each row becomes a multi-hot float vector
  (BCE-with-logits needs float targets). A label only validation or test has is an error.
- regression: each row holds a number; it becomes a float32 target. Targets are not standardised:
  the saved model then outputs values on the data's own scale, so a stock ``pipeline()`` (function
  ``none``) reports real values with no extra config. The new output layer's bias starts at the
  training mean instead (``problems.configure_model``), which removes the large initial offset that
  standardising would otherwise remove. Targets far from unit scale (prices) are best rescaled in the data.
"""

from __future__ import annotations

import math

from datasets import ClassLabel, DatasetDict, Sequence, Value

from hubtransfer.errors import DataError

_SHOWN = 5  # bad rows named in an error


def _rows(bad: list[tuple[int, object]]) -> str:
    shown = ", ".join(f"{i} ({v!r})" for i, v in bad[:_SHOWN])
    return shown + (" ..." if len(bad) > _SHOWN else "")


# --------------------------------------------------------------------------- multi-label


def _names_of(ds) -> list:
    """The label column as Python values, ClassLabel ids (a Sequence of ClassLabel) turned back into names."""
    inner = getattr(ds.features["label"], "feature", None)
    values = ds["label"]
    if isinstance(inner, ClassLabel):
        return [[inner.names[i] for i in v] if isinstance(v, list) else v for v in values]
    return list(values)


def _label_sets(values: list, split: str, column: str, separator: str | None) -> list[set[str]]:
    out, bad = [], []
    for i, v in enumerate(values):
        if separator is not None and (v is None or isinstance(v, str)):
            # An empty CSV cell reads as None: with joined strings it is the row without labels.
            out.append({x.strip() for x in (v or "").split(separator) if x.strip()})
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
            out.append({str(x) for x in v})
        else:
            bad.append((i, v))
    if bad:
        hint = (
            "set data.label_separator (e.g. '|') if each string joins several labels"
            if isinstance(bad[0][1], str)
            else "give each row a list of label names (an empty list for none)"
        )
        raise DataError(
            f"data.label_column '{column}': problem multi-label needs a list of labels per row; {len(bad)} row(s) "
            f"of the {split} split are not one (rows {_rows(bad)}); {hint}"
        )
    return out


def multi_hot(dd: DatasetDict, column: str, separator: str | None) -> tuple[DatasetDict, list[str]]:
    """Every split's label column as multi-hot float vectors over the training split's labels.

    Raises:
        DataError: a row that is not a list (or a string without a separator), a label unseen in training,
            fewer than two labels in training.
    """
    sets = {s: _label_sets(_names_of(ds), s, column, separator) for s, ds in dd.items()}
    names = sorted(set().union(*sets["train"]))
    if len(names) < 2:
        raise DataError(
            f"data.label_column '{column}': the training split holds {len(names)} label(s) ({names}); multi-label "
            "needs at least 2"
        )
    unseen = {s: sorted(set().union(*v) - set(names)) for s, v in sets.items() if s != "train"}
    unseen = {s: v for s, v in unseen.items() if v}
    if unseen:
        raise DataError(
            f"data.label_column '{column}': labels {unseen} appear in a split but never in train; the model cannot "
            "learn them. Drop them from those rows, or move examples with them into training"
        )
    index = {n: i for i, n in enumerate(names)}
    feature = Sequence(Value("float32"), length=len(names))
    out = {}
    for split, ds in dd.items():
        vectors = [[0.0] * len(names) for _ in sets[split]]
        for row, labels in zip(vectors, sets[split]):
            for n in labels:
                row[index[n]] = 1.0
        out[split] = ds.remove_columns("label").add_column("label", vectors, feature=feature)
    return DatasetDict(out), names


# --------------------------------------------------------------------------- regression


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def regression_targets(dd: DatasetDict, column: str) -> tuple[DatasetDict, list[str]]:
    """Every split's label column as float32 targets; returns (splits, [column]).

    Raises:
        DataError: categorical labels (a ClassLabel), or values that are not finite numbers (rows named).
    """
    out = {}
    for split, ds in dd.items():
        if isinstance(ds.features["label"], ClassLabel):
            raise DataError(
                f"data.label_column '{column}' holds categories ({ds.features['label'].names[:5]}), not numbers; "
                "problem regression needs a numeric column (or use problem single-label)"
            )
        values = list(ds["label"])
        bad = [(i, v) for i, v in enumerate(values) if not _is_number(v)]
        if bad:
            raise DataError(
                f"data.label_column '{column}': problem regression needs a finite number in every row; {len(bad)} "
                "row(s) "
                f"of the {split} split are not (rows {_rows(bad)}); convert or drop those rows"
            )
        out[split] = ds.cast_column("label", Value("float32"))
    return DatasetDict(out), [column]


def target_stats(train, column: str) -> dict:
    """Name, min, max, mean and (population) std of the training split's targets: the card's range, the bias's start."""
    values = [float(v) for v in train["label"]]
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"name": column, "min": min(values), "max": max(values), "mean": mean, "std": std}
