"""Data sources -> a DatasetDict with normalised split names: a Hub dataset, local files (csv/tsv/json/jsonl/parquet, a
folder of split files, an image folder), or a packaged dataset. Local files need no network."""

from __future__ import annotations

import codecs
from pathlib import Path

from datasets import DatasetDict, load_dataset

from hubtransfer.errors import DataError
from hubtransfer.recipe.sections import DataSpec
from hubtransfer.sources.packaged import PREFIX, load_packaged

SPLIT_ALIASES = {
    "train": "train",
    "validation": "validation",
    "valid": "validation",
    "val": "validation",
    "dev": "validation",
    "test": "test",
}


FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


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
            raise DataError(
                f"data.source: cannot read '{path.name}'; use one of {sorted(FILE_BUILDERS)} or an image folder"
            )
        if builder != "parquet":
            _require_utf8(path)
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        return load_dataset(builder, data_files={"train": str(path)}, **kwargs)
    files = {
        s: f
        for f in path.iterdir()
        if f.is_file() and (s := SPLIT_ALIASES.get(f.stem.lower())) and f.suffix.lower() in FILE_BUILDERS
    }
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
