"""Frozen-backbone features: the backbone runs once over a split, the pooled vectors are cached on disk.

Head-only training, ranking of candidate checkpoints and the sweeps reuse them: when only the head
trains, every epoch would otherwise push the same inputs through the same frozen network.

A model is split at the point where everything before is frozen and everything after trains
(:func:`split_head`): the features are that point's input vectors, the head is the rest. Custom
heads (``head.pooling: mean | cls``) split after pooling; a stock classifier whose output layer is
all that trains splits at that layer's input (EfficientNet's pooled output). BERT's stock classifier
reads its pooler, which trains under ``head``; that pooler reads only the first token (checked on
random states), so the first token's last hidden state is cached and pooler + output layer form the
head. A trainable layer that reads more (a mean over tokens) prevents the split: the backbone then
runs every epoch. So does a token-classification head, which reads every token's state.

Cache entries (safetensors, never pickles) live under ``$HUBTRANSFER_CACHE/features`` (default
``~/.cache/hubtransfer/features``), one file a split, named by the sha256 of: the checkpoint
(Hub commit, or the weight files' names, sizes and times for a local folder), its initialisation,
the split's content fingerprint, the preprocessing (tokenizer / image processor settings, max
length, image size), the pooling and the precision. A hit loads in milliseconds; a changed revision,
split or preprocessing is a different key and misses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers.loss.loss_utils import ForSequenceClassificationLoss
from transformers.modeling_outputs import SequenceClassifierOutput

from hubtransfer.data.split import fingerprint
from hubtransfer.tasks.model import output_layer
from hubtransfer.tasks.modeling_hubtransfer import pool

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when what a cached vector means changes


def cache_root() -> Path:
    return Path(os.environ.get("HUBTRANSFER_CACHE", Path.home() / ".cache" / "hubtransfer")) / "features"


# --------------------------------------------------------------------------- where to cut


@dataclass
class HeadSplit:
    """``features(batch) -> (B, D)`` runs the frozen part; ``head(features) -> logits`` holds every trainable
    parameter."""

    features: Callable[[dict], torch.Tensor]
    head: nn.Module
    pooling: str
    model: nn.Module


def is_convolutional(model: nn.Module) -> bool:
    """Many 2-D convolutions (EfficientNet, ResNet), not a ViT's single patch embedding."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules()) > 4


@contextmanager
def channels_last(model: nn.Module):
    """Convolutional weights in channels-last layout while inside (oneDNN's fast layout for convolutions on
    CPU); back to the default layout after, which saving expects."""
    if not is_convolutional(model):
        yield
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)


def split_head(model: nn.Module) -> tuple[HeadSplit | None, str]:
    """(split, reason). ``None`` when some trainable parameter sits before any vector the head could read, or when
    the head reads every token (token classification): caching a (tokens x hidden) matrix per example would cost
    more disk and memory than running the frozen backbone each epoch saves."""
    if getattr(model, "is_multi_task", False):
        return (
            None,
            "a multi-task model trains several heads on a (batch, heads) label tensor, and the cached-feature trainer "
            "has one head",
        )
    if type(model).__name__.endswith("ForTokenClassification"):
        return None, "the head tags every token, so its input is one vector per token, not one per example"
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    spec = getattr(model.config, "hubtransfer_head", None)
    split = _custom_split(model, spec["pooling"]) if spec is not None else _stock_split(model)
    outside = trainable - {id(p) for p in split.head.parameters()}
    if not outside:
        return split, "only the head trains"
    pooled = _first_token_split(model) if spec is None else None
    if pooled is not None and not trainable - {id(p) for p in pooled.head.parameters()}:
        return pooled, "only the pooler and the output layer train: the first token's states are cached"
    return None, f"{len(outside)} trainable tensors sit before the head's input (e.g. a trainable pooler)"


def _custom_split(model, pooling: str) -> HeadSplit:
    def features(batch: dict) -> torch.Tensor:
        mask = batch.get("attention_mask")
        return pool(model.backbone(**batch), mask, pooling)

    return HeadSplit(features, model.head, pooling, model)


def _stock_split(model) -> HeadSplit:

    parent, _name, layer = output_layer(model, model.config.num_labels)
    dropout = getattr(parent, "dropout", None)
    head = nn.Sequential(dropout, layer) if isinstance(dropout, nn.Dropout) else nn.Sequential(layer)

    def features(batch: dict) -> torch.Tensor:
        seen: list[torch.Tensor] = []
        hook = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            model(**batch)
        finally:
            hook.remove()
        if len(seen) != 1 or seen[0].dim() != 2:
            raise ValueError("output layer did not see one (B, D) input")
        return seen[0]

    return HeadSplit(features, head, "native", model)


class _PooledHead(nn.Module):
    """A stock head that starts at its pooler: pooler -> dropout -> output layer, on first-token states."""

    def __init__(self, pooler: nn.Module, rest: nn.Module):
        super().__init__()
        self.pooler, self.rest = pooler, rest

    def forward(self, first: torch.Tensor) -> torch.Tensor:
        return self.rest(self.pooler(first.unsqueeze(1)))  # a (B, 1, D) sequence: the pooler reads its first token


