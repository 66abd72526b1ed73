"""Checkpoint sources: a Hub id (with revision) or a local folder, fetched with only the files that are needed;
safetensors weights only unless the recipe allows pickles; what a sentence-embedding checkpoint's own files say about
its pooling."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from huggingface_hub import hf_hub_download, metadata_load, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoConfig

from hubtransfer.errors import ModelSourceError
from hubtransfer.files import README
from hubtransfer.recipe.sections import ModelSpec

SAFE_WEIGHTS = ("*.safetensors",)


PICKLED_WEIGHTS = ("*.bin", "*.pth", "*.pt", "*.ckpt")


SMALL_FILES = ("*.json", "*.txt", "*.model", "*.tiktoken", "merges.txt", "vocab.*")


def looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~", ".\\")) or text.count("/") > 1


def fetch_config(spec: ModelSpec):
    """The checkpoint's config, fetched alone (a few KB) so every check runs before weights download."""
    local = Path(spec.id).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelSourceError(
                f"model.id: folder '{spec.id}' has no config.json; point to a transformers checkpoint folder"
            )
        return AutoConfig.from_pretrained(local, trust_remote_code=spec.trust_remote_code)
    if looks_like_path(spec.id) or local.exists():
        raise ModelSourceError(
            f"model.id: local folder '{spec.id}' does not exist; check the path, or give a Hub id like org/name"
        )
    try:
        validate_repo_id(spec.id)
        hf_hub_download(spec.id, "config.json", revision=spec.revision)
    except HFValidationError as e:
        raise ModelSourceError(f"model.id: '{spec.id}' is neither a folder nor a valid Hub id ({e})") from None
    except RepositoryNotFoundError:
        raise ModelSourceError(
            f"model.id: Hub model '{spec.id}' was not found (or is private). Check the id; for a private repo log in "
            "(`hf auth login`) or set HF_TOKEN"
        ) from None
    except RevisionNotFoundError:
        raise ModelSourceError(
            f"model.revision: '{spec.revision}' does not exist in '{spec.id}'; use a branch, tag or commit it has"
        ) from None
    except EntryNotFoundError:
        raise ModelSourceError(
            f"model.id: '{spec.id}' has no config.json; it is not a transformers checkpoint"
        ) from None
    return AutoConfig.from_pretrained(spec.id, revision=spec.revision, trust_remote_code=spec.trust_remote_code)


def sentence_pooling_of(spec: ModelSpec) -> str | None:
    """The pooling a sentence-embedding checkpoint was trained with ('mean' / 'cls'), read from its small
    sentence-transformers files (a local folder, or two JSON files from the Hub); None for other checkpoints."""
    local = Path(spec.id).expanduser()
    if local.is_dir():
        return sentence_pooling(local)
    files = {}
    for name in ("modules.json", "1_Pooling/config.json"):
        try:
            files[name] = Path(hf_hub_download(spec.id, name, revision=spec.revision)).read_text(encoding="utf-8")
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError, HFValidationError, OSError):
            files[name] = None
    return sentence_pooling(None, files)


def resolve_model_dir(spec: ModelSpec) -> Path:
    """A local folder holding the checkpoint: the folder itself, or a Hub snapshot (safetensors only unless allowed)."""
    local = Path(spec.id).expanduser()
    if not local.is_dir():
        patterns = list(SMALL_FILES + SAFE_WEIGHTS)
        if spec.allow_pickle:
            patterns += PICKLED_WEIGHTS
        if spec.trust_remote_code:
            patterns.append("*.py")
        local = Path(snapshot_download(spec.id, revision=spec.revision, allow_patterns=patterns))
    _check_weights(local, spec)
    return local


def _check_weights(folder: Path, spec: ModelSpec) -> None:
    if any(folder.glob("*.safetensors")):
        return
    pickles = [p.name for pat in PICKLED_WEIGHTS for p in folder.glob(pat)]
    if pickles and not spec.allow_pickle:
        raise ModelSourceError(
            f"model.id: '{spec.id}' has only pickled weights ({', '.join(sorted(pickles))}); unpickling can run code. "
            "Convert them to safetensors, or set model.allow_pickle=true if you trust the source"
        )
    if not pickles:
        raise ModelSourceError(f"model.id: '{spec.id}' holds no weights (*.safetensors); point to a trained checkpoint")


def sentence_pooling(model_dir: Path | None, files: dict[str, str] | None = None) -> str | None:
    """'mean' or 'cls' for a sentence-embedding checkpoint (sentence-transformers layout: ``modules.json`` naming a
    Pooling module and its ``config.json``), else None. ``files`` maps those names to text fetched from a Hub."""

    def read(name: str) -> dict | None:
        if files is not None:
            text = files.get(name)
            return json.loads(text) if text else None
        path = model_dir / name if model_dir is not None else None
        return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None

    modules = read("modules.json") or []
    pooling = next((m for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    if pooling is None:
        return None
    config = read(f"{pooling.get('path', '1_Pooling').strip('/')}/config.json") or {}
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    return None


def license_of(model_dir: str | Path) -> str | None:
    """Licence id of a base checkpoint folder.

    The ``license:`` of its README.md front matter when there is one, else the licence a LICENSE
    (LICENCE, COPYING) file states: Apache-2.0 -> ``"apache-2.0"``, MIT -> ``"mit"``. None otherwise,
    so a card never claims a licence nobody stated.
    """
    model_dir = Path(model_dir)
    return _front_matter_license(model_dir / README) or _license_file_id(model_dir)


def _front_matter_license(readme: Path) -> str | None:
    if not readme.is_file():
        return None
    try:
        meta = metadata_load(readme) or {}
    except yaml.YAMLError:
        return None  # broken front matter states nothing we can rely on
    value = meta.get("license")
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _license_file_id(model_dir: Path) -> str | None:
    if not model_dir.is_dir():
        return None
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.stem.upper() in {"LICENSE", "LICENCE", "COPYING"}:
            text = " ".join(path.read_text(encoding="utf-8", errors="replace")[:4000].lower().split())
            # Apache first: its text may quote other licences further down, MIT's never names Apache.
            if "apache license" in text and "version 2.0" in text:
                return "apache-2.0"
            if "mit license" in text or "permission is hereby granted, free of charge" in text:
                return "mit"
    return None
