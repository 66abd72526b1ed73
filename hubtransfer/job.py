"""A recipe and what its names stand for, looked up once: the task, the problem type and the strategy.

:func:`load_recipe` is the recipe as every command takes it: parsed by the schema (:mod:`hubtransfer.recipe`,
which knows no registry) and then checked against the task, problem and strategy registries, every problem
collected into one :class:`~hubtransfer.errors.RecipeError`. :func:`job_for` returns the :class:`Job` the flow
passes on; after it, nothing looks a name up again.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from hubtransfer.errors import RecipeError
from hubtransfer.recipe.load import parse_recipe
from hubtransfer.recipe.refs import ProblemType
from hubtransfer.recipe.schema import Recipe
from hubtransfer.strategies import get_strategy
from hubtransfer.strategies.base import Strategy
from hubtransfer.tasks import TASKS, TaskSpec, get_task
from hubtransfer.tasks.problem_metrics import REGRESSION_METRICS
from hubtransfer.tasks.problems import PROBLEM_TASKS, PROBLEMS, Problem


@dataclass(frozen=True)
class Job:
    """The recipe with its task, problem type and strategy as objects."""

    recipe: Recipe
    task: TaskSpec
    problem: Problem
    strategy: Strategy

    @property
    def watched_metric(self) -> str:
        return watched_metric(self.recipe, self.task, self.problem)

    def scorer(self, labels: list[str]):
        """What evaluation computes: the problem's scorer (multi-label, regression), else the task's."""
        return (self.problem.scorer or self.task.scorer)(labels)


def load_recipe(source: str | Path | dict | None = None, overrides: list[str] | None = None) -> Recipe:
    """A recipe from YAML (or a mapping) with ``key.sub=value`` overrides, checked against the registries.

    Raises:
        RecipeError: every problem found, each naming the key, the value and a fix.

    Example:
        >>> r = load_recipe({"task": "text-classification", "model": {"id": "a/b"},
        ...                  "data": {"source": "packaged:rotten-tomatoes"}}, ["train.lr=1e-4"])
        >>> r.train.lr
        0.0001
    """
    recipe = parse_recipe(source, overrides)
    problems = check_recipe(recipe)
    if problems:
        raise RecipeError(problems)
    return recipe


def job_for(recipe: Recipe) -> Job:
    """The recipe's job (checked again: a Recipe built by hand may hold any name)."""
    problems = check_recipe(recipe)
    if problems:
        raise RecipeError(problems)
    return Job(recipe, get_task(recipe.task), PROBLEMS.get(recipe.problem), get_strategy(recipe.strategy))


def evidence_job(recipe: Recipe, command: str) -> Job:
    """The job of ``command`` (compare, datasize, strategies, source, rank), refused up front where the task or problem
    is not one it supports: their baselines, transferability scores and curves assume one class label per input."""
    job = job_for(recipe)
    if not job.task.evidence:
        supported = sorted(n for n in TASKS if TASKS.get(n).evidence)
        raise RecipeError(
            [
                f"task: `hubtransfer {command}` does not support task '{recipe.task}' (its classical baselines, "
                f"transferability scores and learning curves assume one label per input); it supports {supported}. "
                "Train the recipe with `hubtransfer train` instead"
            ]
        )
    if not job.problem.single_label:
        raise RecipeError(
            [
                f"problem: `hubtransfer {command}` supports single-label classification only (its baselines and "
                f"reports compare accuracy), not {recipe.problem}; train the recipe with `hubtransfer train`"
            ]
        )
    return job


def watched_metric(recipe: Recipe, task: TaskSpec | None = None, problem: Problem | None = None) -> str:
    """The metric a run watches: the recipe's, else the task's default (the problem's for multi-label and
    regression). Single-label runs on imbalanced labels watch macro f1, chosen from the data when they start."""
    if recipe.train.early_stopping.metric is not None:
        return recipe.train.early_stopping.metric
    problem = problem or PROBLEMS.get(recipe.problem)
    if not problem.single_label:
        return problem.default_metric
    return (task or get_task(recipe.task)).default_metric


def check_recipe(recipe: Recipe) -> list[str]:
    """What the schema cannot check alone: names against the registries and what they allow together."""
    problems = []
    try:
        task = get_task(recipe.task)
    except ValueError as e:
        return [f"task: {e}"]
    try:
        strategy = get_strategy(recipe.strategy)
    except ValueError as e:
        problems.append(f"strategy: {e}")
        strategy = None
    problem = PROBLEMS.get(recipe.problem)
    problems += _metric_problems(recipe, task, problem)
    if task.custom_class is None and (recipe.head.type != "linear" or recipe.head.pooling not in ("native", "auto")):
        problems.append(
            f"head.type / head.pooling do not apply to task '{recipe.task}' (got type={recipe.head.type}, "
            f"pooling={recipe.head.pooling}): pooled and MLP heads read one vector per input, and a {recipe.task} "
            "head reads every token. Drop the head settings (the checkpoint's own linear head per token is used)"
        )
    if recipe.heads and not task.multi_head:
        problems.append(
            f"heads: set for task '{recipe.task}', but only task 'multi-task' reads it; set task=multi-task or drop "
            "heads"
        )
    if strategy is not None:
        problems += strategy.check(recipe, task)
    if not problem.single_label and not task.input_classification:
        problems.append(
            f"problem '{recipe.problem}' applies to {list(PROBLEM_TASKS)}, not task '{recipe.task}'; drop problem"
        )
    if recipe.data.label_separator is not None and recipe.problem is not ProblemType.MULTI_LABEL:
        problems.append(
            f"data.label_separator is set but problem is {recipe.problem}; it splits multi-label strings only "
            "(set problem=multi-label or drop it)"
        )
    return problems


def _metric_problems(recipe: Recipe, task: TaskSpec, problem: Problem) -> list[str]:
    """A named watched metric must be one the task (or problem, or multi-task head) computes."""
    metric = recipe.train.early_stopping.metric
    if task.check_recipe is not None:  # multi-task: its heads, and head metrics (head/metric) or means over the heads
        return task.check_recipe(recipe, watched_metric(recipe, task, problem))
    if metric is None:
        return []
    if not problem.single_label:
        if metric in problem.watchable:
            return []
        lower = (
            " (lower is better; the best model maximises the watched metric)" if metric in REGRESSION_METRICS else ""
        )
        return [
            f"train.early_stopping.metric '{metric}' is not watched for problem {recipe.problem}{lower}; "
            f"use one of {list(problem.watchable)}"
        ]
    if metric in task.metric_keys:
        return []
    known = list(task.metric_keys)
    guess = difflib.get_close_matches(metric, known, n=1, cutoff=0.5)
    dym = f" Did you mean '{guess[0]}'?" if guess else ""
    return [f"train.early_stopping.metric '{metric}' is not computed for {task.name}.{dym} Known: {known}"]
