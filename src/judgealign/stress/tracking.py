"""Log a stress report to MLflow: one run, per-judge metrics, the report files as artifacts.

All of it is :func:`log_stress`, on the helpers of ``judgealign.report.mlflow_log`` (the
client, the default SQLite store in the run folder), so that where MLflow logging lives can
change without touching the stress code.
"""

from __future__ import annotations

import math
import time
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
    from mlflow.entities import Metric, Param, RunTag

    from judgealign.report.mlflow_log import _client, default_tracking_uri

    uri = tracking_uri or default_tracking_uri(run_dir)
    client = _client(uri)
    name = experiment or f"judgealign-stress-{report.config.rubric_id}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        exp_id = found.experiment_id
    else:
        location = (
            (run_dir / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite") else None
        )
        exp_id = client.create_experiment(name, artifact_location=location)
    run = client.create_run(exp_id, run_name=run_name or report.config.name or None)
    run_id: str = run.info.run_id
    now = int(time.time() * 1000)
    try:
        params = [Param(k, v) for k, v in stress_params(report).items()]
        metrics = [Metric(k, v, now, 0) for k, v in stress_metrics(report).items()]
        tags = [
            RunTag("judgealign.kind", "stress"),
            RunTag("judgealign.rubric", report.config.rubric_id),
        ]
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i : i + 1000], tags=tags if i == 0 else [])
        for fname in ("stress.html", "stress.json", "probes.jsonl"):
            if (run_dir / fname).is_file():
                client.log_artifact(run_id, str(run_dir / fname))
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
