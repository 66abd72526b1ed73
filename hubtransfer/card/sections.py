"""The card's body: every value the template shows, formatted (the metadata between the --- lines is in card.py)."""

from __future__ import annotations

from hubtransfer.card.folder import (
    RunFolder,
    data_md,
    is_hub_id,
    local_name,
    metric_rows,
    source_kind,
    task_of,
    text_of,
)
from hubtransfer.card.format import (
    fmt_duration,
    fmt_join,
    fmt_metric,
    fmt_number,
    fmt_percent,
    fmt_value,
    pretty_task,
    table_cell,
)
from hubtransfer.card.wording import POOLING
from hubtransfer.files import CONFUSION_PNG, CURVES_PNG

_HARDWARE_KEYS = {"machine", "threads", "cuda"}  # shown under Training, not as framework versions


_CONFUSION_TABLE_MAX_LABELS = 12  # beyond that the PNG reads better than a table


def body_context(run: RunFolder, name: str, repo_id: str | None, base: str | None, extra: dict[str, str]) -> dict:
    """Every value the template shows, formatted; keys never clash with ModelCardData's. A task's ``card_context``
    replaces or adds values (multi-task: labels, head and usage per head)."""
    context = {
        "title": name,
        "task": run.task,
        "task_pretty": pretty_task(run.task),
        **_base_context(run, base),
        **_data_context(run),
        **_training_context(run),
        **_results_context(run),
        **_choices_context(run),
        **_usage_context(run, repo_id),
        "labels": [(i, table_cell(n)) for i, n in run.labels],
        "label_names": ", ".join(f"`{n}`" for _, n in run.labels),
        "use_md": text_of(run).use.format(
            input_kind=_input_kind(run),
            n_labels=len(run.labels),
            label_names=", ".join(f"`{n}`" for _, n in run.labels),
            **{f"target_{k}": v for k, v in (run.data.get("target") or {}).items()},
        ),
        "env": [(k, v) for k, v in run.record.environment.items() if k not in _HARDWARE_KEYS],
        "recipe_yaml": run.recipe_text.rstrip(),
        "extra_sections": [(title, body.strip()) for title, body in extra.items()],
    }
    own = text_of(run).context
    if own is not None:
        context.update(own(run, context))
    return context


def _base_context(run: RunFolder, base: str | None) -> dict:
    local = not is_hub_id(run.base_model)
    revision = run.record.base_model_revision
    if run.record.init == "random":
        arch = run.base_model if is_hub_id(run.base_model) else local_name(run.base_model)
        return {
            "base_md": f"a randomly initialised network with the architecture of `{arch}` (no pretrained weights)",
            "base_name": arch,
            "base_note": (
                "This model was trained from scratch (model.init=random), as a baseline; it names no `base_model`."
            ),
        }
    if base is None:
        folder = local_name(run.base_model)
        return {
            "base_md": f"a checkpoint from the local folder `{folder}`",
            "base_name": folder,
            "base_note": (
                "The base checkpoint was a local folder, not a Hub repository, so this card names no `base_model`."
            ),
        }
    rev = f" (revision `{revision}`)" if not local and revision and revision != "main" else ""
    origin = " (loaded from a local copy)" if local else ""
    return {"base_md": f"`{base}`{rev}{origin}", "base_name": base, "base_note": None}


def _data_context(run: RunFolder) -> dict:
    data, spec = run.data, run.recipe.get("data", {})
    hub_data = source_kind(run.source) == "hub"
    dropped = data.get("duplicates_dropped") or {}
    return {
        "data_md": data_md(run.source),
        "data_terms": data.get("terms"),
        "dataset_config": spec.get("config") if hub_data else None,
        "dataset_revision": spec.get("revision") if hub_data else None,
        "split_method": data.get("method", "not recorded"),
        "split_seed": data.get("split_seed", "not recorded"),
        "splits_from_source": fmt_join(data.get("splits_from_source")),
        "splits_carved": ", ".join(data.get("splits_carved_from_train") or []),
        "test_carved": "test" in (data.get("splits_carved_from_train") or []),
        "fractions": ", ".join(f"{k} {v:g}" for k, v in (data.get("fractions") or {}).items()) or "none",
        "duplicates": ", ".join(f"{n:,} ({split})" for split, n in dropped.items()) or "none",
        "limits_note": _limits_note(spec),
        "sizes": [(split, f"{n:,}") for split, n in data["sizes"].items()],
        "n_train": f"{data['sizes']['train']:,}",
        "n_test": f"{data['sizes']['test']:,}",
    }


