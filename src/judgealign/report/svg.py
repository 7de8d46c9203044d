"""Small SVG building blocks shared by the report plots.

Why a module of its own: the plots in ``plots.py`` are drawn by hand (no matplotlib, no
scripts) so the HTML report stays one self-contained file; the primitives here (escaped
text, lines, axes, legends, interval whiskers) are what every plot repeats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from judgealign.report.model import Interval

# Fixed colour per variant (Okabe-Ito hues, colour-blind safe); the baseline is grey.
VARIANT_COLOURS: dict[str, str] = {
    "baseline": "#6e6e6e",
    "semantic": "#0072b2",
    "episodic": "#009e73",
    "full": "#d55e00",
}
_EXTRA_COLOURS = ("#cc79a7", "#e69f00", "#56b4e9", "#8c564b", "#000000")
_FONT = 11


def variant_colour(variant: str) -> str:
    """The fixed colour of a variant; unknown variants get a stable extra colour.

    >>> variant_colour("baseline")
    '#6e6e6e'
    """
    if variant in VARIANT_COLOURS:
        return VARIANT_COLOURS[variant]
    return _EXTRA_COLOURS[sum(map(ord, variant)) % len(_EXTRA_COLOURS)]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``.

    >>> nice_ticks(0.0, 1.0)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(k * step, 10) for k in range(first, last + 1)]


def esc(text: object) -> str:
    """Escape text for SVG/HTML content or a quoted attribute.

    >>> esc('a<b & "c"')
    'a&lt;b &amp; &quot;c&quot;'
    """
    return escape(str(text), quote=True)


def px(x: float) -> str:
    """A coordinate with one decimal.

    >>> px(3.14159)
    '3.1'
    """
    return f"{x:.1f}"


def fmt(x: float) -> str:
    """A value with two decimals, for tooltips.

    >>> fmt(0.5)
    '0.50'
    """
    return f"{x:.2f}"


def fmt_interval(iv: Interval | None) -> str:
    """``estimate [low, high]``, or ``n/a``.

    >>> fmt_interval(None)
    'n/a'
    """
    if iv is None:
        return "n/a"
    return f"{fmt(iv.estimate)} [{fmt(iv.low)}, {fmt(iv.high)}]"


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` with an ellipsis.

    >>> clip("abcdef", 4)
    'abc…'
    """
    return text if len(text) <= max_chars else text[: max(max_chars - 1, 1)] + "…"


def svg_text(
    x: float, y: float, s: str, *, anchor: str = "start", size: int = _FONT, extra: str = ""
) -> str:
    """An escaped ``<text>`` element.

    >>> svg_text(1, 2, "<a>")
    '<text x="1.0" y="2.0" font-size="11" text-anchor="start">&lt;a&gt;</text>'
    """
    return (
        f'<text x="{px(x)}" y="{px(y)}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{esc(s)}</text>"
    )


def svg_line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    """A ``<line>`` element; ``extra`` holds further (trusted) attributes.

    >>> svg_line(0, 0, 1, 1, "#000")
    '<line x1="0.0" y1="0.0" x2="1.0" y2="1.0" stroke="#000"/>'
    """
    return (
        f'<line x1="{px(x1)}" y1="{px(y1)}" x2="{px(x2)}" y2="{px(y2)}" stroke="{stroke}"{extra}/>'
    )


def svg_doc(kind: str, label: str, width: float, height: float, body: list[str]) -> str:
    """The ``<svg>`` wrapper: class ``plot plot-KIND``, ``role="img"``, aria-label, title.

    >>> svg_doc("mae", "MAE", 10, 10, []).startswith('<svg class="plot plot-mae" role="img"')
    True
    """
    return (
        f'<svg class="plot plot-{esc(kind)}" role="img" aria-label="{esc(label)}" '
        f'viewBox="0 0 {px(width)} {px(height)}" width="{px(width)}" height="{px(height)}" '
        f'font-family="system-ui, sans-serif"><title>{esc(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def empty_plot(kind: str, label: str, message: str = "no data") -> str:
    """A small placeholder SVG that says why there is nothing to draw.

    >>> 'no data' in empty_plot("mae", "MAE")
    True
    """
    body = [
        '<rect x="0.5" y="0.5" width="359" height="59" fill="none" stroke="#ccc"/>',
        svg_text(180, 35, message, anchor="middle", extra=' fill="#777"'),
    ]
    return svg_doc(kind, f"{label}: {message}", 360, 60, body)


def y_axis(
    ticks: list[float],
    y: Callable[[float], float],
    left: float,
    right: float,
    title: str,
    mid: float,
) -> list[str]:
    """Horizontal grid lines with tick labels, and a rotated axis title at ``mid``.

    >>> len(y_axis([0.0, 1.0], lambda v: v, 0, 10, "MAE", 5))
    5
    """
    out = []
    for t in ticks:
        out.append(svg_line(left, y(t), right, y(t), "#e5e5e5"))
        out.append(svg_text(left - 5, y(t) + 4, f"{t:g}", anchor="end", size=10))
    out.append(
        svg_text(
            14, mid, title, anchor="middle", size=10, extra=f' transform="rotate(-90 14 {px(mid)})"'
        )
    )
    return out


def svg_legend(
    entries: list[tuple[str, str, str]], x: float, y: float, max_x: float
) -> tuple[list[str], float]:
    """A legend that wraps before ``max_x``; returns the elements and the last row's baseline.

    ``entries`` are (text, colour, "dot" or a dash pattern for a line).

    >>> els, bottom = svg_legend([("full", "#d55e00", "dot")], 0, 10, 300)
    >>> len(els), bottom
    (2, 10)
    """
    out = []
    x0 = x
    for name, colour, mark in entries:
        w = 28 + len(name) * 6
        if x > x0 and x + w > max_x:
            x, y = x0, y + 16
        if mark == "dot":
            out.append(f'<circle cx="{px(x + 5)}" cy="{px(y - 4)}" r="4" fill="{colour}"/>')
        else:
            dash = f' stroke-width="2" stroke-dasharray="{mark}"'
            out.append(svg_line(x, y - 4, x + 16, y - 4, colour, dash))
        out.append(svg_text(x + 20, y, name, size=10))
        x += w
    return out, y


def scale(lo: float, hi: float, px_lo: float, px_hi: float) -> Callable[[float], float]:
    """A linear map from data ``[lo, hi]`` to pixels ``[px_lo, px_hi]``.

    >>> scale(0, 1, 100, 0)(0.25)
    75.0
    """
    span = hi - lo or 1.0
    return lambda v: px_lo + (v - lo) / span * (px_hi - px_lo)


def whisker(x: float, iv: Interval, y: Callable[[float], float], colour: str, tip: str) -> str:
    """A point at the estimate with a capped CI bar and a hover tooltip.

    >>> "<circle" in whisker(5, Interval(estimate=1, low=0, high=2), lambda v: v, "#000", "t")
    True
    """
    cap = 4
    return (
        f"<g><title>{esc(tip)}</title>"
        + svg_line(x, y(iv.low), x, y(iv.high), colour, ' stroke-width="1.5"')
        + svg_line(x - cap, y(iv.low), x + cap, y(iv.low), colour, ' stroke-width="1.5"')
        + svg_line(x - cap, y(iv.high), x + cap, y(iv.high), colour, ' stroke-width="1.5"')
        + f'<circle cx="{px(x)}" cy="{px(y(iv.estimate))}" r="4" fill="{colour}"/></g>'
    )
