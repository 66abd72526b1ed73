"""Strategies: what trains, and when. One module per strategy, each a :class:`~hubtransfer.strategies.base.Strategy`
registered here by name; the recipe's ``strategy`` (``name`` or ``name:K``) becomes one object, once.

Adding a strategy: a module with its ``Strategy`` subclass, and one line below.
"""

from __future__ import annotations

from hubtransfer.recipe.refs import StrategyRef, parse_strategy_ref
from hubtransfer.registry import Registry
from hubtransfer.strategies.base import Strategy, freeze
from hubtransfer.strategies.full import Full
from hubtransfer.strategies.gradual import Gradual
from hubtransfer.strategies.head import Head
from hubtransfer.strategies.lora import LoRA
from hubtransfer.strategies.lpft import LinearProbeThenFinetune
from hubtransfer.strategies.top import TopBlocks

STRATEGIES: Registry[type[Strategy]] = Registry("strategy")
ORDER = (Head, TopBlocks, Full, LinearProbeThenFinetune, Gradual, LoRA)  # as messages and the docs list them
for _cls in ORDER:
    STRATEGIES.register(_cls.name, _cls)


def get_strategy(ref: StrategyRef | str) -> Strategy:
    """The strategy a recipe names (``'top:2'`` or its parsed :class:`StrategyRef`); ValueError with the forms it
    takes."""
    ref = parse_strategy_ref(ref)
    cls = STRATEGIES.get(ref.name) if ref.name in STRATEGIES else None
    if cls is None or cls.takes_k != (ref.k is not None) or (ref.k is not None and ref.k < 1):
        forms = [f"'{c.name}:K' (K >= 1, e.g. {c.name}:2)" if c.takes_k else f"'{c.name}'" for c in ORDER]
        raise ValueError(f"strategy '{ref}' is not one of {', '.join(forms[:-1])} or {forms[-1]}")
    return cls(ref.k)


def apply_strategy(model, ref: StrategyRef | str) -> dict:
    """Freeze ``model`` as the strategy says (not ``lora``, which wraps the model: :meth:`Strategy.prepare`); returns
    the counts the logs and the card report."""
    strategy = get_strategy(ref)
    return freeze(model, strategy.trainable(model), str(strategy))
