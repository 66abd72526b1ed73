"""Faster CPU training for what the stock modules compute: dropout, attention with dropout, depthwise
(grouped) convolutions under bf16 autocast.

Why hand-written: on CPU, torch's dropout draws one float per element through ``bernoulli_``, and
``scaled_dot_product_attention`` with ``dropout_p > 0`` leaves its fused kernel for the math path, whose dropout is
the same slow draw (without dropout, the fused CPU kernel's backward is slower still at these sizes). The
replacements compute the same thing: every element is kept independently with probability ``1 - p`` (``p`` rounded
to a multiple of 1/65536) and scaled by the inverse of that probability. The draw is 16-bit integers cut from 64-bit
words of torch's default generator (so ``set_seed`` and checkpointed RNG states still make runs repeatable).
Attention keeps its scores, probabilities and their product with the values in float32, as the stock math path
does for bf16 inputs.

Grouped convolutions: under bf16 autocast, oneDNN's depthwise-convolution backward on CPU is several times slower
than in fp32, while EfficientNet's 1x1 convolutions are as fast or faster in bf16. Here grouped convolutions run in
fp32 (inputs cast up, outputs rounded back to bf16) and everything else stays in bf16.

``scripts/bench_cpu_kernels.py`` measures each of these against the stock kernel (``results/bench_cpu_kernels.json``,
with the machine; AMD EPYC with avx512_bf16, 2 threads, medians of 3 alternations): dropout on a 32 x 40 x 384 bf16
activation 3.0 ms stock, 1.1 ms here; attention forward + backward on a 32 x 12 x 40 x 32 bf16 batch: SDPA with
dropout 11.1 ms, without 27.8 ms, this kernel with dropout 8.7 ms; an EfficientNet-Lite0 training step (96 px,
batch 32): bf16 407 ms, fp32 306 ms, bf16 with depthwise convolutions in fp32 267 ms.

All of it acts only while a model trains on CPU (``train.cpu_kernels``, on by default): evaluation (the
validation passes inside training too), inference and GPUs keep the stock kernels, and
:func:`cpu_training_kernels` puts the stock modules, attention and convolution forwards back when
training ends, so nothing of this is saved with a model.
"""

from __future__ import annotations

import logging
import types
from contextlib import contextmanager

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

logger = logging.getLogger(__name__)

ATTENTION = "hubtransfer_cpu"
_LEVELS = 65536  # keep-probabilities are multiples of 1/65536: one int16 per element


def keep_mask(shape: torch.Size | tuple, p: float, device="cpu") -> torch.Tensor:
    """A bool tensor: each element True with probability 1 - round(p * 65536) / 65536, independently."""
    n = 1
    for d in shape:
        n *= int(d)
    # The full int64 range: a bare random_() stops at 2**63 - 1, which would leave every fourth int16's sign bit 0.
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    draws = words.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    return draws >= round(p * _LEVELS) - _LEVELS // 2


