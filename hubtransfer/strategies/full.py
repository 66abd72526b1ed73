"""``full``: every weight of the backbone and the head trains."""

from __future__ import annotations

from hubtransfer.strategies.base import Strategy


class Full(Strategy):
    name = "full"

    def describe(self) -> str:
        return "every weight of the backbone and the head trains"

    def trainable(self, model) -> set[str]:
        return {n for n, _ in model.named_parameters()}
