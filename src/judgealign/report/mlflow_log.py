"""Log an evaluation run to MLflow: params, metrics with CIs, reports, judges, predictions.

MLflow is imported lazily (extra ``mlflow``). Everything goes through an explicit
``MlflowClient`` so nothing global (tracking URI, active run) changes in the caller's process.
The default store is SQLite inside the run folder: it works offline, and recent MLflow no
longer accepts the plain file store for new runs.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from judgealign.errors import ConfigError
from judgealign.report.model import EvaluationReport

_MAX_PARAM = 500  # MLflow rejects longer parameter values


def _client(tracking_uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError(
            "--mlflow needs MLflow: pip install 'judgealign[mlflow]' (mlflow-skinny + sqlalchemy)"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri)


def default_tracking_uri(run_dir: Path) -> str:
    """``sqlite:///RUN/mlflow.db``: an offline store next to the report."""
    return f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"


def report_params(report: EvaluationReport) -> dict[str, str]:
    """Flat string parameters for the run (config, then judge params prefixed ``judge.``)."""
    cfg = report.config
    out: dict[str, str] = {}
    for key, value in cfg.model_dump(exclude={"params"}).items():
        out[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    for key, value in cfg.params.items():
        out[f"judge.{key}"] = str(value)
    out["judgealign_version"] = report.judgealign_version
    from judgealign.report.table import describe_statistics

    out["statistics"] = "; ".join(describe_statistics(report))
    return {k: v[:_MAX_PARAM] for k, v in out.items()}


def report_metrics(report: EvaluationReport) -> dict[str, float]:
    """Per variant and dimension: MAE with CI bounds, bias, agreement; paired changes."""
    out: dict[str, float] = {}
    for r in report.results:
        key = f"{r.variant}.{r.dimension}"
        for name, iv in (("mae", r.mae), ("bias", r.bias)):
            if iv is not None:
                out[f"{key}.{name}"] = iv.estimate
                out[f"{key}.{name}_low"] = iv.low
                out[f"{key}.{name}_high"] = iv.high
        for name in ("exact_agreement", "within_one", "qwk", "spearman", "na_agreement"):
            value = getattr(r, name)
            if value is not None:
                out[f"{key}.{name}"] = float(value)
        out[f"{key}.n_scored"] = float(r.n_scored)
        out[f"{key}.failed"] = float(r.failed)
        if len(r.mae_repeats) > 1:
            out[f"{key}.mae_sd_repeats"] = float(np.std(r.mae_repeats, ddof=1))
    for c in report.comparisons:
        key = f"{c.variant}_vs_{c.reference}.{c.dimension}"
        out[f"{key}.delta"] = c.delta.estimate
        out[f"{key}.delta_low"] = c.delta.low
        out[f"{key}.delta_high"] = c.delta.high
        out[f"{key}.p"] = c.p_value
        out[f"{key}.p_holm"] = c.p_holm
    for ref in report.references:
        if ref.median_predictor_mae is not None:
            out[f"median_predictor.{ref.dimension}.mae"] = ref.median_predictor_mae
        if ref.calibrated_baseline_mae is not None:
            out[f"calibrated_baseline.{ref.dimension}.mae"] = ref.calibrated_baseline_mae
        if ref.human_human_mae is not None:
            out[f"human_human.{ref.dimension}.mae"] = ref.human_human_mae
        if ref.human_human is not None:
            out[f"human_human.{ref.dimension}.mae_low"] = ref.human_human.low
            out[f"human_human.{ref.dimension}.mae_high"] = ref.human_human.high
        if ref.human_alpha is not None:
            out[f"human_human.{ref.dimension}.alpha"] = ref.human_alpha
    if report.plan is not None:
        for d in report.plan.dimensions:
            key = f"plan.{d.dimension}"
            out[f"{key}.width_now"] = d.width_now
            if d.labels_for_width is not None:
                out[f"{key}.labels_for_width"] = float(d.labels_for_width)
            if d.power_now is not None:
                out[f"{key}.power_now"] = d.power_now
            if d.labels_for_power is not None:
                out[f"{key}.labels_for_power"] = float(d.labels_for_power)
    for phase, usage in (("alignment", report.usage_alignment), ("scoring", report.usage_scoring)):
        out[f"usage.{phase}.calls"] = float(usage.calls)
        out[f"usage.{phase}.prompt_tokens"] = float(usage.prompt_tokens)
        out[f"usage.{phase}.completion_tokens"] = float(usage.completion_tokens)
    out["wall_seconds"] = report.wall_seconds
    return out


def write_predictions_csv(report: EvaluationReport, path: Path) -> Path:
    """Every out-of-fold judgement as one CSV row (the predictions table)."""
    cols = ["item", "dimension", "variant", "fold", "expert", "score"]
    cols += ["error", "rationale", "guidelines", "episodes", "prompt_tokens", "completion_tokens"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for rec in report.judgements:
            j = rec.judgement
            w.writerow(
                [
                    j.item,
                    j.dimension,
                    rec.variant,
                    rec.fold,
                    rec.expert,
                    j.score,
                    j.error or "",
                    j.rationale,
                    ";".join(j.guidelines),
                    ";".join(j.episodes),
                    j.usage.prompt_tokens,
                    j.usage.completion_tokens,
                ]
            )
    return path


def log_to_mlflow(
    report: EvaluationReport,
    run_dir: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log ``report`` (and the files in ``run_dir``) as one MLflow run; returns the run id.

    >>> run_id = log_to_mlflow(report, Path("runs/demo"))  # doctest: +SKIP
    """
    from mlflow.entities import Metric, Param, RunTag

    uri = tracking_uri or default_tracking_uri(run_dir)
    client = _client(uri)
    name = experiment or f"judgealign-{report.config.rubric_id}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        exp_id = found.experiment_id
    else:
        # Artifacts beside the run, not in whatever folder the caller happens to be in.
        location = (
            (run_dir / "mlartifacts").resolve().as_uri() if uri.startswith("sqlite") else None
        )
        exp_id = client.create_experiment(name, artifact_location=location)
    run = client.create_run(exp_id, run_name=run_name or report.config.name or None)
    run_id: str = run.info.run_id
    now = int(time.time() * 1000)
    try:
        params = [Param(k, v) for k, v in report_params(report).items()]
        metrics = [Metric(k, v, now, 0) for k, v in report_metrics(report).items()]
        tags = [RunTag("judgealign.rubric", report.config.rubric_id)]
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[i : i + 1000], tags=tags if i == 0 else [])
        for fname in ("report.html", "report.json", "report.md"):
            if (run_dir / fname).is_file():
                client.log_artifact(run_id, str(run_dir / fname))
        if (run_dir / "judges").is_dir():
            client.log_artifacts(run_id, str(run_dir / "judges"), artifact_path="judges")
        with tempfile.TemporaryDirectory() as tmp:
            table = write_predictions_csv(report, Path(tmp) / "predictions.csv")
            client.log_artifact(run_id, str(table))
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
