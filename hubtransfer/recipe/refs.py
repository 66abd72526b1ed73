"""What a recipe's names become when it loads: the problem type (an enum) and the strategy (:class:`StrategyRef`).

This is the one parser of the strategy syntax, ``name`` or ``name:K`` (``top:2``). Which names exist, and whether
one takes ``K``, is the strategies registry's to say (:func:`hubtransfer.strategies.get_strategy`); the recipe only
reads the syntax, so it imports none of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_SYNTAX = re.compile(r"^([a-z][a-z0-9-]*)(?::(\d+))?$")


@dataclass(frozen=True)
class StrategyRef:
    name: str
    k: int | None = None

    def __str__(self) -> str:
        return self.name if self.k is None else f"{self.name}:{self.k}"


def parse_strategy_ref(value) -> StrategyRef:
    """``'full'`` -> StrategyRef('full'); ``'top:2'`` -> StrategyRef('top', 2). Text of neither form is kept whole as a
    name, which no strategy has: the registry's check then lists the forms there are."""
    if isinstance(value, StrategyRef):
        return value
    if not isinstance(value, str):
        raise ValueError(f"strategy must be a name or name:K (e.g. full, head, top:2), got {value!r}")
    m = _SYNTAX.match(value.strip())
    if not m:
        return StrategyRef(value.strip())
    return StrategyRef(m.group(1), int(m.group(2)) if m.group(2) is not None else None)


class ProblemType(StrEnum):
    """The recipe's ``problem``: one label per input, any number of labels, or one number."""

    SINGLE_LABEL = "single-label"
    MULTI_LABEL = "multi-label"
    REGRESSION = "regression"

    def __str__(self) -> str:
        return self.value
