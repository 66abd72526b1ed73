"""The figures behind hubtransfer/train/cpu_kernels.py: stock kernels against the CPU training kernels, op by op.

Run: python scripts/bench_cpu_kernels.py [--repeats 5]  (writes results/bench_cpu_kernels.json with the machine)
Prints medians (ms) over alternations (every case timed in turn in each) of: a dropout draw on a
32 x 40 x 384 bf16 activation (torch vs the 16-bit draw); attention forward + backward on a
32 x 12 x 40 x 32 bf16 batch under bf16 autocast (SDPA with and without dropout vs the kernels' attention:
float32 math with the fast dropout); and an EfficientNet-Lite0 training step (96 px, batch 32,
channels-last) in bf16, fp32, and bf16 with its depthwise convolutions in fp32 (the kernels' choice).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from doc_markers import write_between  # noqa: E402

from hubtransfer.save.environment import describe_machine  # noqa: E402
from hubtransfer.train.cpu_kernels import attention_forward, cpu_training_kernels, fast_dropout  # noqa: E402


def alternated(cases: dict, repeats: int, inner: int = 10, warmup: int = 2) -> list[dict]:
    """Each repeat times every case in turn (``inner`` calls after ``warmup``, their median): machine noise falls
    on all of them. Returns per case the median over the repeats with its min and max, in ms."""
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            calls = []
            for i in range(warmup + inner):
                start = time.perf_counter()
                fn()
                if i >= warmup:
                    calls.append(time.perf_counter() - start)
            times[name].append(1000 * statistics.median(calls))
    return [
        {
            "case": name,
            "ms": round(statistics.median(t), 3),
            "min": round(min(t), 3),
            "max": round(max(t), 3),
            "n": len(t),
        }
        for name, t in times.items()
    ]


def dropout_cases() -> dict:
    x = torch.randn(32, 40, 384, dtype=torch.bfloat16)
    return {
        "dropout, torch (bernoulli_)": lambda: F.dropout(x, 0.1, True),
        "dropout, 16-bit draw": lambda: fast_dropout(x, 0.1),
    }


class _Training:
    training = True


def attention_cases() -> dict:
    """A 32 x 12 x 40 x 32 bf16 batch under bf16 autocast, as MiniLM trains: stock SDPA against the kernels'
    attention (float32 scores and probabilities, the 16-bit dropout draw)."""
    q, k, v = (torch.randn(32, 12, 40, 32, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    mask = torch.ones(32, 1, 40, 40, dtype=torch.bool)
    mask[:5, :, :, 35:] = False

    def step(fn):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = fn()
            out.float().sum().backward()

        return run

    return {
        "attention fwd+bwd, SDPA dropout 0.1": step(
            lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.1)
        ),
        "attention fwd+bwd, SDPA no dropout": step(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)),
        "attention fwd+bwd, kernels (fp32 math + 16-bit dropout 0.1)": step(
            lambda: attention_forward(_Training(), q, k, v, mask, dropout=0.1)[0]
        ),
    }


def efficientnet_cases() -> tuple[dict, list]:
    from transformers import AutoModelForImageClassification

    x = torch.randn(32, 3, 96, 96).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (32,))
    cases, contexts = {}, []
    for name, bf16, kernels in (
        ("bf16", True, False),
        ("fp32", False, False),
        ("bf16, depthwise in fp32 (kernels)", True, True),
    ):
        model = AutoModelForImageClassification.from_pretrained(
            ROOT / "assets" / "efficientnet-lite0", num_labels=10, ignore_mismatched_sizes=True
        )
        model.train()
        if kernels:  # the kernels stay on for this model while the others are timed between its calls
            ctx = cpu_training_kernels(model)
            ctx.__enter__()
            contexts.append(ctx)

        def step(model=model, bf16=bf16):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = model(pixel_values=x, labels=y).loss
            loss.backward()
            model.zero_grad(set_to_none=True)

        cases[f"EfficientNet-Lite0 fwd+bwd step, {name}"] = step
    return cases, contexts


DOCS = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- bench-cpu-kernels:start -->", "<!-- bench-cpu-kernels:end -->")


def table(saved: dict) -> str:
    """The markdown table of a results file: median (min-max) ms per case, and the machine."""
    m = saved["machine"]
    lines = [
        f"{m['cpu']} ({'/'.join(m['bf16_flags']) or 'no bf16 flags'}), {m['torch_threads']} torch threads, torch "
        f"{m.get('torch', '?')}; median (min-max) of {saved['repeats']} alternations.",
        "",
        "| case | ms |",
        "|---|---|",
    ]
    lines += [f"| {r['case']} | {r['ms']:.2f} ({r['min']:.2f}-{r['max']:.2f}) |" for r in saved["rows"]]
    return "\n".join(lines)


def write_docs(text: str, path: Path = DOCS) -> None:
    """Put ``text`` between the markers of ``path`` (tests/unit/test_docs.py checks it equals the results)."""
    write_between(path, *MARKERS, text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5, help="alternations of every case (at least 3)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "bench_cpu_kernels.json")
    p.add_argument("--table-only", action="store_true", help="reprint the table of --out")
    p.add_argument("--write-docs", action="store_true", help=f"also write the table into {DOCS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    if args.table_only:
        saved = json.loads(args.out.read_text())
    else:
        if args.repeats < 3:
            p.error(f"--repeats: at least 3 alternations give a median and a spread, got {args.repeats}")
        image, contexts = efficientnet_cases()
        rows = alternated(dropout_cases(), args.repeats, inner=20) + alternated(attention_cases(), args.repeats)
        rows += alternated(image, args.repeats)
        for ctx in contexts:
            ctx.__exit__(None, None, None)
        saved = {"machine": describe_machine(), "repeats": args.repeats, "rows": rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(saved, indent=2))
    print(table(saved))
    if args.write_docs:
        write_docs(table(saved))
    return 0


if __name__ == "__main__":
    sys.exit(main())