def fast_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of ``x`` (the stock semantics; see the module docstring)."""
    if p <= 0.0:
        return x
    dropped = round(p * _LEVELS)
    if dropped >= _LEVELS:
        return torch.zeros_like(x)
    # The mask is laid out like x (channels-last activations stay channels-last: a contiguous mask would make
    # the result, and every convolution after it, switch layout).
    order = sorted(range(x.dim()), key=lambda d: -x.stride(d))
    keep = keep_mask([x.shape[d] for d in order], p, x.device).permute([order.index(d) for d in range(x.dim())])
    return torch.where(keep, x * (_LEVELS / (_LEVELS - dropped)), 0.0)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with the faster draw while training on CPU; the stock module everywhere else."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.p > 0 and x.device.type == "cpu":
            return fast_dropout(x, self.p)
        return super().forward(x)


def attention_forward(
    module,
    query,
    key,
    value,
    attention_mask,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
):
    """Attention as ``sdpa_attention_forward`` returns it ((B, L, H, D), None). While training on CPU: the plain
    math in float32 (scores, masked softmax, dropout, values); anything else goes to the stock SDPA function."""
    plain = (
        query.device.type == "cpu"
        and module.training
        and torch.is_grad_enabled()
        and not is_causal
        and not getattr(module, "is_causal", False)
        and getattr(module, "num_key_value_groups", 1) == 1
        and query.shape[1] == key.shape[1]
        and kwargs.get("position_bias") is None
        and kwargs.get("cache") is None
        and kwargs.get("softcap") is None
    )
    if not plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    # Scores, probabilities and their product with the values in float32, as the stock math path computes them
    # for bf16 inputs on CPU; only the output is rounded back to the inputs' dtype.
    with torch.autocast("cpu", enabled=False):
        scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) * scale
        if attention_mask is not None:
            if attention_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
            else:
                scores = scores + attention_mask.float()
        probs = torch.softmax(scores, dim=-1)
        if dropout > 0:
            probs = fast_dropout(probs, dropout)
        out = torch.matmul(probs, value.float()).to(value.dtype)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, attention_forward)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # the same boolean masks (or none) the SDPA path gets


def _grouped_conv_in_fp32(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A grouped convolution's forward that leaves bf16 autocast for fp32 (bound to the instance, so the
    module, its parameters and its state-dict keys stay as they are)."""
    # Training only: the slow part is the backward; evaluation keeps the stock bf16 forward (no fp32 copies of
    # the activations, and the same outputs the saved model gives).
    if (
        self.training
        and x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
    ):
        with torch.autocast("cpu", enabled=False):
            return nn.Conv2d.forward(self, x.float()).to(torch.bfloat16)
    return nn.Conv2d.forward(self, x)


@contextmanager
def cpu_training_kernels(model: nn.Module, enabled: bool = True):
    """While inside: ``model``'s ``nn.Dropout`` modules are :class:`FastDropout`, its SDPA attention is
    :func:`attention_forward` and its grouped convolutions run in fp32 under bf16 autocast. All is restored on
    exit (also on errors). A no-op when disabled or off CPU."""
    if not enabled or any(p.device.type != "cpu" for p in model.parameters()):
        yield
        return
    swapped = _swap_dropout(model)
    configs = _swap_attention(model)
    # Conv2d and subclasses that keep its forward (EfficientNet's depthwise class only changes the constructor).
    # Only trainable ones: a frozen convolution has no weight gradient to compute (the slow part), and frozen
    # layers then give the same outputs as the cached-feature pass of a head-only run.
    convs = [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
        and type(m).forward is nn.Conv2d.forward
        and m.groups > 1
        and "forward" not in vars(m)
        and any(p.requires_grad for p in m.parameters())
    ]
    for conv in convs:
        conv.forward = types.MethodType(_grouped_conv_in_fp32, conv)
    logger.info(
        "CPU training kernels: %d dropout modules, attention in %d configs, %d grouped convolutions in fp32 under bf16",
        len(swapped),
        len(configs),
        len(convs),
    )
    try:
        yield
    finally:
        for parent, name, old in swapped:
            setattr(parent, name, old)
        for config, old in configs:
            config._attn_implementation = old
        for conv in convs:
            del conv.forward


def _swap_dropout(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    swapped = []
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:  # exactly the stock class: subclasses may do more than drop
                fast = FastDropout(child.p, child.inplace)
                fast.train(child.training)
                setattr(parent, name, fast)
                swapped.append((parent, name, child))
    return swapped


def _swap_attention(model: nn.Module) -> list[tuple[object, str]]:
    """Configs of (sub)models that run SDPA through transformers' attention interface."""
    seen, out = set(), []
    for m in model.modules():
        config = getattr(m, "config", None)
        can = getattr(m, "_can_set_attn_implementation", None)
        if config is None or id(config) in seen or not callable(can):
            continue
        seen.add(id(config))
        try:
            ok = can() and getattr(config, "_attn_implementation", None) == "sdpa"
        except Exception:  # a model class that cannot tell: leave its attention alone
            ok = False
        if ok:
            out.append((config, config._attn_implementation))
            config._attn_implementation = ATTENTION
    return out
