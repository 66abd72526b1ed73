"""The run record (``hubtransfer_run.json``): what a finished run was and gave, as typed fields.

Training fills it, the run folder stores it, and the card and ``hubtransfer push`` read it back: they use
fields, not dictionary keys. The JSON keeps the keys and their order (older run folders load too: a key they
lack takes its default).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hubtransfer.files import RUN_MARKER
from hubtransfer.save.environment import cpu_flags, cpu_model


@dataclass
class StrategyPlan:
    """What trains: the strategy and the trainable share (of the original network: peft's copies not counted twice)."""

    strategy: str
    trainable_params: int
    total_params: int
    trainable_share: float
    adapter: dict | None = None  # a LoRA run's adapter: method, r, alpha, targets, modules_to_save, merged


@dataclass
class RunMetrics:
    test: dict
    validation_best: dict | None = None
    best_step: int | None = None
    test_per_label: dict | None = None  # multi-label: F1, threshold and support per label
    test_per_class: dict | None = None  # single-label: precision, recall, F1 and support per class
    baseline: dict | None = None  # the classical baseline on the same split (no timing: two runs give equal files)
    linear_probe: dict | None = None  # logistic regression on the pretrained backbone's features; kept: it is the model
    diagnostics: list[dict] | None = None  # the run's checks on itself that fired


@dataclass
class Training:
    steps: int = 0
    stopped_early: bool = False
    train_seconds: float | None = None
    wall_seconds: float | None = None
    train_samples_per_second: float | None = None
    lr: float | None = None
    lr_search: dict | None = None
    precision: str = "not recorded"
    precision_reason: str = "reason not recorded"
    features: dict | None = None  # head-only runs: the cached feature pass
    probe: dict | None = None  # lp-ft: the head-only first phase


@dataclass(kw_only=True)
class RunRecord:
    task: str
    base_model: str
    base_model_revision: str = "main"
    init: str = "pretrained"
    data: dict  # split.json: source, sizes, labels, duplicates, fractions...
    strategy: StrategyPlan
    metrics: RunMetrics
    training: Training = field(default_factory=Training)
    choices: list[dict] = field(default_factory=list)  # what the run chose from the data ('auto' keys), with reasons
    environment: dict = field(default_factory=dict)
    baseline: dict | None = None  # as in metrics, with the seconds it took
    linear_probe: dict | None = None  # as in metrics, with the seconds it took; None: not fitted
    diagnostics: list[dict] | None = None  # None: a record from before the run checked itself
    card: dict = field(default_factory=dict)  # licence and base model Hub id, so a later push can rebuild the card
    release: dict | None = None  # recipe hash, data fingerprint, base revision sha (hubtransfer.save.release)
    update: dict | None = None  # an update: both versions on the old and new tests, forgetting (hubtransfer.update)
    pushed: dict | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        for section in (
            "strategy",
            "metrics",
            "training",
        ):  # optional keys absent rather than null, as they always were
            optional = {f.name for f in fields(type(getattr(self, section))) if f.default is None}
            out[section] = {
                k: v for k, v in out[section].items() if not (k in optional and v is None and k not in _NULLABLE)
            }
        for optional in ("pushed", "release", "update", "linear_probe"):
            if out[optional] is None:
                out.pop(optional)
        return out

    def save(self, folder: Path) -> None:
        (folder / RUN_MARKER).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict) -> RunRecord:
        parts = {"strategy": StrategyPlan, "metrics": RunMetrics, "training": Training}
        kwargs = {k: v for k, v in d.items() if k in {f.name for f in fields(cls)}}
        for key, kind in parts.items():
            known = {f.name for f in fields(kind)}
            kwargs[key] = kind(**{k: v for k, v in (d.get(key) or {}).items() if k in known})
        return cls(**kwargs)

    @classmethod
    def load(cls, folder: Path) -> RunRecord:
        return cls.from_dict(json.loads((folder / RUN_MARKER).read_text(encoding="utf-8")))


# Kept as null when empty: readers of older records expect the key (validation_best, best_step, the lr fields).
_NULLABLE = {
    "validation_best",
    "best_step",
    "baseline",
    "diagnostics",
    "lr",
    "lr_search",
    "train_seconds",
    "wall_seconds",
    "train_samples_per_second",
}


def environment() -> dict:
    """Library versions and the machine (CPU model and its bf16 flags, threads, GPU) of a run."""
    import accelerate
    import datasets
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "datasets": datasets.__version__,
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "bf16_flags": cpu_flags(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
