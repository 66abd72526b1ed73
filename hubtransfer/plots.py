"""PNG plots a person would rather look at than read: training curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def training_curves(history: list[dict], metric: str, path: Path) -> None:
    """Training loss and the validation metric against optimizer steps, side by side."""
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
