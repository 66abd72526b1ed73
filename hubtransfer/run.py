"""``finetune(recipe)``: the whole flow, each stage called once, in order; the same code path as ``hubtransfer train``.

recipe -> sources -> data -> choices from the data -> task (model, new head) -> strategy -> loop -> test, baseline,
checks -> save -> card -> push.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from accelerate import PartialState
from accelerate.utils import broadcast_object_list, set_seed

from hubtransfer import choices
from hubtransfer.card import evidence as evidence_report
from hubtransfer.card.card import write_card
from hubtransfer.card.folder import is_hub_id
from hubtransfer.checks import diagnostics
from hubtransfer.checks import probe as linear_probes
from hubtransfer.data.prepare import prepare_task_data
from hubtransfer.errors import PushError
from hubtransfer.files import CHECKPOINTS, METRICS_LOG, evidence_dir, staging_dir
from hubtransfer.job import Job, job_for, load_recipe
from hubtransfer.push.push import push_folder
from hubtransfer.push.verify import verify_release
from hubtransfer.recipe.schema import Recipe
from hubtransfer.save.folder import check_output_dir, commit, write_reports
from hubtransfer.save.record import RunMetrics, RunRecord, StrategyPlan, Training, environment
from hubtransfer.save.release import release_facts
from hubtransfer.sources.checkpoint import fetch_config, license_of, resolve_model_dir, sentence_pooling_of
from hubtransfer.tasks.metrics import per_class
from hubtransfer.tasks.model import build_model, check_task_fits, quiet_transformers, save_model
from hubtransfer.tasks.problems import configure_model, tuned_for_test
from hubtransfer.train import checkpoints
from hubtransfer.train.batches import make_loaders
from hubtransfer.train.evaluate import evaluate
from hubtransfer.train.loop import RunFiles, class_weight_tensor, fit
from hubtransfer.train.precision import resolve_precision
from hubtransfer.train.routes import Trainable, feature_route, linear_probe
from hubtransfer.train.session import flat_hparams, make_accelerator, setup_logging, sharded
from hubtransfer.train.state import FitResult
from hubtransfer.update.flow import (
    Update,
    average_weights,
    continuing_choices,
    soft_targets,
    starting_model,
    update_data_of,
    versions,
)
from hubtransfer.update.versions import Versions, gate
from hubtransfer.update.versions import section as versions_section

logger = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """What a run produced: test metrics, the trained model (best weights) and where it was saved."""

    metrics: dict
    model: torch.nn.Module
    output_dir: Path
    history: list[dict]
    run: dict


@dataclass
class _Run:
    """What the stages hand on: the job (its recipe resolved as choices are made), the process, and the run's parts."""

    job: Job
    accelerator: object
    precision: tuple[str, str]
    chosen: list
    data: object = None
    model_dir: Path | None = None
    processor: object = None
    model: torch.nn.Module | None = None
    plan: dict | None = None
    trainer: Trainable | None = None
    features: dict | None = None
    update: Update | None = None  # a recipe with an update section: the previous version and the old test split
    versions: Versions | None = None


def finetune(recipe: Recipe | str | Path | dict, overrides: list[str] | None = None) -> FinetuneResult:
    """Fine-tune a pretrained checkpoint as the recipe says and save it.

    Every check (recipe, output folder, checkpoint config, data columns and labels) runs before the weights load
    and before the output folder is touched. The run is written into a staging folder that replaces ``output_dir``
    only once complete, so a failed run leaves nothing half-written.

    Args:
        recipe: a Recipe, a YAML path or a mapping.
        overrides: ``key.sub=value`` strings applied on top.

    Returns:
        FinetuneResult with test metrics (``metrics["test"]``), the model and the output folder.

    Example:
        >>> result = finetune("recipes/text/minilm_rotten_tomatoes.yaml", ["train.epochs=1"])  # doctest: +SKIP
        >>> result.metrics["test"]["accuracy"]  # doctest: +SKIP
    """
    if not isinstance(recipe, Recipe) or overrides:
        recipe = load_recipe(recipe.to_dict() if isinstance(recipe, Recipe) else recipe, overrides)
    run = _start(job_for(recipe))
    _sources_and_data(run)
    _model_and_strategy(run)
    result = _train_and_save(run)
    refused = (
        gate(run.versions, run.job.recipe.update.max_forgetting, run.job.recipe.update.force) if run.versions else None
    )
    if run.job.recipe.hub.push and refused:  # the folder is complete; a forgetting model is not released
        raise PushError(refused)
    if run.job.recipe.hub.push and PartialState().is_main_process:
        hub = run.job.recipe.hub
        # After the local folder is complete: a failed push loses nothing (`hubtransfer push` resumes).
        pushed = push_folder(
            result.output_dir,
            hub.repo_id,
            private=hub.private,
            revision=hub.revision,
            commit_message=hub.commit_message,
            tag=hub.tag,
        )
        logger.info(
            "pushed to %s (%s%s)",
            pushed.url,
            "new commit" if pushed.new_commit else "already up to date",
            f", tagged {pushed.tag}" if pushed.tag else "",
        )
        result.run["pushed"] = pushed.__dict__
        if hub.verify:
            result.run["pushed"]["verified"] = verified_release(pushed)
    return result


