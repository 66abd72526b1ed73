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
    trained = [r for r in history if r["train_loss"] is not None]  # a step-0 evaluation has no loss yet
    left.plot([r["step"] for r in trained], [r["train_loss"] for r in trained], "o-", color="tab:red")
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
    """LogME of each candidate (pretrained blue, random-init controls grey); with validation, score vs fine-tuned
    metric."""
    plt = _pyplot()
    cands = report["candidates"]
    validated = report.get("validation") is not None
    fig, axes = plt.subplots(1, 2 if validated else 1, figsize=(9 if validated else 5, 3.4), dpi=110, squeeze=False)
    ax = axes[0][0]
    names = [c["candidate"] for c in cands][::-1]
    values = [c["scores"]["logme"] for c in cands][::-1]
    colors = ["tab:gray" if c["init"] == "random" else "tab:blue" for c in cands][::-1]
    # Bars start a little left of the lowest score: LogME is negative, and bars from 0 would make the worst look
    # longest.
    base = min(values) - 0.1 * ((max(values) - min(values)) or 1.0)
    ax.barh(range(len(names)), [v - base for v in values], left=base, color=colors)
    ax.set_yticks(range(len(names)), [n if len(n) < 40 else "…" + n[-38:] for n in names], fontsize=7)
    ax.set_xlabel("LogME (higher transfers better)")
    ax.set_title("candidates (grey: random-init controls)", fontsize=9)
    if validated:
        v = report["validation"]
        bx = axes[0][1]
        for c in cands:
            bx.scatter(
                c["scores"]["logme"],
                c["finetuned"]["metric"],
                color="tab:gray" if c["init"] == "random" else "tab:blue",
            )
            label = ("random: " if c["init"] == "random" else "") + c["model_id"].rstrip("/").split("/")[-1][:24]
            bx.annotate(label, (c["scores"]["logme"], c["finetuned"]["metric"]), fontsize=6)
        bx.set_xlabel("LogME")
        bx.set_ylabel(f"fine-tuned test {v['metric']}")
        bx.set_title(f"Kendall tau {v['kendall_tau'].get('logme')}", fontsize=9)
        bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _finish_evidence(fig, ax, report: dict, xlabel: str, ylabel: str, title: str, path: Path) -> None:
    """The majority-label floor, labels, legend, and the file: the same for every evidence curve."""
    ax.axhline(report["majority"], color="gray", ls=":", lw=0.8, label="majority label")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{report['model'].split('/')[-1]}: {title}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    _pyplot().close(fig)


def compare_curves(report: dict, path: Path) -> None:
    """Validation metric vs step: pretrained, the chosen from-scratch rate (others faint), baseline and majority-label
    lines."""
    plt = _pyplot()
    m = report["metric"]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for side in report["scratch_search"]:
        if side["name"] != report["scratch"]["name"]:
            xs, ys = zip(*side["curve"])
            ax.plot(xs, ys, "--", color="tab:orange", alpha=0.35, lw=1, label=f"from scratch, lr {side['lr']:g}")
    for side, color, label in (
        (report["scratch"], "tab:orange", "from scratch"),
        (report["pretrained"], "tab:blue", "pretrained"),
    ):
        xs, ys = zip(*side["curve"])
        ax.plot(xs, ys, "o-", color=color, ms=3, label=f"{label}, lr {side['lr']:g} (test {side['test']:.3f})")
    base = report["baseline"]
    ax.axhline(base["validation"][m], color="tab:green", ls=":", label=f"{base['name']} (validation)")
    _finish_evidence(fig, ax, report, "optimizer step", f"validation {m}", "pretrained vs from scratch", path)


def datasize(report: dict, path: Path) -> None:
    """Test metric vs training examples (log scale): points per seed, means, the saturating fit and the target."""
    import numpy as np

    plt = _pyplot()
    m = report["metric"]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    for init, color, label in (("pretrained", "tab:blue", "pretrained"), ("random", "tab:orange", "from scratch")):
        pts = [p for p in report["points"] if p["init"] == init]
        if not pts:
            continue
        ax.scatter([p["n"] for p in pts], [p["test"] for p in pts], color=color, s=12, alpha=0.6)
        sizes = sorted({p["n"] for p in pts})
        ax.plot(sizes, [np.mean([p["test"] for p in pts if p["n"] == n]) for n in sizes], "-", color=color, label=label)
        fit = report["fits"].get(init) or {}
        if "a" in fit and init == "pretrained":  # the fit the estimate comes from
            grid = np.geomspace(sizes[0], sizes[-1] * 4, 100)
            label = "saturating fit" + (
                f", asymptote {fit['a']:.3f}" if not fit.get("asymptote_at_bound") else " (no plateau yet)"
            )
            ax.plot(grid, fit["a"] - fit["b"] * grid ** -fit["c"], ":", color=color, label=label)
    b = report["baseline"]["points"]
    ax.plot(
        [p["n"] for p in b], [p["test"] for p in b], "s--", color="tab:green", ms=3, label=report["baseline"]["name"]
    )
    ag = report.get("agreement")
    if report.get("target") is not None:
        ax.axhline(report["target"], color="tab:red", lw=0.8, label=f"target {report['target']}")
        if ag and ag.get("interval") and all(np.isfinite(ag["interval"])):
            ax.axvspan(*ag["interval"], color="tab:red", alpha=0.1, label="examples needed (fit interval)")
    ax.set_xscale("log")
    _finish_evidence(fig, ax, report, "training examples (log scale)", f"test {m}", "how much data is enough", path)


def strategies(report: dict, path: Path) -> None:
    """Validation and test metric per strategy, and metric against the share of parameters trained."""
    plt = _pyplot()
    runs = report["runs"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    names = [r["strategy"] for r in runs]
    xs = range(len(runs))
    left.bar(
        [x - 0.2 for x in xs], [r["validation_best"] for r in runs], 0.4, label="best validation", color="tab:blue"
    )
    left.bar([x + 0.2 for x in xs], [r["test"] for r in runs], 0.4, label="test", color="tab:gray")
    low = min(min(r["test"] for r in runs), min(r["validation_best"] for r in runs))
    left.set_ylim(max(0.0, low - 0.05), None)
    left.set_xticks(
        list(xs), [n + (" *" if n == report["recommended"] else "") for n in names], rotation=30, fontsize=7
    )
    left.set_ylabel(report["metric"])
    left.set_title("* recommended (best validation)", fontsize=9)
    left.legend(fontsize=7)
    for r in runs:
        right.scatter(max(r["trainable_share"], 1e-6), r["test"], color="tab:blue")
        right.annotate(r["strategy"], (max(r["trainable_share"], 1e-6), r["test"]), fontsize=7)
    right.set_xscale("log")
    right.set_xlabel("share of parameters trained (log scale)")
    right.set_ylabel(f"test {report['metric']}")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
