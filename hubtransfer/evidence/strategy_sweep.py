"""``hubtransfer strategies``: where to cut. The recipe under several strategies, one table, one recommendation.

Strategies: ``head`` (on cached features), ``top:K`` for a few K, ``full`` and ``lp-ft``. The
head-only run uses the recipe's probe settings (``train.probe_lr``, ``train.probe_epochs``): a new
head on frozen features wants a far higher rate than fine-tuning, and that is exactly LP-FT's first
phase. The others use the recipe's training settings. The strategy with the best validation metric
is recommended (test never chooses) and written out as a runnable recipe.
"""

from __future__ import annotations

import time
from pathlib import Path

from hubtransfer.errors import RecipeError
from hubtransfer.evidence import default_dir
from hubtransfer.evidence.common import baseline, baseline_sentence, fmt, load_data, md_table, write_report
from hubtransfer.job import Job, evidence_job
from hubtransfer.recipe.schema import Recipe
from hubtransfer.save import plots
from hubtransfer.sources.checkpoint import resolve_model_dir
from hubtransfer.strategies import get_strategy
from hubtransfer.strategies.base import find_blocks
from hubtransfer.tasks.model import build_model, quiet_transformers
from hubtransfer.variants import Variant, run_variants, with_changes


def default_strategies(job: Job) -> list[str]:
    """head, top:1, top:2, top:(half the blocks), full, lp-ft: the K that the backbone has blocks for."""
    blocks = count_blocks(job)
    ks = sorted({k for k in (1, 2, blocks // 2) if 0 < k < blocks})
    return ["head", *(f"top:{k}" for k in ks), "full", "lp-ft"]


def count_blocks(job: Job) -> int:
    """Repeated blocks of the recipe's backbone (the unit of ``top:K``), counted on the model built from its config."""
    recipe = job.recipe
    with quiet_transformers():
        model = build_model(
            job.task, resolve_model_dir(recipe.model), with_changes(recipe, {"model.init": "random"}), ["a", "b"]
        )
    return len(find_blocks(model)[1])


def variant_changes(recipe: Recipe, strategy: str) -> dict:
    """The recipe changes a strategy runs with (and the recommended recipe keeps)."""
    changes = {"strategy": strategy}
    if get_strategy(strategy).head_only:
        changes.update(
            {
                "train.lr": recipe.train.probe_lr,
                "train.epochs": recipe.train.probe_epochs,
                "train.max_steps": None,
                "train.warmup_ratio": 0.0,
                "train.head_lr": None,
            }
        )
    return changes


def sweep_strategies(
    recipe: Recipe,
    *,
    strategies: list[str] | None = None,
    report_dir: Path | None = None,
    write_recipe: Path | None = None,
) -> dict:
    """Fine-tune ``recipe`` under each strategy; report, plot and write the recommended recipe.

    Args:
        strategies: default :func:`default_strategies`.
        report_dir: evidence folder (default ``OUTPUT_DIR-evidence``); runs go to ``runs/strategies/``;
            the recommendation is written to ``recommended.yaml`` there (and to ``write_recipe`` when given).
    """
    job = evidence_job(recipe, "strategies")
    started = time.perf_counter()
    folder = Path(report_dir) if report_dir else default_dir(recipe)
    strategies = _checked(strategies or default_strategies(job))
    data, modality = load_data(job)
    metric = job.watched_metric
    variants = [Variant(s, variant_changes(recipe, s), {"strategy": s}) for s in strategies]
    runs = run_variants(recipe, variants, folder / "runs" / "strategies", desc="strategies")
    rows = [_row(r, metric) for r in runs]
    best = max(rows, key=lambda x: (x["validation_best"], -x["trainable_share"]))  # a tie goes to the cheaper strategy
    best_test = max(rows, key=lambda x: x["test"])
    _write_recommendation(recipe, best, strategies, metric, [folder / "recommended.yaml", write_recipe])
    base = baseline(data, modality, metric, folder, recipe.data)
    report = {
        "metric": metric,
        "model": recipe.model.id,
        "data": recipe.data.source,
        "train_examples": data.info["sizes"]["train"],
        "runs": rows,
        "recommended": best["strategy"],
        "best_on_test": best_test["strategy"],
        "recipe_file": "recommended.yaml",
        "baseline": base,
        "seconds": round(time.perf_counter() - started, 1),
    }
    report["summary"] = _summary(report, best, best_test)
    report["table"] = _table(report)

    write_report(
        folder, "strategies", report, f"Strategy sweep: `{recipe.model.id}` on `{recipe.data.source}`", plots.strategies
    )
    return report


def _checked(strategies: list[str]) -> list[str]:
    """Drop repeats; fail on unknown names or fewer than two strategies, naming every problem at once."""
    strategies = list(dict.fromkeys(strategies))
    problems = []
    for s in strategies:
        try:
            get_strategy(s)
        except ValueError as e:
            problems.append(f"--strategies: {e}")
    if len(strategies) < 2 or problems:
        raise RecipeError(problems or [f"--strategies: a sweep needs at least two strategies, got {strategies}"])
    return strategies


def _write_recommendation(recipe: Recipe, best: dict, strategies: list[str], metric: str, paths: list) -> None:
    recommended = with_changes(recipe, variant_changes(recipe, best["strategy"]))
    text = (
        f"# Written by `hubtransfer strategies`: '{best['strategy']}' had the best validation {metric} "
        f"({best['validation_best']:.4f}) of {', '.join(strategies)}.\n{recommended.to_yaml()}"
    )
    for path in [Path(p) for p in paths if p]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _row(done, metric: str) -> dict:
    run = done.run
    t = run["training"]
    return {
        "strategy": done.variant.name,
        "trainable_params": run["strategy"]["trainable_params"],
        "trainable_share": run["strategy"]["trainable_share"],
        "validation_best": run["metrics"]["validation_best"][metric],
        "test": run["metrics"]["test"][metric],
        # the loop's time plus the frozen feature passes that replaced the backbone (head, lp-ft's probe) and the
        # probe's loop
        "train_seconds": round(
            t["train_seconds"]
            + (t.get("features") or {}).get("extract_seconds", 0.0)
            + (t.get("probe") or {}).get("train_seconds", 0.0)
            + (t.get("probe") or {}).get("extract_seconds", 0.0),
            2,
        ),
        "wall_seconds": t["wall_seconds"],
        "features_cached": bool((t.get("features") or {}).get("cached")),
        "lr": done.run["training"].get("lr", done.recipe.train.lr),
        "epochs": done.recipe.train.epochs,
        "run": Path(done.recipe.output_dir).name,
    }


def _summary(r: dict, best: dict, best_test: dict) -> list[str]:
    m = r["metric"]
    agree = (
        "It is also the best on test."
        if best_test["strategy"] == best["strategy"]
        else f"On test, '{best_test['strategy']}' scored higher ({best_test['test']:.4f} vs {best['test']:.4f}); "
        "validation decides, "
        "test only reports."
    )
    cheapest = min(r["runs"], key=lambda x: x["train_seconds"])
    return [
        f"Recommended: '{best['strategy']}', best validation {m} {best['validation_best']:.4f} (test "
        f"{best['test']:.4f}), "
        f"training {_share(best['trainable_share'])} of the parameters. {agree} Runnable recipe: `{r['recipe_file']}` "
        "in the evidence folder.",
        f"Cheapest: '{cheapest['strategy']}' ({cheapest['train_seconds']:.0f} s of training, test "
        f"{cheapest['test']:.4f}).",
        baseline_sentence(m, best["test"], r["baseline"], "The recommended strategy"),
    ]


def _table(r: dict) -> str:
    rows = [
        [
            f"`{x['strategy']}`" + (" (recommended)" if x["strategy"] == r["recommended"] else ""),
            f"{x['trainable_params']:,}",
            _share(x["trainable_share"]),
            f"{x['lr']:g}",
            fmt(x["validation_best"]),
            fmt(x["test"]),
            f"{x['train_seconds']:.0f}",
        ]
        for x in r["runs"]
    ]
    return md_table(
        [
            "strategy",
            "trainable params",
            "share",
            "lr",
            f"best validation {r['metric']}",
            f"test {r['metric']}",
            "training s (incl. feature passes)",
        ],
        rows,
    )


def _share(share: float) -> str:
    return "100%" if share == 1 else f"{100 * share:.3g}%"
