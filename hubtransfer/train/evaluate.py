"""Evaluation over a whole split, gathered across processes, and handing freed heap back after it."""

from __future__ import annotations

import ctypes
import functools

import numpy as np
import torch
from accelerate import Accelerator


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, scorer) -> dict:
    """Metrics over a whole split, gathered across processes, as the task's ``scorer`` computes them
    (see :class:`hubtransfer.metrics.ClassificationScorer`). Returns metrics + predictions + references."""
    model.eval()
    preds, refs = [], []
    for batch in loader:
        labels = batch.pop("labels")
        p, r = scorer.reduce(model(**batch).logits, labels)
        if p.ndim > 1:  # per-token outputs: sequence lengths differ between processes
            p, r = (
                accelerator.pad_across_processes(p, dim=1, pad_index=-100),
                accelerator.pad_across_processes(r, dim=1, pad_index=-100),
            )
        p, r = accelerator.gather_for_metrics((p, r))
        preds.append(p.cpu().numpy())
        refs.append(r.cpu().numpy())
    release_free_heap()
    return scorer.score(preds, refs)


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc's ``malloc_trim``; a no-op elsewhere).

    Evaluation frees blocks of other sizes than a training step's; without this the steps after an
    evaluation grow the heap around them (the MiniLM case of scripts/bench_trainer.py peaked about 50 MB
    lower with it in two one-off runs). Costs a few milliseconds per evaluation."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def seconds_to_target(history: list[dict], metric: str, target: float) -> float | None:
    """Training seconds (evaluations excluded) until the validation metric first reached ``target``."""
    for rec in history:
        if rec["validation"].get(metric, -np.inf) >= target:
            return rec.get("train_seconds")
    return None
