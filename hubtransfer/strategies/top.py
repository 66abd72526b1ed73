"""``top:K``: the last K blocks of the backbone, whatever follows them (final norm, top conv) and the head train."""

from __future__ import annotations

from hubtransfer.errors import StrategyError
from hubtransfer.strategies.base import Strategy, block_depths, find_blocks, head_parameters


class TopBlocks(Strategy):
    name = "top"
    takes_k = True

    def describe(self) -> str:
        return f"the top {self.k} blocks of the backbone and the new head train, the rest is frozen"

    def trainable(self, model) -> set[str]:
        n = len(find_blocks(model)[1])
        if self.k > n:
            raise StrategyError(
                f"strategy top:{self.k} asks for more blocks than the backbone has ({n}); use top:{n} or full"
            )
        return set(head_parameters(model)) | {name for name, depth in block_depths(model).items() if depth <= self.k}