def verified_release(pushed) -> dict:
    """The pushed release's test metrics recomputed from its downloaded weights; a card that disagrees is an error."""
    revision = pushed.tag or pushed.commit
    with tempfile.TemporaryDirectory(prefix="hubtransfer-verify-") as cache:  # a fresh cache: what a user downloads
        check = verify_release(pushed.repo_id, revision, cache_dir=cache)
    if not check["equal"]:
        raise PushError(
            f"{pushed.repo_id}@{revision}: the downloaded weights give test metrics {check['recomputed']}, the card "
            f"and run record say {check['recorded']}. The release does not match its card; report this as a bug"
        )
    logger.info(
        "verified %s@%s: test metrics recomputed from the downloaded weights equal the card", pushed.repo_id, revision
    )
    return {"revision": revision, "test": check["recomputed"]}


def _start(job: Job) -> _Run:
    """The output folder checked, the precision chosen, the Accelerator and the log set up, the seed set."""
    recipe = job.recipe
    out_dir = Path(recipe.output_dir)
    check_output_dir(out_dir, recipe.overwrite_output_dir)
    mixed, why = resolve_precision(recipe.train.precision)
    accelerator = make_accelerator(recipe, mixed, project_dir=staging_dir(out_dir))
    setup_logging(accelerator)
    logger.info("precision: %s (%s)", mixed, why)
    set_seed(recipe.train.seed)
    return _Run(job, accelerator, (mixed, why), [])


def _choose(run: _Run, found: list) -> None:
    run.job = replace(run.job, recipe=choices.apply(run.job.recipe, found))
    run.chosen += found


def _sources_and_data(run: _Run) -> None:
    """The checkpoint's config (a few KB: every check before any weights), the data and its split, and the choices
    the data decides; then the weights' folder and the processor."""
    job, accelerator = run.job, run.accelerator
    config = fetch_config(job.recipe.model)
    _choose(run, [c for c in [choices.choose_pooling(job, sentence_pooling_of(job.recipe.model))] if c is not None])
    check_task_fits(config, run.job.task, run.job.recipe)
    if job.recipe.update is not None:  # old and new data under one label map, and what the method trains on
        run.data, run.update = update_data_of(job, accelerator)
    else:
        with accelerator.main_process_first():
            run.data = prepare_task_data(run.job.task, run.job.recipe)
    logger.info("data: %s", run.data.info["sizes"])
    run.model_dir = resolve_model_dir(run.job.recipe.model)
    # An update continues the previous version: its tokenizer / image processor ('joint' starts from the base's).
    processor_dir = run.model_dir if run.update is None or run.update.method == "joint" else run.update.parent.folder
    if run.update is not None:  # before the data's choices: they leave keys already chosen alone
        _choose(run, continuing_choices(run.update, run.job, run.data, accelerator.num_processes))
    _choose(
        run,
        choices.from_data(
            run.job, run.data, run.job.task.load_processor(processor_dir, run.job.recipe), accelerator.num_processes
        ),
    )
    choices.log(run.chosen)
    run.processor = run.job.task.load_processor(processor_dir, run.job.recipe)


