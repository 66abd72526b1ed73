"""``gradual`` (gradual unfreezing): only the new head trains in the first epoch, then one more block from the top
joins each epoch, the embeddings last. Every parameter that trains at some point is in the optimizer from the
start; the epoch hook decides which of them get gradients."""

from __future__ import annotations

from hubtransfer.strategies.base import Strategy, block_depths


class Gradual(Strategy):
    name = "gradual"
    one_process = True
    grows_during_training = True

    def describe(self) -> str:
        return (
            "gradual unfreezing: only the new head trains in the first epoch, "
            "then one more block from the top joins each epoch"
        )

    def trainable(self, model) -> set[str]:
        return {n for n, _ in model.named_parameters()}

    def on_epoch(self, model, epoch: int) -> int:
        """In epoch e (from 0) the head and the top e blocks train; returns how many parameters train."""
        depths = block_depths(model)
        for name, p in model.named_parameters():
            p.requires_grad = depths[name] <= epoch
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
