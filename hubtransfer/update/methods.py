"""What the methods add to plain fine-tuning: the previous version's outputs as soft targets (distill) and the choice
of the weight average (interpolate)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

from hubtransfer.train.evaluate import evaluate
from hubtransfer.update.model import interpolate

logger = logging.getLogger(__name__)


class SoftTargets:
    """Learning without forgetting: a loss term pulling the new version's scores for the previous labels towards the
    previous version's on the same (new) inputs, softened by ``temperature`` (scaled by its square, so its gradients
    keep their size as the temperature changes)."""

    def __init__(self, teacher: nn.Module, old_labels: int, weight: float, temperature: float, accelerator):
        self.teacher = teacher.to(accelerator.device).eval().requires_grad_(False)
        self.old, self.weight, self.t, self.accelerator = old_labels, weight, temperature, accelerator

    def __call__(self, logits: torch.Tensor, inputs: dict) -> torch.Tensor:
        with torch.no_grad(), self.accelerator.autocast():
            target = self.teacher(**inputs).logits[:, : self.old].float()
        student = logits[:, : self.old].float()
        kl = F.kl_div(
            F.log_softmax(student / self.t, dim=-1),
            F.log_softmax(target / self.t, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        return self.weight * self.t**2 * kl


@torch.no_grad()
def choose_alpha(model, start: dict, alphas: list[float], loader, accelerator, scorer, metric: str) -> dict:
    """Try each weight average of ``start`` and the trained weights on ``loader`` (old and new validation); leave
    the best in ``model``. Ties go to the larger alpha (closer to the trained model)."""
    unwrapped = accelerator.unwrap_model(model)
    trained = {k: v.detach().clone() for k, v in unwrapped.state_dict().items()}
    scores = {}
    for alpha in alphas:
        interpolate(unwrapped, start, trained, alpha)
        scores[alpha] = evaluate(model, loader, accelerator, scorer)["metrics"][metric]
    best = max(alphas, key=lambda a: (scores[a], a))
    interpolate(unwrapped, start, trained, best)
    logger.info(
        "interpolate: alpha %g (validation %s %s)", best, metric, {f"{a:g}": round(v, 4) for a, v in scores.items()}
    )
    return {"alpha": best, "metric": metric, "scores": {f"{a:g}": v for a, v in scores.items()}}