def _reads_first_token_only(pooler: nn.Module, dim: int) -> bool:
    """Whether ``pooler`` (BERT, RoBERTa, MPNet style) looks only at position 0: checked on random states."""
    g = torch.Generator().manual_seed(0)
    states = torch.randn(2, 3, dim, generator=g)
    try:
        with torch.no_grad():
            param = next(pooler.parameters(), None)
            states = states.to(param.device, param.dtype) if param is not None else states
            return torch.allclose(pooler(states), pooler(states[:, :1]), atol=1e-6)
    except Exception:  # a pooler with another signature is not one we can split at
        return False


def _first_token_split(model) -> HeadSplit | None:
    """Stock models whose trainable pooler reads the first token only: cache that token's last hidden state."""
    base = getattr(model, "base_model", None)
    pooler = getattr(base, "pooler", None)
    dim = getattr(model.config, "hidden_size", None)
    if not isinstance(pooler, nn.Module) or dim is None or not _reads_first_token_only(pooler, dim):
        return None
    stock = _stock_split(model)
    head = _PooledHead(pooler, stock.head)

    def features(batch: dict) -> torch.Tensor:
        seen: list[torch.Tensor] = []
        hook = pooler.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            base(**batch)  # the backbone alone: the head runs later, on the cache
        finally:
            hook.remove()
        return seen[0][:, 0]

    return HeadSplit(features, head, "first-token", model)


def output_split(model: nn.Module) -> HeadSplit | None:
    """The split at the output layer's input, whatever trains: the pretrained network's own features where the head is
    dropout + one new Linear (a custom pooled head without hidden layers, or a stock output layer that is an attribute
    of the model itself, as EfficientNet's, ViT's and BERT's are). ``None`` where new layers sit before the output
    layer (an MLP head, RoBERTa's dense + out_proj head): their input is a random projection, not the backbone's
    features. The linear probe (:mod:`hubtransfer.checks.probe`) fits at this point."""
    if getattr(model, "is_multi_task", False) or type(model).__name__.endswith("ForTokenClassification"):
        return None
    spec = getattr(model.config, "hubtransfer_head", None)
    if spec is not None:
        linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
        return _custom_split(model, spec["pooling"]) if len(linears) == 1 else None
    try:
        parent, _name, _layer = output_layer(model, model.config.num_labels)
    except ValueError:
        return None
    return _stock_split(model) if parent is model else None


class FeatureClassifier(nn.Module):
    """The head alone, trained on cached features; its modules are the full model's own (shared)."""

    is_head_only = True

    def __init__(self, head: nn.Module, config=None):
        super().__init__()
        self.head = head
        # The full model's config: multi-label and regression heads train with its problem_type's loss.
        self.problem_type = getattr(config, "problem_type", None)
        self._config = config

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None, **_):
        logits = self.head(features)
        if labels is None:
            loss = None
        elif self.problem_type in ("multi_label_classification", "regression"):
            # transformers' own loss for these problem types (BCE-with-logits / MSE), as the full model computes it
            loss = ForSequenceClassificationLoss(labels, logits.float(), self._config)
        else:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


class FeatureDataset(torch.utils.data.Dataset):
    """Cached vectors + labels; ``lengths`` of the source texts keep batches the same as an uncached run."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor, lengths: list[int] | None = None):
        self.features, self.labels, self.lengths = features, labels, lengths

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"features": self.features[i], "labels": self.labels[i]}

    def __getitems__(self, indices: list[int]) -> dict:
        # One indexing per batch instead of one per example: a head step costs about a millisecond,
        # so per-example fetching and stacking would dominate it.
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {"features": self.features[idx], "labels": self.labels[idx]}


def collate_features(items) -> dict:
    if isinstance(items, dict):  # already a batch (__getitems__)
        return items
    return {
        "features": torch.stack([x["features"] for x in items]),
        "labels": torch.stack([x["labels"] for x in items]),
    }


# --------------------------------------------------------------------------- keys


def model_fingerprint(model_dir: Path) -> str:
    """Hub snapshots sit in ``snapshots/<commit>``; a local folder is its weight files' names, sizes and mtimes."""
    if model_dir.parent.name == "snapshots" and len(model_dir.name) == 40:
        return f"commit:{model_dir.name}"
    h = hashlib.sha256()
    for f in sorted(model_dir.glob("*")):
        if f.suffix in (".safetensors", ".bin", ".pth", ".pt") or f.name == "config.json":
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return f"files:{h.hexdigest()}"


def preprocessing_fingerprint(processor, recipe) -> dict:
    if hasattr(processor, "vocab_size") or hasattr(processor, "get_vocab"):
        cfg = {
            "class": type(processor).__name__,
            "vocab": len(processor),
            "max_length": recipe.data.max_length,
            "lowercase": getattr(processor, "do_lower_case", None),
        }
    else:
        cfg = {
            "class": type(processor).__name__,
            **{k: v for k, v in processor.to_dict().items() if not k.startswith("_")},
        }
    return json.loads(json.dumps(cfg, sort_keys=True, default=str))


