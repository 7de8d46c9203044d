"""``load_labels``: expert labels pointed at the items they grade, ready for ``fit``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from judgealign.data.item import Item
from judgealign.data.items_io import resolve_item_ref
from judgealign.data.label import Label
from judgealign.data.labels_io import read_labels
from judgealign.data.mlflow_traces import is_mlflow_ref, read_traces
from judgealign.errors import DataError
from judgealign.rubric.model import Rubric


def load_labels(
    path: str | Path,
    rubric: Rubric,
    items: Sequence[Item] | None = None,
    *,
    dimensions: Sequence[str] | None = None,
) -> list[Label]:
    """Read a labels file (JSONL or CSV), or the expert feedback on MLflow traces
    (``"mlflow:experiment=NAME"``, see ``judgealign.data.mlflow_traces``), checked against
    ``rubric``.

    With ``items``, each label is pointed at its item's id (labels may name items by path
    or file name) and labels of other items are left out (scoring a subset is fine). Only
    ``dimensions`` are kept when given; the file is still checked against the whole rubric,
    so a labels file covering every dimension serves a run on some of them. Bad lines are
    one-line DataErrors naming the file and line.

    >>> import judgealign as ja
    >>> from judgealign.demo import demo_labels_path, demo_notebooks_dir
    >>> rubric = ja.load_rubric("ml-notebook")
    >>> items = ja.load_items([demo_notebooks_dir()])
    >>> labels = ja.load_labels(demo_labels_path(), rubric, items, dimensions=["model_use"])
    >>> {lb.dimension for lb in labels}
    {'model_use'}
    """
    if is_mlflow_ref(str(path)):
        labels = read_traces(str(path), rubric).labels
    else:
        labels = read_labels(path, rubric)
    if items is not None:
        out: list[Label] = []
        for lb in labels:
            try:
                item = resolve_item_ref(lb.item, items)
            except DataError:
                continue
            out.append(lb if item.id == lb.item else lb.model_copy(update={"item": item.id}))
        labels = out
    if dimensions is not None:
        for d in dimensions:
            rubric.dimension(d)
        wanted = set(dimensions)
        labels = [lb for lb in labels if lb.dimension in wanted]
    return labels
