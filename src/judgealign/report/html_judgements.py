"""HTML for what the aligned judges learned, and every judgement with what it saw.

Two sections of the report page. "What the judge learned" lists, per dimension and fold, the
guidelines the fold's judge distilled from its training labels and how many labels back each
one. "Judgements" lists every out-of-fold judgement, one collapsed ``<details>`` per dimension
and variant (a full run has thousands of rows: one open table was hundreds of thousands of
pixels tall), and each row resolves the guideline and example ids the judge saw into their
texts through the report's memory section, where each text is stored once.

No script: ``<details>`` folds without one, so the page keeps its CSP that forbids scripts.
Every report-derived string passes through ``esc``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from judgealign.data.label import item_of
from judgealign.judge.judgement import Judgement
from judgealign.report.model import (
    EvaluationReport,
    FoldMemory,
    JudgementRecord,
    LearnedGuideline,
    ShownExample,
)
from judgealign.report.svg import esc
from judgealign.report.table import fmt_num, fmt_score

DASH = "—"
RATIONALE_CHARS = 300
EXAMPLE_CHARS = 160
ERROR_CHARS = 160
SOURCE_ITEMS = 6  # source items listed per guideline before "+n more"


def _cut(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


def _td(value: str, cls: str = "", title: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    t = f' title="{esc(title)}"' if title else ""
    return f"<td{c}{t}>{esc(value)}</td>"


def _order(first: Sequence[str], seen: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*first, *seen]))


class _Lookup:
    """Guideline and example ids -> what the report stored about them."""

    def __init__(self, report: EvaluationReport) -> None:
        self.guidelines: dict[tuple[int, str], LearnedGuideline] = {}
        self.any_fold: dict[str, LearnedGuideline] = {}
        for m in first_repeat(report.memory):
            for g in m.guidelines:
                self.guidelines[(m.fold, g.id)] = g
                self.any_fold.setdefault(g.id, g)  # ids hash dimension and text
        self.examples: dict[str, ShownExample] = {e.id: e for e in report.examples}

    def guideline(self, fold: int, gid: str) -> LearnedGuideline | None:
        return self.guidelines.get((fold, gid)) or self.any_fold.get(gid)


def first_repeat(memory: Sequence[FoldMemory]) -> list[FoldMemory]:
    """The first repeat's fold memories: with repeated cross-validation the page shows one
    repeat's judges (report.json has every repeat's)."""
    return [m for m in memory if m.repeat == 0]


def _repeats_note(report: EvaluationReport) -> str:
    if report.config.repeats <= 1:
        return ""
    return (
        f"<p class='note'>The first of {report.config.repeats} repeats of the cross-validation "
        "is shown; report.json holds every repeat's.</p>"
    )


# -- what the judge learned ------------------------------------------------------------------
def _sources(g: LearnedGuideline) -> str:
    items = list(dict.fromkeys(item_of(s) for s in g.sources))
    if not items:
        return DASH
    more = f" (+{len(items) - SOURCE_ITEMS} more)" if len(items) > SOURCE_ITEMS else ""
    return ", ".join(items[:SOURCE_ITEMS]) + more


def _fold_memory(m: FoldMemory, is_open: bool) -> str:
    n = len(m.guidelines)
    summary = (
        f"Fold {m.fold + 1}: {n} guideline{'s' if n != 1 else ''} · "
        f"{m.n_episodes} labelled example{'s' if m.n_episodes != 1 else ''} to retrieve"
    )
    if m.guidelines:
        rows = "".join(
            f"<tr><td class='num'>{k}</td>"
            + _td(g.text, "guideline")
            + _td(str(g.support), "num support", f"distilled from {g.support} expert label(s)")
            + _td(_sources(g), "sources", "; ".join(g.sources))
            + "</tr>"
            for k, g in enumerate(m.guidelines, 1)
        )
        head = (
            "<tr><th scope='col'>#</th><th scope='col'>Guideline</th>"
            "<th scope='col' title='expert labels it was distilled from'>Support</th>"
            "<th scope='col'>From the labels of</th></tr>"
        )
        body = (
            f"<div class='scroll'><table class='learned'><thead>{head}</thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )
    else:
        body = "<p class='note'>No guidelines: this fold's judge had only its examples.</p>"
    attr = " open" if is_open else ""
    return f"<details class='fold'{attr}><summary>{esc(summary)}</summary>{body}</details>"


def learned_section(report: EvaluationReport) -> str:
    """Per dimension, each fold's guidelines with their support (first fold open)."""
    if not report.memory:
        aligned = any(v != "baseline" for v in report.config.variants)
        why = (
            "This report does not record the aligned judges' memory (it was written by an "
            "older judgealign, or no fold was aligned)."
            if aligned
            else "No aligned variant in this run: the baseline judges from the rubric alone."
        )
        return f"<p class='explain'>{esc(why)}</p>"
    by_dim: dict[str, list[FoldMemory]] = defaultdict(list)
    for m in first_repeat(report.memory):
        by_dim[m.dimension].append(m)
    parts = [
        _repeats_note(report),
        "<p class='explain'>The guidelines each fold's judge distilled from its training "
        "labels (the held-out fold's labels never reach it), most support first. Support is "
        "the number of expert labels behind a guideline. The semantic and full variants read "
        "these guidelines; the episodic and full variants also retrieve the labelled "
        "examples.</p>",
    ]
    for dim in _order(report.config.dimensions, list(by_dim)):
        if dim not in by_dim:
            continue
        folds = sorted(by_dim[dim], key=lambda m: m.fold)
        parts.append(f"<h3>{esc(dim)}</h3>")
        parts.extend(_fold_memory(m, is_open=n == 0) for n, m in enumerate(folds))
    return "".join(parts)


