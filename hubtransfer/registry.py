"""A registry that fails loudly: duplicate names are refused and unknown names get a did-you-mean."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object map for one kind of thing (tasks, metrics, heads).

    Example:
        >>> r = Registry("metric"); r.register("accuracy", 1)
        >>> r.get("acuracy")
        Traceback (most recent call last):
        ValueError: Unknown metric 'acuracy'. Did you mean 'accuracy'? Known: ['accuracy']
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is already registered; pick another name")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            guess = difflib.get_close_matches(str(name), self._items, n=1, cutoff=0.5)
            dym = f" Did you mean '{guess[0]}'?" if guess else ""
            raise ValueError(f"Unknown {self.kind} '{name}'.{dym} Known: {sorted(self._items)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
