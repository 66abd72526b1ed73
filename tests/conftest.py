"""Fixtures: tiny random checkpoints (transformers' tester sizes) and small labeled data on disk."""

from __future__ import annotations

import csv
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from resume_check import kill_at_optimizer_step  # noqa: F401  (the kill-and-resume workers import it from here)

TOKEN = "hf_local_test_token"
OTHER_TOKEN = "hf_other_test_token"
TOKENS = {TOKEN: "local-user", OTHER_TOKEN: "other-user"}

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the fast suite never reaches a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Feature caches of the tests go to a throw-away folder, never the user's ~/.cache.
os.environ["HUBTRANSFER_CACHE"] = tempfile.mkdtemp(prefix="hubtransfer-test-cache-")


class AskedOnStdin(BaseException):
    """A library asked a question on stdin. A BaseException so that transformers' `except Exception` around its
    trust_remote_code prompt cannot swallow it: a user's job would sit at that prompt (15 s, or until answered)."""


@pytest.fixture(autouse=True)
def no_questions_on_stdin(monkeypatch):
    def ask(prompt=""):
        raise AskedOnStdin(f"asked on stdin: {str(prompt)[:300]}")

    monkeypatch.setattr("builtins.input", ask)


WORDS_POS = ["good", "great", "fine", "superb", "lovely", "fun", "smart", "warm"]
WORDS_NEG = ["bad", "awful", "dull", "boring", "weak", "poor", "flat", "cold"]
FILLER = ["the", "movie", "film", "was", "a", "plot", "story", "really", "quite", "and"]


def _tiny_bert(folder: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS_POS, *WORDS_NEG, *FILLER]
    vocab += [str(i) for i in range(1000)]  # the synthetic texts carry their row number
    tok = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tok.save_pretrained(folder)
    torch.manual_seed(0)  # the same tiny checkpoint every session: test outcomes must not depend on the draw
    cfg = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertForSequenceClassification(cfg).save_pretrained(folder)
    return folder


def _tiny_vit(folder: Path) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    cfg = ViTConfig(
        image_size=30,
        patch_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=5,
    )
    ViTForImageClassification(cfg).save_pretrained(folder)
    ViTImageProcessor(size={"height": 30, "width": 30}).save_pretrained(folder)
    return folder


def _tiny_efficientnet(folder: Path) -> Path:
    import torch
    from transformers import EfficientNetConfig, EfficientNetForImageClassification, EfficientNetImageProcessor

    # hidden_dim must equal the top conv width, round_filters(1280 * 0.25) = 320, or the model cannot run.
    torch.manual_seed(0)
    cfg = EfficientNetConfig(
        image_size=32,
        width_coefficient=0.25,
        depth_coefficient=0.2,
        hidden_dim=320,
        num_labels=7,
        batch_norm_momentum=0.1,
    )
    EfficientNetForImageClassification(cfg).save_pretrained(folder)
    EfficientNetImageProcessor(size={"height": 32, "width": 32}, do_center_crop=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    return _tiny_vit(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="session")
def tiny_efficientnet(tmp_path_factory) -> Path:
    return _tiny_efficientnet(tmp_path_factory.mktemp("tiny-effnet"))


def write_sentiment_csv(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Easy synthetic sentiment: a text is positive when it holds positive words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.sample(WORDS_POS if label else WORDS_NEG, 2) + rng.sample(FILLER, 3) + [str(i)]
        rng.shuffle(words)
        rows.append({"sentence": " ".join(words), "sentiment": "pos" if label else "neg"})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["sentence", "sentiment"])
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def sentiment_csv(tmp_path) -> Path:
    return write_sentiment_csv(tmp_path / "reviews.csv")


def write_image_folder(root: Path, per_class: int = 20, size: int = 36) -> Path:
    """Two classes a tiny model can tell apart: bright vs dark squares with noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, base in (("bright", 200), ("dark", 40)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype("uint8")
            Image.fromarray(arr).save(root / label / f"{i}.png")
    return root


@pytest.fixture
def image_folder(tmp_path) -> Path:
    return write_image_folder(tmp_path / "images")


def poison_loss_from(monkeypatch, step: int) -> None:
    """Make the training loss NaN at the first evaluation at or after optimizer step ``step``."""
    import hubtransfer.train.steps as loop

    real = loop._evaluate_step

    def poisoned(model, loader, accelerator, scorer, running, pos, per_epoch):
        if pos.step >= step:
            running.fill_(float("nan"))
        return real(model, loader, accelerator, scorer, running, pos, per_epoch)

    monkeypatch.setattr(loop, "_evaluate_step", poisoned)


def text_recipe(model_dir: Path, data: Path, out: Path, **extra) -> dict:
    recipe = {
        "task": "text-classification",
        "model": {"id": str(model_dir)},
        "data": {"source": str(data), "text_column": "sentence", "label_column": "sentiment", "max_length": 16},
        "strategy": "full",
        # No linear probe unless a test asks: tiny random models under-train and the probe would replace them.
        "train": {
            "epochs": 2,
            "lr": 5e-3,
            "batch_size": 16,
            "precision": "no",
            "warmup_ratio": 0.0,
            "linear_probe": False,
        },
        "output_dir": str(out),
    }
    for key, value in extra.items():
        node = recipe
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return recipe


# ----------------------------------------------------------------------------- a local Hub for the stock clients


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from hubtransfer.localhub.server import LocalHub

    with LocalHub(tmp_path_factory.mktemp("hub-root"), tokens=TOKENS) as running:
        yield running


@pytest.fixture(scope="module")
def clients(hub, tmp_path_factory):
    """Point the stock clients at the local server and at a throw-away HF_HOME."""
    import huggingface_hub.constants as constants
    import huggingface_hub.hf_api as hf_api

    home = tmp_path_factory.mktemp("hf-home")
    patch = pytest.MonkeyPatch()
    patch.setattr(constants, "ENDPOINT", hub.endpoint)
    patch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    patch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    # tests/conftest.py sets HF_HUB_OFFLINE=1 for the fast suite; this server is local, so allow it.
    patch.setattr(constants, "HF_HUB_OFFLINE", False)
    patch.setenv("HF_HUB_OFFLINE", "0")
    patch.setattr(hf_api.api, "endpoint", hub.endpoint)
    for name, sub in [
        ("HF_HOME", ""),
        ("HF_HUB_CACHE", "hub"),
        ("HF_ASSETS_CACHE", "assets"),
        ("HF_XET_CACHE", "xet"),
        ("HF_TOKEN_PATH", "token"),
        ("HF_STORED_TOKENS_PATH", "stored_tokens"),
        ("AGENT_HARNESSES_PATH", ".agent_harnesses.json"),
    ]:
        patch.setattr(constants, name, str(home / sub), raising=False)
    patch.delenv("HF_TOKEN", raising=False)
    patch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    yield home
    patch.undo()