def _model_and_strategy(run: _Run) -> None:
    """The checkpoint with its new head, the strategy applied, and what the loop will train on."""
    job, accelerator = run.job, run.accelerator
    with accelerator.main_process_first():
        encoded = job.task.encode(run.data, run.processor, job.recipe)
    model = starting_model(run.update, run.data.labels) if run.update is not None else None
    if model is None:
        model = build_model(job.task, run.model_dir, job.recipe, run.data.labels)
    configure_model(model, job.problem, run.data)  # problem_type (loss, pipeline) and a regression head's starting bias
    run.model, run.plan = job.strategy.prepare(model, job.recipe, base_reference(job.recipe), job.task)
    plan = run.plan
    logger.info(
        "strategy %s: %s of %s parameters train (%.2f%%)",
        plan["strategy"],
        f"{plan['trainable_params']:,}",
        f"{plan['total_params']:,}",
        100 * plan["trainable_share"],
    )
    run.trainer = Trainable(run.model, encoded, job.task.collate(run.processor, job.recipe))
    if job.strategy.head_only and job.recipe.train.cache_features and run.update is None:
        run.trainer, run.features = feature_route(
            run.trainer, job, run.data, run.processor, run.model_dir, accelerator, run.precision[0]
        )


def _train_and_save(run: _Run) -> FinetuneResult:
    """Train in ``.NAME.incomplete`` (resuming its checkpoints), evaluate, save, card, then rename into place."""
    recipe, accelerator = run.job.recipe, run.accelerator
    out_dir = Path(recipe.output_dir)
    staging = staging_dir(out_dir)
    ckpt_dir = staging / CHECKPOINTS if recipe.train.checkpoint_every else None
    resuming = bool(recipe.train.resume and ckpt_dir and checkpoints.checkpoints(ckpt_dir))
    if accelerator.is_main_process and not resuming:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    try:
        record, test, result = _train_and_test(run, staging, ckpt_dir, resuming)
        unwrapped = _save(run, staging, record, test, result.history)
        accelerator.wait_for_everyone()
    except BaseException:
        # Checkpoints survive a failure (the same command resumes); a run without any leaves nothing.
        if accelerator.is_main_process and not (ckpt_dir and checkpoints.checkpoints(ckpt_dir)):
            shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("test: %s", json.dumps(record.metrics.test))
    logger.info("saved to %s", out_dir)
    return FinetuneResult(
        metrics=record.to_dict()["metrics"],
        model=unwrapped,
        output_dir=out_dir,
        history=result.history,
        run=record.to_dict(),
    )


def _train_and_test(
    run: _Run, staging: Path, ckpt_dir: Path | None, resuming: bool
) -> tuple[RunRecord, dict, FitResult]:
    """The loop (after LP-FT's probe), then test with the best weights, the classical baseline and the checks."""
    job, accelerator, trainer, data = run.job, run.accelerator, run.trainer, run.data
    if job.recipe.train.log_with:
        accelerator.init_trackers("hubtransfer", config=flat_hparams(job.recipe))
    started = time.perf_counter()
    lin_probe = _linear_probe(run)  # before anything trains: logistic regression on the pretrained features
    probe = None  # lp-ft's head-only first phase (a strategy), not the linear probe above
    if job.strategy.needs_probe and not resuming:  # a resumed LP-FT run's checkpoint already holds the probed head
        probe = linear_probe(job, data, run.processor, run.model_dir, accelerator, run.precision[0], trainer)
    loaders = make_loaders(trainer.encoded, trainer.collate, job.recipe)
    scorer = job.scorer(data.labels)
    files = RunFiles(
        log=staging / METRICS_LOG if accelerator.is_main_process else None, checkpoints=ckpt_dir, best=staging
    )
    result = fit(
        trainer.model,
        loaders,
        job,
        accelerator,
        scorer,
        files=files,
        class_weights=class_weight_tensor(job.recipe, data.labels),
        extra_loss=soft_targets(run.update, accelerator) if run.update is not None else None,
    )
    if run.update is not None:  # method interpolate: the average with the start, chosen on old + new validation
        average_weights(run.update, job, trainer.model, accelerator.prepare(loaders["validation"]), accelerator, scorer)
    if lin_probe is not None:
        _keep_the_better(run, lin_probe, result)
    if result.lr_search is not None:  # the recipe saved with the model names the rate it trained at
        _choose(run, [_lr_choice(result.lr_search)])
    if job.strategy.grows_during_training:  # the share it reached by the last epoch, not all it might have
        run.plan["trainable_params"] = sum(p.numel() for p in run.model.parameters() if p.requires_grad)
        run.plan["trainable_share"] = run.plan["trainable_params"] / run.plan["total_params"]
    # Multi-label thresholds: tuned on the best weights' validation predictions, applied unchanged to test.
    scorer = tuned_for_test(
        scorer, lambda: evaluate(trainer.model, accelerator.prepare(loaders["validation"]), accelerator, scorer)
    )
    test_loader = accelerator.prepare(loaders["test"])
    test = evaluate(trainer.model, test_loader, accelerator, scorer)
    if run.update is not None:
        run.versions = versions(run.update, job, trainer, test, test_loader, data, run.processor, accelerator, scorer)
        logger.info("versions: %s", json.dumps(run.versions.to_dict()))
    wall = time.perf_counter() - started
    for tracker in accelerator.trackers:
        tracker.finish()  # not end_training(): it also destroys the process group, which the barriers after still need
    return _record(run, result, test, wall, probe, lin_probe), test, result


