"""PNG plots a person would rather look at than read: training curves, the confusion matrix, candidate rankings."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    """matplotlib, imported on first use: training processes do not carry it until the plots at the end."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def training_curves(history: list[dict], metric: str, path: Path) -> None:
    """Training loss and the validation metric against optimizer steps, side by side."""
    plt = _pyplot()
    steps = [r["step"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=110)
    left.plot(steps, [r["train_loss"] for r in history], "o-", color="tab:red")
    left.set_title("training loss (mean since last evaluation)", fontsize=9)
    right.plot(steps, [r["validation"].get(metric) for r in history], "s-", color="tab:blue")
    right.set_title(f"validation {metric}", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    """Counts with true labels as rows and predictions as columns."""
    plt = _pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.6 + 0.55 * n, 1.2 + 0.5 * n), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black", fontsize=8)
    ax.set_title("Confusion matrix (test)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def ranking(report: dict, path: Path) -> None:
    """LogME of each candidate (pretrained blue, random-init controls grey); with validation, score vs fine-tuned metric."""
    plt = _pyplot()
    cands = report["candidates"]
    validated = report.get("validation") is not None
    fig, axes = plt.subplots(1, 2 if validated else 1, figsize=(9 if validated else 5, 3.4), dpi=110, squeeze=False)
    ax = axes[0][0]
    names = [c["candidate"] for c in cands][::-1]
    values = [c["scores"]["logme"] for c in cands][::-1]
    colors = ["tab:gray" if c["init"] == "random" else "tab:blue" for c in cands][::-1]
    # Bars start a little left of the lowest score: LogME is negative, and bars from 0 would make the worst look longest.
    base = min(values) - 0.1 * ((max(values) - min(values)) or 1.0)
    ax.barh(range(len(names)), [v - base for v in values], left=base, color=colors)
    ax.set_yticks(range(len(names)), [n if len(n) < 40 else "…" + n[-38:] for n in names], fontsize=7)
    ax.set_xlabel("LogME (higher transfers better)")
    ax.set_title("candidates (grey: random-init controls)", fontsize=9)
    if validated:
        v = report["validation"]
        bx = axes[0][1]
        for c in cands:
            bx.scatter(c["scores"]["logme"], c["finetuned"]["metric"], color="tab:gray" if c["init"] == "random" else "tab:blue")
            label = ("random: " if c["init"] == "random" else "") + c["model_id"].rstrip("/").split("/")[-1][:24]
            bx.annotate(label, (c["scores"]["logme"], c["finetuned"]["metric"]), fontsize=6)
        bx.set_xlabel("LogME")
        bx.set_ylabel(f"fine-tuned test {v['metric']}")
        bx.set_title(f"Kendall tau {v['kendall_tau'].get('logme')}", fontsize=9)
        bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
