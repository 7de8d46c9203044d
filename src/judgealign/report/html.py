"""The evaluation report as one self-contained HTML page.

Why one file with inline CSS and inline SVG, no scripts and no URLs: a run folder is archived,
mailed and opened offline long after the run, and the judgements inside it (item ids,
rationales) are untrusted text. So the page needs nothing from the network, runs no code, and
carries a Content-Security-Policy that forbids scripts outright, on top of escaping every value.
Long parts (the judgements, each fold's guidelines) fold with ``<details>``, which needs no
script either.
"""

from __future__ import annotations

import os
from pathlib import Path

from judgealign.report.html_judgements import judgement_section, learned_section
from judgealign.report.html_plan import plan_section
from judgealign.report.html_tables import (
    agreement_table,
    config_table,
    summary_table,
    usage_table,
)
from judgealign.report.model import EvaluationReport
from judgealign.report.plots import (
    bias_plot,
    confusion_plot,
    empty_plot,
    learning_curve_plot,
    mae_plot,
)
from judgealign.report.svg import esc
from judgealign.report.table import describe_statistics, human_lines

JUDGEMENT_ROWS = 2000

PAGE_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b;
  margin: 0 auto; padding: 1.5rem 2rem 4rem; max-width: 1400px; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h2 { font-size: 1.25rem; margin: 2.2rem 0 .6rem; border-bottom: 2px solid #e3e3e3;
  padding-bottom: .2rem; }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.sub { color: #555; margin: 0 0 1rem; }
nav { margin: .8rem 0 1rem; font-size: .95rem; }
nav a { margin-right: 1rem; color: #0b5cad; }
.warning { background: #fff4d6; border: 1px solid #e0b400; border-left: 6px solid #e0b400;
  padding: .6rem .9rem; margin: .6rem 0; border-radius: 3px; }
.warning strong { color: #7a5200; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .4rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #dcdcdc; padding: .25rem .5rem; vertical-align: top;
  text-align: left; }
thead th { background: #f3f4f6; position: sticky; top: 0; }
tbody tr:nth-child(even) { background: #fafafa; }
td.num small, td small { color: #555; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.better { background: #e3f4e6; }
td.worse { background: #fbe4e1; }
td.sig { font-weight: 700; }
td.warn, tr.err td.status { color: #b00020; font-weight: 600; }
table.config th { background: #f7f7f7; white-space: nowrap; }
table.judgements td.rationale { max-width: 30rem; }
table.judgements td.item { overflow-wrap: anywhere; min-width: 9rem; max-width: 16rem; }
table.judgements td.seen { font-size: .82rem; min-width: 14rem; max-width: 34rem; }
td.seen summary { color: #0b5cad; cursor: pointer; white-space: nowrap; }
td.seen ol, td.seen ul { margin: .3rem 0 .2rem; padding-left: 1.3rem; }
td.seen li { margin: .15rem 0; }
ul.seen-examples { list-style: square; color: #333; }
.ex-item { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
.support, td.sources { color: #555; }
table.learned td.guideline { max-width: 48rem; }
table.learned td.sources { font-size: .8rem; max-width: 22rem; overflow-wrap: anywhere; }
details.group, details.fold { margin: .3rem 0; border: 1px solid #e3e3e3; border-radius: 3px;
  padding: .2rem .6rem; }
details.group > summary, details.fold > summary { cursor: pointer; padding: .2rem 0; }
details[open].group > summary, details[open].fold > summary { margin-bottom: .3rem; }
.variant { font-weight: 600; }
.v-baseline { color: #6e6e6e; } .v-semantic { color: #0072b2; }
.v-episodic { color: #009e73; } .v-full { color: #d55e00; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem 1.5rem; align-items: flex-start; }
svg.plot { max-width: 100%; height: auto; background: #fff; }
.note, .explain { color: #555; font-size: .88rem; }
ul.notes li { margin: .2rem 0; }
footer { margin-top: 3rem; color: #777; font-size: .85rem; }
"""

# No scripts, no network: even a value that escaped escaping could not run or load anything.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _warnings(report: EvaluationReport) -> str:
    c = report.config
    out = []
    if c.draw_size is not None:
        out.append(
            f"<strong>Anti-conservative intervals.</strong> Bootstrap resamples drew "
            f"{esc(c.draw_size)} items each (the reference study's 100-of-50 scheme) instead "
            "of n from n: the confidence intervals and p-values here are too narrow and too "
            "small. Rerun without a draw size for honest intervals."
        )
    if c.bootstrap == "item" and c.draw_size is None and c.n_groups < c.n_items:
        out.append(
            f"<strong>Items resampled one by one.</strong> {esc(c.n_items)} items share "
            f"{esc(c.n_groups)} inputs, so they are not independent: these intervals are too "
            "narrow and the p-values too small. Rerun with <code>--bootstrap auto</code> (the "
            "default) to resample whole input groups."
        )
    if not report.leakage_checked:
        out.append(
            "<strong>Leakage not checked.</strong> This run did not verify that no test item's "
            "label reached the aligned judges' memory."
        )
    failed = sum(r.failed for r in report.results)
    if failed:
        out.append(f"<strong>{failed} failed judgement(s)</strong> are left out of the metrics.")
    return "".join(f'<div class="warning" role="alert">{w}</div>' for w in out)


def _humans(report: EvaluationReport) -> str:
    lines = human_lines(report)
    if not lines:
        return ""
    return (
        "<h3>Human raters</h3><ul class='explain'>"
        + "".join(f"<li>{esc(line)}</li>" for line in lines)
        + "</ul>"
    )


def _dimensions_table(report: EvaluationReport) -> str:
    rows = []
    for d in report.rubric.dimensions:
        s = d.scale
        na = "—" if s.na_value is None else f"{s.na_value} ({s.na_description})"
        rows.append(
            f"<tr><th scope='row'>{esc(d.id)}</th><td>{esc(d.name)}</td>"
            f"<td class='num'>{esc(s.min)}–{esc(s.max)}</td><td>{esc(na)}</td></tr>"
        )
    head = "<tr><th>Dimension</th><th>Name</th><th>Scale</th><th>N/A value</th></tr>"
    return f"<table class='dimensions'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _plots(report: EvaluationReport) -> str:
    variants = report.config.variants or None
    dims = report.config.dimensions or None
    mae = mae_plot(report.results, report.references, variants=variants, dimensions=dims)
    parts = [
        "<h3 id='plot-mae'>Mean absolute error</h3>",
        "<p class='explain'>Points are MAE pooled over out-of-fold predictions; whiskers are "
        "the confidence interval. Dashes mark what always answering the training median "
        "scores, and human-human disagreement where several raters labelled an item.</p>",
        f"<div class='plots'>{mae}</div>",
        "<h3 id='plot-bias'>Leniency bias</h3>",
        "<p class='explain'>Mean judge score minus expert score on items both scored; above "
        "zero the judge is lenient, below zero harsh.</p>",
        f"<div class='plots'>{bias_plot(report.results, variants=variants, dimensions=dims)}</div>",
        "<h3 id='plot-curve'>Learning curve</h3>",
    ]
    refs = {r.dimension: r for r in report.references}
    if report.learning_curve:
        parts.append(
            "<p class='explain'>MAE of judges aligned on a subset of the training labels; the "
            "grey point at zero labels is the unaligned baseline.</p>"
        )
        curve_dims = list(
            dict.fromkeys(
                [*report.config.dimensions, *(p.dimension for p in report.learning_curve)]
            )
        )
        svgs = []
        for dim in curve_dims:
            base = report.result("baseline", dim)
            svgs.append(
                learning_curve_plot(
                    report.learning_curve,
                    dim,
                    baseline=base.mae if base else None,
                    reference=refs.get(dim),
                )
            )
        parts.append(f"<div class='plots'>{''.join(svgs)}</div>")
    else:
        parts.append(
            "<p class='explain'>No learning curve in this run (evaluate with "
            "<code>--learning-curve 5,10,20</code> to add one).</p>"
        )
        parts.append(
            f"<div class='plots'>{empty_plot('curve', 'Learning curve', 'no learning curve')}</div>"
        )
    parts.append("<h3 id='plot-confusion'>Confusion matrices</h3>")
    parts.append(
        "<p class='explain'>Rows: expert score; columns: judge score; the diagonal (outlined) "
        "is exact agreement.</p>"
    )
    order = {v: i for i, v in enumerate(report.config.variants)}
    by_dim: dict[str, list[str]] = {}
    for r in sorted(report.results, key=lambda r: order.get(r.variant, 99)):
        by_dim.setdefault(r.dimension, []).append(confusion_plot(r))
    if not by_dim:
        by_dim[""] = [empty_plot("confusion", "Confusion matrices")]
    for dim in [*report.config.dimensions, *by_dim]:
        if dim in by_dim:
            parts.append(f"<div class='plots'>{''.join(by_dim.pop(dim))}</div>")
    return "".join(parts)


def render_html(report: EvaluationReport) -> str:
    """The whole report as one HTML page (inline CSS and SVG, no scripts, no URLs).

    >>> from judgealign.report.model import EvaluationReport
    >>> page = render_html(report)  # doctest: +SKIP
    >>> page.startswith("<!DOCTYPE html>")  # doctest: +SKIP
    True
    """
    c = report.config
    title = f"judgealign report — {c.name or c.rubric_id}"
    notes = ""
    if report.notes:
        notes = (
            "<h3>Notes</h3><ul class='notes'>"
            + "".join(f"<li>{esc(n)}</li>" for n in report.notes)
            + "</ul>"
        )
    body = [
        f"<header><h1>{esc(title)}</h1>",
        f"<p class='sub'>Judge <strong>{esc(c.model)}</strong> on rubric "
        f"<strong>{esc(c.rubric_id)}</strong>: {esc(len(c.dimensions))} dimension(s), "
        f"{esc(c.n_items)} items, {esc(c.folds)}-fold cross-validation, "
        f"created {esc(report.created)}.</p></header>",
        _warnings(report),
        "<nav><a href='#config'>Run</a><a href='#summary'>Summary</a>"
        "<a href='#plots'>Plots</a><a href='#plan'>How many labels?</a>"
        "<a href='#learned'>What the judge learned</a>"
        "<a href='#judgements'>Judgements</a></nav>",
        "<section id='config'><h2>Run</h2>",
        f"<div class='scroll'>{config_table(report)}</div>",
        "<h3>Usage</h3>",
        f"<div class='scroll'>{usage_table(report)}</div>",
        "<h3>Dimensions</h3>",
        f"<div class='scroll'>{_dimensions_table(report)}</div>",
        notes,
        "</section>",
        "<section id='summary'><h2>Summary</h2>",
        "<p class='explain'>MAE against the expert (lower is better) with "
        "bootstrap intervals. Each row compares a variant with the "
        "baseline on the same n items (those the expert and both judges scored): both MAEs "
        "and Δ, the paired change, are over them (negative is better; green when the whole "
        "interval is below zero, red when above); Holm p is adjusted across dimensions per "
        "variant, bold below 0.05. Each variant's MAE over all the items it scored is in the "
        "agreement table below.</p>",
        "<ul class='explain method'>"
        + "".join(f"<li>{esc(line)}</li>" for line in describe_statistics(report))
        + "</ul>",
        f"<div class='scroll'>{summary_table(report)}</div>",
        _humans(report),
        "<h3>Agreement by variant</h3>",
        f"<div class='scroll'>{agreement_table(report)}</div>",
        "</section>",
        f"<section id='plots'><h2>Plots</h2>{_plots(report)}</section>",
        f"<section id='plan'><h2>How many labels?</h2>{plan_section(report)}</section>",
        "<section id='learned'><h2>What the judge learned</h2>",
        learned_section(report),
        "</section>",
        "<section id='judgements'><h2>Judgements</h2>",
        "<p class='explain'>Every out-of-fold judgement, one folded table per dimension and "
        "variant (click to open). Each row lists the guidelines and labelled examples the "
        "judge saw (click its count); the fold is the held-out fold the item was judged in. "
        "Rationales are cut at 300 characters; report.json has them whole.</p>",
        judgement_section(report, JUDGEMENT_ROWS),
        "</section>",
        f"<footer>judgealign {esc(report.judgealign_version)} · report schema "
        f"{esc(report.schema_version)}</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{PAGE_CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{PAGE_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_html(report: EvaluationReport, path: Path) -> Path:
    """Render ``report`` to ``path`` atomically (temp file, then replace); returns ``path``.

    >>> write_html(report, Path("runs/demo/report.html"))  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(render_html(report), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
