"""PNG plots a person would rather look at than read: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def training_curves(history: list[dict], metric: str, path: Path) -> None:
    """Training loss and validation metric against optimizer steps."""
    steps = [r["step"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    ax.plot(steps, [r["train_loss"] for r in history], "o-", color="tab:red", label="train loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("train loss", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(steps, [r["validation"].get(metric) for r in history], "s-", color="tab:blue", label=f"validation {metric}")
    ax2.set_ylabel(f"validation {metric}", color="tab:blue")
    ax.set_title("Training curve")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def confusion_matrix(matrix: list[list[int]], labels: list[str], path: Path) -> None:
    """Counts with true labels as rows and predictions as columns."""
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