def _limits_note(spec: dict) -> str | None:
    # Sizes above already reflect the caps; say so, since they change what the numbers mean.
    parts = []
    if spec.get("max_train_samples"):
        parts.append(f"training capped at the first {spec['max_train_samples']:,} examples of the fixed split")
    if spec.get("max_eval_samples"):
        parts.append(f"validation and test capped at {spec['max_eval_samples']:,} examples each")
    return "; ".join(parts) + "." if parts else None


def head_spec(run: RunFolder) -> dict:
    return run.recipe.get("head") or {}


def _head_md(run: RunFolder) -> str:
    if not task_of(run).labeled:
        return "its masked-LM head, kept (not replaced): the pretraining objective continues on new text"
    if task_of(run).per_token:
        return "a new linear layer on each token's final hidden state (a word's tag is read at its first sub-token)"
    head = head_spec(run)
    features = POOLING.get(head.get("pooling", "native"), f"{head.get('pooling')} pooling")
    if head.get("type") == "mlp":
        sizes = " → ".join(str(s) for s in head.get("hidden_sizes", []))
        kind = f"a new MLP head (hidden sizes {sizes}, dropout {head.get('dropout', 0):g})"
    else:
        kind = "a new linear classification layer"
    code = " (custom head, `modeling_hubtransfer.py`)" if run.remote_code else ""
    return f"{kind} on {features}{code}"


def _adapter_md(adapter: dict) -> str:
    targets = ", ".join(f"`{t}`" for t in adapter.get("target_modules") or [])
    how = (
        "merged into the base weights after training, so this repository holds a plain transformers model"
        if adapter.get("merged")
        else (
            "saved alone in peft's format (`adapter_config.json`, `adapter_model.safetensors`); "
            "it loads on top of the base model"
        )
    )
    return (
        f"{adapter['method'].upper()} rank {adapter['r']}, alpha {adapter['alpha']:g}, dropout "
        f"{adapter['dropout']:g}, on {targets}; "
        f"the head ({', '.join(f'`{m}`' for m in adapter.get('modules_to_save') or [])}) trains in full. The adapter "
        f"is {how}"
    )


def _strategy_md(name: str) -> str:
    from hubtransfer.strategies import get_strategy  # late: the card module stays light for `hubtransfer push`

    try:
        return get_strategy(name).describe()
    except ValueError:  # a run folder from a version with another strategy
        return name


def _training_context(run: RunFolder) -> dict:
    plan, training = run.record.strategy, run.record.training
    return {
        "strategy": plan.strategy,
        "strategy_md": _strategy_md(plan.strategy),
        "adapter_md": _adapter_md(run.adapter) if run.adapter else None,
        "head_md": _head_md(run),
        "trainable_params": f"{plan.trainable_params:,}",
        "total_params": f"{plan.total_params:,}",
        "trainable_share": fmt_percent(plan.trainable_share),
        "precision": training.precision,
        "precision_reason": training.precision_reason,
        "steps": f"{training.steps:,}",
        "best_step": run.record.metrics.best_step or "n/a",
        "watched_metric": _watched_metric(run),
        "kept_md": _kept_md(run),
        "early_stopping_md": _early_stopping_md(run),
        "train_time": fmt_duration(training.train_seconds),
        "wall_time": fmt_duration(training.wall_seconds),
        "throughput": fmt_number(training.train_samples_per_second),
        "hardware": _hardware(run.record.environment),
        "hparams": _hparams(run.recipe),
    }


