"""Grouped k-fold splits."""

from __future__ import annotations

import pytest

from judgealign.data.folds import grouped_kfold
from judgealign.data.item import Item
from judgealign.errors import ConfigError, DataError


def items_with_groups(sizes: list[int]) -> list[Item]:
    return [
        Item(id=f"g{g}-{i}", output="x", group=f"g{g}")
        for g, size in enumerate(sizes)
        for i in range(size)
    ]


SIZES = [5, 1, 3, 3, 2, 8, 1, 1, 4, 2, 6, 2, 3, 1, 1]


def test_groups_never_split_and_every_item_tested_once() -> None:
    items = items_with_groups(SIZES)
    folds = grouped_kfold(items, 4, seed=3)
    group_of = {it.id: it.group_id for it in items}
    tested = [i for _, test in folds for i in test]
    assert sorted(tested) == sorted(it.id for it in items)
    for train, test in folds:
        assert set(train) | set(test) == set(group_of)
        assert not {group_of[i] for i in train} & {group_of[i] for i in test}


def test_deterministic_for_a_seed_and_seed_matters() -> None:
    items = items_with_groups(SIZES)
    assert grouped_kfold(items, 3, seed=1) == grouped_kfold(items, 3, seed=1)
    variants = {str(grouped_kfold(items, 3, seed=s)) for s in range(10)}
    assert len(variants) > 1


def test_folds_are_balanced_by_item_count() -> None:
    items = items_with_groups([1] * 40 + [3] * 10)
    sizes = [len(test) for _, test in grouped_kfold(items, 5, seed=0)]
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == 70


def test_bad_k() -> None:
    items = items_with_groups([2, 2, 2])
    with pytest.raises(ConfigError, match="k >= 2"):
        grouped_kfold(items, 1, seed=0)
    with pytest.raises(DataError, match="need at least 4 groups, but the items have 3"):
        grouped_kfold(items, 4, seed=0)