# -- judgements ------------------------------------------------------------------------------
def _status(j: Judgement) -> tuple[str, str]:
    if j.error:
        return f"error: {_cut(j.error, ERROR_CHARS)}", "err"
    if j.score is None:
        return "no score", "err"
    return ("ok" if j.attempts <= 1 else f"ok ({j.attempts} attempts)"), "ok"


def _example(eid: str, lookup: _Lookup) -> str:
    e = lookup.examples.get(eid)
    if e is None:
        return f"<li><code>{esc(eid)}</code></li>"
    why = f" “{esc(_cut(e.rationale, EXAMPLE_CHARS))}”" if e.rationale.strip() else ""
    return (
        f"<li><span class='ex-item'>{esc(e.item)}</span> · expert "
        f"<strong>{esc(fmt_score(e.score))}</strong>{why}</li>"
    )


def _guideline(fold: int, gid: str, lookup: _Lookup) -> str:
    g = lookup.guideline(fold, gid)
    if g is None:
        return f"<li><code>{esc(gid)}</code></li>"
    return f"<li>{esc(g.text)} <small class='support'>(support {esc(g.support)})</small></li>"


def _seen(rec: JudgementRecord, lookup: _Lookup) -> str:
    j = rec.judgement
    if not j.guidelines and not j.episodes:
        return f"<td class='seen'>{DASH}</td>"
    ng, ne = len(j.guidelines), len(j.episodes)
    summary = " · ".join(
        s
        for s in (
            f"{ng} guideline{'s' if ng != 1 else ''}" if ng else "",
            f"{ne} example{'s' if ne != 1 else ''}" if ne else "",
        )
        if s
    )
    body = ""
    if ng:
        body += (
            "<ol class='seen-guidelines'>"
            + "".join(_guideline(rec.fold, g, lookup) for g in j.guidelines)
            + "</ol>"
        )
    if ne:
        body += (
            "<ul class='seen-examples'>"
            + "".join(_example(e, lookup) for e in j.episodes)
            + "</ul>"
        )
    return f"<td class='seen'><details><summary>{esc(summary)}</summary>{body}</details></td>"


def _row(rec: JudgementRecord, na_value: int | None, lookup: _Lookup) -> str:
    j = rec.judgement
    err = DASH
    scored = rec.expert is not None and j.score is not None and j.ok
    if scored and (na_value is None or na_value not in (rec.expert, j.score)):
        err = fmt_score(abs((j.score or 0.0) - (rec.expert or 0.0)))
    status, cls = _status(j)
    return (
        f"<tr class='{cls}'>"
        + _td(j.item, "item")
        + _td(str(rec.fold + 1) if rec.fold >= 0 else DASH, "num")
        + _td(fmt_score(rec.expert, na_value), "num")
        + _td(fmt_score(j.score, na_value), "num")
        + _td(err, "num")
        + _td(status, "status")
        + _td(_cut(j.rationale.strip(), RATIONALE_CHARS), "rationale")
        + _seen(rec, lookup)
        + "</tr>"
    )


def judgement_section(report: EvaluationReport, limit: int = 2000) -> str:
    """Every out-of-fold judgement, one collapsed table per dimension and variant.

    At most about ``limit`` rows in all: each of the tables shows its share of them (at least
    one row), items in order; report.json has every judgement.
    """
    na = {d.id: d.scale.na_value for d in report.rubric.dimensions}
    groups: dict[tuple[str, str], list[JudgementRecord]] = defaultdict(list)
    for r in report.judgements:
        if r.repeat == 0:
            groups[(r.judgement.dimension, r.variant)].append(r)
    if not groups:
        return "<p class='note'>No judgements in this report.</p>"
    lookup = _Lookup(report)
    share = max(1, limit // len(groups))
    head = "".join(
        f"<th scope='col'>{esc(h)}</th>"
        for h in (
            "Item", "Fold", "Expert", "Judge", "|Error|", "Status", "Rationale",
            "What the judge saw",
        )
    )  # fmt: skip
    dims = _order(report.config.dimensions, [d for d, _ in groups])
    variants = _order(report.config.variants, [v for _, v in groups])
    parts = [_repeats_note(report)]
    for dim in dims:
        present = [v for v in variants if (dim, v) in groups]
        if not present:
            continue
        parts.append(f"<h3>{esc(dim)}</h3>")
        for variant in present:
            records = sorted(groups[(dim, variant)], key=lambda r: r.judgement.item)
            shown = records[:share]
            res = report.result(variant, dim)
            facts = [f"{len(records)} judgement{'s' if len(records) != 1 else ''}"]
            if res is not None and res.mae is not None:
                facts.append(f"MAE {fmt_num(res.mae.estimate)}")
            failed = sum(1 for r in records if not r.judgement.ok)
            if failed:
                facts.append(f"{failed} failed")
            if len(shown) < len(records):
                facts.append(f"showing the first {len(shown):,} of {len(records):,}")
            rows = "".join(_row(r, na.get(dim), lookup) for r in shown)
            parts.append(
                f"<details class='group'><summary><span class='variant v-{esc(variant)}'>"
                f"{esc(variant)}</span> · {esc(' · '.join(facts))}</summary>"
                f"<div class='scroll'><table class='judgements'><thead><tr>{head}</tr></thead>"
                f"<tbody>{rows}</tbody></table></div></details>"
            )
    return "".join(parts)
