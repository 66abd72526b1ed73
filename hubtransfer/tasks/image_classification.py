"""image-classification: one label per image, through AutoModelForImageClassification.

Images are decoded once, before training, when they fit in ``PRECOMPUTE_BUDGET_BYTES``;
re-decoding every epoch is wasted work. What is kept is the smaller of two forms:

* the processor's output (resized, cropped) where the source images are larger than that, as
  photos usually are. Where the processor's last steps are a plain rescale and normalise, these
  are the resized uint8 pixels (a quarter of float32's memory) and each batch is rescaled and
  normalised by the collate function with the processor's own constants (equal to the
  processor's output within float32 rounding; tests/unit/test_train.py checks it to 1e-6);
* the decoded RGB pixels at their own size where the processor would enlarge them (28 px
  silhouettes at 96 px take 12x less memory at source size); the collate function runs the
  processor on each batch of them, which gives exactly what processing them once would (small
  images resize quickly: EfficientNet's throughput in scripts/bench_trainer.py did not fall with it).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image as PILImage
from transformers import AutoImageProcessor

from hubtransfer.errors import ImageDataError, ProcessorError
from hubtransfer.tasks import TASKS, TaskSpec

PRECOMPUTE_BUDGET_BYTES = 4 * 1024**3
CHUNK = 256


class TensorImages(torch.utils.data.Dataset):
    def __init__(self, pixels: torch.Tensor, labels: list[int]):
        self.pixels, self.labels = pixels, torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.pixels[i], "labels": self.labels[i]}


class DecodedImages(torch.utils.data.Dataset):
    """Decoded RGB pixels (H x W x 3 uint8 arrays, each at its own size); the collate function processes them."""

    def __init__(self, images: list[np.ndarray], labels: list):
        self.images, self.labels = images, torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "labels": self.labels[i]}


class LazyImages(torch.utils.data.Dataset):
    """Decode + process per item, for data sets too large to keep as tensors."""

    def __init__(self, ds, processor, split: str):
        self.ds, self.processor, self.split = ds, processor, split

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        image = to_rgb(_decode(self.ds, i, self.split))
        pixels = self.processor(images=image, return_tensors="pt")["pixel_values"][0]
        return {"pixel_values": pixels, "labels": self.ds[i]["label"]}


def load_processor(model_dir, recipe):
    try:
        proc = AutoImageProcessor.from_pretrained(model_dir, trust_remote_code=recipe.model.trust_remote_code)
    except (OSError, ValueError, TypeError) as e:
        raise ProcessorError(
            f"model.id: '{recipe.model.id}' has no image processor ({type(e).__name__}); "
            "use a checkpoint that ships preprocessor_config.json or add one"
        ) from None
    if isinstance(recipe.data.image_size, int):  # 'auto' is chosen from the data with this processor, then set
        s = recipe.data.image_size
        # Saved with the model so pipeline() sees exactly the training resolution.
        proc.size = {"height": s, "width": s}
        if getattr(proc, "do_center_crop", False):
            proc.crop_size = {"height": s, "width": s}
    return proc


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """Grayscale, CMYK, palette and RGBA images become RGB (alpha composited on white)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(ds, i: int, split: str) -> PILImage.Image:
    try:
        image = ds[i]["image"]
        image.load()
        return image
    except Exception as e:  # PIL raises many kinds for broken files
        raise ImageDataError(
            f"data: image {i} of the {split} split cannot be read ({type(e).__name__}: {e}); remove or replace that "
            "file"
        ) from None


def _pixel_bytes(processor, n: int, per_value: int) -> int:
    size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else processor.size
    side = max((size or {}).get("height", 224), (size or {}).get("shortest_edge", 0))
    return n * 3 * side * side * per_value


def _deferred_finish(processor) -> bool:
    """True when the processor ends in rescale (no offset) + normalise, so those can run per batch on uint8 pixels."""
    return (
        getattr(processor, "do_rescale", False)
        and not getattr(processor, "rescale_offset", False)
        and hasattr(processor, "rescale_factor")
        and hasattr(processor, "image_mean")
        and hasattr(processor, "image_std")
    )