def _stopping(run: RunFolder) -> dict:
    """The run's ``train.early_stopping`` section as its recipe.yaml saved it."""
    return (run.recipe.get("train") or {}).get("early_stopping") or {}


def _watched_metric(run: RunFolder) -> str:
    return _stopping(run).get("metric", "accuracy")


def _best_step(history: list[dict], metric: str) -> int | None:
    """The first evaluation with the highest validation ``metric``."""
    scored = [
        (r["validation"][metric], -r["step"]) for r in history if (r.get("validation") or {}).get(metric) is not None
    ]
    return -max(scored)[1] if scored else None


def _kept_md(run: RunFolder) -> str:
    """Which evaluation the saved weights come from, and why (``train.early_stopping.keep``)."""
    metric, kept = _watched_metric(run), run.record.metrics.best_step
    best = _best_step(run.history, metric)
    keep = _stopping(run).get("keep", "best")
    if kept is None or best is None or kept == best or keep != "last_within_se":
        return f"the evaluation with the best validation {metric}"
    score = {r["step"]: r["validation"][metric] for r in run.history if r["step"] in (kept, best)}
    return (
        f"the last evaluation within one standard error of the best validation {metric} (step {best}: "
        f"{fmt_metric(score[best])}; step {kept}: {fmt_metric(score[kept])}; `train.early_stopping.keep: "
        "last_within_se`: as good within the validation split's noise, and trained longer)"
    )


def _early_stopping_md(run: RunFolder) -> str:
    stopping = _stopping(run)
    if not stopping.get("patience"):
        return "off; training ran its full schedule."
    outcome = "stopped training early" if run.record.training.stopped_early else "did not trigger"
    return (
        f"patience {stopping['patience']} evaluations on validation {stopping.get('metric', 'accuracy')} "
        f"(min_delta {stopping.get('min_delta', 0):g}); it {outcome}."
    )


def _hardware(env: dict) -> str:
    device = env.get("cuda") or "CPU"
    cpu = env.get("cpu") or env.get("machine", "unknown machine")
    flags = f", {'/'.join(env['bf16_flags'])}" if env.get("bf16_flags") else ""
    threads = f", {env['threads']} threads" if env.get("threads") else ""
    return f"{device} ({cpu}{flags}{threads})"


def _choices_context(run: RunFolder) -> dict:
    """What the run chose from the data (the recipe's ``auto`` keys), its checks, and the classical baseline beside
    it."""
    rows = [
        (
            f"`{c['key']}`",
            table_cell(fmt_value(c["value"])),
            table_cell(fmt_value(c["requested"])),
            table_cell(c["why"]),
        )
        for c in run.record.choices
    ]
    base, probe = run.record.baseline, run.record.linear_probe
    baseline_md = (
        f"{table_cell(base['name'])}, C = {base['C']:g}, fitted on the same training split: {_beside(run, base)}"
        if base
        else None
    )
    probe_md = None
    if probe:
        probe_md = f"logistic regression (C = {probe['C']:g}) on the frozen pretrained backbone's features, test: " + (
            f"{_beside(run, probe)}"
            if not probe["kept"]
            else f"{_beside(run, probe, 'the saved model')}. It scored higher on validation than the fine-tuned "
            "weights, so **the saved model is this probe**: the pretrained backbone unchanged, these weights in its "
            "output layer"
        )
    per_class = run.record.metrics.test_per_class or {}
    return {
        "choices": rows,
        "checks": [table_cell(f["message"]) for f in run.record.diagnostics or []],
        "checks_ran": run.record.diagnostics is not None,
        "baseline_md": baseline_md,
        "probe_md": probe_md,
        "per_class": [
            (
                table_cell(name),
                fmt_metric(v["precision"]),
                fmt_metric(v["recall"]),
                fmt_metric(v["f1"]),
                f"{v['support']:,}",
            )
            for name, v in per_class.items()
        ],
    }