def key_parts(model_dir: Path, recipe, splits: dict, modality: str, processor) -> dict:
    """What names a cache entry besides split, pooling and precision: checkpoint, init, data, preprocessing."""
    return {
        "model": model_fingerprint(model_dir),
        "init": "pretrained" if recipe.model.init == "pretrained" else f"random:{recipe.train.seed}",
        "data": {name: fingerprint(ds, modality) for name, ds in splits.items()},
        "preprocessing": preprocessing_fingerprint(processor, recipe),
    }


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT, **parts}, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- extraction


@dataclass
class Features:
    features: torch.Tensor  # (N, D) float32, the split's order
    labels: torch.Tensor
    seconds: float  # extraction time spent now (0 on a cache hit)
    hit: bool
    measured_seconds: float  # what the extraction took when the entry was made (a cost estimate's input)


def extract(
    split: HeadSplit,
    dataset,
    collate,
    *,
    batch_size: int,
    device,
    dtype: torch.dtype | None = None,
    desc: str = "features",
) -> torch.Tensor:
    """Run the frozen part over ``dataset`` (no gradients), longest inputs first; vectors in dataset order."""
    lengths = getattr(dataset, "lengths", None)
    order = sorted(range(len(dataset)), key=lambda i: -lengths[i]) if lengths is not None else list(range(len(dataset)))
    # A generator of its own: an iterator of a loader without one draws its seed from the global RNG,
    # which would shift every later dropout mask and make a cached run differ from an uncached one.
    loader = DataLoader(
        torch.utils.data.Subset(dataset, order), batch_size=batch_size, collate_fn=collate, generator=torch.Generator()
    )
    autocast = (
        torch.autocast(device_type=torch.device(device).type, dtype=dtype) if dtype is not None else nullcontext()
    )
    chunks = []
    # The layout changes outside inference mode: parameters converted inside it would become inference tensors,
    # which a later fine-tune of the same model (after the linear probe) cannot train.
    with channels_last(split.model), torch.inference_mode(), autocast:
        for batch in tqdm(loader, desc=desc, leave=False, dynamic_ncols=True, disable=None):
            batch.pop("labels", None)
            chunks.append(split.features({k: v.to(device) for k, v in batch.items()}).float().cpu())
    # Made outside inference mode: the vectors may then feed a head that trains.
    out = torch.empty((len(dataset), chunks[0].shape[1]) if chunks else (0, 0))
    out[torch.tensor(order, dtype=torch.long)] = torch.cat(chunks) if chunks else out
    return out


def cached_features(key: str, compute: Callable[[], torch.Tensor], labels, meta: dict) -> Features:
    """The cache entry under ``key``, or ``compute()`` written there atomically (temporary name, then rename)."""
    path = cache_root() / f"{key}.safetensors"
    if path.is_file():
        try:
            with safe_open(path, framework="pt") as f:  # tensors and metadata in one read of the file
                measured = float((f.metadata() or {}).get("seconds", "nan"))
                return Features(f.get_tensor("features"), f.get_tensor("labels"), 0.0, True, measured)
        except Exception as e:  # a damaged entry is recomputed, not trusted
            logger.warning("feature cache entry %s unreadable (%s); recomputing", path.name, e)
    start = time.perf_counter()
    feats = compute()
    seconds = time.perf_counter() - start
    labels = torch.as_tensor(labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file(
        {"features": feats.contiguous(), "labels": labels},
        tmp,
        metadata={**{k: str(v) for k, v in meta.items()}, "seconds": repr(seconds)},
    )
    os.replace(tmp, path)
    return Features(feats, labels, seconds, False, seconds)


def split_features(
    split: HeadSplit,
    encoded: dict,
    collate,
    *,
    key_parts: dict,
    batch_size: int,
    device,
    dtype: torch.dtype | None = None,
) -> dict[str, Features]:
    """Features of every split of ``encoded``, from the cache where present."""
    split.model.eval()
    out = {}
    for name, ds in encoded.items():
        parts = {
            **key_parts,
            "split": name,
            "data": key_parts["data"][name],
            "pooling": split.pooling,
            "dtype": str(dtype),
        }
        compute = lambda ds=ds, name=name: extract(
            split, ds, collate, batch_size=batch_size, device=device, dtype=dtype, desc=f"features {name}"
        )
        out[name] = cached_features(
            cache_key(**parts), compute, _labels(ds), {"model": parts["model"], "split": name, "pooling": split.pooling}
        )
    return out


def _labels(ds) -> torch.Tensor:
    """Class ids as int64; multi-hot rows and regression targets stay float (their losses need float targets)."""
    labels = getattr(ds, "labels", None)
    if labels is None:
        labels = [ds[i]["labels"] for i in range(len(ds))]
    labels = labels if torch.is_tensor(labels) else torch.as_tensor(labels)
    return labels if labels.is_floating_point() else labels.long()