def _linear_probe(run: _Run) -> linear_probes.LinearProbe | None:
    """The linear probe of the pretrained backbone (main process; the others receive it), where it applies."""
    job = run.job
    n_train, update = run.data.info["sizes"]["train"], run.update is not None
    if not linear_probes.wanted(job, run.model, n_train, update, sharded(run.accelerator)):
        return None
    found = [None]
    if run.accelerator.is_main_process:
        found[0] = linear_probes.fit_probe(
            job, run.trainer, run.data, run.processor, run.model_dir, run.accelerator.device, run.precision[0]
        )
    return broadcast_object_list(found)[0]


def _keep_the_better(run: _Run, lin_probe: linear_probes.LinearProbe, result: FitResult) -> None:
    """The probe's weights replace the fine-tuned ones where the probe is higher on validation."""
    metric = run.job.recipe.train.early_stopping.metric
    tuned = (result.best or {}).get("validation")
    if not linear_probes.keep_probe(lin_probe, tuned, metric, run.data.info["sizes"]["validation"]):
        return
    with quiet_transformers():
        pretrained = build_model(run.job.task, run.model_dir, run.job.recipe, run.data.labels)
    configure_model(pretrained, run.job.problem, run.data)
    linear_probes.adopt(lin_probe, run.accelerator.unwrap_model(run.trainer.model), pretrained, tuned)


def _record(
    run: _Run,
    result: FitResult,
    test: dict,
    wall: float,
    probe: dict | None,
    lin_probe: linear_probes.LinearProbe | None,
) -> RunRecord:
    """The run record: what ran, on what, what it gave, the baseline beside it and what the run says of itself."""
    recipe, data = run.job.recipe, run.data
    best = result.best or {}
    baseline = _classical_baseline(run.job, data)
    found = diagnostics.check_run(
        history=result.history,
        best_step=best.get("step"),
        test=test,
        baseline=baseline,
        labels=data.labels,
        n_validation=data.info["sizes"]["validation"],
        recipe=recipe,
        probe=lin_probe.to_dict() if lin_probe else None,
    )
    kept = lin_probe is not None and lin_probe.kept
    metrics = RunMetrics(
        test=test["metrics"],
        validation_best=lin_probe.validation if kept else best.get("validation"),  # the saved weights' validation
        best_step=best.get("step"),
        test_per_label=test.get("per_label"),
        test_per_class=per_class(test["confusion"], data.labels) if test.get("confusion") else None,
        baseline={k: v for k, v in baseline.items() if k != "seconds"} if baseline else None,
        linear_probe=lin_probe.to_dict(timing=False) if lin_probe else None,
        diagnostics=found,
    )
    mixed, why = run.precision
    training = Training(
        steps=result.steps,
        stopped_early=result.stopped_early,
        train_seconds=round(result.train_seconds, 2),
        wall_seconds=round(wall, 2),
        train_samples_per_second=round(result.samples_per_second, 2),
        lr=result.lr,
        lr_search=result.lr_search,
        precision=mixed,
        precision_reason=why,
        features=run.features,
        probe=probe,
    )
    keys = ("strategy", "trainable_params", "total_params", "trainable_share", "adapter")
    parent = run.update.parent if run.update is not None else None
    card = card_facts(recipe, run.model_dir)
    if run.versions is not None:  # the card names the previous version as its base and shows both side by side
        card.update(
            base_model_id=parent.model_id if is_hub_id(parent.model_id) else card["base_model_id"],
            extra_sections={"Versions": versions_section(run.versions)},
        )
    return RunRecord(
        task=recipe.task,
        # An update's base is the previous version, at the commit its revision pointed at.
        base_model=parent.model_id if parent else recipe.model.id,
        base_model_revision=(parent.sha or parent.revision) if parent else recipe.model.revision,
        init=recipe.model.init,
        data=data.info,
        strategy=StrategyPlan(**{k: run.plan[k] for k in keys if k in run.plan}),
        metrics=metrics,
        training=training,
        choices=choices.as_records(run.chosen),
        environment=environment(),
        baseline=baseline,
        linear_probe=lin_probe.to_dict() if lin_probe else None,
        diagnostics=found,
        card=card,
        update=run.versions.to_dict() if run.versions is not None else None,
        release=release_facts(recipe, data, run.job.task.modality, run.model_dir),
    )


