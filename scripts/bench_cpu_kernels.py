"""The figures behind hubtransfer/cpu_kernels.py: stock kernels against the CPU training kernels, op by op.

Run: python scripts/bench_cpu_kernels.py
Prints medians (ms) of: a dropout draw on a 32 x 40 x 384 bf16 activation (torch vs the 16-bit draw);
attention forward + backward on a 32 x 12 x 40 x 32 bf16 batch (SDPA with and without dropout vs the plain
math with the fast dropout); and an EfficientNet-Lite0 training step (96 px, batch 32, channels-last) in
bf16, fp32, and bf16 with its depthwise convolutions in fp32 (the kernels' choice).
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from hubtransfer.train.cpu_kernels import cpu_training_kernels, fast_dropout  # noqa: E402


def median_ms(fn, repeats: int = 20, warmup: int = 2) -> float:
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def dropout_rows() -> list[tuple[str, float]]:
    x = torch.randn(32, 40, 384, dtype=torch.bfloat16)
    return [
        ("dropout, torch (bernoulli_)", median_ms(lambda: F.dropout(x, 0.1, True))),
        ("dropout, 16-bit draw", median_ms(lambda: fast_dropout(x, 0.1))),
    ]


def attention_rows() -> list[tuple[str, float]]:
    q, k, v = (torch.randn(32, 12, 40, 32, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    mask = torch.ones(32, 1, 40, 40, dtype=torch.bool)
    mask[:5, :, :, 35:] = False

    def plain():
        scores = (q @ k.transpose(-1, -2)).float() * 32**-0.5
        probs = torch.softmax(scores.masked_fill(~mask, torch.finfo(torch.float32).min), -1).to(v.dtype)
        return fast_dropout(probs, 0.1) @ v

    def step(fn):
        return lambda: fn().float().sum().backward()

    return [
        (
            "attention fwd+bwd, SDPA dropout 0.1",
            median_ms(step(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.1)), 10),
        ),
        (
            "attention fwd+bwd, SDPA no dropout",
            median_ms(step(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)), 10),
        ),
        ("attention fwd+bwd, plain math + 16-bit dropout", median_ms(step(plain), 10)),
    ]


def efficientnet_rows() -> list[tuple[str, float]]:
    from transformers import AutoModelForImageClassification

    x = torch.randn(32, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (32,))
    rows = []
    for name, bf16, kernels in (
        ("bf16", True, False),
        ("fp32", False, False),
        ("bf16, depthwise in fp32 (kernels)", True, True),
    ):
        model = AutoModelForImageClassification.from_pretrained(
            ROOT / "assets" / "efficientnet-lite0", num_labels=10, ignore_mismatched_sizes=True
        )
        model.train()

        def step(model=model, bf16=bf16):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(pixel_values=x, labels=y).loss
            loss.backward()
            model.zero_grad(set_to_none=True)

        with cpu_training_kernels(model) if kernels else nullcontext():
            rows.append((f"EfficientNet-Lite0 fwd+bwd step, {name}", median_ms(step, 10)))
    return rows


def main() -> int:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, ms in dropout_rows() + attention_rows() + efficientnet_rows():
        print(f"{name:55s} {ms:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
