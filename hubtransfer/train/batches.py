"""Batches: seeded shuffled batches, length-grouped for text (less padding), and the loaders of a run."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Sampler, Subset

from hubtransfer.recipe.schema import Recipe


class ShuffledBatches(Sampler[list[int]]):
    """Seeded shuffled batches; with ``lengths``, similar lengths share a batch (less padding).

    Grouping sorts within mega-batches of ``50 * batch_size`` random examples, then shuffles the
    order of the batches, so the model never sees a length-sorted epoch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, lengths: list[int] | None = None, mega: int = 50):
        self.n, self.batch_size, self.seed, self.lengths, self.mega = n, batch_size, seed, lengths, mega
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        if self.lengths is not None:
            size = self.batch_size * self.mega
            order = [
                i for s in range(0, self.n, size) for i in sorted(order[s : s + size], key=lambda i: -self.lengths[i])
            ]
        batches = [order[s : s + self.batch_size] for s in range(0, self.n, self.batch_size)]
        if self.lengths is not None:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
            # The longest batch first: memory reaches its peak at step one (an out-of-memory error comes at
            # once, not hours in) and the shorter batches after it reuse those blocks.
            longest = max(range(len(batches)), key=lambda b: max(self.lengths[i] for i in batches[b]))
            batches[0], batches[longest] = batches[longest], batches[0]
        return iter(batches)


def make_loaders(encoded: dict, collate, recipe: Recipe) -> dict:
    t = recipe.train
    train = encoded["train"]
    lengths = getattr(train, "lengths", None) if t.group_by_length else None
    sampler = ShuffledBatches(len(train), t.batch_size, t.seed, lengths)
    # A generator of their own: creating an iterator then takes no draw from the global RNG, so dropout
    # masks do not depend on when iterators are made (a resumed run makes one mid-epoch).
    generator = torch.Generator().manual_seed(t.seed)
    own = dict(collate_fn=collate, num_workers=t.num_workers, generator=generator)
    loaders = {"train": DataLoader(train, batch_sampler=sampler, **own)}
    for split in ("validation", "test"):
        loaders[split] = eval_loader(encoded[split], collate, recipe, generator)
    return loaders


def eval_loader(ds, collate, recipe: Recipe, generator: torch.Generator | None = None) -> DataLoader:
    """Batches of an evaluation split, in a fixed order: longest first for text (the same results, less padding).
    ``generator``: the run's loaders share one (see :func:`make_loaders`); by default one seeded by the recipe."""
    if getattr(ds, "lengths", None) is not None:
        ds = Subset(ds, sorted(range(len(ds)), key=lambda i: -ds.lengths[i]))
    t = recipe.train
    generator = generator or torch.Generator().manual_seed(t.seed)
    return DataLoader(
        ds,
        batch_size=t.eval_batch_size,
        shuffle=False,
        collate_fn=collate,
        num_workers=t.num_workers,
        generator=generator,
    )