def _save(run: _Run, staging: Path, record: RunRecord, test: dict, history: list[dict]) -> torch.nn.Module:
    """The model (safetensors, processor, a custom head's modeling file), the reports, the card; then the rename."""
    job, accelerator = run.job, run.accelerator
    unwrapped = accelerator.unwrap_model(run.model)  # the model itself when only its head was prepared
    if "thresholds" in test:  # saved with the model: `hubtransfer predict` and eval apply them
        unwrapped.config.hubtransfer_thresholds = test["thresholds"]
    unwrapped = save_model(
        unwrapped,
        run.processor,
        staging,
        job.task,
        is_main=accelerator.is_main_process,
        merge=job.recipe.peft.merge,
        state_dict=accelerator.get_state_dict(run.model) if sharded(accelerator) else None,
    )
    if accelerator.is_main_process:
        shutil.rmtree(staging / CHECKPOINTS, ignore_errors=True)  # the finished model replaces them
        write_reports(staging, job.recipe, run.data, record, history, test.get("confusion"))
        attached = evidence_report.attach(staging, evidence_dir(job.recipe.output_dir))
        if attached:
            logger.info(
                "transfer evidence %s from %s goes into the card", attached, evidence_dir(job.recipe.output_dir)
            )
        write_card(staging, repo_id=job.recipe.hub.repo_id, **record.card)  # reads the reports
        commit(staging, Path(job.recipe.output_dir))  # the rename is what marks the run complete
    return unwrapped


def _lr_choice(search: dict) -> choices.Choice:
    scores = ", ".join(f"{lr:g}: {v:.4f}" for lr, v in zip(search["candidates"], search["scores"]))
    return choices.Choice(
        "train.lr",
        search["chosen"],
        "auto",
        (
            f"best validation {search['metric']} at the end of a {search['rung_step']}-step run each (the run: "
            f"{search['steps']} steps) among the candidates ({scores})"
            if search.get("schedule") == "short"
            else f"best validation {search['metric']} after {search['rung_step']} of {search['steps']} steps among "
            f"the candidates ({scores})"
        ),
        search,
    )


def _classical_baseline(job: Job, data) -> dict | None:
    """The classical baseline on the run's own split (main process; single-label classification of text or images)."""
    if not job.recipe.train.baseline or not job.problem.single_label or not job.task.input_classification:
        return None
    if not PartialState().is_main_process:
        return None
    from hubtransfer.checks.baselines import classical_baseline  # late: sklearn stays out of training processes

    result = classical_baseline(data, job.task.modality, job.recipe.train.early_stopping.metric)
    logger.info(
        "classical baseline (%s): test %s (%.1f s)",
        result["name"],
        json.dumps({k: round(v, 4) for k, v in result["test"].items()}),
        result["seconds"],
    )
    return {k: result[k] for k in ("name", "C", "validation", "test")} | {"seconds": result["seconds"]}


def base_reference(recipe: Recipe) -> str:
    """How a saved adapter names its base: the Hub id, or the absolute folder a local checkpoint came from."""
    local = Path(recipe.model.id).expanduser()
    return str(local.resolve()) if local.is_dir() else recipe.model.id


def card_facts(recipe: Recipe, model_dir: Path) -> dict:
    """What the card needs beyond the run folder, kept in the run record so a later push can rebuild it."""
    hub_id = None if Path(recipe.model.id).expanduser().exists() or recipe.model.init == "random" else recipe.model.id
    return {"license": license_of(model_dir), "base_model_id": hub_id}
