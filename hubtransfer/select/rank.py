"""``rank``: which checkpoint to start from, scored on the user's own data before any fine-tuning.

Each candidate's frozen backbone runs once over (a sample of) the recipe's training split; the
pooled features go to the cache of :mod:`hubtransfer.features` and are scored by every score in
:data:`hubtransfer.select.SCORES`. ``validate=True`` then fine-tunes every candidate by the recipe
and reports how well each score's order agrees with the fine-tuned metric (Kendall tau).

Candidates are Hub ids, local folders, or ``random:ID`` (the same architecture re-initialised: a
negative control that a sound score puts below every pretrained checkpoint).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from accelerate.utils import set_seed
from datasets import DatasetDict

from hubtransfer import choices
from hubtransfer.data.prepare import PreparedData, prepare_data
from hubtransfer.errors import RecipeError
from hubtransfer.job import Job, evidence_job, load_recipe, watched_metric
from hubtransfer.recipe.schema import Recipe
from hubtransfer.save import plots
from hubtransfer.select.scores import SCORES
from hubtransfer.sources.checkpoint import fetch_config, resolve_model_dir
from hubtransfer.strategies import apply_strategy
from hubtransfer.tasks.model import build_model, check_task_fits, quiet_transformers
from hubtransfer.train.budget import total_steps
from hubtransfer.train.features import key_parts, split_features, split_head
from hubtransfer.train.precision import autocast_dtype, resolve_precision
from hubtransfer.variants import Variant, run_variants, with_changes

logger = logging.getLogger(__name__)

RANK_BY = "logme"
BACKWARD_COST = 3.0  # a training step costs about three forward passes (forward + backward of twice the work)


@dataclass
class CandidateScore:
    candidate: str
    model_id: str
    init: str
    scores: dict[str, float]
    n: int
    dim: int
    feature_seconds: float  # the frozen pass over the sample (as measured when the cache entry was made)
    load_seconds: float
    cache_hit: bool
    estimated_finetune_seconds: float
    finetuned: dict | None = None


@dataclass
class RankResult:
    candidates: list[CandidateScore]
    rank_seconds: float
    recipe_budget: dict
    validation: dict | None = None
    report_dir: Path | None = None
    winner: str | None = None

    def table(self) -> str:
        names = list(SCORES)
        head = ["rank", "candidate", *names, "feature s", "est. fine-tune s"]
        if self.validation:
            head.append(f"fine-tuned {self.validation['metric']}")
        rows = []
        for i, c in enumerate(self.candidates, 1):
            row = [
                str(i),
                c.candidate,
                *(f"{c.scores[n]:.4f}" for n in names),
                f"{c.feature_seconds:.1f}",
                f"{c.estimated_finetune_seconds:.0f}",
            ]
            if self.validation:
                row.append(f"{c.finetuned['metric']:.4f}" if c.finetuned else "-")
            rows.append(row)
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = lambda r: "| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |"
        return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


def parse_candidate(text: str) -> tuple[str, str]:
    """``'random:ID'`` -> (ID, 'random'); anything else -> (text, 'pretrained')."""
    if text.startswith("random:"):
        return text[len("random:") :], "random"
    return text, "pretrained"


def candidate_recipe(recipe: Recipe, candidate: str, changes: dict | None = None) -> Recipe:
    """``recipe`` started from ``candidate`` (plus dotted-key ``changes``), with no candidates list of its own."""
    model_id, init = parse_candidate(candidate)
    return with_changes(recipe, {"model.id": model_id, "model.init": init, "candidates": [], **(changes or {})})


def rank(
    recipe: Recipe,
    candidates: list[str] | None = None,
    *,
    max_samples: int = 1000,
    report_dir: Path | None = None,
    validate: bool = False,
    validate_overrides: list[str] | None = None,
) -> RankResult:
    """Score every candidate on ``max_samples`` training examples; optionally fine-tune each and correlate.

    Args:
        recipe: the recipe whose data, task and training budget the candidates are ranked for.
        candidates: ids / folders / ``random:ID``; default: ``recipe.candidates``.
        max_samples: training examples whose features are scored.
        report_dir: where ``rank.json``, ``rank.md`` and the plot go (and the validation runs).
        validate: fine-tune every candidate by the recipe (+ ``validate_overrides``) and report Kendall tau.

    Returns:
        RankResult, candidates best first by LogME.
    """
    job = evidence_job(recipe, "rank")
    candidates = list(candidates or recipe.candidates)
    if len(candidates) < 2:
        raise RecipeError(
            ["candidates: rank needs at least two candidates (--candidates ID ... or candidates: [...] in the recipe)"]
        )
    task = job.task
    started = time.perf_counter()
    data = prepare_data(recipe.data, task.modality)
    sample = PreparedData(
        DatasetDict(train=data.splits["train"].select(range(min(max_samples, len(data.splits["train"]))))),
        data.labels,
        data.input_column,
        data.info,
    )
    budget = _budget(job, data)
    scored = [_score(recipe, c, task, sample, budget) for c in candidates]
    scored.sort(key=lambda c: -c.scores[RANK_BY])
    result = RankResult(scored, time.perf_counter() - started, budget, report_dir=report_dir)
    pretrained = [c for c in scored if c.init == "pretrained"]
    result.winner = pretrained[0].candidate if pretrained else None
    if validate:
        result.validation = _validate(recipe, scored, report_dir, validate_overrides or [])
    if report_dir is not None:
        _write(result, recipe)
    return result


def _budget(job: Job, data: PreparedData) -> dict:
    recipe = job.recipe
    sizes = data.info["sizes"]
    t = recipe.train
    per_epoch = -(-sizes["train"] // t.batch_size)
    steps_per_epoch, steps = total_steps(recipe, per_epoch)
    epochs = steps / steps_per_epoch
    evals = max(1, round(epochs)) if t.eval_every == "epoch" else max(1, round(epochs * per_epoch / t.eval_every))
    return {
        "strategy": str(recipe.strategy),
        "head_only": job.strategy.head_only,
        "epochs": round(epochs, 3),
        "train": sizes["train"],
        "validation": sizes["validation"],
        "test": sizes["test"],
        "evaluations": evals,
    }


def _estimate(budget: dict, per_example: float) -> float:
    """Seconds to fine-tune by the recipe, from the measured frozen forward time per example."""
    if budget["head_only"]:  # one cached feature pass over every split, then a negligible head
        return per_example * (budget["train"] + budget["validation"] + budget["test"])
    passes = (
        BACKWARD_COST * budget["epochs"] * budget["train"]
        + budget["evaluations"] * budget["validation"]
        + budget["test"]
    )
    return per_example * passes


def _score(recipe: Recipe, candidate: str, task, sample: PreparedData, budget: dict) -> CandidateScore:
    pooling = (
        recipe.head.pooling
        if recipe.head.pooling in ("mean", "cls")
        else ("mean" if task.modality == "text" else "native")
    )
    r = candidate_recipe(
        recipe, candidate, {"strategy": "head", "head.pooling": pooling, "head.type": "linear", "head.hidden_sizes": []}
    )
    tick = time.perf_counter()
    config = fetch_config(r.model)
    check_task_fits(config, task, r)
    model_dir = resolve_model_dir(r.model)
    processor = task.load_processor(model_dir, r)
    r = choices.apply(r, choices.input_shape(r, task, sample, processor))  # 'auto' lengths / sizes, as a run does
    encoded = task.encode(sample, processor, r)
    set_seed(r.train.seed)
    with quiet_transformers():
        model = build_model(task, model_dir, r, sample.labels)
    apply_strategy(model, "head")
    split, why = split_head(model)
    if split is None:
        raise RecipeError([f"candidates: cannot take frozen features of '{candidate}' ({why})"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    parts = key_parts(model_dir, r, sample.splits, task.modality, processor)
    mixed, _ = resolve_precision(r.train.precision)  # the recipe's precision: bf16 where the hardware has it
    feats = split_features(
        split,
        encoded,
        task.collate(processor, r),
        key_parts=parts,
        batch_size=r.train.eval_batch_size,
        device=device,
        dtype=autocast_dtype(mixed),
    )["train"]
    load_seconds = time.perf_counter() - tick - feats.seconds
    x, y = feats.features.numpy(), feats.labels.numpy()
    scores = {name: SCORES.get(name)(x, y) for name in SCORES}
    per_example = feats.measured_seconds / max(1, len(y))
    logger.info(
        "%s: %s (features %.1fs%s)",
        candidate,
        json.dumps({k: round(v, 4) for k, v in scores.items()}),
        feats.measured_seconds,
        ", cached" if feats.hit else "",
    )
    return CandidateScore(
        candidate,
        r.model.id,
        r.model.init,
        scores,
        len(y),
        int(x.shape[1]),
        round(feats.measured_seconds, 3),
        round(load_seconds, 3),
        feats.hit,
        round(_estimate(budget, per_example), 3),
    )


def _validate(recipe: Recipe, scored: list[CandidateScore], report_dir: Path | None, overrides: list[str]) -> dict:
    """Fine-tune every candidate by the recipe; a finished run found in the report folder is reused."""
    from scipy.stats import kendalltau

    metric = watched_metric(recipe)
    root = (report_dir or Path(recipe.output_dir + "-rank")) / "validation"
    variants = []
    for c in scored:
        model_id, init = parse_candidate(c.candidate)
        variants.append(Variant(c.candidate, {"model.id": model_id, "model.init": init}))
    runs = run_variants(load_recipe(recipe.to_dict(), overrides), variants, root, desc="validate")
    for c, done in zip(scored, runs):
        c.finetuned = {
            "metric": done.run["metrics"]["test"][metric],
            "wall_seconds": done.run["training"]["wall_seconds"],
            "output_dir": done.recipe.output_dir,
        }
    values = [c.finetuned["metric"] for c in scored]
    taus = {}
    for name in SCORES:
        tau = kendalltau([c.scores[name] for c in scored], values).statistic
        taus[name] = None if tau != tau else round(float(tau), 4)  # NaN when every metric ties
    finetune_seconds = sum(c.finetuned["wall_seconds"] for c in scored)
    return {
        "metric": metric,
        "kendall_tau": taus,
        "finetune_seconds": round(finetune_seconds, 1),
        "overrides": overrides,
    }


def _write(result: RankResult, recipe: Recipe) -> None:
    folder = result.report_dir
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "rank_by": RANK_BY,
        "rank_seconds": round(result.rank_seconds, 2),
        "recipe_budget": result.recipe_budget,
        "winner": result.winner,
        "candidates": [asdict(c) for c in result.candidates],
        "validation": result.validation,
    }
    if result.validation:
        payload["rank_cost_share"] = round(result.rank_seconds / max(result.validation["finetune_seconds"], 1e-9), 4)
    (folder / "rank.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    lines = [
        f"# Candidate checkpoints for `{recipe.data.source}` ({recipe.task})",
        "",
        result.table(),
        "",
        f"Ranked by {RANK_BY} on {result.candidates[0].n} training examples in {result.rank_seconds:.1f} s.",
    ]
    if result.validation:
        v = result.validation
        lines.append(
            f"Fine-tuned by the recipe in {v['finetune_seconds']:.0f} s in all; Kendall tau of score vs test "
            f"{v['metric']}: "
            + ", ".join(f"{k} {t}" for k, t in v["kendall_tau"].items())
            + f"; ranking cost {payload['rank_cost_share']:.1%} of that."
        )
    (folder / "rank.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plots.ranking(payload, folder / "rank.png")
