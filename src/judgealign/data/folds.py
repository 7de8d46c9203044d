"""Grouped k-fold splits: items sharing an input (a group) always land in the same fold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from judgealign.data.item import Item
from judgealign.errors import ConfigError, DataError


def grouped_kfold(items: Sequence[Item], k: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Split items into ``k`` folds of whole groups; return ``(train_ids, test_ids)`` per fold.

    Groups are shuffled with ``seed``, then placed largest first into the fold with the fewest
    items so far, so folds are balanced by item count. Ids keep the order of ``items``.

    >>> items = [Item(id=f"i{n}", output="x", group=f"g{n // 2}") for n in range(6)]
    >>> [len(test) for _, test in grouped_kfold(items, 3, seed=0)]
    [2, 2, 2]
    """
    if k < 2:
        raise ConfigError(f"k={k} folds is too few; cross-validation needs k >= 2")
    sizes: dict[str, int] = {}
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DataError(f"duplicate item id {item.id!r}; give every item a unique id")
        seen.add(item.id)
        sizes[item.group_id] = sizes.get(item.group_id, 0) + 1
    groups = list(sizes)
    if k > len(groups):
        raise DataError(
            f"k={k} folds need at least {k} groups, but the items have {len(groups)}; "
            "lower k or add items"
        )
    shuffled = [groups[int(i)] for i in np.random.default_rng(seed).permutation(len(groups))]
    # Stable sort: equal-sized groups keep their shuffled order, so the seed still matters.
    shuffled.sort(key=lambda g: -sizes[g])
    fold_of: dict[str, int] = {}
    counts = [0] * k
    for group in shuffled:
        fold = counts.index(min(counts))
        fold_of[group] = fold
        counts[fold] += sizes[group]
    splits: list[tuple[list[str], list[str]]] = []
    for fold in range(k):
        test = [it.id for it in items if fold_of[it.group_id] == fold]
        train = [it.id for it in items if fold_of[it.group_id] != fold]
        splits.append((train, test))
    return splits


def inner_group_folds(groups: Sequence[str], k: int, seed: int) -> np.ndarray | None:
    """Fold number per row for held-out checks inside training labels: whole groups per
    fold, up to ``k`` folds dealt round-robin in a seeded order; ``None`` with < 2 groups.

    >>> inner_group_folds(["a", "a", "b", "c"], 5, seed=0).tolist()
    [1, 1, 2, 0]
    """
    names = sorted(set(groups))
    if len(names) < 2:
        return None
    order = np.random.default_rng(seed).permutation(len(names))
    n_folds = min(k, len(names))
    fold_of = {names[g]: rank % n_folds for rank, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups])
