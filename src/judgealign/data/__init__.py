"""Items, labels, their readers and writers, and grouped cross-validation folds."""

from judgealign.data.folds import grouped_kfold
from judgealign.data.item import Item
from judgealign.data.items_io import ItemIndex, load_items, resolve_item_ref, save_items_jsonl
from judgealign.data.label import Label
from judgealign.data.labels_io import read_labels, validate_labels, write_labels
from judgealign.data.ratings import RatingsDataset, load_ratings, rubric_for_ratings

__all__ = [
    "Item",
    "ItemIndex",
    "Label",
    "RatingsDataset",
    "grouped_kfold",
    "load_items",
    "load_ratings",
    "read_labels",
    "resolve_item_ref",
    "rubric_for_ratings",
    "save_items_jsonl",
    "validate_labels",
    "write_labels",
]
