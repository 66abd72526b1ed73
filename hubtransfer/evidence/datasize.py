"""``hubtransfer datasize``: how much labeled data is enough, measured on nested subsets of the training split.

The subsets are the first N examples of the fixed, content-hashed split order, so every smaller
set lies inside every larger one. Every size trains the recipe's epochs but at least
``min_steps`` optimizer steps (a few hundred examples for two epochs would otherwise stop before
the head has settled); small sizes repeat over several seeds, where that is cheap; the same
subsets train from scratch (at every other size by default, the costly side of the sweep) and feed
the classical baseline. A saturating curve fitted to the pretrained points answers "how many
examples for a target metric", with a bootstrap interval.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hubtransfer.errors import RecipeError
from hubtransfer.evidence import default_dir
from hubtransfer.evidence.common import (
    baseline,
    first_n,
    fmt,
    load_data,
    majority_share,
    md_table,
    steps_for,
    write_report,
)
from hubtransfer.evidence.curves import measured_crossing, saturating_fit
from hubtransfer.job import evidence_job
from hubtransfer.recipe.schema import Recipe
from hubtransfer.save import plots
from hubtransfer.variants import Variant, run_variants

FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)


@dataclass
class DatasizeOptions:
    """What a data-size sweep runs.

    Attributes:
        fractions: shares of the training split (default 1/16, 1/8, 1/4, 1/2, 1).
        seeds: runs per size for sizes up to ``seeds_up_to`` of the data (larger sizes run once).
        scratch: also train from random init, at ``scratch_fractions`` (default every other size, the largest included).
        scratch_lr: the from-scratch learning rate (default: the winner of ``compare.json`` in the evidence folder when
            there is one, else the recipe's).
        target: a metric value whose required examples the fit estimates (and the curve is checked against).
        min_steps: fewest optimizer steps any size trains.
    """

    fractions: list[float] | None = None
    seeds: int = 3
    seeds_up_to: float = 1 / 16
    scratch: bool = True
    scratch_fractions: list[float] | None = None
    scratch_lr: float | None = None
    target: float | None = None
    min_steps: int = 100


def datasize(recipe: Recipe, options: DatasizeOptions | None = None, *, report_dir: Path | None = None) -> dict:
    """Fine-tune ``recipe`` on nested fractions of its training split, pretrained and from scratch; fit and report.
    Runs go to ``runs/datasize/`` of the evidence folder (``report_dir``, default ``OUTPUT_DIR-evidence``)."""
    o = options or DatasizeOptions()
    job = evidence_job(recipe, "datasize")
    started = time.perf_counter()
    folder = Path(report_dir) if report_dir else default_dir(recipe)
    fractions = sorted(set(o.fractions or FRACTIONS))
    if not fractions or fractions[0] <= 0 or fractions[-1] > 1:
        raise RecipeError([f"--fractions: shares of the training split must lie in (0, 1], got {fractions}"])
    if o.seeds < 1:
        raise RecipeError([f"--seeds: at least one run per size, got {o.seeds}"])
    data, modality = load_data(job)
    metric = job.watched_metric
    n_train = data.info["sizes"]["train"]
    size_of = {f: max(1, round(f * n_train)) for f in fractions}
    sizes = sorted(set(size_of.values()))
    lr, lr_from = _scratch_lr(recipe, folder, o.scratch_lr)
    variants = _variants(recipe, o, size_of, n_train, lr)
    runs = run_variants(recipe, variants, folder / "runs" / "datasize", desc="datasize")
    points = [_point(r, metric) for r in runs]
    baselines = {n: baseline(first_n(data, n), modality, metric, folder, recipe.data) for n in sizes}
    report = {
        "metric": metric,
        "model": recipe.model.id,
        "data": recipe.data.source,
        "strategy": str(recipe.strategy),
        "train_examples": n_train,
        "sizes": sizes,
        "min_steps": o.min_steps,
        "scratch_lr": lr,
        "scratch_lr_from": lr_from,
        "points": points,
        "baseline": {
            "name": baselines[sizes[-1]]["name"],
            "points": [{"n": n, "test": b["test"][metric]} for n, b in baselines.items()],
        },
        "fits": _fits(points, o.target),
        "target": o.target,
        "majority": majority_share(data, "test"),
    }
    if o.target is not None:
        pre = [p for p in points if p["init"] == "pretrained"]
        report["measured_crossing"] = measured_crossing([p["n"] for p in pre], [p["test"] for p in pre], o.target)
        report["agreement"] = _agreement(report)
    report["sweep_seconds"] = round(time.perf_counter() - started, 1)  # this call (short when it reused finished runs)
    report["reused_runs"] = sum(p["reused"] for p in points)
    report["run_seconds"] = round(sum(p["train_seconds"] for p in points), 1)
    report["run_wall_seconds"] = round(sum(r.run["training"]["wall_seconds"] for r in runs), 1)
    report["summary"] = _summary(report)
    report["table"] = _table(report)

    title = f"Data-size sweep: `{recipe.model.id}` on `{recipe.data.source}`"
    write_report(folder, "datasize", report, title, plots.datasize)
    return report


def _variants(recipe: Recipe, o: DatasizeOptions, size_of: dict, n_train: int, lr) -> list[Variant]:
    """Every run of the sweep: pretrained at each size (seeded sizes several times), then from scratch."""
    sizes = sorted(set(size_of.values()))
    seeded = {
        n for f, n in size_of.items() if f <= o.seeds_up_to
    }  # decided on the share: rounding must not drop a size
    scratch_sizes = _scratch_sizes(sizes, o.scratch_fractions, n_train) if o.scratch else []
    out = [
        _variant(recipe, n, seed, o.min_steps, "pretrained")
        for n in sizes
        for seed in range(o.seeds if n in seeded else 1)
    ]
    return out + [_variant(recipe, n, 0, o.min_steps, "random", lr) for n in scratch_sizes]


def _point(done, metric: str) -> dict:
    return {
        **done.variant.meta,
        "test": done.run["metrics"]["test"][metric],
        "validation": done.run["metrics"]["validation_best"][metric],
        "train_seconds": done.run["training"]["train_seconds"],
        "reused": done.reused,
    }


def _fits(points: list[dict], target: float | None) -> dict:
    """The saturating fit of each side with three sizes or more (or why it failed)."""
    fits = {}
    for init in ("pretrained", "random"):
        pts = [p for p in points if p["init"] == init]
        if len({p["n"] for p in pts}) >= 3:
            try:
                fits[init] = saturating_fit([p["n"] for p in pts], [p["test"] for p in pts], target)
            except ValueError as e:
                fits[init] = {"error": str(e)}
    return fits


def _scratch_sizes(sizes: list[int], scratch_fractions, n_train: int) -> list[int]:
    if scratch_fractions:
        return sorted({max(1, round(f * n_train)) for f in scratch_fractions})
    return sizes[::-2][::-1]  # every other size, counted down from the largest


def _scratch_lr(recipe: Recipe, folder: Path, given: float | None) -> tuple[float, str]:
    if given:
        return given, "given"
    report = folder / "compare.json"
    if report.is_file():
        won = json.loads(report.read_text(encoding="utf-8"))["scratch"]["lr"]
        return won, f"won the learning-rate search of {report.name}"
    return recipe.train.lr, "the recipe's (no compare.json in the evidence folder)"


def _variant(recipe: Recipe, n: int, seed: int, min_steps: int, init: str, lr: float | None = None) -> Variant:
    steps = max(steps_for(recipe, n), min_steps)
    changes = {
        "data.max_train_samples": n,
        "train.seed": seed,
        "model.init": init,
        "train.max_steps": steps,
        "train.eval_every": steps,
        "train.early_stopping.patience": None,
    }
    if lr is not None:
        changes["train.lr"] = lr
    name = f"{'pretrained' if init == 'pretrained' else 'scratch'}-n{n}-seed{seed}"
    return Variant(name, changes, {"init": init, "n": n, "seed": seed, "steps": steps})


def _agreement(r: dict) -> dict | None:
    fit, measured = r["fits"].get("pretrained") or {}, r.get("measured_crossing")
    if "examples_needed" not in fit:
        return None
    interval = fit.get("examples_interval")
    inside = bool(measured is not None and interval and interval[0] <= measured <= interval[1])
    ratio = fit["examples_needed"] / measured if measured and math.isfinite(fit["examples_needed"]) else None
    return {
        "estimate": fit["examples_needed"],
        "interval": interval,
        "measured": measured,
        "measured_inside_interval": inside,
        "ratio": round(ratio, 3) if ratio else None,
    }


def _by_size(points: list[dict], init: str) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for p in points:
        if p["init"] == init:
            out.setdefault(p["n"], []).append(p["test"])
    return out


def _summary(r: dict) -> list[str]:
    return _runs_lines(r) + _fit_lines(r) + _target_lines(r)


def _runs_lines(r: dict) -> list[str]:
    m = r["metric"]
    pre, scr = _by_size(r["points"], "pretrained"), _by_size(r["points"], "random")
    base = {b["n"]: b["test"] for b in r["baseline"]["points"]}
    small, large = min(pre), max(pre)
    out = [
        f"{len(r['points'])} runs on nested subsets of {r['train_examples']:,} training examples "
        f"({', '.join(f'{n:,}' for n in r['sizes'])}); "
        f"each trains the recipe's epochs but at least {r['min_steps']} steps; test {m} of each saved model; "
        f"{r['run_seconds']:.0f} s of training and {r['run_wall_seconds']:.0f} s wall time over the runs"
        + (
            f" ({r['reused_runs']} reused from an earlier call)."
            if r["reused_runs"]
            else f"; {r['sweep_seconds']:.0f} s for the whole call."
        )
    ]
    line = (
        f"Pretrained: {fmt(float(np.mean(pre[small])))} with {small:,} examples, "
        f"{fmt(float(np.mean(pre[large])))} with {large:,}"
    )
    if scr:
        line += f"; from scratch (lr {r['scratch_lr']:g}): " + ", ".join(
            f"{fmt(float(np.mean(v)))} with {n:,}" for n, v in sorted(scr.items())
        )
    out.append(
        line + f"; classical baseline ({r['baseline']['name']}): {fmt(base[small])} with {small:,}, "
        f"{fmt(base[large])} with {large:,}."
    )
    return out


def _fit_lines(r: dict) -> list[str]:
    m, out = r["metric"], []
    fit = r["fits"].get("pretrained") or {}
    if fit.get("asymptote_at_bound"):
        out.append(
            f"Saturating fit {m}(n) = {fit['a']:.3f} - {fit['b']:.3g} n^-{fit['c']:.3f} (RMSE {fit['rmse']:.4f}): its "
            "asymptote sits at the "
            "bound of a perfect score, i.e. these sizes show no plateau yet; the fit interpolates between the "
            "measured sizes "
            "and says nothing about the ceiling."
        )
    elif "a" in fit:
        out.append(
            f"Saturating fit {m}(n) = {fit['a']:.3f} - {fit['b']:.3g} n^-{fit['c']:.3f} (RMSE {fit['rmse']:.4f}): the "
            "curve flattens "
            f"towards {fit['a']:.3f}"
            + (
                f" ({fit['level']:.0%} bootstrap interval "
                f"{fit['asymptote_interval'][0]:.3f}-{fit['asymptote_interval'][1]:.3f})."
                if fit.get("asymptote_interval")
                else "."
            )
        )
    return out


def _target_lines(r: dict) -> list[str]:
    m, out = r["metric"], []
    fit = r["fits"].get("pretrained") or {}
    ag = r.get("agreement")
    if ag:
        iv = ag["interval"]
        est = (
            "never (the fitted asymptote stays below)" if math.isinf(ag["estimate"]) else f"about {ag['estimate']:,.0f}"
        )
        text = f"Examples needed for test {m} {r['target']}: {est} by the fit"
        if iv:
            text += f" ({fit['level']:.0%} interval {_count(iv[0])}-{_count(iv[1])})"
        if ag["measured"] is not None:
            text += (
                f"; the measured curve crosses {r['target']} at about {ag['measured']:,.0f} (log-linear between "
                "sizes), "
                + (
                    "inside the interval."
                    if ag["measured_inside_interval"]
                    else "OUTSIDE the interval: treat the estimate with care."
                )
            )
        else:
            text += f"; the measured curve never reaches {r['target']} at these sizes."
        out.append(text)
    return out


def _count(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:,.0f}"


def _table(r: dict) -> str:
    pre, scr = _by_size(r["points"], "pretrained"), _by_size(r["points"], "random")
    base = {b["n"]: b["test"] for b in r["baseline"]["points"]}
    rows = []
    for n in r["sizes"]:
        p = pre.get(n, [])
        cell = (
            f"{np.mean(p):.4f}" + (f" ± {np.std(p, ddof=1):.4f} ({len(p)} seeds)" if len(p) > 1 else "") if p else "–"
        )
        s = scr.get(n)
        rows.append(
            [f"{n:,}", f"{n / r['train_examples']:.3g}", cell, f"{np.mean(s):.4f}" if s else "–", fmt(base.get(n))]
        )
    return md_table(
        ["training examples", "share", f"pretrained test {r['metric']}", "from scratch", "classical baseline"], rows
    )
