"""Inline SVG plots for the HTML report.

Why hand-written SVG: the report must be one self-contained file that opens offline in any
browser, years later, with no matplotlib installed and no charting script fetched from a CDN.
The plots are simple (points with interval whiskers, lines with a band, a heatmap), so a few
pure functions that turn report data into SVG text are enough, and they are testable as
strings. Every piece of text is escaped: item and dimension ids come from user data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from judgealign.report.model import CurvePoint, DimensionResult, Interval, ReferenceLine
from judgealign.report.svg import (
    VARIANT_COLOURS,
    clip,
    empty_plot,
    esc,
    fmt,
    fmt_interval,
    nice_ticks,
    px,
    scale,
    svg_doc,
    svg_legend,
    svg_line,
    svg_text,
    variant_colour,
    whisker,
    y_axis,
)

__all__ = [
    "VARIANT_COLOURS",
    "bias_plot",
    "confusion_plot",
    "empty_plot",
    "learning_curve_plot",
    "mae_plot",
    "nice_ticks",
    "variant_colour",
]

_REF_STYLES = {  # reference mark -> (legend text, stroke colour, dash pattern)
    "median": ("median predictor", "#222222", "6 3"),
    "human": ("human-human", "#8e44ad", "2 2"),
}
_Ref = tuple[str, float]  # (key in _REF_STYLES, value)


def _order(values: Sequence[str], given: Sequence[str] | None) -> list[str]:
    if given is not None:
        return list(given)
    return list(dict.fromkeys(values))


def _interval_chart(
    *,
    kind: str,
    label: str,
    y_title: str,
    results: Sequence[DimensionResult],
    pick: Callable[[DimensionResult], Interval | None],
    variants: list[str],
    dimensions: list[str],
    refs: dict[str, list[_Ref]],
    zero_line: bool,
) -> str:
    by_key = {(r.variant, r.dimension): pick(r) for r in results}
    values = [v for iv in by_key.values() if iv is not None for v in (iv.low, iv.high)]
    values += [v for rs in refs.values() for _, v in rs]
    if not dimensions or not variants or not values:
        return empty_plot(kind, label)
    lo, hi = min([*values, 0.0]), max([*values, 0.0])
    pad = (hi - lo) * 0.05
    ticks = nice_ticks(lo - (pad if lo < 0 else 0.0), hi + pad)
    left, plot_h = 58.0, 240.0
    width = max(left + max(140.0, 30.0 * len(variants) + 40) * len(dimensions) + 16, 560.0)
    group_w = (width - left - 16) / len(dimensions)
    legend = [(v, variant_colour(v), "dot") for v in variants]
    present = {key for rs in refs.values() for key, _ in rs}
    legend += [(s[0], s[1], s[2]) for k, s in _REF_STYLES.items() if k in present]
    body, legend_y = svg_legend(legend, left, 18, width - 8)
    top = legend_y + 22
    height = top + plot_h + 46
    y = scale(ticks[0], ticks[-1], top + plot_h, top)
    body += y_axis(ticks, y, left, width - 16, y_title, top + plot_h / 2)
    if zero_line:
        body.append(svg_line(left, y(0.0), width - 16, y(0.0), "#333", ' stroke-width="1.2"'))
    for g, dim in enumerate(dimensions):
        gx = left + g * group_w
        for key, value in refs.get(dim, []):
            name, colour, dash = _REF_STYLES[key]
            tip = f"{dim}: {name} {fmt(value)}"
            body.append(
                f"<g><title>{esc(tip)}</title>"
                + svg_line(
                    gx + 6,
                    y(value),
                    gx + group_w - 6,
                    y(value),
                    colour,
                    f' stroke-width="2" stroke-dasharray="{dash}"',
                )
                + "</g>"
            )
        step = (group_w - 24) / max(len(variants), 1)
        for i, variant in enumerate(variants):
            x = gx + 12 + step * (i + 0.5)
            iv = by_key.get((variant, dim))
            if iv is None:
                body.append(
                    svg_text(
                        x, top + plot_h - 4, "n/a", anchor="middle", size=9, extra=' fill="#999"'
                    )
                )
                continue
            tip = f"{variant} · {dim}: {fmt_interval(iv)}"
            body.append(whisker(x, iv, y, variant_colour(variant), tip))
        max_chars = int(group_w / 6.2)
        body.append(
            f"<g><title>{esc(dim)}</title>"
            + svg_text(gx + group_w / 2, top + plot_h + 18, clip(dim, max_chars), anchor="middle")
            + "</g>"
        )
        if g:
            body.append(svg_line(gx, top, gx, top + plot_h, "#f0f0f0"))
    body.append(svg_line(left, top + plot_h, width - 16, top + plot_h, "#999"))
    return svg_doc(kind, label, width, height, body)


def mae_plot(
    results: Sequence[DimensionResult],
    references: Sequence[ReferenceLine] = (),
    *,
    variants: Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
) -> str:
    """MAE with its CI per dimension, one whisker per variant, reference levels as dashes.

    >>> mae_plot([]).startswith('<svg class="plot plot-mae"')
    True
    """
    refs: dict[str, list[_Ref]] = {}
    for ref in references:
        marks: list[_Ref] = []
        if ref.median_predictor_mae is not None:
            marks.append(("median", ref.median_predictor_mae))
        if ref.human_human_mae is not None:
            marks.append(("human", ref.human_human_mae))
        refs[ref.dimension] = marks
    return _interval_chart(
        kind="mae",
        label="Mean absolute error (judge vs expert) with confidence intervals",
        y_title="MAE (lower is better)",
        results=results,
        pick=lambda r: r.mae,
        variants=_order([r.variant for r in results], variants),
        dimensions=_order([r.dimension for r in results], dimensions),
        refs=refs,
        zero_line=False,
    )


def bias_plot(
    results: Sequence[DimensionResult],
    *,
    variants: Sequence[str] | None = None,
    dimensions: Sequence[str] | None = None,
) -> str:
    """Leniency bias (mean judge minus expert score) with its CI; above zero is lenient.

    >>> 'plot-bias' in bias_plot([])
    True
    """
    return _interval_chart(
        kind="bias",
        label="Leniency bias: mean signed error (judge minus expert), positive = lenient",
        y_title="judge − expert",
        results=results,
        pick=lambda r: r.bias,
        variants=_order([r.variant for r in results], variants),
        dimensions=_order([r.dimension for r in results], dimensions),
        refs={},
        zero_line=True,
    )


def learning_curve_plot(
    points: Sequence[CurvePoint],
    dimension: str,
    *,
    baseline: Interval | None = None,
    reference: ReferenceLine | None = None,
) -> str:
    """MAE against labels used for alignment on one dimension, one line and band per variant.

    ``baseline`` (the unaligned judge) is drawn at zero labels.

    >>> p = CurvePoint(dimension="d", variant="full", n_labels=5, mae=None)
    >>> 'plot-curve' in learning_curve_plot([p], "d")
    True
    """
    label = f"Learning curve for {dimension}: MAE against number of labels"
    pts = sorted((p for p in points if p.dimension == dimension), key=lambda p: p.n_labels)
    series: dict[str, list[tuple[int, Interval]]] = {}
    for p in pts:
        if p.mae is not None:
            series.setdefault(p.variant, []).append((p.n_labels, p.mae))
    if not series:
        return empty_plot("curve", label, f"{dimension}: no learning-curve points")
    refs: list[_Ref] = []
    if reference is not None and reference.median_predictor_mae is not None:
        refs.append(("median", reference.median_predictor_mae))
    if reference is not None and reference.human_human_mae is not None:
        refs.append(("human", reference.human_human_mae))
    ivs = [iv for s in series.values() for _, iv in s] + ([baseline] if baseline else [])
    ys = [v for iv in ivs for v in (iv.low, iv.high)] + [v for _, v in refs]
    y_ticks = nice_ticks(0.0, max(ys) * 1.05 if max(ys) > 0 else 1.0)
    x_max = max(n for s in series.values() for n, _ in s)
    x_ticks = nice_ticks(0.0, float(x_max), 5)
    left, plot_w, plot_h = 58.0, 340.0, 190.0
    width = left + plot_w + 20
    legend = [(v, variant_colour(v), "dot") for v in series]
    if baseline is not None and "baseline" not in series:
        legend.insert(0, ("baseline", variant_colour("baseline"), "dot"))
    legend += [(_REF_STYLES[k][0], _REF_STYLES[k][1], _REF_STYLES[k][2]) for k, _ in refs]
    body, legend_y = svg_legend(legend, left, 36, width - 8)
    body.append(svg_text(left, 16, clip(dimension, 60), size=12, extra=' font-weight="bold"'))
    top = legend_y + 18
    height = top + plot_h + 46
    x = scale(x_ticks[0], x_ticks[-1], left + 8, left + plot_w - 8)
    y = scale(y_ticks[0], y_ticks[-1], top + plot_h, top)
    body += y_axis(y_ticks, y, left, left + plot_w, "MAE", top + plot_h / 2)
    body.append(svg_line(left, top + plot_h, left + plot_w, top + plot_h, "#999"))
    for t in x_ticks:
        body.append(svg_text(x(t), top + plot_h + 14, f"{t:g}", anchor="middle", size=10))
    body.append(
        svg_text(
            left + plot_w / 2, top + plot_h + 32, "labels per dimension", anchor="middle", size=10
        )
    )
    for key, value in refs:
        name, colour, dash = _REF_STYLES[key]
        body.append(
            f"<g><title>{esc(f'{name}: {fmt(value)}')}</title>"
            + svg_line(
                left,
                y(value),
                left + plot_w,
                y(value),
                colour,
                f' stroke-width="1.5" stroke-dasharray="{dash}"',
            )
            + "</g>"
        )
    if baseline is not None:
        tip = f"baseline (no labels) · {dimension}: {fmt_interval(baseline)}"
        body.append(whisker(x(0.0), baseline, y, variant_colour("baseline"), tip))
    for variant, s in series.items():
        colour = variant_colour(variant)
        if len(s) >= 2:
            band = [(x(n), y(iv.high)) for n, iv in s] + [
                (x(n), y(iv.low)) for n, iv in reversed(s)
            ]
            coords = " ".join(f"{px(a)},{px(b)}" for a, b in band)
            body.append(f'<polygon points="{coords}" fill="{colour}" fill-opacity="0.15"/>')
            line = " ".join(f"{px(x(n))},{px(y(iv.estimate))}" for n, iv in s)
            body.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        for n, iv in s:
            body.append(whisker(x(n), iv, y, colour, f"{variant} · {n} labels: {fmt_interval(iv)}"))
    return svg_doc("curve", label, width, height, body)


def _heat(t: float) -> str:
    lo, hi = (247, 251, 255), (8, 48, 107)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(lo, hi, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def confusion_plot(result: DimensionResult) -> str:
    """Heatmap of the confusion matrix (rows expert, columns judge) with counts in cells.

    >>> r = DimensionResult(variant="full", dimension="d", n_items=2, n_scored=2, mae=None,
    ...                     bias=None, levels=["1", "2"], confusion=[[1, 0], [0, 1]])
    >>> confusion_plot(r).count("<rect") >= 4
    True
    """
    label = f"Confusion matrix for {result.dimension}, {result.variant}: rows expert, columns judge"
    m, levels = result.confusion, result.levels
    k = len(m)
    if k == 0 or any(len(row) != k for row in m):
        return empty_plot("confusion", label, f"{result.dimension} · {result.variant}: no matrix")
    if len(levels) != k:
        levels = [str(i) for i in range(k)]
    cell = 34.0 if k <= 6 else max(16.0, 200.0 / k)
    size = 10 if cell >= 24 else 8
    label_w = max(len(lv) for lv in levels) * 6.5 + 10
    left, top = 24.0 + label_w, 50.0
    width = max(left + cell * k + 12, 180.0)
    height = top + cell * k + 14
    peak = max((v for row in m for v in row), default=0) or 1
    body = [
        svg_text(
            4,
            14,
            clip(f"{result.dimension} · {result.variant}", int(width / 6.5)),
            size=11,
            extra=' font-weight="bold"',
        ),
        svg_text(left + cell * k / 2, 30, "judge →", anchor="middle", size=10),
        svg_text(
            10,
            top + cell * k / 2,
            "expert →",
            anchor="middle",
            size=10,
            extra=f' transform="rotate(-90 10 {px(top + cell * k / 2)})"',
        ),
    ]
    for j, lv in enumerate(levels):
        body.append(svg_text(left + cell * (j + 0.5), top - 6, lv, anchor="middle", size=size))
    for i, row in enumerate(m):
        body.append(
            svg_text(left - 5, top + cell * (i + 0.5) + 4, levels[i], anchor="end", size=size)
        )
        for j, count in enumerate(row):
            t = count / peak
            cx, cy = left + cell * j, top + cell * i
            stroke = ' stroke="#fff"'
            tip = f"expert {levels[i]}, judge {levels[j]}: {count}"
            fill = "#ffffff" if t > 0.55 else ("#bbbbbb" if count == 0 else "#111111")
            body.append(
                f"<g><title>{esc(tip)}</title>"
                f'<rect x="{px(cx)}" y="{px(cy)}" width="{px(cell)}" height="{px(cell)}" '
                f'fill="{_heat(t)}"{stroke}/>'
                + svg_text(
                    cx + cell / 2,
                    cy + cell / 2 + 4,
                    str(count),
                    anchor="middle",
                    size=size,
                    extra=f' fill="{fill}"',
                )
                + "</g>"
            )
    body += [  # the diagonal (exact agreement) outlined on top of the cells
        f'<rect x="{px(left + cell * i)}" y="{px(top + cell * i)}" width="{px(cell)}" '
        f'height="{px(cell)}" fill="none" stroke="#333" stroke-width="1.5"/>'
        for i in range(k)
    ]
    return svg_doc("confusion", label, width, height, body)
