"""A labelling session: items, a rubric, raters, their label store and the judges; no HTTP.

Labels live in a ``LabelStore`` (SQLite, WAL) whose export is the labels file the other
commands read; any number of sessions, threads and processes may save into one at once.
Each rater sees only their own labels while labelling (independent labels make agreement
meaningful); ``agreement`` puts the raters side by side for adjudication.

>>> import tempfile
>>> from pathlib import Path
>>> from judgealign.data.item import Item
>>> from judgealign.rubric import load_rubric
>>> folder = Path(tempfile.mkdtemp())
>>> items = [Item(id="a/1", output="print(1)")]
>>> s = LabellingSession(items, load_rubric("ml-notebook"), folder / "labels.jsonl").load()
>>> s.save("a/1", "model_use", 2, "fits then predicts").id
'a/1::model_use::expert'
>>> [lb.score for lb in LabellingSession(items, s.rubric, folder / "labels.jsonl").load().labels]
[2.0]
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from judgealign.data.item import Item
from judgealign.data.items_io import ItemIndex
from judgealign.data.label import Label
from judgealign.data.labels_io import DEFAULT_RATER
from judgealign.errors import ConfigError, DataError
from judgealign.evaluation.reliability import human_human_mae, krippendorff_alpha
from judgealign.judge.judgement import Judgement
from judgealign.labelling.judges import (
    JudgeSource,
    read_judgements,
    spread_of_probs,
    spread_of_scores,
)
from judgealign.labelling.store import (
    ADJUDICATED_RATER,
    MEAN_RATER,
    Adjudication,
    Change,
    LabelStore,
)
from judgealign.rubric.model import Rubric, Scale

__all__ = [
    "Agreement",
    "ItemSummary",
    "ItemView",
    "JudgeView",
    "LabellingSession",
    "Order",
    "SessionState",
    "read_judgements",
]

LABEL_SUFFIXES = (".jsonl", ".ndjson", ".csv")
# The expert reads the whole item, not the judge's budgeted excerpt.
DISPLAY_BUDGET_TOKENS = 1_000_000
# Judges with a score blend or calibration give fractional scores: closer than this counts
# as agreement.
AGREEMENT_TOLERANCE = 0.5
#: A justification is a paragraph or a page, never a pasted notebook.
MAX_RATIONALE_CHARS = 20_000
MAX_RATER_CHARS = 64
RESERVED_RATERS = (ADJUDICATED_RATER, MEAN_RATER)

Order = Literal["file", "disagreements", "uncertain"]
ORDERS: tuple[Order, ...] = ("file", "disagreements", "uncertain")


def check_rater(name: str) -> str:
    """A rater name as stored on every label: non-empty, short, no ``::``, not reserved.

    >>> check_rater(" ann ")
    'ann'
    """
    rater = name.strip()
    if not rater or "::" in rater or len(rater) > MAX_RATER_CHARS or not rater.isprintable():
        raise ConfigError(
            f"--rater {name!r}: give a printable name without '::', at most "
            f"{MAX_RATER_CHARS} characters"
        )
    if rater in RESERVED_RATERS:
        raise ConfigError(f"--rater {name!r}: that name is reserved; pick another")
    return rater


class ItemSummary(BaseModel):
    """One row of the item list: how far this rater got, where the judge differs, and how
    unsure the judges are on what is left (0-1, None without judges' information)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    labelled: int
    total: int
    disagreements: int = 0
    uncertainty: float | None = None


class JudgeView(BaseModel):
    """What a judge said on one dimension (``score`` is None when it failed)."""

    model_config = ConfigDict(frozen=True)

    score: float | None
    rationale: str = ""
    error: str | None = None
    model: str = ""
    name: str = ""
    uncertainty: float | None = None


class ItemView(BaseModel):
    """One item as the page shows it: its text (and HTML for notebooks), this rater's labels
    and the judges' scores (``judgements``: the main judge; ``judges``: all of them)."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    kind: str
    text: str
    html: str | None = None
    labels: dict[str, Label]
    judgements: dict[str, JudgeView]
    judges: dict[str, list[JudgeView]] = {}


class SessionState(BaseModel):
    """The rubric, the item list with progress, and who is labelling."""

    model_config = ConfigDict(frozen=True)

    rater: str
    labels_path: str
    rubric_id: str
    rubric_name: str
    dimensions: list[dict[str, object]]
    items: list[ItemSummary]
    labelled: int
    total: int
    has_judgements: bool
    judges: list[str] = []
    raters: list[str] = []


class RaterScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    rater: str
    score: float
    rationale: str


class Disagreement(BaseModel):
    """An item the raters scored apart, with each one's score and justification."""

    model_config = ConfigDict(frozen=True)

    item: str
    title: str
    spread: float
    scores: list[RaterScore]
    adjudication: Adjudication | None = None


class Agreement(BaseModel):
    """How far the raters agree on one dimension, and where they do not.

    ``mae`` is each rater against the mean of the others (the human-human line reports
    print), ``pairwise_mae`` the mean gap between two raters; both over items with at least
    two applicable scores (``n_items``). Krippendorff's alpha (interval and ordinal) treat
    N/A as missing; ``na_agreement`` is the share of items with two or more raters where
    they agree on whether the dimension applies.
    """

    model_config = ConfigDict(frozen=True)

    dimension: str
    name: str
    raters: list[str]
    n_items: int
    n_labelled_twice: int
    mae: float | None
    pairwise_mae: float | None
    alpha_interval: float | None
    alpha_ordinal: float | None
    na_agreement: float | None
    disagreements: list[Disagreement]
    adjudicated: int


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


class LabellingSession:
    """Raters labelling ``items`` on ``rubric``'s dimensions into ``labels_path``.

    ``rater`` is who labels when a call names no one (a single-rater session); ``raters``
    lists everyone allowed (default: just ``rater``). ``file_rubric`` (default ``rubric``)
    validates the labels file: pass the full rubric when ``rubric`` is a subset, so labels on
    the other dimensions stay valid and untouched. ``judgements`` is the judge shown to the
    raters; ``judge_sources`` adds more (from ``read_judge_file``): the last source is the
    one shown, and all of them tell how unsure the judges are. Call ``load`` first; methods
    are safe to call from several threads.

    >>> from judgealign.rubric import load_rubric
    >>> s = LabellingSession([], load_rubric("ml-notebook"), Path("l.jsonl"), rater="ann")
    >>> s.rater
    'ann'
    """

    def __init__(
        self,
        items: Sequence[Item],
        rubric: Rubric,
        labels_path: Path,
        *,
        rater: str = DEFAULT_RATER,
        judgements: Sequence[Judgement] = (),
        file_rubric: Rubric | None = None,
        raters: Sequence[str] | None = None,
        judge_sources: Sequence[JudgeSource] = (),
        store_path: Path | None = None,
    ) -> None:
        self.items = list(items)
        self.rubric = rubric
        self.labels_path = Path(labels_path)
        self.rater = rater
        self.raters = list(raters) if raters is not None else None
        self.judgements = list(judgements)
        self.judge_sources = list(judge_sources)
        self.file_rubric = file_rubric or rubric
        self.store_path = store_path
        self._lock = threading.RLock()
        self._index = ItemIndex([])
        self._by_id: dict[str, Item] = {}
        self._refs: dict[str, str | None] = {}
        self._judges: dict[tuple[str, str], dict[str, JudgeView]] = {}
        self._judge_names: list[str] = []
        self._texts: dict[str, str] = {}
        self._html: dict[str, str] = {}
        self._saved: set[str] = set()
        self.store: LabelStore | None = None

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> Self:
        """Check the raters, index the items, open the store (DataError if the file is broken)."""
        self.rater = check_rater(self.rater)
        self.raters = [check_rater(r) for r in (self.raters or [self.rater])]
        if self.labels_path.suffix.lower() not in LABEL_SUFFIXES:
            raise DataError(f"{self.labels_path}: labels must go to a .jsonl or .csv file")
        if not self.items:
            raise DataError("no items to label; give notebooks, folders or a .jsonl of items")
        with self._lock:
            self._index = ItemIndex(self.items)
            self._by_id = {it.id: it for it in self.items}
            self._refs = {}
            self._load_judges()
            if self.store is not None:
                self.store.close()
            self.store = LabelStore(
                self.labels_path,
                self.file_rubric,
                db_path=self.store_path,
                resolve=lambda ref: self._item_id(ref) or ref,
            ).open()
        return self

    def close(self) -> None:
        """Close the store (the labels file is always complete already)."""
        with self._lock:
            if self.store is not None:
                self.store.close()

    def _load_judges(self) -> None:
        sources = list(self.judge_sources)
        if self.judgements:
            main = JudgeSource("judge")
            for j in self.judgements:
                main.add(j, None)
            sources.append(main)
        self._judges = {}
        self._judge_names = []
        for source in sources:
            self._judge_names.append(source.name)
            for (ref, dim), j in source.judgements.items():
                item_id = self._item_id(ref)
                if item_id is None or dim not in self.rubric.dimension_ids:
                    continue
                scale = self.rubric.dimension(dim).scale
                probs = source.probs.get((ref, dim))
                spread = spread_of_probs(probs, scale) if probs else None
                view = JudgeView(
                    score=j.score,
                    rationale=j.rationale,
                    error=j.error,
                    model=j.model,
                    name=source.name,
                    uncertainty=None if spread is None else round(spread, 4),
                )
                self._judges.setdefault((item_id, dim), {})[source.name] = view

    def _item_id(self, ref: str) -> str | None:
        if ref in self._by_id:
            return ref
        if ref not in self._refs:
            try:
                self._refs[ref] = self._index.resolve(ref).id
            except DataError:
                self._refs[ref] = None  # a label or judgement of an item not being labelled
        return self._refs[ref]

    @property
    def _store(self) -> LabelStore:
        if self.store is None:
            raise RuntimeError("call load() before using the session")
        return self.store

    def _who(self, rater: str | None) -> str:
        who = self.rater if rater is None else rater
        if self.raters is not None and who not in self.raters:
            raise ConfigError(f"rater {who!r} is not part of this session")
        return who

    def _mine(self, rater: str) -> dict[tuple[str, str], Label]:
        """(item id, dimension) -> this rater's label, on the loaded items and shown dims."""
        out: dict[tuple[str, str], Label] = {}
        for lb in self._store.labels():
            if lb.rater != rater or lb.dimension not in self.rubric.dimension_ids:
                continue
            item_id = self._item_id(lb.item)
            if item_id is not None:
                out.setdefault((item_id, lb.dimension), lb.model_copy(update={"item": item_id}))
        return out

    # -- reading ----------------------------------------------------------------------------
    @property
    def labels(self) -> list[Label]:
        """The default rater's labels on the loaded items and shown dimensions."""
        return self.labels_of(self.rater)

    def labels_of(self, rater: str) -> list[Label]:
        with self._lock:
            return list(self._mine(rater).values())

    @property
    def saved_count(self) -> int:
        """How many distinct labels were saved (or changed) through this session."""
        return len(self._saved)

    def item(self, ref: str) -> Item:
        """The item ``ref`` names; DataError naming example ids otherwise."""
        found = self._by_id.get(ref)
        return found if found is not None else self._index.resolve(ref)

    def title(self, item: Item) -> str:
        title = item.metadata.get("title")
        return title if isinstance(title, str) and title.strip() else item.id

    def text(self, item: Item) -> str:
        """The item rendered as the judge renders it (notebooks as numbered cells)."""
        from judgealign.render import render_item

        with self._lock:
            if item.id not in self._texts:
                self._texts[item.id] = render_item(item, budget_tokens=DISPLAY_BUDGET_TOKENS)
            return self._texts[item.id]

    def html(self, item: Item) -> str | None:
        """A notebook as a person reads it (rendered, highlighted, with plots); None for text."""
        if item.kind != "notebook":
            return None
        from judgealign.render.notebook_html import notebook_to_html

        with self._lock:
            if item.id not in self._html:
                self._html[item.id] = notebook_to_html(item.output, source=item.path or item.id)
            return self._html[item.id]

    def _main_judge(self, key: tuple[str, str]) -> JudgeView | None:
        found = self._judges.get(key)
        if not found:
            return None
        for name in reversed(self._judge_names):
            if name in found:
                return found[name]
        return None

    def disagrees(self, label: Label, judgement: Judgement | JudgeView | None) -> bool:
        """Whether the judge scored this label's dimension differently (N/A vs score counts)."""
        if judgement is None or judgement.error is not None or judgement.score is None:
            return False
        scale = self.rubric.dimension(label.dimension).scale
        if scale.is_na(label.score) or scale.is_na(judgement.score):
            return scale.is_na(label.score) != scale.is_na(judgement.score)
        return abs(label.score - judgement.score) >= AGREEMENT_TOLERANCE

    def uncertainty(self, item_id: str, dimension: str) -> float | None:
        """How unsure the judges are on one item and dimension (0-1): the spread of a judge's
        score distribution where known, otherwise how far the judges' scores are apart."""
        views = list(self._judges.get((item_id, dimension), {}).values())
        scale: Scale = self.rubric.dimension(dimension).scale
        found = [v.uncertainty for v in views if v.uncertainty is not None]
        scores = [v.score for v in views if v.error is None and v.score is not None]
        between = spread_of_scores(scores, scale)
        if between is not None:
            found.append(between)
        return max(found) if found else None

    def _summary(self, item: Item, mine: Mapping[tuple[str, str], Label]) -> ItemSummary:
        keys = [(item.id, d) for d in self.rubric.dimension_ids]
        labelled = {k: mine[k] for k in keys if k in mine}
        differ = sum(self.disagrees(lb, self._main_judge(k)) for k, lb in labelled.items())
        left = [self.uncertainty(*k) for k in keys if k not in labelled]
        known = [u for u in left if u is not None]
        return ItemSummary(
            id=item.id,
            title=self.title(item),
            labelled=len(labelled),
            total=len(keys),
            disagreements=differ,
            uncertainty=round(max(known), 4) if known else None,
        )

    def summary(self, item: Item, rater: str | None = None) -> ItemSummary:
        with self._lock:
            return self._summary(item, self._mine(self._who(rater)))

    def ordered(self, order: Order = "file", rater: str | None = None) -> list[ItemSummary]:
        """Item rows in load order; with the most judge disagreements first; or with what
        the judges are least sure of first (items this rater finished go last).

        Ties keep the load order.
        """
        with self._lock:
            mine = self._mine(self._who(rater))
        rows = [self._summary(it, mine) for it in self.items]
        if order == "disagreements":
            rows.sort(key=lambda row: -row.disagreements)  # sort is stable
        elif order == "uncertain":
            rows.sort(key=lambda r: (r.labelled == r.total, -(r.uncertainty or 0.0)))
        elif order != "file":
            raise DataError(f"order {order!r} is not one of {', '.join(ORDERS)}")
        return rows

    def state(self, order: Order = "file", rater: str | None = None) -> SessionState:
        who = self._who(rater)
        rows = self.ordered(order, who)
        return SessionState(
            rater=who,
            labels_path=str(self.labels_path),
            rubric_id=self.rubric.id,
            rubric_name=self.rubric.name,
            dimensions=[d.model_dump(mode="json") for d in self.rubric.dimensions],
            items=rows,
            labelled=sum(r.labelled for r in rows),
            total=sum(r.total for r in rows),
            has_judgements=bool(self._judges),
            judges=list(self._judge_names),
            raters=list(self.raters or [self.rater]),
        )

    def view(self, ref: str, rater: str | None = None) -> ItemView:
        """Everything the page shows for one item."""
        who = self._who(rater)
        item = self.item(ref)
        dims = self.rubric.dimension_ids
        with self._lock:
            mine = self._mine(who)
        labels = {d: mine[(item.id, d)] for d in dims if (item.id, d) in mine}
        main: dict[str, JudgeView] = {}
        every: dict[str, list[JudgeView]] = {}
        for d in dims:
            found = self._judges.get((item.id, d))
            if not found:
                continue
            primary = self._main_judge((item.id, d))
            if primary is not None:
                main[d] = primary
            every[d] = [found[n] for n in self._judge_names if n in found]
        return ItemView(
            id=item.id,
            title=self.title(item),
            kind=item.kind,
            text=self.text(item),
            html=self.html(item),
            labels=labels,
            judgements=main,
            judges=every,
        )

    # -- writing ----------------------------------------------------------------------------
    def check_score(self, dimension: str, score: object, where: str = "") -> float:
        """A level of the dimension's scale or its N/A value; DataError otherwise."""
        scale = self.rubric.dimension(dimension).scale  # ConfigError names the known ones
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise DataError(
                f"{where}score {score!r} is not a number; give a level of {dimension!r}"
            )
        if not math.isfinite(score):
            raise DataError(f"{where}score {score!r} is not a finite number; give a level")
        value = float(score)
        na = f" or {scale.na_value} (N/A)" if scale.na_value is not None else ""
        if not (scale.is_na(value) or scale.min <= value <= scale.max):
            raise DataError(
                f"{where}score {score!r} is off the scale {scale.min}-{scale.max}{na}; "
                "give one of its levels"
            )
        if not value.is_integer():
            raise DataError(
                f"{where}score {score!r} is not a level of the scale {scale.min}-{scale.max}"
                f"{na}; give a whole level"
            )
        return value

    @staticmethod
    def check_rationale(rationale: object) -> str:
        if not isinstance(rationale, str):
            raise DataError("give the justification as text")
        if len(rationale) > MAX_RATIONALE_CHARS:
            raise DataError(
                f"the justification has {len(rationale):,} characters; keep it within "
                f"{MAX_RATIONALE_CHARS:,}"
            )
        return rationale

    def _check(self, item_ref: str, dimension: str, score: object) -> tuple[Item, float]:
        item = self.item(item_ref)
        return item, self.check_score(dimension, score, f"{item.id} / {dimension}: ")

    def save(
        self,
        item_ref: str,
        dimension: str,
        score: object,
        rationale: str = "",
        rater: str | None = None,
    ) -> Label:
        """Save (or replace) a rater's label; returns it. The labels file is rewritten in the
        same transaction.

        DataError / ConfigError on an unknown item or dimension, a score that is not a level
        of the scale, or an oversized justification, with nothing stored.
        """
        who = self._who(rater)
        item, value = self._check(item_ref, dimension, score)
        text = self.check_rationale(rationale)
        label = Label(item=item.id, dimension=dimension, score=value, rationale=text, rater=who)

        def same_label(row: Label) -> bool:
            # The same item written another way ("nb1" for "sub/nb1.ipynb") is this label.
            return (
                row.rater == who
                and row.dimension == dimension
                and self._item_id(row.item) == item.id
            )

        self._store.put(label, replaces=same_label)
        with self._lock:
            self._saved.add(label.id)
        return label

    # -- agreement and adjudication ---------------------------------------------------------
    def agreement(self, dimension: str) -> Agreement:
        """The raters side by side on one dimension: agreement figures and disagreements."""
        dim = self.rubric.dimension(dimension)
        scale = dim.scale
        by_item: dict[str, dict[str, Label]] = {}
        for lb in self._store.labels():
            item_id = self._item_id(lb.item)
            if lb.dimension == dimension and item_id is not None:
                by_item.setdefault(item_id, {}).setdefault(lb.rater, lb)
        settled = {a.item: a for a in self._store.adjudications() if a.dimension == dimension}
        raters = sorted({r for found in by_item.values() for r in found})
        ratings = {
            item: {r: lb.score for r, lb in found.items()} for item, found in by_item.items()
        }
        twice = {i: r for i, r in ratings.items() if len(r) >= 2}
        na = scale.na_value
        matrix = np.full((len(raters), len(twice)), np.nan)
        for col, scores in enumerate(twice.values()):
            for r, s in scores.items():
                if not scale.is_na(s):
                    matrix[raters.index(r), col] = s
        applicable = sum(
            1 for s in twice.values() if sum(not scale.is_na(v) for v in s.values()) >= 2
        )
        na_same = [len({scale.is_na(v) for v in s.values()}) == 1 for s in twice.values()]
        alpha_i = krippendorff_alpha(matrix, "interval") if twice else math.nan
        alpha_o = krippendorff_alpha(matrix, "ordinal") if twice else math.nan
        titles = {it.id: self.title(it) for it in self.items}
        disagreements: list[Disagreement] = []
        for item_id, found in by_item.items():
            if len(found) < 2:
                continue
            values = [lb.score for lb in found.values()]
            flags = [scale.is_na(v) for v in values]
            if any(flags) and not all(flags):
                spread = float(scale.max - scale.min)
            else:
                spread = float(max(values) - min(values))
            if spread < 1:
                continue
            disagreements.append(
                Disagreement(
                    item=item_id,
                    title=titles.get(item_id, item_id),
                    spread=spread,
                    scores=[
                        RaterScore(rater=r, score=lb.score, rationale=lb.rationale)
                        for r, lb in sorted(found.items())
                    ],
                    adjudication=settled.get(item_id),
                )
            )
        disagreements.sort(key=lambda d: (d.adjudication is not None, -d.spread))
        return Agreement(
            dimension=dimension,
            name=dim.name,
            raters=raters,
            n_items=applicable,
            n_labelled_twice=len(twice),
            mae=_finite(human_human_mae(twice, na, "leave_one_out")),
            pairwise_mae=_finite(human_human_mae(twice, na, "pairwise")),
            alpha_interval=_finite(alpha_i),
            alpha_ordinal=_finite(alpha_o),
            na_agreement=_finite(float(np.mean(na_same))) if na_same else None,
            disagreements=disagreements,
            adjudicated=len(settled),
        )

    def adjudicate(
        self, item_ref: str, dimension: str, score: object, rationale: str, adjudicator: str
    ) -> Adjudication:
        """Record the settled label for one item and dimension (exported to
        ``<labels>.adjudicated.jsonl``); replaces an earlier adjudication."""
        item, value = self._check(item_ref, dimension, score)
        decision = Adjudication(
            item=item.id,
            dimension=dimension,
            score=value,
            rationale=self.check_rationale(rationale),
            adjudicator=check_rater(adjudicator),
            updated_at="",
        )
        return self._store.adjudicate(decision)

    def history(self, item_ref: str | None = None, limit: int = 200) -> list[Change]:
        """The latest changes (who, when, what it replaced), of one item when given."""
        changes = self._store.history(limit=None if item_ref else limit)
        if item_ref is None:
            return changes
        item = self.item(item_ref)
        return [c for c in changes if self._item_id(c.item) == item.id][-limit:]
