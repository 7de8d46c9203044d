"""The agent scoreboard and the version comparison as self-contained HTML pages.

Same rules as the evaluation report (``report/html.py``): one file, inline CSS, no scripts and
no URLs but links to the run's own files, a Content-Security-Policy that forbids scripts, and
every value escaped: notebooks, rationales and case prompts are untrusted text. Long parts
(every notebook with its judgements) fold with ``<details>``.

Notebooks are shown as people read them (``render.notebook_html``: markdown rendered, code
highlighted, plots as data URIs, HTML outputs sanitized), never executed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from judgealign.agent.board import Gap, NotebookResult, ScoreboardModel, finite
from judgealign.agent.comparison import ComparisonModel
from judgealign.evaluation.bootstrap import ConfidenceInterval
from judgealign.judge.judgement import Judgement
from judgealign.render.notebook_html import notebook_css
from judgealign.report.html import PAGE_CSP, PAGE_CSS
from judgealign.report.svg import esc

# The report pages' look (one stylesheet to keep), plus what only agent pages show.
_CSS = (
    PAGE_CSS
    + """
a { color: #0b5cad; }
td.failed, span.failed { color: #b00020; font-weight: 600; }
td.rationale { max-width: 40rem; }
td.seen { font-size: .82rem; max-width: 30rem; }
details.nb { margin: .3rem 0; border: 1px solid #e3e3e3; border-radius: 3px;
  padding: .2rem .6rem; }
details.nb > summary { cursor: pointer; padding: .2rem 0; }
.tag { display: inline-block; background: #eef2f7; border-radius: 3px; padding: 0 .3rem;
  margin: 0 .2rem .1rem 0; font-size: .8rem; }
ul.gap-examples { margin: .2rem 0; color: #444; font-size: .85rem; }
"""
)


def notebook_view(notebook_json: str, source: str = "") -> str:
    """A notebook for people to read in the report (a safe fragment; the page carries its CSS)."""
    from judgealign.render.notebook_html import notebook_to_html

    try:
        return notebook_to_html(notebook_json, source=source)
    except Exception as exc:  # a report must render even around a broken file
        return f"<p class='note'>could not render {esc(source)}: {esc(exc)}</p>"


def _page(title: str, body: Sequence[str], version: str, schema: int) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{PAGE_CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{_CSS}{notebook_css()}</style></head><body>"
        + "\n".join(body)
        + f"<footer>judgealign {esc(version)} · schema {esc(schema)}</footer></body></html>\n"
    )


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not finite(value) else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _ci(ci: ConfidenceInterval | None) -> str:
    if ci is None:
        return "<td class='num'>—</td>"
    bounds = (
        f" <small>[{ci.low:.2f}, {ci.high:.2f}]</small>"
        if finite(ci.low) and finite(ci.high)
        else ""
    )
    return f"<td class='num'>{ci.estimate:.2f}{bounds}</td>"


def _anchor(nid: str) -> str:
    return "nb-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in nid)


def _table(head: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        f"<div class='scroll'><table class='{cls}'><thead><tr>{th}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _dims_table(board: ScoreboardModel) -> str:
    rows = []
    for d in board.dims:
        na = f"{d.na}/{d.judged} ({_pct(d.na_rate)})" if d.judged else "—"
        rows.append(
            f"<tr><th scope='row'>{esc(d.dimension)}</th>"
            f"<td class='num'>{d.scored} <small>({d.cases} cases)</small></td>{_ci(d.mean)}"
            f"<td class='num'>{_pct(d.lowest)} <small>(score {d.worst_level})</small></td>"
            f"<td class='num'>{esc(na)}</td>"
            f"<td class='num{' failed' if d.failed else ''}'>{d.failed}</td></tr>"
        )
    return _table(
        ["Dimension", "Scored notebooks", "Mean [95% CI]", "Lowest score", "N/A", "Failed"],
        rows,
        "scoreboard",
    )


def _failures(board: ScoreboardModel) -> str:
    rows = [
        f"<tr><td><a href='#{_anchor(nb.id)}'>{esc(nb.id)}</a></td>"
        f"<td class='failed'>{esc(nb.failure)}</td><td>{esc(nb.reason)}</td></tr>"
        for nb in board.notebooks
        if nb.status != "ok"
    ]
    if not rows:
        return "<p class='note'>Every notebook was generated.</p>"
    kinds = ", ".join(f"{k}: {n}" for k, n in board.failures.items())
    return (
        f"<p>{board.cases_failed} of {board.cases_total} cases wrote no notebook; "
        f"{board.notebooks_failed} notebooks failed ({esc(kinds)}).</p>"
        + _table(["Notebook", "Failure", "Reason"], rows)
    )


def _cases_table(board: ScoreboardModel) -> str:
    rows = []
    for c in board.cases:
        tags = "".join(f"<span class='tag'>{esc(t)}</span>" for t in c.tags)
        cells = []
        for d in board.dimensions:
            if d not in c.dimensions:
                cells.append("<td class='num'><small>n/a</small></td>")
                continue
            score = c.scores.get(d)
            na = c.na.get(d, 0)
            shown = _num(score) if score is not None else ("N/A" if na else "—")
            cells.append(f"<td class='num'>{shown}</td>")
        status = c.status if c.status == "ok" else f"<span class='failed'>{esc(c.status)}</span>"
        rows.append(
            f"<tr><th scope='row'>{esc(c.case)}</th><td>{tags}</td>"
            f"<td>{status} <small>{c.generated}/{c.notebooks}</small></td>{''.join(cells)}</tr>"
        )
    return _table(["Case", "Tags", "Notebooks", *board.dimensions], rows, "cases")


def _tags_table(board: ScoreboardModel) -> str:
    rows = []
    for t in board.tags:
        cells = "".join(
            f"<td class='num'>{_num(t.scores.get(d))} <small>n={t.n.get(d, 0)}</small></td>"
            for d in board.dimensions
        )
        failed = ""
        if t.failed_cases:
            failed = f" <span class='failed'>({t.failed_cases} failed)</span>"
        rows.append(
            f"<tr><th scope='row'>{esc(t.tag)}</th>"
            f"<td class='num'>{t.cases}{failed}</td>{cells}</tr>"
        )
    return _table(["Tag", "Cases", *board.dimensions], rows, "tags")


def gaps_html(gaps: Sequence[Gap], dimensions: Sequence[str], href: str | None = "") -> str:
    """Gap tables per dimension; notebooks link to ``href#anchor`` ("" = this page, None:
    no links)."""
    if not gaps:
        return "<p class='note'>No low scores to group.</p>"
    parts = []
    for dim in dimensions:
        mine = [g for g in gaps if g.dimension == dim]
        if not mine:
            continue
        rows = []
        for g in mine:
            notebooks = ", ".join(
                f"<a href='{esc(href)}#{_anchor(n)}'>{esc(n)}</a>" if href is not None else esc(n)
                for n in g.notebooks
            )
            examples = "".join(f"<li>{esc(e)}</li>" for e in g.examples)
            more = f"<ul class='gap-examples'>{examples}</ul>" if examples else ""
            rows.append(
                f"<tr><td class='num'>{g.count}</td><td class='num'>{g.mean_score:.2f}</td>"
                f"<td class='rationale'>{esc(g.reason)}{more}</td><td>{notebooks}</td></tr>"
            )
        parts.append(f"<h3>{esc(dim)}</h3>")
        parts.append(
            _table(
                ["Notebooks", "Mean score", "Reason (most typical wording)", "Where"], rows, "gaps"
            )
        )
    return "".join(parts)


def _score(board: ScoreboardModel, j: Judgement) -> str:
    """A judgement's score as text: N/A for the scale's not-applicable value."""
    if j.dimension in board.rubric.dimension_ids and board.rubric.dimension(
        j.dimension
    ).scale.is_na(j.score):
        return "N/A"
    return _num(j.score, 0)


def _judgement_rows(nb: NotebookResult, board: ScoreboardModel) -> str:
    rows = []
    for j in nb.judgements:
        guidelines = "".join(f"<li>{esc(board.guidelines.get(g, g))}</li>" for g in j.guidelines)
        episodes = "".join(f"<li>{esc(e)}</li>" for e in j.episodes)
        seen = ""
        if guidelines:
            seen += (
                f"<details><summary>{len(j.guidelines)} guidelines</summary>"
                f"<ol>{guidelines}</ol></details>"
            )
        if episodes:
            seen += (
                f"<details><summary>{len(j.episodes)} examples</summary>"
                f"<ul>{episodes}</ul></details>"
            )
        score = _score(board, j) if j.ok else "<span class='failed'>failed</span>"
        why = j.rationale if j.ok else (j.error or "")
        rows.append(
            f"<tr><th scope='row'>{esc(j.dimension)}</th><td class='num'>{score}</td>"
            f"<td class='rationale'>{esc(why)}</td><td class='seen'>{seen or '—'}</td></tr>"
        )
    return _table(["Dimension", "Score", "Rationale", "What the judge saw"], rows, "judgements")


def _notebooks(board: ScoreboardModel, run_dir: Path | None) -> str:
    parts = []
    for nb in board.notebooks:
        anchor = _anchor(nb.id)
        if nb.status != "ok":
            parts.append(
                f"<details class='nb' id='{anchor}'><summary><strong>{esc(nb.id)}</strong> "
                f"<span class='failed'>{esc(nb.failure)}</span></summary>"
                f"<p>{esc(nb.reason)}</p></details>"
            )
            continue
        scores = ", ".join(
            f"{j.dimension} {_score(board, j) if j.ok else 'failed'}" for j in nb.judgements
        )
        shown = nb.executed or nb.notebook or ""
        link = f" · <a href='{esc(shown)}'>{esc(shown)}</a>" if shown else ""
        execution = ""
        if nb.execution is not None:
            e = nb.execution
            execution = (
                f"<p>Executed: <strong>{esc(e.status)}</strong> {esc(e.reason)} "
                f"({e.seconds:.0f} s)</p>"
            )
        view = "<p class='note'>notebook file not found</p>"
        path = (run_dir / shown) if run_dir is not None and shown else None
        if path is not None and path.is_file():
            view = notebook_view(path.read_text(encoding="utf-8"), source=shown)
        parts.append(
            f"<details class='nb' id='{anchor}'><summary><strong>{esc(nb.id)}</strong> "
            f"<small>{esc(scores)}</small></summary><p class='note'>generated in "
            f"{nb.seconds:.1f} s{link}</p>{execution}{_judgement_rows(nb, board)}{view}</details>"
        )
    return "".join(parts)


def _usage(board: ScoreboardModel) -> str:
    rows = []
    for name, u in (("generation", board.usage_generation), ("scoring", board.usage_scoring)):
        rows.append(
            f"<tr><th scope='row'>{name}</th><td class='num'>{u.calls}</td>"
            f"<td class='num'>{u.cached_calls}</td><td class='num'>{u.prompt_tokens}</td>"
            f"<td class='num'>{u.completion_tokens}</td></tr>"
        )
    return _table(["Phase", "Model calls", "Cached", "Prompt tokens", "Completion tokens"], rows)


def render_scoreboard_html(board: ScoreboardModel, run_dir: Path | None = None) -> str:
    """The scoreboard page; notebooks are read from ``run_dir`` (the run folder)."""
    title = f"judgealign agent scoreboard — {board.version} on {board.suite.name}"
    judges = "; ".join(
        f"{j.file} ({', '.join(j.dimensions)}; {j.model}, {'aligned' if j.fitted else 'zero-shot'})"
        for j in board.judges
    )
    warnings = []
    if board.cases_failed or board.notebooks_failed:
        warnings.append(
            f"<strong>{board.notebooks_failed} notebook(s) failed</strong> "
            f"({board.cases_failed} case(s) with none): they are not in the means."
        )
    failed_j = sum(d.failed for d in board.dims)
    if failed_j:
        warnings.append(f"<strong>{failed_j} judgement(s) failed</strong> and are left out.")
    if board.execution_errors:
        warnings.append(
            f"<strong>{board.execution_errors} notebook(s)</strong> raised or timed out when "
            "executed."
        )
    notes = "".join(f"<li>{esc(n)}</li>" for n in board.notes)
    body = [
        f"<header><h1>{esc(title)}</h1>",
        f"<p class='sub'>Agent <strong>{esc(board.agent)}</strong>, version "
        f"<strong>{esc(board.version)}</strong>: {board.cases_total} cases, "
        f"{board.notebooks_total} notebooks{', executed' if board.execute else ''}; judges "
        f"{esc(judges)}; created {esc(board.created)}.</p></header>",
        "".join(f"<div class='warning' role='alert'>{w}</div>" for w in warnings),
        "<nav><a href='#scoreboard'>Scoreboard</a><a href='#failures'>Failures</a>"
        "<a href='#cases'>Cases</a><a href='#tags'>Tags</a><a href='#gaps'>Gaps</a>"
        "<a href='#notebooks'>Notebooks</a></nav>",
        "<section id='scoreboard'><h2>Scoreboard</h2>",
        "<p class='explain'>Per dimension the mean applicable score (N/A answers excluded) "
        f"with a {board.confidence:.0%} cluster bootstrap interval: test cases are resampled "
        "and a case's notebooks stay together. Lowest: share of the scale's worst score. "
        "N/A: not-applicable answers among successful judgements.</p>",
        _dims_table(board),
        f"<h3>Usage</h3>{_usage(board)}",
        f"<ul class='notes'>{notes}</ul>" if notes else "",
        "</section>",
        f"<section id='failures'><h2>Failures</h2>{_failures(board)}</section>",
        "<section id='cases'><h2>Cases</h2><p class='explain'>Mean applicable score per "
        "case; N/A where the judge found the dimension not applicable; n/a where the case "
        f"does not list the dimension.</p>{_cases_table(board)}</section>",
        f"<section id='tags'><h2>Tags</h2>{_tags_table(board)}</section>",
        "<section id='gaps'><h2>Gaps</h2><p class='explain'>The judge's reasons for low "
        "scores, grouped by meaning (embeddings): what the agent gets wrong most often.</p>"
        f"{gaps_html(board.gaps, board.dimensions)}</section>",
        "<section id='notebooks'><h2>Notebooks</h2><p class='explain'>Every notebook with "
        "its judgements and what each judgement saw (guidelines, expert-scored examples); "
        f"click to open.</p>{_notebooks(board, run_dir)}</section>",
    ]
    return _page(title, body, board.judgealign_version, board.schema_version)


def render_comparison_html(cmp: ComparisonModel) -> str:
    title = f"judgealign agent comparison — {cmp.version_a} → {cmp.version_b} on {cmp.suite}"
    rows = []
    for d in cmp.dims:
        t = d.test
        if t is None:
            rows.append(
                f"<tr><th scope='row'>{esc(d.dimension)}</th>"
                + "<td class='num'>—</td>" * 6
                + "</tr>"
            )
            continue
        cls = {"b": " better", "a": " worse", None: ""}[d.better]
        sig = " sig" if d.p_holm is not None and d.p_holm < cmp.alpha else ""
        rows.append(
            f"<tr><th scope='row'>{esc(d.dimension)}</th><td class='num'>{_num(t.mean_a)}</td>"
            f"<td class='num'>{_num(t.mean_b)}</td><td class='num{cls}'>{t.delta:+.2f} "
            f"<small>[{t.low:+.2f}, {t.high:+.2f}]</small></td>"
            f"<td class='num'>{_num(t.p_value, 3)}</td>"
            f"<td class='num{sig}'>{_num(d.p_holm, 3)}</td>"
            f"<td class='num'>{d.cases} <small>({t.n} pairs)</small></td></tr>"
        )
    change_rows = []
    for o in cmp.outcomes:
        cls = {"better": "better", "worse": "worse", "same": ""}[o.direction]
        change_rows.append(
            f"<tr><th scope='row'>{esc(o.case)}</th>"
            f"<td class='num {cls}'>{o.improvement:+.2f}</td>"
            f"<td>{esc(', '.join(o.better)) or '—'}</td>"
            f"<td>{esc(', '.join(o.worse)) or '—'}</td></tr>"
        )
    fail_rows = [
        f"<tr><td>{esc(f.case)}</td><td>fixed in {esc(cmp.version_b)}</td>"
        f"<td>{esc(f.reason)}</td></tr>"
        for f in cmp.failures_fixed
    ] + [
        f"<tr><td>{esc(f.case)}</td><td class='failed'>new in {esc(cmp.version_b)}</td>"
        f"<td>{esc(f.reason)}</td></tr>"
        for f in cmp.failures_new
    ]
    links = " · ".join(
        f"<a href='{esc(path)}'>{esc(name)} report</a>" for name, path in cmp.reports.items()
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in cmp.notes)
    body = [
        f"<header><h1>{esc(title)}</h1>",
        f"<p class='sub'>{cmp.cases_compared} cases generated in both versions; failed cases: "
        f"{cmp.cases_failed_a} in {esc(cmp.version_a)}, {cmp.cases_failed_b} in "
        f"{esc(cmp.version_b)}. {links}</p></header>",
        f"<ul class='notes'>{notes}</ul>" if notes else "",
        "<section id='dimensions'><h2>By dimension</h2><p class='explain'>Δ = "
        f"{esc(cmp.version_b)} − {esc(cmp.version_a)}, mean over notebooks paired by case "
        "and number, with the paired bootstrap interval and p-value (cases resampled, "
        f"{cmp.n_resamples} times); Holm p is adjusted across dimensions, bold below "
        f"{cmp.alpha:g}; green when {esc(cmp.version_b)} is significantly better, red when "
        "worse.</p>",
        _table(
            ["Dimension", cmp.version_a, cmp.version_b, "Δ [95% CI]", "p", "Holm p", "Cases"],
            rows,
            "comparison",
        ),
        "</section>",
        "<section id='cases'><h2>Cases that moved</h2><p class='explain'>Mean change of a "
        "case's per-dimension scores (positive: better in "
        f"{esc(cmp.version_b)}).</p>",
        _table(["Case", "Change", "Better on", "Worse on"], change_rows)
        if change_rows
        else "<p class='note'>No case was scored in both versions.</p>",
        "</section>",
        "<section id='failures'><h2>Failures that changed</h2>",
        _table(["Case", "Change", "Reason"], fail_rows)
        if fail_rows
        else "<p class='note'>None.</p>",
        "</section>",
        f"<section id='gaps'><h2>Top gaps in {esc(cmp.version_a)}</h2>"
        f"{gaps_html(cmp.gaps_a, cmp.dimensions, cmp.reports.get(cmp.version_a))}</section>",
        f"<section id='gaps-b'><h2>Top gaps in {esc(cmp.version_b)}</h2>"
        f"{gaps_html(cmp.gaps_b, cmp.dimensions, cmp.reports.get(cmp.version_b))}</section>",
    ]
    return _page(title, body, cmp.judgealign_version, cmp.schema_version)


def write_page(html: str, path: Path) -> Path:
    """Write a page atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
