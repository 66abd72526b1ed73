"""Deduplication and the content-hash split (see hubtransfer.data.prepare for the rules), and the subsampling limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

from datasets import Dataset, DatasetDict, Image

from hubtransfer.errors import DataError
from hubtransfer.recipe.sections import DataSpec


def input_bytes(ds: Dataset, modality: str) -> list[bytes]:
    """Each example's input as bytes (text as UTF-8, an image as its file's bytes): what the content hashes read."""
    if modality == "text":
        return [t.encode("utf-8") if isinstance(t, str) else repr(t).encode() for t in ds["text"]]
    raw = ds.cast_column("image", Image(decode=False))["image"]
    return [r["bytes"] if r.get("bytes") else Path(r["path"]).read_bytes() for r in raw]


def fingerprint(ds: Dataset, modality: str) -> str:
    """sha256 of a split's inputs and labels, in order: the same data gives the same value on any machine.

    (datasets' own fingerprints of in-memory tables are random per process, so they cannot key a disk cache.)
    """
    h = hashlib.sha256()
    for content, label in zip(input_bytes(ds, modality), ds["label"]):
        h.update(hashlib.sha256(content).digest())
        h.update(str(label).encode() + b"\0")
    return h.hexdigest()


def dedup_and_split(dd: DatasetDict, spec: DataSpec, modality: str) -> tuple[DatasetDict, dict]:
    keys = {
        s: [hashlib.sha256(f"{spec.split_seed}:".encode() + c).hexdigest() for c in input_bytes(ds, modality)]
        for s, ds in dd.items()
    }
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


def apply_limits(dd: DatasetDict, spec: DataSpec) -> DatasetDict:
    out = {}
    for split, ds in dd.items():
        cap = spec.max_train_samples if split == "train" else spec.max_eval_samples
        out[split] = ds.select(range(min(cap, len(ds)))) if cap else ds
    return DatasetDict(out)
