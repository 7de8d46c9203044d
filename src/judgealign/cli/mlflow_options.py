"""The MLflow options every command that reads from or logs to MLflow shares."""

from __future__ import annotations

from typing import Annotated

import typer

from judgealign.data.mlflow_store import shown_uri
from judgealign.integrations.mlflow.tracking import MlflowRun

TrackingUriOption = Annotated[
    str | None,
    typer.Option(
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else SQLite in the run folder).",
    ),
]
ReadTrackingUriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI of mlflow: items, runs:/ judges and --mlflow-feedback "
        "(default: $MLFLOW_TRACKING_URI).",
    ),
]
ExperimentOption = Annotated[
    str | None, typer.Option(help="MLflow experiment (default: judgealign-RUBRIC).")
]


def mlflow_run_line(run: MlflowRun, *, artifact: str | None = None) -> str:
    """What a command prints after logging: the run, created or updated, where to see it."""
    what = "logged" if run.created else "updated"
    line = f"MLflow run {run.run_id} {what} in {shown_uri(run.tracking_uri)}"
    if artifact:
        line += f"; judge: runs:/{run.run_id}/{artifact}"
    if run.url:
        line += f" ({run.url})"
    return line
