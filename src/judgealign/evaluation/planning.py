"""How many labels: sample sizes planned by simulation from a pilot's paired errors.

A team deciding how many notebooks to label asks two questions, per rubric dimension:

- **Precision**: how many labels until the judge's MAE interval is no wider than ``width``?
- **Power**: how many labels until a change of ``change`` in MAE (an aligned judge against its
  baseline) is detected, at level ``alpha``, with probability ``power``?

Both are answered from the pilot (an evaluation already run) by simulation, without any model
call: a simulated evaluation of m input groups draws m whole groups, with their items' errors,
from the pilot's groups (items when they share no input), exactly as the report's cluster
bootstrap resamples them. For precision, each simulated set's interval width is
``2 t_{m-1} SE`` (SE: the ratio mean's linearized cluster standard error, with m / (m - 1)),
which is what the report's expanded bootstrap interval approaches; the expected width is the
mean over the simulated sets. For power, the pilot's per-item differences are first shifted
so their mean is the change to detect (a location shift: the spread, skew and correlation
within groups stay the pilot's), and a simulated set counts as a detection when
``|mean| / SE > t_{m-1, 1 - alpha/2}``, the test the report's expanded paired bootstrap
approximates. Sizes are searched by doubling, then bisection to 1%; large sizes use fewer
simulated evaluations (at least 200), their widths scattering little. tests/test_planning.py
checks the answers against the report's own bootstrap on simulated evaluations.

Assumptions, said in every report that shows a plan: new items resemble the pilot's (same
mix of inputs, of difficulty, of N/A answers: labels to collect count the N/A items that do
not enter the MAE); new groups hold as many items as the pilot's on average; the judges are
the ones piloted (a judge aligned on more labels may do better; the plan is then
conservative); the change to detect is a shift of the pilot's paired differences (when the
piloted judges barely differ, their differences vary little and a plan for a large change is
optimistic: pilot with a judge that differs from its baseline); and item sampling is the only
variance planned for (with ``--repeats`` the spread across repeats shows the alignment
variance it leaves out).

>>> rng = np.random.default_rng(0)
>>> base = rng.integers(0, 3, 60).astype(float)
>>> aligned = np.clip(base - rng.integers(0, 2, 60), 0, 2)
>>> plan = plan_dimension("d", base, aligned, groups=None, width=0.2, change=0.2, seed=0)
>>> plan.labels_for_width > 60 and plan.labels_for_power is not None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import stdtrit

from judgealign.errors import ConfigError, DataError
from judgealign.evaluation.metrics import pair_scores
from judgealign.report.model import DimensionPlan, EvaluationReport, PlanPoint, SampleSizePlan

SIMULATIONS = 2000
# Never plan beyond this many items: the answer is then "more than that".
MAX_ITEMS = 20_000
# Simulated evaluations are drawn in chunks of at most this many group draws.
_CHUNK = 1 << 21
# At most this many group draws per size tried: large sizes get fewer simulated evaluations
# (never fewer than _MIN_SIMULATIONS), as their widths scatter little.
_DRAWS_PER_SIZE = 4_000_000
_MIN_SIMULATIONS = 200

FloatArray = npt.NDArray[np.float64]


class _Pilot:
    """Per pilot group: labelled items, and sums and counts of the errors and differences."""

    def __init__(
        self,
        err_ref: FloatArray | None,
        err_var: FloatArray,
        groups: Sequence[Hashable] | None,
    ) -> None:
        n = err_var.size
        keys = list(range(n)) if groups is None else list(groups)
        if len(keys) != n or (err_ref is not None and err_ref.size != n):
            raise DataError("plan: errors and groups must have one entry per item")
        index: dict[Hashable, int] = {}
        codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, n)
        g = len(index)
        scored = ~np.isnan(err_var)
        self.items = np.bincount(codes, minlength=g).astype(float)
        self.var_sum: FloatArray = np.bincount(codes[scored], err_var[scored], minlength=g).astype(
            float
        )
        self.var_n = np.bincount(codes[scored], minlength=g).astype(float)
        self.diff_sum: FloatArray | None = None
        self.diff_n: FloatArray | None = None
        if err_ref is not None:
            both = scored & ~np.isnan(err_ref)
            diff = err_var - err_ref
            self.diff_sum = np.bincount(codes[both], diff[both], minlength=g).astype(float)
            self.diff_n = np.bincount(codes[both], minlength=g).astype(float)

    @property
    def n_groups(self) -> int:
        return int(self.items.size)


def _t(df: FloatArray, upper: float) -> FloatArray:
    """Student's t quantile per entry (NaN where df < 1); computed once per distinct df, as
    the quantile function is slow and simulated sets share a handful of df values."""
    values, inverse = np.unique(df, return_inverse=True)
    safe = np.where(values >= 1, values, 1.0)
    out: FloatArray = np.where(values >= 1, stdtrit(safe, upper), np.nan)[inverse.reshape(df.shape)]
    return out


def _simulate(
    pilot: _Pilot,
    m: int,
    *,
    shift_to: float | None,
    confidence: float,
    alpha: float,
    simulations: int,
    rng: np.random.Generator,
) -> tuple[float, float | None]:
    """(expected interval width, power) of evaluations of ``m`` groups drawn from the pilot."""
    widths: list[FloatArray] = []
    hits: list[FloatArray] = []
    chunk = max(1, _CHUNK // m)
    d_sum = d_n = None
    if shift_to is not None and pilot.diff_sum is not None and pilot.diff_n is not None:
        d_n = pilot.diff_n
        observed = pilot.diff_sum.sum() / d_n.sum()
        # Location shift: every paired item's difference moves by the same amount, so the
        # pilot's mean becomes the change to detect and nothing else changes.
        d_sum = pilot.diff_sum - (observed - shift_to) * d_n
    for start in range(0, simulations, chunk):
        size = min(chunk, simulations - start)
        idx = rng.integers(0, pilot.n_groups, size=(size, m))
        widths.append(
            2.0 * _half_width(pilot.var_sum[idx], pilot.var_n[idx], 1.0 - (1.0 - confidence) / 2)
        )
        if d_sum is not None and d_n is not None:
            ys, ns = d_sum[idx], d_n[idx]
            mean, se, df = _ratio_se(ys, ns)
            crit = _t(df, 1.0 - alpha / 2.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                stat = np.where(se > 0, np.abs(mean) / np.where(se > 0, se, 1.0), np.inf)
            hits.append(np.where(np.isnan(crit) | np.isnan(mean), 0.0, stat > crit))
    w = np.concatenate(widths)
    width = float(np.nanmean(w)) if np.any(~np.isnan(w)) else math.nan
    power = float(np.concatenate(hits).mean()) if hits else None
    return width, power


def _ratio_se(ys: FloatArray, ns: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row of drawn groups: the ratio mean, its linearized cluster standard error (with
    k / (k - 1), k the drawn groups holding an item) and k - 1."""
    total_n = ns.sum(axis=1)
    k = np.count_nonzero(ns > 0, axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ys.sum(axis=1) / total_n
        res = ys - mean[:, None] * ns
        var = k / (k - 1) * (res**2).sum(axis=1) / total_n**2
    ok = (k >= 2) & (total_n > 0)
    return (
        np.where(ok, mean, np.nan),
        np.where(ok, np.sqrt(np.maximum(var, 0.0)), np.nan),
        k - 1,
    )


def _half_width(ys: FloatArray, ns: FloatArray, upper: float) -> FloatArray:
    _, se, df = _ratio_se(ys, ns)
    out: FloatArray = _t(df, upper) * se
    return out


def plan_dimension(
    dimension: str,
    err_ref: npt.ArrayLike | None,
    err_var: npt.ArrayLike,
    *,
    groups: Sequence[Hashable] | None,
    width: float,
    change: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    confidence: float = 0.95,
    labels_per_item: float = 1.0,
    variant: str = "full",
    reference: str | None = "baseline",
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> DimensionPlan:
    """Plan one dimension from its pilot errors (one entry per labelled item, NaN where the
    item is not scored: N/A or a failed judgement). ``err_ref`` (the baseline's errors, or
    None) enables the power question; ``err_var`` is the judge whose MAE interval is planned.
    ``groups``: input group per item (None: items are independent).

    The example in the module docstring runs it; ``plan_sample_size`` plans a whole report.
    """
    if width <= 0:
        raise ConfigError(f"plan: the target width must be positive, got {width}")
    if change is not None and change <= 0:
        raise ConfigError(f"plan: the change to detect must be positive, got {change}")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ConfigError("plan: power and alpha must lie strictly between 0 and 1")
    var = np.asarray(err_var, dtype=float)
    ref = None if err_ref is None else np.asarray(err_ref, dtype=float)
    pilot = _Pilot(ref, var, groups)
    items_per_group = float(pilot.items.mean())
    scored = int(pilot.var_n.sum())
    # One group says nothing about how groups differ: drawing it m times would look certain.
    if np.count_nonzero(pilot.var_n) < 2:
        raise DataError(
            f"plan: {dimension} has scored items in fewer than two "
            f"{'input groups' if groups is not None else 'items'}; nothing to plan from"
        )
    can_test = (
        change is not None and pilot.diff_n is not None and np.count_nonzero(pilot.diff_n) >= 2
    )
    shift = -change if can_test and change is not None else None
    rng = np.random.default_rng(seed)
    cache: dict[int, tuple[float, float | None]] = {}

    def at(m: int) -> tuple[float, float | None]:
        if m not in cache:
            cache[m] = _simulate(
                pilot,
                m,
                shift_to=shift,
                confidence=confidence,
                alpha=alpha,
                simulations=min(simulations, max(_MIN_SIMULATIONS, _DRAWS_PER_SIZE // m)),
                rng=rng,
            )
        return cache[m]

    def point(m: int) -> PlanPoint:
        w, p = at(m)
        items = round(m * items_per_group)
        return PlanPoint(
            n_groups=m,
            n_items=items,
            n_labels=math.ceil(items * labels_per_item),
            width=w,
            power=p,
        )

    cap = max(2, math.ceil(MAX_ITEMS / items_per_group))

    def smallest(reached: Callable[[int], bool]) -> int | None:
        """The fewest groups at which ``reached(m)`` holds: doubling, then bisection to 1%.
        Never fewer than 3 groups: with 2, one degree of freedom makes any answer luck."""
        lo, hi = 2, 3
        while not reached(hi):
            if hi >= cap:
                return None
            lo, hi = hi, min(cap, hi * 2)
        while hi - lo > 1 and (hi - lo) / hi > 0.01:
            mid = (lo + hi) // 2
            if reached(mid):
                hi = mid
            else:
                lo = mid
        return hi

    g_width = smallest(lambda m: at(m)[0] <= width)
    g_power = None
    if shift is not None:
        g_power = smallest(lambda m: (at(m)[1] or 0.0) >= power)
    now = at(pilot.n_groups)
    sizes = {max(3, pilot.n_groups // 2), pilot.n_groups, pilot.n_groups * 2, pilot.n_groups * 4}
    sizes |= {g for g in (g_width, g_power) if g is not None}
    d_n = pilot.diff_n
    pilot_change = (
        float(pilot.diff_sum.sum() / d_n.sum())
        if can_test and pilot.diff_sum is not None and d_n is not None
        else None
    )

    def items_of(g: int | None) -> int | None:
        return None if g is None else round(g * items_per_group)

    def labels_of(g: int | None) -> int | None:
        items = items_of(g)
        return None if items is None else math.ceil(items * labels_per_item)

    return DimensionPlan(
        dimension=dimension,
        variant=variant,
        reference=reference if can_test else None,
        pilot_items=int(var.size),
        pilot_groups=pilot.n_groups,
        pilot_labels=math.ceil(var.size * labels_per_item),
        applicable_share=scored / var.size,
        labels_per_item=labels_per_item,
        pilot_mae=float(np.nanmean(var)),
        pilot_change=pilot_change,
        width=width,
        change=change if shift is not None else None,
        power=power,
        alpha=alpha,
        width_now=now[0],
        power_now=now[1],
        groups_for_width=g_width,
        items_for_width=items_of(g_width),
        labels_for_width=labels_of(g_width),
        groups_for_power=g_power,
        items_for_power=items_of(g_power),
        labels_for_power=labels_of(g_power),
        curve=[point(m) for m in sorted(sizes)],
    )


def _default_variant(variants: Sequence[str]) -> str:
    aligned = [v for v in variants if v != "baseline"]
    if "full" in aligned:
        return "full"
    return aligned[-1] if aligned else "baseline"


def report_errors(
    report: EvaluationReport, variant: str, dimension: str
) -> tuple[list[str], FloatArray]:
    """The absolute errors of ``variant`` on ``dimension``, repeats x items (items: every
    labelled one, in report order; NaN where not scored), rebuilt from the report's
    judgements the way the report computed its MAE."""
    dim = report.rubric.dimension(dimension)
    na = dim.scale.na_value
    expert: dict[str, float | None] = {}
    by_repeat: dict[int, dict[str, float | None]] = {}
    for rec in report.judgements:
        j = rec.judgement
        if j.dimension != dimension:
            continue
        if rec.variant == "baseline" or rec.variant == variant:
            expert.setdefault(j.item, rec.expert)
        if rec.variant == variant:
            by_repeat.setdefault(rec.repeat, {})[j.item] = j.score if j.ok else None
    ids = list(expert)
    rows = []
    for r in sorted(by_repeat):
        paired = pair_scores(expert, by_repeat[r], na_value=na)
        rows.append(np.abs(paired.judge_array - paired.expert_array))
    if not rows:
        return ids, np.full((1, len(ids)), np.nan)
    return ids, np.vstack(rows)


def _item_mean(cells: FloatArray) -> FloatArray:
    kept = ~np.isnan(cells)
    counts = kept.sum(axis=0)
    out: FloatArray = np.where(
        counts > 0, np.where(kept, cells, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan
    )
    return out


def plan_sample_size(
    report: EvaluationReport,
    *,
    width: float | None = None,
    change: float | None = None,
    power: float = 0.8,
    alpha: float = 0.05,
    variant: str | None = None,
    dimensions: Sequence[str] | None = None,
    simulations: int = SIMULATIONS,
    seed: int | None = None,
) -> SampleSizePlan:
    """Labels needed per dimension for an MAE interval no wider than ``width`` and to detect
    an MAE change of ``change`` against the baseline with probability ``power`` at level
    ``alpha``, planned from ``report`` as a pilot (no model call).

    ``width`` and ``change`` default to a tenth of each dimension's scale range (0.2 on a 1-3
    scale); ``variant`` to the aligned judge (``full`` when the run has it). Input groups are
    drawn whole when the report's intervals resampled them. With repeats, each item's error
    is its mean over the repeats, as in the report's interval.

    >>> report = ja.EvaluationReport.load(Path("runs/first/report.json"))  # doctest: +SKIP
    >>> plan = ja.plan_sample_size(report, width=0.2, change=0.15)  # doctest: +SKIP
    >>> plan.dimensions[0].labels_for_width  # doctest: +SKIP
    180
    """
    chosen = variant or _default_variant(report.config.variants)
    if chosen not in report.config.variants:
        raise ConfigError(
            f"plan: variant {chosen!r} is not in this run ({', '.join(report.config.variants)})"
        )
    cluster = report.config.bootstrap == "cluster"
    refs = {r.dimension: r for r in report.references}
    seed = report.config.seed if seed is None else seed
    plans = []
    skipped = []
    for dim_id in dimensions or report.config.dimensions:
        dim = report.rubric.dimension(dim_id)
        span = float(dim.scale.max - dim.scale.min)
        ids, cells = report_errors(report, chosen, dim_id)
        err_var = _item_mean(cells)
        err_ref = None
        if chosen != "baseline" and "baseline" in report.config.variants:
            ref_ids, ref_cells = report_errors(report, "baseline", dim_id)
            index = {i: n for n, i in enumerate(ref_ids)}
            base = _item_mean(ref_cells)
            err_ref = np.array([base[index[i]] if i in index else np.nan for i in ids])
        ref = refs.get(dim_id)
        try:
            planned = plan_dimension(
                dim_id,
                err_ref,
                err_var,
                groups=[report.item_groups.get(i, i) for i in ids] if cluster else None,
                width=width if width is not None else span / 10,
                change=(change if change is not None else span / 10)
                if err_ref is not None
                else None,
                power=power,
                alpha=alpha,
                labels_per_item=ref.labels_per_item if ref is not None else 1.0,
                variant=chosen,
                reference="baseline" if err_ref is not None else None,
                simulations=simulations,
                seed=seed,
            )
        except DataError as exc:
            skipped.append(str(exc).removeprefix("plan: "))
            continue
        plans.append(planned)
    return SampleSizePlan(
        unit="cluster" if cluster else "item",
        simulations=simulations,
        seed=seed,
        dimensions=plans,
        skipped=skipped,
    )
