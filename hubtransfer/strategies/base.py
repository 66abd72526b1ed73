"""What every strategy shares: the :class:`Strategy` contract and the model anatomy it works on.

The head is every parameter outside the backbone (``model.base_model``) plus the backbone's own pooler, whose
only consumer is the classifier. Blocks are the longest list of same-class modules in the backbone (BERT/ViT
``encoder.layer``, EfficientNet ``encoder.blocks``). Frozen modules are kept in eval mode so batch-norm statistics
and dropout of the pretrained part stay as they were.
"""

from __future__ import annotations

from typing import ClassVar

from torch import nn

from hubtransfer.errors import StrategyError
from hubtransfer.recipe.refs import StrategyRef


class Strategy:
    """What trains, and when. One subclass per strategy (a module of this package), registered by name in
    ``hubtransfer/strategies/__init__.py``; the rest of hubtransfer asks the object, never its name.

    Class attributes say what the flow must do for it: ``head_only`` (only the new head trains, so its inputs can
    be cached), ``needs_probe`` (a head-only phase comes first), ``one_process`` (what trains changes between
    epochs, which DistributedDataParallel cannot follow), ``keeps_native_head`` (the checkpoint's own head class),
    ``lr_family`` (which learning-rate candidates suit it: 'head', 'lora' or None for the backbone's), ``takes_k``
    (written ``name:K``)."""

    name: ClassVar[str]
    takes_k: ClassVar[bool] = False
    head_only: ClassVar[bool] = False
    needs_probe: ClassVar[bool] = False
    one_process: ClassVar[bool] = False
    keeps_native_head: ClassVar[bool] = False
    lr_family: ClassVar[str | None] = None
    grows_during_training: ClassVar[bool] = False  # trains more by the last epoch than at the start (gradual)

    def __init__(self, k: int | None = None):
        self.k = k

    @property
    def ref(self) -> StrategyRef:
        return StrategyRef(self.name, self.k)

    def __str__(self) -> str:
        return str(self.ref)

    def describe(self) -> str:
        """What the model card says of it."""
        raise NotImplementedError

    def trainable(self, model: nn.Module) -> set[str]:
        """Names of the parameters that train (at some point of the run)."""
        raise NotImplementedError

    def prepare(self, model: nn.Module, recipe, base_ref: str, task) -> tuple[nn.Module, dict]:
        """The model to train (frozen where the strategy says; LoRA wraps it) and the plan the logs and card report."""
        return model, freeze(model, self.trainable(model), str(self))

    def on_epoch(self, model: nn.Module, epoch: int) -> int | None:
        """Called as each epoch starts; returns how many parameters train from now on, when that changes."""
        return None

    def check(self, recipe, task) -> list[str]:
        """Problems of a recipe that this strategy cannot follow (each with its fix)."""
        return []


def freeze(model: nn.Module, trainable: set[str], strategy: str) -> dict:
    """Freeze all but ``trainable``; return the counts the logs and the card report."""
    for name, p in model.named_parameters():
        p.requires_grad = name in trainable
    total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "strategy": strategy,
        "trainable_params": n_train,
        "total_params": total,
        "trainable_share": n_train / total,
        "head_params": sorted(head_parameters(model)),
    }


def backbone(model: nn.Module) -> nn.Module:
    base = getattr(model, "backbone", None) or getattr(model, "base_model", None)
    if base is None or base is model:
        raise StrategyError(f"{type(model).__name__} has no separate backbone; use strategy=full")
    return base


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The backbone's repeated blocks: the longest ModuleList whose members share one class."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, module in backbone(model).named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            kinds = {type(m) for m in module}
            if len(kinds) == 1 and (best is None or len(module) > len(best[1])):
                best = (name, module)
    if best is None:
        raise StrategyError(f"found no repeated blocks in {type(backbone(model)).__name__}; use strategy=head or full")
    return best


def head_parameters(model: nn.Module) -> list[str]:
    """Names of the head's parameters (outside the backbone, plus the backbone's pooler)."""
    if getattr(model, "is_head_only", False):  # a head trained on cached features
        return [n for n, _ in model.named_parameters()]
    if hasattr(model, "peft_config"):  # a peft model: its head is what it keeps whole and trains (modules_to_save)
        return [n for n, _ in model.named_parameters() if ".modules_to_save." in n]
    base = backbone(model)
    inside = {id(p) for p in base.parameters()}
    pooler = getattr(base, "pooler", None)
    in_pooler = {id(p) for p in pooler.parameters()} if isinstance(pooler, nn.Module) else set()
    return [n for n, p in model.named_parameters() if id(p) not in inside or id(p) in in_pooler]


def block_depths(model: nn.Module) -> dict[str, int]:
    """Parameter name -> blocks between it and the head: 0 for the head and whatever follows the last
    block (final norm, top conv), k for the k-th block from the top, blocks + 1 for what precedes the
    first block (embeddings, stem). The unit of layer-wise decay and of gradual unfreezing."""
    base = backbone(model)
    _, blocks = find_blocks(model)
    n = len(blocks)
    block_of = {id(p): n - i for i, b in enumerate(blocks) for p in b.parameters()}
    prefix = _prefix(model, base)
    depths, seen_block = {}, False
    for name, p in base.named_parameters():
        if id(p) in block_of:
            seen_block = True
            depths[prefix + name] = block_of[id(p)]
        else:
            depths[prefix + name] = 0 if seen_block else n + 1
    head = set(head_parameters(model))
    return {name: 0 if name in head else depths.get(name, 0) for name, _ in model.named_parameters()}


def _prefix(model: nn.Module, base: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is base:
            return f"{name}." if name else ""
    raise StrategyError("backbone not found inside the model")


def set_train_mode(model: nn.Module) -> None:
    """model.train(), but modules with no trainable parameter stay in eval (frozen BN stats, no dropout)."""
    model.train()
    for module in model.modules():
        params = list(module.parameters(recurse=True))
        if params and not any(p.requires_grad for p in params):
            module.eval()


def parameter_groups(
    model: nn.Module, lr: float, head_lr: float | None, weight_decay: float, layer_decay: float | None = None
) -> list[dict]:
    """AdamW groups: no weight decay on biases and norms; the head may have its own learning rate; with
    ``layer_decay`` d, a parameter k blocks below the head trains at ``lr * d**k`` (layer-wise decay)."""
    head = set(head_parameters(model))
    depth = block_depths(model) if layer_decay and not getattr(model, "is_head_only", False) else {}
    groups: dict[tuple[bool, bool, int], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")
        groups.setdefault((name in head, no_decay, depth.get(name, 0)), []).append(p)
    return [
        {
            "params": ps,
            "lr": (head_lr or lr) if is_head else lr * (layer_decay or 1.0) ** k,
            "weight_decay": 0.0 if no_decay else weight_decay,
        }
        for (is_head, no_decay, k), ps in groups.items()
    ]
