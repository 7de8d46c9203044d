"""The stress report as one self-contained HTML page, in the style and under the
Content-Security-Policy of the evaluation report (no scripts, no URLs, every value escaped:
notebook ids, rationales and diffs are untrusted text)."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from judgealign.evaluation.bootstrap import ConfidenceInterval
from judgealign.report.html import PAGE_CSP, PAGE_CSS
from judgealign.stress.console import DASH, fmt_ci
from judgealign.stress.model import StressReport

PAIR_ROWS = 3000

_EXTRA_CSS = """
td.heat { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.target { outline: 2px solid #333; outline-offset: -2px; }
pre.diff { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .5rem; overflow-x: auto;
  font-size: .8rem; max-height: 28rem; }
pre.diff .add { color: #116329; } pre.diff .del { color: #a40e26; }
td.mono { font-family: ui-monospace, monospace; overflow-wrap: anywhere; max-width: 22rem; }
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _cell(ci: ConfidenceInterval | None, *, signed: bool = False, cls: str = "num") -> str:
    return f"<td class='{cls}'>{_e(fmt_ci(ci, signed=signed))}</td>"


def _heat(value: float | None, scale: float) -> str:
    """A red (drop) to blue (rise) background for a mean change."""
    if value is None or scale <= 0:
        return ""
    x = max(-1.0, min(1.0, value / scale))
    if x < 0:
        return f"background: rgba(213, 94, 0, {abs(x) * 0.55:.2f});"
    return f"background: rgba(0, 114, 178, {x * 0.45:.2f});"


def _judges(report: StressReport) -> list[str]:
    return [j.label for j in report.config.judges]


# Okabe-Ito hues (colour-blind safe); a judge that reads no memory is grey, as the baseline
# is in the evaluation report.
_PALETTE = ("#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9")


def _colour(report: StressReport, judge: str) -> str:
    infos = report.config.judges
    info = next(j for j in infos if j.label == judge)
    if not info.fitted:
        return (
            "#6e6e6e"
            if sum(not j.fitted for j in infos) == 1
            else _PALETTE[-1 - infos.index(info) % 3]
        )
    return _PALETTE[[j for j in infos if j.fitted].index(info) % len(_PALETTE)]


def _config(report: StressReport) -> str:
    c = report.config
    rows = [
        ("Rubric", f"{c.rubric_id} — {report.rubric.name}"),
        ("Dimensions", ", ".join(c.dimensions)),
        ("Notebooks", str(c.n_items)),
        ("Probes", ", ".join(p.name for p in c.probes)),
        ("Seed", str(c.seed)),
        (
            "Intervals",
            f"{c.confidence:.0%} BCa bootstrap over notebooks, {c.n_resamples:,} resamples",
        ),
    ]
    judge_rows = "".join(
        f"<tr><th scope='row'>{_e(j.label)}</th><td>{_e(j.model)}</td><td>{_e(j.variant)}</td>"
        f"<td class='num'>{_e(j.labels if j.fitted else DASH)}</td>"
        f"<td class='num'>{_e(j.item_budget_tokens)}</td>"
        f"<td class='mono'>{_e(j.source or DASH)}</td></tr>"
        for j in c.judges
    )
    kv = "".join(f"<tr><th scope='row'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return (
        f"<table class='config'>{kv}</table><h3>Judges</h3><div class='scroll'><table>"
        "<thead><tr><th>Judge</th><th>Model</th><th>Memory read</th><th>Expert labels</th>"
        f"<th>Item budget</th><th>Source</th></tr></thead><tbody>{judge_rows}</tbody></table></div>"
    )


def _summary(report: StressReport) -> str:
    judges = _judges(report)
    head = "".join(f"<th colspan='3'>{_e(j)}</th>" for j in judges)
    sub = "".join("<th>detection</th><th>false alarms</th><th>injection shift</th>" for _ in judges)
    rows = []
    for dim in report.config.dimensions:
        cells = []
        for j in judges:
            s = report.dimension(j, dim)
            if s is None:
                cells.append("<td></td>" * 3)
                continue
            cells.append(
                _cell(s.detection)
                + _cell(s.false_alarm_rate)
                + _cell(s.injection_shift, signed=True)
            )
        rows.append(f"<tr><th scope='row'>{_e(dim)}</th>{''.join(cells)}</tr>")
    return (
        "<table class='summary'><thead><tr><th rowspan='2'>Dimension</th>"
        f"{head}</tr><tr>{sub}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _comparisons(report: StressReport) -> str:
    if not report.comparisons:
        return ""
    rows = []
    for c in report.comparisons:
        better = c.delta > 0 if c.metric != "false_alarm_rate" else c.delta < 0
        if c.metric == "injection_shift":
            better = c.delta < 0
        sig = c.p_holm < 0.05
        cls = ("better" if better else "worse") if sig else ""
        rows.append(
            f"<tr><td>{_e(c.judge)} vs {_e(c.reference)}</td><td>{_e(c.metric)}</td>"
            f"<td>{_e(c.dimension)}</td><td class='num'>{c.n}</td>"
            f"<td class='num'>{c.reference_value:.2f}</td><td class='num'>{c.value:.2f}</td>"
            f"<td class='num {cls}'>{c.delta:+.2f} [{c.low:+.2f}, {c.high:+.2f}]</td>"
            f"<td class='num{' sig' if sig else ''}'>{c.p_holm:.3g}</td></tr>"
        )
    return (
        "<h3 id='compare'>Judges compared</h3><p class='explain'>Each judge against the first "
        "on the same notebook-and-probe pairs (paired bootstrap over notebooks; Holm across "
        "dimensions). Higher detection is better; fewer false alarms and a smaller shift "
        "towards an injected ask are better.</p><div class='scroll'><table><thead><tr>"
        "<th>Judges</th><th>Metric</th><th>Dimension</th><th>n</th><th>Reference</th>"
        "<th>Judge</th><th>Δ [CI]</th><th>Holm p</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _interval_chart(report: StressReport, metric: str, title: str, lo: float, hi: float) -> str:
    """Dots with whiskers: one row per dimension, one colour per judge."""
    judges = _judges(report)
    dims = report.config.dimensions
    row_h, left, width = 14 * max(1, len(judges)) + 8, 190, 260
    height = 30 + row_h * len(dims) + 10

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return left + (v - lo) / (hi - lo) * width

    parts = [
        f"<svg class='plot' role='img' width='{left + width + 20}' height='{height}' "
        f"viewBox='0 0 {left + width + 20} {height}' xmlns='http://www.w3.org/2000/svg'>",
        f"<title>{_e(title)}</title>",
        f"<text x='{left}' y='14' font-size='12' font-weight='600'>{_e(title)}</text>",
    ]
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(
            f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='20' y2='{height - 8}' "
            "stroke='#e3e3e3'/>"
            f"<text x='{x(tick):.1f}' y='{height - 1}' font-size='10' text-anchor='middle'>"
            f"{tick:g}</text>"
        )
    for r, dim in enumerate(dims):
        y0 = 26 + r * row_h
        parts.append(
            f"<text x='{left - 6}' y='{y0 + row_h / 2:.1f}' font-size='11' text-anchor='end'>"
            f"{_e(dim)}</text>"
        )
        for k, judge in enumerate(judges):
            s = report.dimension(judge, dim)
            ci = getattr(s, metric, None) if s is not None else None
            if ci is None or ci.n == 0:
                continue
            y = y0 + 8 + k * 14
            colour = _colour(report, judge)
            if ci.low == ci.low and ci.high == ci.high:
                parts.append(
                    f"<line x1='{x(ci.low):.1f}' x2='{x(ci.high):.1f}' y1='{y}' y2='{y}' "
                    f"stroke='{colour}' stroke-width='2'/>"
                )
            parts.append(
                f"<circle cx='{x(ci.estimate):.1f}' cy='{y}' r='4' fill='{colour}'>"
                f"<title>{_e(judge)}: {_e(fmt_ci(ci))}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend(report: StressReport) -> str:
    return " ".join(
        f"<span class='variant' style='color:{_colour(report, j)}'>● {_e(j)}</span>"
        for j in _judges(report)
    )


def _matrix(report: StressReport, judge: str) -> str:
    """Mean score change per probe (rows) and dimension (columns); the flaw's own dimension
    outlined."""
    dims = report.config.dimensions
    results = {(r.probe, r.dimension): r for r in report.results if r.judge == judge}
    rubric_range = max(
        (report.rubric.dimension(d).scale.max - report.rubric.dimension(d).scale.min for d in dims),
        default=1,
    )
    head = "".join(f"<th>{_e(d)}</th>" for d in dims)
    rows = []
    for spec in report.config.probes:
        if not any((spec.name, d) in results for d in dims):
            continue
        cells = []
        for d in dims:
            r = results.get((spec.name, d))
            ci = r.mean_change if r is not None else None
            target = spec.kind == "flaw" and spec.dimension == d
            style = _heat(ci.estimate if ci is not None and ci.n else None, rubric_range)
            text = DASH if ci is None or ci.n == 0 else f"{ci.estimate:+.2f}"
            title = fmt_ci(ci, signed=True) if ci is not None else ""
            if r is not None and r.n_failed:
                title += f"; {r.n_failed} failed"
            cells.append(
                f"<td class='heat{' target' if target else ''}' style='{style}' "
                f"title='{_e(title)}'>{_e(text)}</td>"
            )
        rows.append(
            f"<tr><th scope='row'>{_e(spec.name)} <small>({_e(spec.kind)})</small></th>"
            f"{''.join(cells)}</tr>"
        )
    return (
        f"<table class='matrix'><thead><tr><th>Probe</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _flaws(report: StressReport, judge: str) -> str:
    rows = []
    for p in report.probes:
        if p.judge != judge or p.kind != "flaw":
            continue
        rows.append(
            f"<tr><th scope='row'>{_e(p.probe)}</th><td>{_e(p.dimension)}</td>"
            f"<td class='num'>≤ {_e(p.max_score)}</td><td class='num'>{p.notebooks}</td>"
            + _cell(p.detection)
            + _cell(p.target_change, signed=True)
            + _cell(p.collateral)
            + "</tr>"
        )
    if not rows:
        return "<p class='note'>No flaw probe applied.</p>"
    return (
        "<table><thead><tr><th>Flaw</th><th>Dimension</th><th>Expected</th><th>Notebooks</th>"
        "<th>Detection</th><th>Mean Δ (its dimension)</th><th>Collateral mean |Δ|</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _others(report: StressReport, judge: str) -> str:
    rows = []
    for p in report.probes:
        if p.judge != judge or p.kind == "flaw":
            continue
        toward = DASH if p.toward_target is None else f"{p.toward_target:.0%}"
        rows.append(
            f"<tr><th scope='row'>{_e(p.probe)}</th><td>{_e(p.kind)}</td>"
            f"<td class='num'>{p.notebooks}</td>"
            + _cell(p.false_alarm_rate)
            + _cell(p.shift, signed=True)
            + f"<td class='num'>{_e(toward)}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<table><thead><tr><th>Probe</th><th>Kind</th><th>Notebooks</th><th>False alarms</th>"
        "<th>Shift towards the ask</th><th>Pairs moved towards it</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _applicability(report: StressReport) -> str:
    rows = "".join(
        f"<tr><th scope='row'>{_e(a.probe)}</th><td>{_e(a.kind)}</td>"
        f"<td class='num'>{a.applied}</td><td class='num'>{a.not_applicable}</td>"
        f"<td>{'<br>'.join(f'{_e(r)} ({n})' for r, n in a.reasons.items()) or DASH}</td></tr>"
        for a in report.applicability
    )
    return (
        "<table><thead><tr><th>Probe</th><th>Kind</th><th>Applied</th><th>Not applicable</th>"
        f"<th>Why not (most frequent)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _diff_html(diff: str) -> str:
    lines = []
    for line in diff.splitlines():
        cls = "add" if line.startswith("+") else "del" if line.startswith("-") else ""
        lines.append(f"<span class='{cls}'>{_e(line)}</span>" if cls else _e(line))
    return "\n".join(lines)


def _details(report: StressReport) -> str:
    by_probe: dict[str, list[str]] = {}
    pairs: dict[tuple[str, str], list[str]] = {}
    for p in report.pairs[:PAIR_ROWS]:
        change = DASH
        if p.original is not None and p.mutant is not None:
            change = f"{p.original:g} → {p.mutant:g}"
        status = _e(p.error) if p.error else ("" if p.visible else "hidden by the item budget")
        pairs.setdefault((p.probe, p.item), []).append(
            f"<tr{' class=err' if p.error else ''}><td>{_e(p.judge)}</td><td>{_e(p.dimension)}</td>"
            f"<td class='num'>{_e(change)}</td><td class='rationale'>{_e(p.mutant_rationale)}</td>"
            f"<td class='status'>{status}</td></tr>"
        )
    for m in report.mutations:
        rows = pairs.get((m.probe, m.item))
        if not rows:
            continue
        notes = "".join(f"<li>{_e(n)}</li>" for n in m.notes)
        by_probe.setdefault(m.probe, []).append(
            f"<details class='group'><summary><span class='ex-item'>{_e(m.item)}</span></summary>"
            f"<ul class='notes'>{notes}</ul>"
            f"<details><summary>what changed</summary><pre class='diff'>{_diff_html(m.diff)}"
            "</pre></details>"
            "<table class='judgements'><thead><tr><th>Judge</th><th>Dimension</th><th>Score</th>"
            "<th>Rationale (mutant)</th><th>Status</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></details>"
        )
    out = []
    for spec in report.config.probes:
        blocks = by_probe.get(spec.name)
        if blocks:
            out.append(
                f"<details class='fold'><summary><strong>{_e(spec.name)}</strong> — "
                f"{_e(spec.summary)} ({len(blocks)} notebook(s))</summary>"
                f"{''.join(blocks)}</details>"
            )
    if len(report.pairs) > PAIR_ROWS:
        out.append(
            f"<p class='note'>First {PAIR_ROWS} of {len(report.pairs)} pairs shown; "
            "stress.json has them all.</p>"
        )
    return "".join(out) or "<p class='note'>No pair was scored.</p>"


def _warnings(report: StressReport) -> str:
    out = []
    failed = sum(1 for p in report.pairs if p.error)
    if failed:
        out.append(f"<strong>{failed} pair(s) had a failed judgement</strong> and are left out.")
    out.extend(_e(n) for n in report.notes)
    return "".join(f"<div class='warning' role='alert'>{w}</div>" for w in out)


def render_html(report: StressReport) -> str:
    """The whole stress report as one HTML page."""
    c = report.config
    title = f"judgealign stress test — {c.name or c.rubric_id}"
    judges = _judges(report)
    per_judge = []
    for judge in judges:
        per_judge.append(
            f"<h3>{_e(judge)}</h3>"
            f"<h4>Flaws</h4><div class='scroll'>{_flaws(report, judge)}</div>"
            f"<h4>Invariance and injection</h4><div class='scroll'>{_others(report, judge)}</div>"
            "<h4>Mean score change, probe by dimension</h4><p class='explain'>Orange: scores "
            "dropped, blue: rose; the flaw's own dimension is outlined. Hover for the interval."
            f"</p><div class='scroll'>{_matrix(report, judge)}</div>"
        )
    charts = "".join(
        _interval_chart(report, metric, name, lo, hi)
        for metric, name, lo, hi in (
            ("detection", "Detection rate", 0.0, 1.0),
            ("false_alarm_rate", "False-alarm rate", 0.0, 1.0),
            ("injection_shift", "Injection shift (towards the ask)", -1.0, 2.0),
        )
    )
    body = [
        f"<header><h1>{_e(title)}</h1><p class='sub'>{len(judges)} judge(s), "
        f"{c.n_items} notebook(s), {len(c.probes)} probe(s), {len(c.dimensions)} dimension(s); "
        f"created {_e(report.created)}.</p></header>",
        _warnings(report),
        "<nav><a href='#summary'>Summary</a><a href='#probes'>Probes</a>"
        "<a href='#applicability'>Applicability</a><a href='#pairs'>Every pair</a>"
        "<a href='#config'>Run</a></nav>",
        "<section id='summary'><h2>Summary</h2><p class='explain'><strong>Detection</strong>: "
        "share of planted flaws whose dimension fell to the flaw's level (from above it). "
        "<strong>False alarms</strong>: share of invariance pairs (renamed variables, "
        "reformatted code, neutral comments, reordered independent cells) whose score moved at "
        "all. <strong>Injection shift</strong>: how many points closer to the score the planted "
        "text asks for (0 is robust). Each with a 95% interval over notebooks and its n.</p>",
        f"<div class='scroll'>{_summary(report)}</div>",
        f"<p>{_legend(report)}</p><div class='plots'>{charts}</div>",
        _comparisons(report),
        "</section>",
        f"<section id='probes'><h2>Probes</h2>{''.join(per_judge)}</section>",
        "<section id='applicability'><h2>Applicability</h2><p class='explain'>A probe applies "
        "only where the notebook has what it changes.</p>"
        f"<div class='scroll'>{_applicability(report)}</div></section>",
        "<section id='pairs'><h2>Every pair</h2><p class='explain'>Per probe and notebook: "
        "what changed, then each judge's score of the original and the mutant with the "
        "mutant's rationale (cut; stress.json has the scores, judgements.jsonl everything)."
        f"</p>{_details(report)}</section>",
        f"<section id='config'><h2>Run</h2>{_config(report)}</section>",
        f"<footer>judgealign {_e(report.judgealign_version)} · stress report schema "
        f"{_e(report.schema_version)}</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{PAGE_CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{PAGE_CSS}{_EXTRA_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_html(report: StressReport, path: Path) -> Path:
    """Write the page atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render_html(report), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
