"""``head``: the backbone stays frozen and only the new head trains (little data). Its inputs never change, so the
flow caches them (``train.cache_features``) and trains the head on the cached vectors."""

from __future__ import annotations

from hubtransfer.strategies.base import Strategy, head_parameters


class Head(Strategy):
    name = "head"
    head_only = True
    lr_family = "head"

    def describe(self) -> str:
        return "backbone frozen, only the new head trains"

    def trainable(self, model) -> set[str]:
        return set(head_parameters(model))
