"""Log a stress report to MLflow: one run, per-judge metrics, the report files as artifacts.

All of it is :func:`log_stress`, through ``integrations.mlflow.log_run``: the store is
``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else SQLite in the run folder, and logging
the same run folder again updates its run.
"""

from __future__ import annotations

import math
from pathlib import Path

from judgealign.stress.model import StressReport

_MAX_PARAM = 500


def stress_metrics(report: StressReport) -> dict[str, float]:
    """``JUDGE.DIMENSION.detection`` (and _low/_high, _n), false alarms, injection shift;
    ``JUDGE.probe.PROBE.*`` per probe. NaN bounds are left out (MLflow rejects NaN)."""
    out: dict[str, float] = {}

    def put(key: str, ci: object) -> None:
        if ci is None:
            return
        for name, value in (
            ("", getattr(ci, "estimate", None)),
            ("_low", getattr(ci, "low", None)),
            ("_high", getattr(ci, "high", None)),
            ("_n", getattr(ci, "n", None)),
        ):
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                out[f"{key}{name}"] = float(value)

    for d in report.dimensions:
        key = f"{d.judge}.{d.dimension}"
        put(f"{key}.detection", d.detection)
        put(f"{key}.false_alarm_rate", d.false_alarm_rate)
        put(f"{key}.injection_shift", d.injection_shift)
        put(f"{key}.collateral", d.collateral)
    for p in report.probes:
        key = f"{p.judge}.probe.{p.probe}"
        put(f"{key}.detection", p.detection)
        put(f"{key}.collateral", p.collateral)
        put(f"{key}.false_alarm_rate", p.false_alarm_rate)
        put(f"{key}.shift", p.shift)
        out[f"{key}.notebooks"] = float(p.notebooks)
    for c in report.comparisons:
        key = f"{c.judge}_vs_{c.reference}.{c.dimension}.{c.metric}"
        out[f"{key}.delta"] = c.delta
        out[f"{key}.p_holm"] = c.p_holm
    out["usage.calls"] = float(report.usage.calls)
    out["usage.prompt_tokens"] = float(report.usage.prompt_tokens)
    out["wall_seconds"] = report.wall_seconds
    return out


def stress_params(report: StressReport) -> dict[str, str]:
    c = report.config
    out = {
        "kind": "stress",
        "rubric": c.rubric_id,
        "dimensions": ",".join(c.dimensions),
        "probes": ",".join(p.name for p in c.probes),
        "notebooks": str(c.n_items),
        "seed": str(c.seed),
        "judgealign_version": report.judgealign_version,
    }
    for j in c.judges:
        out[f"judge.{j.label}.model"] = j.model
        out[f"judge.{j.label}.variant"] = j.variant
        out[f"judge.{j.label}.labels"] = str(j.labels)
        if j.source:
            out[f"judge.{j.label}.source"] = j.source
    return {k: v[:_MAX_PARAM] for k, v in out.items()}


def log_stress(
    report: StressReport,
    run_dir: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log ``report`` and the run folder's report files as one MLflow run; the run id.

    >>> run_id = log_stress(report, Path("runs/stress"))  # doctest: +SKIP
    """
    from judgealign.integrations.mlflow import log_run, run_key

    return log_run(
        experiment=experiment or f"judgealign-stress-{report.config.rubric_id}",
        run_name=run_name or report.config.name or run_dir.name,
        key=run_key("stress", report.config.rubric_id, str(run_dir.resolve())),
        params=stress_params(report),
        metrics=stress_metrics(report),
        tags={"judgealign.kind": "stress", "judgealign.rubric": report.config.rubric_id},
        artifacts=[(run_dir / f, None) for f in ("stress.html", "stress.json", "probes.jsonl")],
        run_dir=run_dir,
        tracking_uri=tracking_uri,
    )