def _beside(run: RunFolder, reference: dict, this: str = "this model") -> str:
    """A reference's test metrics, each with the model's beside it."""
    test = run.record.metrics.test
    names = [(k, label) for k, label, _ in metric_rows(run) if k in reference["test"]]
    return "; ".join(
        f"{label.lower()} {fmt_metric(reference['test'][k])} ({this} {fmt_metric(test.get(k))})" for k, label in names
    )


def _hparams(recipe: dict) -> list[tuple[str, str]]:
    """The recipe's train and head sections as (dotted key, value) rows, as overrides spell them."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                rows.append((f"{prefix}{key}", table_cell(fmt_value(value))))

    for section in ("train", "head"):
        walk(f"{section}.", recipe.get(section) or {})
    return rows


def _results_context(run: RunFolder) -> dict:
    test = run.record.metrics.test
    best_val = run.record.metrics.validation_best or {}
    headline = metric_rows(run)[0]
    best_step = _best_step(run.history, _watched_metric(run))  # the highest-scoring evaluation, once for every row
    return {
        "headline": f"{fmt_metric(test.get(headline[0]))} {headline[1].lower()}",
        "metrics_note": text_of(run).metrics_note.format(n_labels=len(run.labels)),
        "metric_names": [label for _, label, _ in metric_rows(run)],
        "test_rows": [
            (label, fmt_metric(test.get(key)), fmt_metric(best_val.get(key))) for key, label, _ in metric_rows(run)
        ],
        "history": [
            _history_row(rec, run.record.metrics.best_step, best_step, metric_rows(run)) for rec in run.history
        ],
        "curves_png": run.has(CURVES_PNG),
        "confusion_png": run.has(CONFUSION_PNG),
        "confusion": _confusion_table(run.confusion),
        "per_label": [
            (table_cell(name), fmt_metric(v["f1"]), f"{v['threshold']:.3f}", f"{v['support']:,}")
            for name, v in (run.record.metrics.test_per_label or {}).items()
        ],
    }


def _history_row(rec: dict, kept_step: int | None, best_step: int | None, metrics: tuple) -> list[str]:
    val = rec.get("validation") or {}
    if rec["step"] == kept_step:
        mark = " (best)" if kept_step == best_step or best_step is None else " (kept)"
    else:
        mark = " (best)" if rec["step"] == best_step and kept_step is not None else ""
    step = f"{rec['step']:,}{mark}"
    epoch = f"{rec['epoch']:.2f}" if rec.get("epoch") is not None else "–"
    loss = f"{rec['train_loss']:.4f}" if rec.get("train_loss") is not None else "–"
    return [step, epoch, loss] + [fmt_metric(val.get(key)) for key, _, _ in metrics]


def _confusion_table(confusion: dict | None) -> dict | None:
    if not confusion or len(confusion.get("labels", [])) > _CONFUSION_TABLE_MAX_LABELS:
        return None
    labels = [table_cell(str(x)) for x in confusion["labels"]]
    rows = [(name, [f"{v:,}" for v in row]) for name, row in zip(labels, confusion["matrix"])]
    return {"labels": labels, "rows": rows}


def _usage_context(run: RunFolder, repo_id: str | None) -> dict:
    hub = run.recipe.get("hub") or {}
    revision = hub.get("revision") if repo_id and hub.get("revision") not in (None, "main") else None
    task = task_of(run)
    text = task.modality == "text"
    return {
        # Without a repo id the snippet loads the run folder where training wrote it.
        "model_ref": repo_id or run.recipe.get("output_dir") or str(run.folder),
        "revision": revision,
        "remote_code": run.remote_code,
        "adapter_only": run.adapter_only,
        "peft_class": task.peft_class,
        "example_input": text_of(run).example_input
        or ('"This is the text to classify."' if text else '"path/to/image.jpg"'),
        # Extra pipeline() arguments of the task, as Python source (e.g. aggregation_strategy="simple").
        "pipeline_args": "".join(f", {k}={v!r}".replace("'", '"') for k, v in task.pipeline_kwargs.items()),
        "is_text": text,
        "input_kind": _input_kind(run),
    }


def _input_kind(run: RunFolder) -> str:
    return "text" if task_of(run).modality == "text" else "images"