def _process(processor, images: list, finish_later: bool) -> tuple[torch.Tensor, bool]:
    """(pixel_values of ``images``, whether they stop before rescale / normalise). With ``finish_later``
    the processor stops there and returns uint8 where it can; one that does not gives its full output."""
    fmt = {"input_data_format": "channels_last"} if isinstance(images[0], np.ndarray) else {}  # (3, W, 3) is ambiguous
    if finish_later:
        pixels = processor(images=images, return_tensors="pt", do_rescale=False, do_normalize=False, **fmt)[
            "pixel_values"
        ]
        if pixels.dtype == torch.uint8:
            return pixels, True
    return processor(images=images, return_tensors="pt", **fmt)["pixel_values"], False


def encode(prepared, processor, recipe) -> dict:
    total = sum(len(ds) for ds in prepared.splits.values())
    finish_later = _deferred_finish(processor)
    processed_bytes = _pixel_bytes(processor, 1, 1 if finish_later else 4)  # one image
    if processed_bytes * total > PRECOMPUTE_BUDGET_BYTES:
        return {s: LazyImages(ds, processor, s) for s, ds in prepared.splits.items()}
    keep_source = None  # decided on the first chunk: the form is the same for every split
    out = {}
    for split, ds in prepared.splits.items():
        decoded, pixels = [], None
        for start in range(0, len(ds), CHUNK):
            images = [np.asarray(to_rgb(_decode(ds, i, split))) for i in range(start, min(start + CHUNK, len(ds)))]
            if keep_source is None:
                keep_source = sum(a.nbytes for a in images) / len(images) <= processed_bytes
            if keep_source:
                decoded.extend(images)
                continue
            # The first call settles finish_later, so every chunk after it comes in the same dtype.
            chunk, finish_later = _process(processor, images, finish_later)
            if pixels is None:  # filled in place: a concatenation of chunks would hold the split twice
                pixels = torch.empty((len(ds), *chunk.shape[1:]), dtype=chunk.dtype)
            pixels[start : start + len(images)] = chunk
        labels = list(ds["label"])
        out[split] = DecodedImages(decoded, labels) if keep_source else TensorImages(pixels, labels)
    return out


def collate(processor, recipe):
    scale = float(getattr(processor, "rescale_factor", 1.0))
    mean = torch.tensor(
        getattr(processor, "image_mean", (0.0, 0.0, 0.0))
        if getattr(processor, "do_normalize", False)
        else (0.0, 0.0, 0.0)
    ).view(1, -1, 1, 1)
    std = torch.tensor(
        getattr(processor, "image_std", (1.0, 1.0, 1.0))
        if getattr(processor, "do_normalize", False)
        else (1.0, 1.0, 1.0)
    ).view(1, -1, 1, 1)

    finish_later = _deferred_finish(processor)

    def stack(batch: list[dict]) -> dict:
        nonlocal finish_later
        if "image" in batch[0]:  # decoded at source size: processed here, as encode would have
            pixels, finish_later = _process(processor, [b["image"] for b in batch], finish_later)
        else:
            pixels = torch.stack([b["pixel_values"] for b in batch])
        if pixels.dtype == torch.uint8:  # stored before rescale / normalise: finish them as the processor would
            pixels = (pixels.to(torch.float32) * scale - mean) / std
        # Channels-last inputs make oneDNN run the whole convolutional stack in that layout: the frozen
        # EfficientNet-Lite0 row of scripts/bench_features.py went from 220 s to 130 s. Values are unchanged.
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        # Class ids stay int64; multi-hot rows and regression targets stay float (problems.py).
        return {"pixel_values": pixels, "labels": torch.stack([torch.as_tensor(b["labels"]) for b in batch])}

    return stack


TASKS.register(
    "image-classification",
    TaskSpec(
        name="image-classification",
        input_classification=True,
        modality="image",
        auto_class="AutoModelForImageClassification",
        custom_class="HubtransferForImageClassification",
        load_processor=load_processor,
        encode=encode,
        collate=collate,
        peft_class="AutoPeftModel",  # peft has no image task type: the config's auto mapping picks the class
    ),
)
