"""``hubtransfer compare``: the recipe from pretrained weights against the same recipe from random init.

Both train on the same data for the same steps, evaluated on validation from step 0 at fixed
intervals. The from-scratch side gets a small learning-rate search (random weights usually want a
higher rate than fine-tuning does), won by validation, so the gap is not an artefact of a rate
tuned for the pretrained side. A classical baseline stands beside both.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from hubtransfer.errors import RecipeError
from hubtransfer.evidence import default_dir
from hubtransfer.evidence.common import (
    baseline,
    baseline_sentence,
    fmt,
    load_data,
    majority_share,
    md_table,
    steps_for,
    write_report,
)
from hubtransfer.evidence.curves import curve_stats, steps_to
from hubtransfer.job import Job, evidence_job
from hubtransfer.recipe.schema import Recipe
from hubtransfer.save import plots
from hubtransfer.select.rank import rank
from hubtransfer.train.search import default_candidates
from hubtransfer.variants import Variant, run_variants

SCRATCH_LR_FACTORS = (1, 3, 10)
EVALUATIONS = 10  # evaluations per run after step 0, when no interval is given


def compare(
    recipe: Recipe,
    *,
    scratch_lrs: list[float] | None = None,
    eval_every: int | None = None,
    report_dir: Path | None = None,
) -> dict:
    """Train ``recipe`` pretrained and from scratch (one run per scratch learning rate); report and plot.

    Args:
        recipe: the recipe; ``model.init`` is set by this function.
        scratch_lrs: learning rates tried from scratch (default: the recipe's times 1, 3 and 10).
        eval_every: evaluation interval in optimizer steps (default: a tenth of the run).
        report_dir: evidence folder (default ``OUTPUT_DIR-evidence``); runs go to ``runs/compare/``.

    Returns:
        The report (also ``compare.json``): per-side curve statistics, the gaps, the baseline, summary sentences.
    """
    job = evidence_job(recipe, "compare")
    started = time.perf_counter()
    folder = Path(report_dir) if report_dir else default_dir(recipe)
    lrs = sorted(set(scratch_lrs or [base_lr(job) * f for f in SCRATCH_LR_FACTORS]))
    if any(lr <= 0 for lr in lrs):
        raise RecipeError([f"--scratch-lrs: learning rates must be positive, got {lrs}"])
    data, modality = load_data(job)
    metric = job.watched_metric
    steps = steps_for(recipe, data.info["sizes"]["train"])
    every = eval_every or max(1, steps // EVALUATIONS)
    # Same budget on both sides: no early stopping, evaluations on one grid starting at step 0.
    common = {"train.eval_every": every, "train.eval_at_start": True, "train.early_stopping.patience": None}
    variants = [
        Variant("pretrained", {**common, "model.init": "pretrained"}, {"init": "pretrained", "lr": recipe.train.lr})
    ]
    variants += [
        Variant(f"scratch-lr{lr:g}", {**common, "model.init": "random", "train.lr": lr}, {"init": "random", "lr": lr})
        for lr in lrs
    ]
    runs = run_variants(recipe, variants, folder / "runs" / "compare", desc="compare")
    report = _report(recipe, runs, metric, data, modality, folder)
    report.update(steps=steps, eval_every=every, seconds=round(time.perf_counter() - started, 1))
    report["benefits"] = {
        "start": report["frozen_start"]["gap"] > 0,
        "slope": report["gaps"]["auc"] > report["noise"],
        "asymptote": report["gaps"]["best"] > report["noise"],
    }
    report["summary"] = _summary(report)
    report["table"] = _table(report)

    write_report(
        folder,
        "compare",
        report,
        f"Pretrained vs from scratch: `{recipe.model.id}` on `{recipe.data.source}`",
        plots.compare_curves,
    )
    return report


def _report(recipe: Recipe, runs: list, metric: str, data, modality: str, folder: Path) -> dict:
    """The two sides (the scratch side: its best learning rate by validation), the gaps, the baseline, the start."""
    sides = [_side(r, metric) for r in runs]
    pretrained, scratch_all = sides[0], sides[1:]
    best_scratch = max(range(len(scratch_all)), key=lambda i: scratch_all[i]["validation_best"])
    scratch = scratch_all[best_scratch]
    # One bar for both sides: 90% of the better final value (a side's own 90% says little when it stayed near the
    # floor).
    bar = 0.9 * max(pretrained["final"], scratch["final"])
    for side, done in ((pretrained, runs[0]), (scratch, runs[1 + best_scratch])):
        side["steps_to_common"] = steps_to(done.history, metric, bar)
    return {
        "metric": metric,
        "model": recipe.model.id,
        "data": recipe.data.source,
        "strategy": str(recipe.strategy),
        "train_examples": data.info["sizes"]["train"],
        "pretrained": pretrained,
        "scratch": scratch,
        "scratch_search": scratch_all,
        "baseline": baseline(data, modality, metric, folder, recipe.data),
        "gaps": _gaps(pretrained, scratch),
        "common_bar": round(bar, 5),
        "majority": majority_share(data, "validation"),
        "frozen_start": _frozen_start(recipe),
        "noise": round(math.sqrt(0.25 / data.info["sizes"]["validation"]), 5),
    }


def base_lr(job: Job) -> float:
    """The recipe's learning rate; for ``lr: auto``, the middle of the rates its search tries."""
    recipe = job.recipe
    if recipe.train.lr != "auto":
        return recipe.train.lr
    lrs = sorted(recipe.train.lr_search.candidates or default_candidates(job.strategy.lr_family, job.task.modality))
    return lrs[len(lrs) // 2]


def _frozen_start(recipe: Recipe, samples: int = 1000) -> dict:
    """What each initialisation knows before any update: leave-one-out kNN accuracy of its frozen features on
    ``samples`` training examples (the new head starts random on both sides, so step 0 cannot show it)."""
    result = rank(recipe, [recipe.model.id, f"random:{recipe.model.id}"], max_samples=samples)
    by_init = {c.init: c.scores["knn"] for c in result.candidates}
    return {
        "measure": f"leave-one-out kNN accuracy of frozen features, {result.candidates[0].n:,} training examples",
        "pretrained": by_init["pretrained"],
        "scratch": by_init["random"],
        "gap": round(by_init["pretrained"] - by_init["random"], 5),
    }


def _side(done, metric: str) -> dict:
    stats = curve_stats(done.history, metric)
    run = done.run
    meta = dict(done.variant.meta)
    if meta.get("lr") == "auto":  # the rate the run's search chose, as its record names it
        meta["lr"] = next(c["value"] for c in run.get("choices", []) if c["key"] == "train.lr")
    return {
        "name": done.variant.name,
        **meta,
        **stats,
        "validation_best": run["metrics"]["validation_best"][metric],
        "test": run["metrics"]["test"][metric],
        "train_seconds": run["training"]["train_seconds"],
        "run": Path(done.recipe.output_dir).name,
        "curve": [[r["step"], r["validation"][metric]] for r in done.history],
    }


def _gaps(p: dict, s: dict) -> dict:
    gap = lambda k: None if p[k] is None or s[k] is None else round(p[k] - s[k], 5)
    return {
        "start": gap("start"),
        "first": gap("first"),
        "auc": gap("auc"),
        "best": gap("best"),
        "final": gap("final"),
        "test": gap("test"),
        "steps_to_90": s["steps_to_90"] - p["steps_to_90"],
    }


def _summary(r: dict) -> list[str]:
    p, s, g, m = r["pretrained"], r["scratch"], r["gaps"], r["metric"]
    tried = ", ".join(f"{x['lr']:g}" for x in r["scratch_search"])
    f = r["frozen_start"]
    noise = r["noise"]  # one standard error of an accuracy near 0.5 on this validation split

    def word(x: float) -> str:
        if abs(x) <= noise:
            return f"no clear difference (within one standard error, {noise:.3f})"
        return "higher with pretrained weights" if x > 0 else "LOWER with pretrained weights"

    return [
        f"Same recipe, data ({r['train_examples']:,} training examples) and budget ({r['steps']:,} steps); the "
        "from-scratch side took the "
        f"best of {len(r['scratch_search'])} learning rates by validation ({tried}): {s['lr']:g} won.",
        f"Start: the frozen features already separate the classes {'better' if f['gap'] > 0 else 'NOT better'} with "
        "pretrained weights "
        f"({f['measure']}: {fmt(f['pretrained'])} vs {fmt(f['scratch'])}). Through the new head, which starts random "
        "on both sides: "
        f"{word(g['first'])} at the first evaluation (step {p['first_step']}: {fmt(p['first'])} vs {fmt(s['first'])}); "
        f"{fmt(p['start'])} vs {fmt(s['start'])} at step 0 (always answering the majority label scores "
        f"{fmt(r['majority'])}).",
        f"Slope: {word(g['auc'])}: mean validation {m} over the run (area under the curve) {fmt(p['auc'])} vs "
        f"{fmt(s['auc'])}; "
        f"{fmt(r['common_bar'])} (90% of the better final value) reached at step {_step(p['steps_to_common'])} vs "
        f"{_step(s['steps_to_common'])}; "
        f"each side's own 90% mark at step {p['steps_to_90']} vs {s['steps_to_90']}.",
        f"Asymptote: {word(g['best'])}: best validation {m} {fmt(p['best'])} vs {fmt(s['best'])}; test {m} of the "
        "saved models "
        f"{fmt(p['test'])} vs {fmt(s['test'])} ({100 * g['test']:+.1f} points).",
        baseline_sentence(m, p["test"], r["baseline"], "The pretrained model")
        + f" From scratch the network {'beat' if s['test'] > r['baseline']['test'][m] else 'did not beat'} it "
        f"({fmt(s['test'])}).",
    ]


def _table(r: dict) -> str:
    p, s, g = r["pretrained"], r["scratch"], r["gaps"]
    f = r["frozen_start"]
    rows = [
        ["start: frozen features (kNN accuracy)", fmt(f["pretrained"]), fmt(f["scratch"]), fmt(f["gap"])],
        ["start: step 0", fmt(p["start"]), fmt(s["start"]), fmt(g["start"])],
        [f"start: first evaluation (step {p['first_step']})", fmt(p["first"]), fmt(s["first"]), fmt(g["first"])],
        ["slope: area under the curve", fmt(p["auc"]), fmt(s["auc"]), fmt(g["auc"])],
        [
            f"slope: steps to {r['common_bar']:.4f} (90% of the better final)",
            _step(p["steps_to_common"]),
            _step(s["steps_to_common"]),
            "",
        ],
        [
            "slope: steps to 90% of its own final",
            fmt(p["steps_to_90"]),
            fmt(s["steps_to_90"]),
            f"{g['steps_to_90']:+,} steps",
        ],
        ["asymptote: best validation", fmt(p["best"]), fmt(s["best"]), fmt(g["best"])],
        ["asymptote: final validation", fmt(p["final"]), fmt(s["final"]), fmt(g["final"])],
        ["test (saved model)", fmt(p["test"]), fmt(s["test"]), fmt(g["test"])],
    ]
    head = ["measure", f"pretrained (lr {p['lr']:g})", f"from scratch (lr {s['lr']:g})", "gap"]
    base = r["baseline"]
    search = md_table(
        ["from-scratch lr", f"best validation {r['metric']}", f"test {r['metric']}"],
        [
            [
                f"{x['lr']:g}" + (" (chosen)" if x["name"] == s["name"] else ""),
                fmt(x["validation_best"]),
                fmt(x["test"]),
            ]
            for x in r["scratch_search"]
        ],
    )
    return (
        md_table(head, rows)
        + f"\n\nClassical baseline: {base['name']}, C={base['C']:g} picked on validation: test {r['metric']} "
        f"{fmt(base['test'][r['metric']])}.\n\n" + search
    )


def _step(step: int | None) -> str:
    return "never" if step is None else f"{step:,}"
