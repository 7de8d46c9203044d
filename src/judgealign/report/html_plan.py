"""HTML for the sample-size plan: how many labels reach a precision, or a power.

One table of answers per dimension, then, folded, the simulated sizes behind them. Every
report-derived string passes through ``esc``.
"""

from __future__ import annotations

from judgealign.report.model import DimensionPlan, EvaluationReport, SampleSizePlan
from judgealign.report.svg import esc
from judgealign.report.table import FEW_PILOT_GROUPS

DASH = "—"


def _n(x: int | None) -> str:
    return "> 20,000 items" if x is None else f"{x:,}"


def _answers(plan: SampleSizePlan) -> str:
    unit = "groups" if plan.unit == "cluster" else "items"
    head = (
        "<tr><th scope='col'>Dimension</th><th scope='col'>Judge</th>"
        f"<th scope='col'>Pilot labels ({unit})</th>"
        "<th scope='col' title='share of labelled items the MAE is over (the rest are N/A "
        "or failed)'>Scored</th>"
        "<th scope='col'>MAE interval width<br>now → target</th>"
        "<th scope='col'>Labels for that width</th>"
        "<th scope='col'>Power to detect the change<br>now → target</th>"
        "<th scope='col'>Labels for that power</th></tr>"
    )
    rows = []
    for d in plan.dimensions:
        rough = d.pilot_groups < FEW_PILOT_GROUPS
        pilot = f"{d.pilot_labels:,} ({d.pilot_groups:,})" + (" ⚠" if rough else "")
        if d.change is not None and d.power_now is not None:
            power = (
                f"{d.power_now:.0%} → {d.power:.0%}<br><small>change {d.change:.2f} vs "
                f"{esc(d.reference or 'baseline')} (pilot: {d.pilot_change:+.2f})</small>"
                if d.pilot_change is not None
                else f"{d.power_now:.0%} → {d.power:.0%}"
            )
            power_n = esc(_n(d.labels_for_power))
        else:
            power, power_n = DASH, DASH
        title = f" title='only {d.pilot_groups} pilot {unit}: a rough plan'" if rough else ""
        rows.append(
            f"<tr><th scope='row'>{esc(d.dimension)}</th><td>{esc(d.variant)}</td>"
            f"<td class='num'{title}>{esc(pilot)}</td>"
            f"<td class='num'>{d.applicable_share:.0%}</td>"
            f"<td class='num'>{d.width_now:.2f} → {d.width:.2f}</td>"
            f"<td class='num'><strong>{esc(_n(d.labels_for_width))}</strong></td>"
            f"<td class='num'>{power}</td>"
            f"<td class='num'><strong>{power_n}</strong></td></tr>"
        )
    return f"<table class='plan'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _curve(d: DimensionPlan, unit: str) -> str:
    head = (
        f"<tr><th scope='col'>Labels</th><th scope='col'>Items</th><th scope='col'>{unit}</th>"
        "<th scope='col'>Expected MAE interval width</th>"
        "<th scope='col'>Power</th></tr>"
    )
    rows = "".join(
        f"<tr><td class='num'>{p.n_labels:,}</td><td class='num'>{p.n_items:,}</td>"
        f"<td class='num'>{p.n_groups:,}</td><td class='num'>{p.width:.3f}</td>"
        f"<td class='num'>{DASH if p.power is None else f'{p.power:.0%}'}</td></tr>"
        for p in d.curve
    )
    return (
        f"<details class='fold'><summary>{esc(d.dimension)}: simulated sizes</summary>"
        f"<table class='plan-curve'><thead>{head}</thead><tbody>{rows}</tbody></table></details>"
    )


def plan_section(report: EvaluationReport) -> str:
    """The "How many labels?" section: answers per dimension, how they were found, and what
    they assume."""
    plan = report.plan
    skipped = (
        "<ul class='note'>"
        + "".join(f"<li>No plan for {esc(why)}.</li>" for why in plan.skipped)
        + "</ul>"
        if plan is not None and plan.skipped
        else ""
    )
    if plan is not None and not plan.dimensions:
        return skipped
    if plan is None:
        return (
            "<p class='explain'>No sample-size plan in this report (written by an older "
            "judgealign); <code>judgealign plan RUN --write</code> adds one.</p>"
        )
    unit = "input groups" if plan.unit == "cluster" else "items"
    alpha = plan.dimensions[0].alpha
    explain = (
        "<p class='explain'>How many labels (per dimension) until the judge's MAE interval is "
        "as narrow as the target, and until a change in MAE of the target size against the "
        f"baseline is detected (paired test at level {alpha:g}) with the target power. "
        f"Planned by simulation from this run's errors: each simulated evaluation draws whole "
        f"{unit} from this run's, with their items' errors ({plan.simulations:,} simulated "
        "evaluations per size; for power, the per-item differences are shifted so their mean "
        "is the change to detect). Labels count every labelled item, N/A ones included, "
        "times the raters per item. <code>judgealign plan RUN --width W --change D "
        "--power P</code> plans other targets.</p>"
        "<p class='note'>Assumes new items are like these (same mix of inputs, difficulty "
        "and N/A answers, as many items per input group) and judges like these; a judge "
        "aligned on more labels may do better, which makes the plan conservative. The change "
        "is a shift of this run's paired differences: when the two judges barely differ here, "
        "their differences vary little and the plan for a large change is optimistic. It plans "
        "for item sampling only: with repeats, the spread across repeats is what it leaves "
        "out. ⚠: fewer than "
        f"{FEW_PILOT_GROUPS} pilot {unit}, a rough plan.</p>"
    )
    curves = "".join(_curve(d, unit.split()[-1].capitalize()) for d in plan.dimensions)
    return f"{explain}<div class='scroll'>{_answers(plan)}</div>{skipped}{curves}"
