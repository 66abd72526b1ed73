"""Data sources -> a deduplicated ``DatasetDict`` with fixed train / validation / test splits.

The split (written into ``split.json`` and the model card):

1. Exact duplicates are dropped (same text, or same image file bytes); the first copy is kept.
   Within the splits a source already has, and across them: a training example that also sits
   in validation or test is removed from training, so test never leaks into training.
2. Each example gets a key ``sha256(f"{split_seed}:" + content)``. Splits the source lacks are
   cut from training by that key: the lowest ``test_fraction`` go to test, the next
   ``validation_fraction`` to validation. The assignment depends on the content alone, not on
   file order or the machine, so the same data always splits the same way.
3. Inside every split, examples are ordered by that key, so ``max_train_samples=N`` takes a
   fixed pseudo-random subset of N.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Image, Sequence, Value, load_dataset

from hubtransfer import tags as tagging
from hubtransfer.packaged import PREFIX, load_packaged, terms_of
from hubtransfer.recipe import DataSpec

SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation", "dev": "validation", "test": "test"}
FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


class DataError(ValueError):
    """Data that cannot be used, with what was wrong and how to fix it."""


@dataclass
class PreparedData:
    """The splits ready for a task: columns ``input_column`` and ``label`` (a ClassLabel, or for per-token tasks a
    Sequence of ClassLabel, one tag per word of the input's word list)."""

    splits: DatasetDict
    labels: list[str]
    input_column: str
    info: dict = field(default_factory=dict)


def prepare_data(spec: DataSpec, modality: str, labeled: bool = True, problem: str = "single-label", *, per_token: bool = False) -> PreparedData:
    """Load ``spec.source`` and return deduplicated, labeled, fixed splits.

    Args:
        spec: the recipe's data section.
        modality: "text" or "image" (decides the input column and the duplicate key).
        labeled: False for self-supervised tasks (masked-LM): no label column is read, ``labels`` is empty.
        per_token: the text column holds word lists and the label column one IOB2 tag per word
            (token classification); the labels are then the tag set of the training split.
        problem: the recipe's problem type; multi-label and regression labels are read by ``problem_data``
            (multi-hot float vectors; float targets, ``labels`` = [the target column], ``info["target"]`` its statistics).

    Raises:
        DataError: a missing column, an empty split, labels only some splits have, a bad source,
            (per_token) tags that are not IOB2 or do not match their words.

    Example:
        >>> data = prepare_data(DataSpec(source="packaged:conll2003", text_column="tokens",
        ...                              label_column="ner_tags"), "text", per_token=True)  # doctest: +SKIP
        >>> data.labels[:3]  # doctest: +SKIP
        ['O', 'B-LOC', 'B-MISC']
    """
    raw = load_source(spec)
    input_col = spec.text_column if modality == "text" else spec.image_column
    raw = _standard_columns(raw, input_col, spec.label_column if labeled else None, modality, per_token)
    if not labeled:
        labels: list[str] = []
    elif per_token:
        raw, labels = _unify_tags(raw)
    elif problem == "single-label":
        raw, labels = _unify_labels(raw, spec.label_column)
    else:
        raw, labels = _problem_labels(raw, spec, problem)
    splits, info = _dedup_and_split(raw, spec, modality)
    splits = _limit(splits, spec)
    info.update(source=spec.source, sizes={k: len(v) for k, v in splits.items()}, labels=labels)
    if terms_of(spec.source):
        info["terms"] = terms_of(spec.source)
    if labeled and problem == "regression":
        from hubtransfer.problem_data import target_stats

        info["target"] = target_stats(splits["train"], spec.label_column)
    return PreparedData(splits=splits, labels=labels, input_column=modality, info=info)


def prepare_task_data(task, recipe) -> PreparedData:
    """The task's own preparation where it has one (``TaskSpec.prepare``: multi-task reads a label column per
    head), else :func:`prepare_data` on the recipe's data section."""
    if task.prepare is not None:
        return task.prepare(recipe)
    return prepare_data(recipe.data, task.modality, task.labeled, recipe.problem, per_token=task.per_token)


# --------------------------------------------------------------------------- sources


def load_source(spec: DataSpec) -> DatasetDict:
    """Read the source into a DatasetDict (split names normalised). Local files need no network."""
    src = spec.source
    if src.startswith(PREFIX):
        try:
            loaded = load_packaged(src)
        except (ValueError, FileNotFoundError) as e:
            raise DataError(f"data.source: {e}") from None
        return loaded if isinstance(loaded, DatasetDict) else DatasetDict(train=loaded)
    path = Path(src).expanduser()
    if path.exists():
        try:
            dd = _load_local(path)
        except DataError:
            raise
        except Exception as e:  # datasets raises ValueError / pyarrow errors for empty or malformed files
            raise DataError(f"data.source: '{src}' {_read_problem(e)}") from None
    elif _looks_like_path(src):
        raise DataError(f"data.source: local path '{src}' does not exist; check the path or use a Hub dataset id")
    else:
        dd = load_dataset(src, spec.config, revision=spec.revision)
    return _normalise_split_names(dd)


def _read_problem(e: Exception) -> str:
    text = f"{type(e).__name__}: {e}"
    if "corresponds to no data" in text or "EmptyDataError" in text:
        return "holds no rows; check the file(s)"
    if "UnicodeDecodeError" in text or "utf-8" in text.lower():
        return "is not UTF-8 text; re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
    return f"cannot be read ({text.splitlines()[0][:300]}); check the file(s)"


def _looks_like_path(src: str) -> bool:
    return src.startswith(("/", "./", "../", "~")) or src.count("/") > 1 or Path(src).suffix.lower() in FILE_BUILDERS


def _require_utf8(path: Path) -> None:
    """Text formats must be UTF-8; checked in 1 MB chunks so a large file costs no memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                raise DataError(
                    f"data.source: '{path.name}' is not UTF-8 text (bad byte at offset {offset + e.start}); "
                    "re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                ) from None
            offset += len(chunk)


def _load_local(path: Path) -> DatasetDict:
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise DataError(f"data.source: cannot read '{path.name}'; use one of {sorted(FILE_BUILDERS)} or an image folder")
        if builder != "parquet":
            _require_utf8(path)
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        return load_dataset(builder, data_files={"train": str(path)}, **kwargs)
    files = {s: f for f in path.iterdir() if f.is_file() and (s := SPLIT_ALIASES.get(f.stem.lower())) and f.suffix.lower() in FILE_BUILDERS}
    if files:  # a folder of split files: train.csv, test.csv, ...
        builder = FILE_BUILDERS[next(iter(files.values())).suffix.lower()]
        for f in files.values():
            if builder != "parquet":
                _require_utf8(f)
        return load_dataset(builder, data_files={s: str(f) for s, f in files.items()})
    return load_dataset("imagefolder", data_dir=str(path))


def _normalise_split_names(dd: DatasetDict) -> DatasetDict:
    out = {}
    for name, ds in dd.items():
        canon = SPLIT_ALIASES.get(name.lower())
        if canon and canon not in out:
            out[canon] = ds
    if "train" not in out:
        raise DataError(f"data.source has no training split (found {sorted(dd)}); name one 'train'")
    return DatasetDict(out)


# --------------------------------------------------------------------------- columns and labels


def _standard_columns(dd: DatasetDict, input_col: str, label_col: str | None, modality: str, per_token: bool = False) -> DatasetDict:
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
        raise DataError(f"{key}: {len(bad)} empty or missing text(s) in the {split} split (rows {rows}); drop or fill those rows")


def _require_word_lists(words: list, tags: list, split: str, key: str) -> None:
    """Per-token data: every row a non-empty list of words with exactly one tag per word."""
    bad = [i for i, w in enumerate(words) if not isinstance(w, list) or not w or not all(isinstance(x, str) for x in w)]
    if bad:
        got = type(words[bad[0]]).__name__
        raise DataError(f"{key}: token classification needs a list of words per row; {len(bad)} row(s) of the {split} split "
                        f"are not a non-empty list of strings (rows {_rows(bad)}, e.g. a {got}). Split sentences into words "
                        "(a JSON list per row) and drop empty ones")
    uneven = [i for i, (w, t) in enumerate(zip(words, tags)) if not isinstance(t, list) or len(t) != len(w)]
    if uneven:
        raise DataError(f"data.label_column: token classification needs one tag per word; {len(uneven)} row(s) of the {split} split "
                        f"have a different number of tags and words (rows {_rows(uneven)}); fix those rows")


def _rows(indices: list[int]) -> str:
    return ", ".join(map(str, indices[:5])) + (" ..." if len(indices) > 5 else "")


def _unify_tags(dd: DatasetDict) -> tuple[DatasetDict, list[str]]:
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
        raise DataError(f"data.label_column: tags {extra} appear in a split but not in train; the model cannot learn them. "
                        "Fix the data, merge the splits, or map those tags to ones train has")
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
        return ds.map(lambda b: {"label": [[inner.int2str(int(t)) for t in row] for row in b["label"]]}, batched=True, features=features)
    return ds


def _unify_labels(dd: DatasetDict, label_col: str) -> tuple[DatasetDict, list[str]]:
    """One ClassLabel for all splits; labels may arrive as ClassLabel, strings or ints."""
    feat = dd["train"].features["label"]
    if isinstance(feat, ClassLabel):
        names = list(feat.names)
        for split, ds in dd.items():
            other = ds.features["label"]
            if not isinstance(other, ClassLabel) or list(other.names) != names:
                raise DataError(f"data.label_column: the {split} split's labels differ from train's ({names})")
        _require_classes(dd["train"]["label"], names)
        return dd, names
    seen = {s: set(ds["label"]) for s, ds in dd.items()}
    if None in set().union(*seen.values()):
        raise DataError(f"data.label_column '{label_col}' has empty values; drop or fill those rows")
    extra = {s: sorted(map(str, v - seen["train"])) for s, v in seen.items() if v - seen["train"]}
    if extra:
        raise DataError(f"data.label_column: labels {extra} appear in a split but not in train; the model cannot learn them. Fix the data or merge the splits")
    names = [str(v) for v in sorted(seen["train"], key=lambda v: (isinstance(v, str), v))]
    _require_classes(dd["train"]["label"], names)
    index = {v: i for i, v in enumerate(sorted(seen["train"], key=lambda v: (isinstance(v, str), v)))}
    label = ClassLabel(names=names)
    dd = dd.map(lambda b: {"label": [index[v] for v in b["label"]]}, batched=True)
    return dd.cast_column("label", label), names


def _problem_labels(dd: DatasetDict, spec: DataSpec, problem: str) -> tuple[DatasetDict, list[str]]:
    from hubtransfer import problem_data  # late: it imports this module's DataError

    if problem == "multi-label":
        return problem_data.multi_hot(dd, spec.label_column, spec.label_separator)
    return problem_data.regression_targets(dd, spec.label_column)


def _require_classes(values, names) -> None:
    present = len(set(values))
    if present < 2:
        raise DataError(f"data.label_column: the training split holds {present} class(es) ({names}); classification needs at least 2")


# --------------------------------------------------------------------------- dedup and split


def _content(ds: Dataset, modality: str) -> list[bytes]:
    if modality == "text":
        return [t.encode("utf-8") if isinstance(t, str) else repr(t).encode() for t in ds["text"]]
    raw = ds.cast_column("image", Image(decode=False))["image"]
    return [r["bytes"] if r.get("bytes") else Path(r["path"]).read_bytes() for r in raw]


def fingerprint(ds: Dataset, modality: str) -> str:
    """sha256 of a split's inputs and labels, in order: the same data gives the same value on any machine.

    (datasets' own fingerprints of in-memory tables are random per process, so they cannot key a disk cache.)
    """
    h = hashlib.sha256()
    for content, label in zip(_content(ds, modality), ds["label"]):
        h.update(hashlib.sha256(content).digest())
        h.update(str(label).encode() + b"\0")
    return h.hexdigest()


def _dedup_and_split(dd: DatasetDict, spec: DataSpec, modality: str) -> tuple[DatasetDict, dict]:
    keys = {s: [hashlib.sha256(f"{spec.split_seed}:".encode() + c).hexdigest() for c in _content(ds, modality)] for s, ds in dd.items()}
    dropped = {}
    held_out: set[str] = set()
    kept: dict[str, list[int]] = {}
    # Test first, then validation, then train: an example in two splits stays in the held-out one.
    order = [s for s in ("test", "validation", "train") if s in dd]
    for split in order:
        seen, idx = set(), []
        for i, k in enumerate(keys[split]):
            if k in seen or k in held_out:
                continue
            seen.add(k)
            idx.append(i)
        if split != "train":
            held_out |= seen
        dropped[split] = len(keys[split]) - len(idx)
        kept[split] = sorted(idx, key=lambda i: keys[split][i])
    out = {s: dd[s].select(kept[s]) for s in order}
    train_keys = [keys["train"][i] for i in kept["train"]]
    made = _carve(out, train_keys, spec)
    info = {
        "method": "exact duplicates dropped, then splits cut by sha256(split_seed:content); see hubtransfer.data",
        "split_seed": spec.split_seed,
        "duplicates_dropped": dropped,
        "splits_from_source": order,
        "splits_carved_from_train": made,
        "fractions": {"validation": spec.validation_fraction, "test": spec.test_fraction},
    }
    return DatasetDict({s: out[s] for s in ("train", "validation", "test")}), info


def _carve(out: dict, train_keys: list[str], spec: DataSpec) -> list[str]:
    """Cut missing validation/test splits from the (key-ordered) training split."""
    missing = [s for s in ("test", "validation") if s not in out]
    n = len(out["train"])
    start, made = 0, []
    for split in missing:
        frac = spec.test_fraction if split == "test" else spec.validation_fraction
        size = max(1, round(n * frac))
        out[split] = out["train"].select(range(start, start + size))
        start += size
        made.append(split)
    if start:
        out["train"] = out["train"].select(range(start, n))
    if len(out["train"]) == 0:
        raise DataError(f"data.source has too few examples ({n}) to split; add data or lower the fractions")
    return made


def _limit(dd: DatasetDict, spec: DataSpec) -> DatasetDict:
    out = {}
    for split, ds in dd.items():
        cap = spec.max_train_samples if split == "train" else spec.max_eval_samples
        out[split] = ds.select(range(min(cap, len(ds)))) if cap else ds
    return DatasetDict(out)
