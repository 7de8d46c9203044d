"""Log an evaluation run to MLflow: kept for callers of its old names.

The work is in ``judgealign.integrations.mlflow``: ``resolve_tracking_uri`` and
``open_or_update_run`` (``tracking``) for any command that logs a run, ``log_report``
(``logging``) for an evaluation report. ``log_to_mlflow`` and ``_client`` keep working.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from judgealign.data.mlflow_store import connect, default_tracking_uri, resolve_tracking_uri
from judgealign.integrations.mlflow.logging import judgement_rows, log_report
from judgealign.integrations.mlflow.logging import report_metrics as report_metrics
from judgealign.integrations.mlflow.logging import report_params as report_params
from judgealign.report.model import EvaluationReport

__all__ = [
    "default_tracking_uri",
    "log_to_mlflow",
    "report_metrics",
    "report_params",
    "resolve_tracking_uri",
    "write_predictions_csv",
]


def _client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (checked; one-line errors). New code: use
    ``judgealign.integrations.mlflow.open_or_update_run``."""
    return connect(tracking_uri)


def write_predictions_csv(report: EvaluationReport, path: Path) -> Path:
    """Every out-of-fold judgement as one CSV row (MLflow runs hold them as a table)."""
    rows = judgement_rows(report)
    cols = list(rows[0]) if rows else ["item", "dimension", "variant", "fold", "expert", "score"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    return path


def log_to_mlflow(
    report: EvaluationReport,
    run_dir: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    run_name: str | None = None,
) -> str:
    """Log ``report`` (and the files in ``run_dir``) as one MLflow run; returns the run id.

    The store is ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else SQLite in ``run_dir``;
    the same report logged again updates its run.

    >>> run_id = log_to_mlflow(report, Path("runs/demo"))  # doctest: +SKIP
    """
    uri = resolve_tracking_uri(tracking_uri, run_dir)
    run = log_report(report, run_dir, tracking_uri=uri, experiment=experiment, run_name=run_name)
    return run.run_id
