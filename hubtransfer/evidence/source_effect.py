"""``hubtransfer source``: did developing a source model help? The same target recipe from two starts.

The second route of transfer learning: instead of picking a pretrained checkpoint as it is, first
develop a *source model* on abundant related data (continued masked-LM pretraining on in-domain
text, or a vision model trained on a related labelled set), then transfer it. The target recipe
names the source model as its ``model.id``; this report trains it twice per training-set size and
seed, once from that source model and once from ``original`` (the checkpoint the source was
developed from), with everything else equal
(data, split, strategy, head, steps, learning rate, seed), and reports the test metric of each,
the difference, and whether it exceeds the seeds' noise. The cost of developing the source is
not part of the target budget; the report states the source model's own training time when its
run folder is given.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from hubtransfer.evidence import default_dir
from hubtransfer.evidence.common import fmt, load_data, md_table, steps_for, write_report
from hubtransfer.job import evidence_job
from hubtransfer.recipe.schema import Recipe
from hubtransfer.variants import Variant, read_run, run_variants


def source_effect(
    recipe: Recipe,
    original: str,
    *,
    sizes: list[int] | None = None,
    seeds: int = 1,
    seeds_up_to: int | None = None,
    min_steps: int = 100,
    report_dir: Path | None = None,
    source_run: Path | None = None,
) -> dict:
    """Fine-tune ``recipe`` from its own ``model.id`` (the source model) and from ``original`` at each training size.

    Args:
        original: the checkpoint the source model was developed from (Hub id or folder).
        sizes: training-set sizes (default: the whole training split). A size gets at least
            ``min_steps`` optimizer steps (more epochs), the same for both starts.
        seeds: seeds per size (the differences' spread is the noise the verdict uses); with ``seeds_up_to``,
            only sizes up to it get several seeds (small sets are where seeds scatter most), larger ones one.
        source_run: the source model's run folder, to report what developing it cost.
    """
    job = evidence_job(recipe, "source")
    if seeds < 1 or min_steps < 1:
        raise ValueError(f"seeds and min_steps must be >= 1, got seeds={seeds}, min_steps={min_steps}")
    started = time.perf_counter()
    source = recipe.model.id
    folder = Path(report_dir) if report_dir else default_dir(recipe)
    data, _ = load_data(job)
    full = len(data.splits["train"])
    sizes = sorted({min(n, full) for n in (sizes or [full])})
    if sizes[0] < 1:
        raise ValueError(f"sizes must be positive, got {sizes}")
    metric = job.watched_metric
    variants = [
        Variant(
            f"{start}-n{n}-seed{seed}",
            _changes(recipe, start_id, n, full, seed, min_steps),
            {"start": start, "n": n, "seed": seed},
        )
        for n in sizes
        for seed in range(seeds if seeds_up_to is None or n <= seeds_up_to else 1)
        for start, start_id in (("original", original), ("source", source))
    ]
    runs = run_variants(recipe, variants, folder / "runs" / "source", desc="source effect")
    report = _report(recipe, original, runs, sizes, metric, source_run)
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_report(folder, "source", report, f"Source model vs the original checkpoint: {recipe.task}", _plot)
    return report


def _changes(recipe: Recipe, model_id: str, n: int, full: int, seed: int, min_steps: int) -> dict:
    changes = {
        "model.id": model_id,
        "train.seed": recipe.train.seed + seed,
        "data.max_train_samples": n if n < full else None,
    }
    if steps_for(recipe, n) < min_steps:  # few examples: more epochs, so both starts get the same real chance
        changes["train.max_steps"] = min_steps
    return changes


def _sampling_stderr(a: float, b: float, n_test: int, metric: str) -> float | None:
    """One seed: the standard error of a difference of two accuracies on ``n_test`` examples (binomial),
    the least noise a single pair of runs carries; None for metrics that are not a proportion."""
    if metric != "accuracy" or n_test < 1:
        return None
    return ((a * (1 - a) + b * (1 - b)) / n_test) ** 0.5


def _report(recipe: Recipe, original: str, runs, sizes: list[int], metric: str, source_run: Path | None) -> dict:
    rows, table = [], []
    n_test = runs[0].run["data"]["sizes"]["test"]
    for n in sizes:
        at = {
            start: [
                r.run["metrics"]["test"][metric]
                for r in runs
                if r.variant.meta["n"] == n and r.variant.meta["start"] == start
            ]
            for start in ("original", "source")
        }
        diffs = [s - o for o, s in zip(at["original"], at["source"])]
        mean_diff = statistics.fmean(diffs)
        if len(diffs) > 1:
            spread, noise = statistics.stdev(diffs) / len(diffs) ** 0.5, "seeds"
        else:
            spread, noise = _sampling_stderr(at["original"][0], at["source"][0], n_test, metric), "test-set sampling"
        rows.append(
            {
                "n": n,
                "original": at["original"],
                "source": at["source"],
                "difference": mean_diff,
                "stderr": spread,
                "noise": noise,
            }
        )
        table.append(
            [
                f"{n:,}",
                fmt(statistics.fmean(at["original"])),
                fmt(statistics.fmean(at["source"])),
                f"{100 * mean_diff:+.1f}" + (f" ± {100 * spread:.1f}" if spread is not None else ""),
                str(len(diffs)),
            ]
        )
    cost = _source_cost(source_run)
    return {
        "recipe": recipe.to_dict(),
        "original": original,
        "source": recipe.model.id,
        "metric": metric,
        "sizes": rows,
        "source_training": cost,
        "summary": _summary(recipe, original, rows, metric, cost),
        "table": md_table(
            [
                "train examples",
                f"original test {metric}",
                f"source test {metric}",
                "source − original (points)",
                "seeds",
            ],
            table,
        ),
    }


def _source_cost(source_run: Path | None) -> dict | None:
    if source_run is None:
        return None
    run, _ = read_run(Path(source_run))
    return {
        "task": run["task"],
        "data": run["data"]["source"],
        "train_examples": run["data"]["sizes"]["train"],
        "train_seconds": run["training"]["train_seconds"],
        "test": run["metrics"]["test"],
    }


def _summary(recipe: Recipe, original: str, rows: list[dict], metric: str, cost: dict | None) -> list[str]:
    out = [
        f"Target: `{recipe.task}` on `{recipe.data.source}`, strategy `{recipe.strategy}`, the same recipe, steps and "
        "seeds from "
        f"both starts: the original `{original}` and the source model `{recipe.model.id}`."
    ]
    for r in rows:
        if r["stderr"] is None:
            noise = " (one seed: no noise estimate)"
        elif r["noise"] == "seeds":
            noise = f" (± {100 * r['stderr']:.1f} s.e. over {len(r['source'])} seeds)"
        else:
            noise = f" (one seed; ± {100 * r['stderr']:.1f} s.e. of the test-set sampling alone)"
        verdict = _verdict(r["difference"], r["stderr"])
        out.append(
            f"{r['n']:,} training examples: test {metric} {statistics.fmean(r['original']):.4f} from the original, "
            f"{statistics.fmean(r['source']):.4f} from the source model, {100 * r['difference']:+.1f} points{noise}; "
            f"{verdict}."
        )
    if cost:
        out.append(
            f"Developing the source cost {cost['train_seconds']:,.0f} s of training ({cost['task']} on "
            f"{cost['train_examples']:,} "
            f"examples of `{cost['data']}`), not counted in the target budget."
        )
    return out


def _verdict(difference: float, stderr: float | None) -> str:
    """Two standard errors before a difference counts as an effect (about 95% two-sided); between one and
    two, the report says which way it leans and that it is not conclusive."""
    way = "the source step helped" if difference > 0 else "the source step hurt"
    if stderr is None:
        return f"{way} (no noise estimate: not conclusive)"
    if abs(difference) <= stderr:
        return "within the noise: no measurable effect"
    if abs(difference) < 2 * stderr:
        lean = "the source model" if difference > 0 else "the original"
        return (
            f"leans toward {lean} ({abs(difference) / stderr:.1f} s.e.), "
            "short of the 2 s.e. that would make it conclusive"
        )
    return f"{way} ({abs(difference) / stderr:.1f} s.e.)"


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for start, marker in (("original", "o"), ("source", "s")):
        xs = [r["n"] for r in report["sizes"] for _ in r[start]]
        ys = [v for r in report["sizes"] for v in r[start]]
        ax.scatter(xs, ys, marker=marker, label=f"from {report[start]}", alpha=0.8)
        ax.plot([r["n"] for r in report["sizes"]], [statistics.fmean(r[start]) for r in report["sizes"]], alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel(f"test {report['metric']}")
    ax.legend(fontsize=8)
    ax.set_title("Source model vs original checkpoint")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
