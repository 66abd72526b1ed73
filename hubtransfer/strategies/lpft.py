"""``lp-ft`` (linear probing, then fine-tuning): the new head alone first (``train.probe_epochs`` at
``train.probe_lr``, on cached features), then everything from there, so the backbone's first updates come from a
head that already fits instead of a random one. It plans as ``full`` (the state after the probe); the flow runs
the probe phase before the loop (:func:`hubtransfer.run.finetune`)."""

from __future__ import annotations

from hubtransfer.strategies.full import Full


class LinearProbeThenFinetune(Full):
    name = "lp-ft"
    needs_probe = True

    def describe(self) -> str:
        return (
            "linear probing, then fine-tuning: first only the new head trains on the frozen backbone, "
            "then every weight trains from there"
        )
