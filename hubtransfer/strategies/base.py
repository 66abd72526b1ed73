"""What trains: the new head only, the top K blocks + head, everything, or LP-FT.

``lp-ft`` (linear probing, then fine-tuning) trains the new head alone first and then everything
from there, so the backbone's first updates come from a head that already fits instead of a
random one; here it plans as ``full`` (the state after the probe), and
:func:`hubtransfer.api.finetune` runs the probe phase before it.

The head is every parameter outside the backbone (``model.base_model``) plus the backbone's own
pooler, whose only consumer is the classifier. Blocks are the longest list of same-class modules
in the backbone (BERT/ViT ``encoder.layer``, EfficientNet ``encoder.blocks``); ``top:K`` trains
the last K of them, whatever follows them in the backbone (final norm, top conv), and the head.
Frozen modules are kept in eval mode so batch-norm statistics and dropout of the pretrained part
stay as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from hubtransfer.errors import StrategyError

_TOP = re.compile(r"^top:(\d+)$")


@dataclass(frozen=True)
class Strategy:
    kind: str  # head | top | full | lp-ft | gradual | lora
    k: int = 0


def parse_strategy(text: str) -> Strategy:
    """``'head'`` | ``'top:K'`` | ``'full'`` | ``'lp-ft'`` | ``'gradual'`` | ``'lora'`` -> Strategy. Raises ValueError naming the fix."""
    if text in ("head", "full", "lp-ft", "gradual", "lora"):
        return Strategy(text)
    m = _TOP.match(text)
    if m and int(m.group(1)) > 0:
        return Strategy("top", int(m.group(1)))
    raise ValueError(f"strategy '{text}' is not one of 'head', 'top:K' (K >= 1, e.g. top:2), 'full', 'lp-ft', 'gradual' or 'lora'")


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


def apply_strategy(model: nn.Module, text: str) -> dict:
    """Freeze what the strategy keeps; return the counts the logs and the card report."""
    strategy = parse_strategy(text)
    if strategy.kind == "lora":
        raise StrategyError("strategy 'lora' wraps the model in peft adapters: use hubtransfer.adapters.wrap, not apply_strategy")
    head = set(head_parameters(model))
    if strategy.kind in ("full", "lp-ft", "gradual"):  # lp-ft and gradual reach everything; the loop stages them
        trainable = {n for n, _ in model.named_parameters()}
    elif strategy.kind == "head":
        trainable = head
    else:
        trainable = head | _top_block_parameters(model, strategy.k)
    for name, p in model.named_parameters():
        p.requires_grad = name in trainable
    total = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"strategy": text, "trainable_params": n_train, "total_params": total, "trainable_share": n_train / total, "head_params": sorted(head)}


def _top_block_parameters(model: nn.Module, k: int) -> set[str]:
    """The top ``k`` blocks, what follows them in the backbone (final norm, top conv) and the head."""
    n = len(find_blocks(model)[1])
    if k > n:
        raise StrategyError(f"strategy top:{k} asks for more blocks than the backbone has ({n}); use top:{n} or full")
    return {name for name, depth in block_depths(model).items() if depth <= k}


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


def gradual_unfreeze(model: nn.Module, epoch: int) -> int:
    """Gradual unfreezing: in epoch e (from 0) the head and the top e blocks train; returns how many parameters train."""
    depths = block_depths(model)
    for name, p in model.named_parameters():
        p.requires_grad = depths[name] <= epoch
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


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


def parameter_groups(model: nn.Module, lr: float, head_lr: float | None, weight_decay: float, layer_decay: float | None = None) -> list[dict]:
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
        {"params": ps, "lr": (head_lr or lr) if is_head else lr * (layer_decay or 1.0) ** k, "weight_decay": 0.0 if no_decay else weight_decay}
        for (is_head, no_decay, k), ps in groups.items()
    ]
