"""image-classification: one label per image, through AutoModelForImageClassification.

Images are decoded and run through the checkpoint's image processor once, before training,
when the tensors fit in ``PRECOMPUTE_BUDGET_BYTES``; re-decoding every epoch is wasted work.
Where the processor's last steps are a plain rescale and normalise, the stored tensors are the
resized uint8 pixels (a quarter of float32's memory) and each batch is rescaled and normalised by
the collate function with the processor's own constants (equal to the processor's output within
float32 rounding; tests/unit/test_train.py checks it to 1e-6).
"""

from __future__ import annotations

import torch
from PIL import Image as PILImage
from transformers import AutoImageProcessor

from hubtransfer.tasks import TASKS, ProcessorError, TaskSpec

PRECOMPUTE_BUDGET_BYTES = 4 * 1024**3
CHUNK = 256


class ImageDataError(ValueError):
    """An image that cannot be read, with its position and the fix."""


class TensorImages(torch.utils.data.Dataset):
    def __init__(self, pixels: torch.Tensor, labels: list[int]):
        self.pixels, self.labels = pixels, torch.tensor(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"pixel_values": self.pixels[i], "labels": self.labels[i]}


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
    if recipe.data.image_size:
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
            f"data: image {i} of the {split} split cannot be read ({type(e).__name__}: {e}); remove or replace that file"
        ) from None


def _pixel_bytes(processor, n: int, per_value: int) -> int:
    size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else processor.size
    side = max((size or {}).get("height", 224), (size or {}).get("shortest_edge", 0))
    return n * 3 * side * side * per_value


def _deferred_finish(processor) -> bool:
    """True when the processor ends in rescale (no offset) + normalise, so those can run per batch on uint8 pixels."""
    return (getattr(processor, "do_rescale", False) and not getattr(processor, "rescale_offset", False)
            and hasattr(processor, "rescale_factor") and hasattr(processor, "image_mean") and hasattr(processor, "image_std"))


def encode(prepared, processor, recipe) -> dict:
    total = sum(len(ds) for ds in prepared.splits.values())
    deferred = _deferred_finish(processor)
    if _pixel_bytes(processor, total, 1 if deferred else 4) > PRECOMPUTE_BUDGET_BYTES:
        return {s: LazyImages(ds, processor, s) for s, ds in prepared.splits.items()}
    extra = {"do_rescale": False, "do_normalize": False} if deferred else {}
    out = {}
    for split, ds in prepared.splits.items():
        chunks = []
        for start in range(0, len(ds), CHUNK):
            images = [to_rgb(_decode(ds, i, split)) for i in range(start, min(start + CHUNK, len(ds)))]
            pixels = processor(images=images, return_tensors="pt", **extra)["pixel_values"]
            if deferred and pixels.dtype != torch.uint8:  # this processor does not leave uint8: store what it gives
                pixels = processor(images=images, return_tensors="pt")["pixel_values"]
                deferred, extra = False, {}
            chunks.append(pixels)
        out[split] = TensorImages(torch.cat(chunks), list(ds["label"]))
    return out


def collate(processor, recipe):
    scale = float(getattr(processor, "rescale_factor", 1.0))
    mean = torch.tensor(getattr(processor, "image_mean", (0.0, 0.0, 0.0)) if getattr(processor, "do_normalize", False) else (0.0, 0.0, 0.0)).view(1, -1, 1, 1)
    std = torch.tensor(getattr(processor, "image_std", (1.0, 1.0, 1.0)) if getattr(processor, "do_normalize", False) else (1.0, 1.0, 1.0)).view(1, -1, 1, 1)

    def stack(batch: list[dict]) -> dict:
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
        modality="image",
        auto_class="AutoModelForImageClassification",
        custom_class="HubtransferForImageClassification",
        load_processor=load_processor,
        encode=encode,
        collate=collate,
        peft_class="AutoPeftModel",  # peft has no image task type: the config's auto mapping picks the class
    ),
)
