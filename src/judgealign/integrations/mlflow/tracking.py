"""Runs where MLflow users look: one experiment collects comparable runs, and logging the same
result again updates its run instead of adding another.

The helper every judgealign command that logs to MLflow uses (evaluation reports, aligned
judges, and the agent scoreboards and stress runs of other commands)::

    from judgealign.integrations.mlflow import open_or_update_run, resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri, run_dir)     # flag, env, else SQLite here
    with open_or_update_run(uri, "judgealign-agent", key=digest, run_name="v2",
                            artifact_dir=run_dir) as run:
        run.log_params({"agent": "v2"})
        run.log_metrics({"score.mean": 2.4})
        run.log_metrics({"curve.mae": 0.41}, step=20)          # a learning curve: steps
        run.log_table(rows, "scores.json")                     # a table, replaced on update
        run.log_artifact(run_dir / "report.html")
    print(run.run_id, run.created)

``key`` identifies the result (a digest of what was logged): the run tagged with it is reused,
so re-logging never duplicates. MLflow errors become one line naming the store (exit 2 from
the CLI), and a run that fails mid-way is marked FAILED rather than left RUNNING.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgealign.data.mlflow_store import (
    connect,
    default_tracking_uri,
    resolve_tracking_uri,
    shown_uri,
    store_errors,
)
from judgealign.errors import ConfigError

__all__ = [
    "KEY_TAG",
    "MlflowRun",
    "default_tracking_uri",
    "experiment_id",
    "open_or_update_run",
    "resolve_tracking_uri",
]

KEY_TAG = "judgealign.key"
MAX_PARAM = 6000  # MLflow's limits on one value
MAX_TAG = 8000
_LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # what marks an artifact as a table in the UI


def experiment_id(client: Any, uri: str, name: str, artifact_dir: Path | None = None) -> str:
    """The id of experiment ``name``, created when missing (artifacts under ``artifact_dir``
    for a local SQLite store, so they sit beside the run folder, not in the caller's cwd)."""
    with store_errors(uri, f"open experiment {name!r}"):
        found = client.get_experiment_by_name(name)
        if found is not None:
            if getattr(found, "lifecycle_stage", "active") == "deleted":
                raise ConfigError(
                    f"MLflow experiment {name!r} in {shown_uri(uri)} is deleted; restore it "
                    "(mlflow experiments restore) or choose another --experiment"
                )
            return str(found.experiment_id)
        location = None
        if artifact_dir is not None and uri.startswith("sqlite:"):
            location = (artifact_dir / "mlartifacts").resolve().as_uri()
        return str(client.create_experiment(name, artifact_location=location))


@dataclass
class MlflowRun:
    """An open MLflow run: what ``open_or_update_run`` yields. Every method is safe to call
    again on an updated run (same values are not logged twice; tables are replaced)."""

    client: Any
    tracking_uri: str
    experiment_id: str
    run_id: str
    created: bool
    _latest: dict[str, float] | None = None

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        with store_errors(self.tracking_uri, doing):
            yield

    def _current(self) -> Any:
        with self._errors(f"read run {self.run_id}"):
            return self.client.get_run(self.run_id).data

    def log_params(self, params: Mapping[str, object]) -> list[str]:
        """Log parameters (values as text, cut at MLflow's limit). MLflow keeps a parameter
        once logged: on an updated run a changed value goes to the tag
        ``judgealign.param.KEY`` instead, and its key is returned."""
        current = self._current().params
        from mlflow.entities import Param, RunTag

        new: list[Any] = []
        changed: list[str] = []
        for key, value in params.items():
            text = str(value)[:MAX_PARAM]
            if key not in current:
                new.append(Param(key, text))
            elif current[key] != text:
                changed.append(key)
        with self._errors("log parameters"):
            for i in range(0, len(new), 100):
                self.client.log_batch(self.run_id, params=new[i : i + 100])
            if changed:
                tags = [RunTag(f"judgealign.param.{k}", str(params[k])[:MAX_TAG]) for k in changed]
                self.client.log_batch(self.run_id, tags=tags)
        return changed

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log metrics at ``step`` (non-finite values are left out). On an updated run a
        value already logged at that step is not logged again."""
        from mlflow.entities import Metric

        values = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
        if not self.created:
            values = {k: v for k, v in values.items() if not self._has_point(k, v, step)}
        now = int(time.time() * 1000)
        rows = [Metric(k, v, now, step) for k, v in values.items()]
        with self._errors("log metrics"):
            for i in range(0, len(rows), 1000):
                self.client.log_batch(self.run_id, metrics=rows[i : i + 1000])

    def _has_point(self, key: str, value: float, step: int) -> bool:
        if self._latest is None:
            self._latest = dict(self._current().metrics)
        if step == 0:
            return self._latest.get(key) == value
        with self._errors(f"read metric {key}"):
            history = self.client.get_metric_history(self.run_id, key)
        return any(m.step == step and m.value == value for m in history)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        rows = [RunTag(k, str(v)[:MAX_TAG]) for k, v in tags.items()]
        with self._errors("set tags"):
            for i in range(0, len(rows), 100):
                self.client.log_batch(self.run_id, tags=rows[i : i + 100])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file (replacing one of the same name)."""
        with self._errors(f"upload {path.name}"):
            self.client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)

    def log_artifacts(self, folder: Path, artifact_path: str | None = None) -> None:
        with self._errors(f"upload {folder.name}/"):
            self.client.log_artifacts(self.run_id, str(folder), artifact_path=artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        with self._errors(f"upload {artifact_file}"):
            self.client.log_text(self.run_id, text, artifact_file)

    def log_table(self, rows: Sequence[Mapping[str, Any]], artifact_file: str) -> None:
        """Log rows as an MLflow table (the run's Artifacts and Evaluation views show it;
        ``MlflowClient.load_table`` reads it back).

        ``MlflowClient.log_table`` appends to an existing table, so an updated run would hold
        every row twice: this writes MLflow's table file (``split`` JSON) and its marker tag
        itself, replacing the table.
        """
        columns: list[str] = []
        for row in rows:
            columns.extend(c for c in row if c not in columns)
        data = {"columns": columns, "data": [[row.get(c) for c in columns] for row in rows]}
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(artifact_file).name
            local.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
            parent = str(Path(artifact_file).parent)
            self.log_artifact(local, None if parent in ("", ".") else parent)
        tags = self._current().tags
        marked = json.loads(tags.get(_LOGGED_ARTIFACTS_TAG, "[]"))
        entry = {"path": artifact_file, "type": "table"}
        if entry not in marked:
            self.set_tags({_LOGGED_ARTIFACTS_TAG: json.dumps([*marked, entry])})

    def log_dataset(
        self,
        name: str,
        *,
        digest: str,
        source: str,
        source_type: str = "local",
        context: str = "evaluation",
        profile: Mapping[str, Any] | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> None:
        """Record an input dataset of the run (the UI's Datasets column). ``columns`` maps
        column names to MLflow types (``string``, ``double``, ``long``); logging the same
        dataset again is a no-op in MLflow."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        schema = None
        if columns:
            spec = [{"name": c, "type": t, "required": True} for c, t in columns.items()]
            schema = json.dumps({"mlflow_colspec": spec})
        dataset = Dataset(
            name=name,
            digest=digest[:36],
            source_type=source_type,
            source=json.dumps({"uri": source}),
            schema=schema,
            profile=json.dumps(dict(profile or {})),
        )
        tag = InputTag(key="mlflow.data.context", value=context)
        with self._errors(f"log dataset {name}"):
            self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, tags=[tag])])

    def finish(self, status: str = "FINISHED") -> None:
        with self._errors(f"close run {self.run_id}"):
            self.client.set_terminated(self.run_id, status=status)

    @property
    def url(self) -> str | None:
        """The run's page in the MLflow UI, for an http(s) tracking server."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return None
        base = self.tracking_uri.rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}"


def find_run(client: Any, uri: str, experiment: str, key: str) -> str | None:
    """The active run of ``experiment`` (an id) tagged ``judgealign.key = key``, if any."""
    escaped = key.replace("'", "\\'")
    with store_errors(uri, "search runs"):
        found = client.search_runs(
            [experiment], filter_string=f"tags.`{KEY_TAG}` = '{escaped}'", max_results=1
        )
    return str(found[0].info.run_id) if found else None


@contextlib.contextmanager
def open_or_update_run(
    tracking_uri: str,
    experiment: str,
    *,
    key: str,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    artifact_dir: Path | None = None,
) -> Iterator[MlflowRun]:
    """The run of ``experiment`` that holds the result ``key`` (created when there is none),
    open for logging; FINISHED on leaving the block, FAILED if it raises.

    ``tracking_uri`` is resolved already (``resolve_tracking_uri``); ``artifact_dir`` is where
    a new experiment of a local SQLite store keeps its artifacts. ``tags`` are set on the run.

    >>> with open_or_update_run(uri, "judgealign-demo", key="abc") as run:  # doctest: +SKIP
    ...     run.log_metrics({"mae": 0.4})
    """
    client = connect(tracking_uri)
    exp_id = experiment_id(client, tracking_uri, experiment, artifact_dir)
    existing = find_run(client, tracking_uri, exp_id, key)
    all_tags = {KEY_TAG: key, **(tags or {})}
    with store_errors(tracking_uri, "start a run"):
        if existing is None:
            info = client.create_run(exp_id, run_name=run_name, tags=all_tags).info
            run_id, created = str(info.run_id), True
        else:
            run_id, created = existing, False
            client.update_run(run_id, status="RUNNING", name=run_name)
    run = MlflowRun(client, tracking_uri, exp_id, run_id, created)
    try:
        if not created:
            run.set_tags(all_tags)
        yield run
    except BaseException:
        with contextlib.suppress(Exception):
            run.finish("FAILED")
        raise
    run.finish("FINISHED")


def run_key(kind: str, *parts: str) -> str:
    """What identifies a logged result across re-logs (its kind and where it lives).

    >>> run_key("agent-version", "suite", "v1", "/runs/v1")[:14]
    'agent-version-'
    """
    return f"{kind}-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def log_run(
    *,
    experiment: str,
    run_name: str,
    key: str,
    params: Mapping[str, str],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    artifacts: Sequence[tuple[Path, str | None]],
    run_dir: Path,
    tracking_uri: str | None = None,
) -> str:
    """Log one finished MLflow run (updated when ``key`` was logged before); returns its id.

    For a command's result that is not an evaluation report (an agent version, a stress run):
    the store is ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else SQLite in ``run_dir``.
    ``artifacts``: (file or folder, artifact path); non-finite metrics are left out.

    >>> log_run(experiment="judgealign-x", run_name="v1", key=run_key("x", "v1"),  # doctest: +SKIP
    ...         params={}, metrics={"mae": 0.4}, tags={}, artifacts=[], run_dir=Path("runs/x"))
    """
    uri = resolve_tracking_uri(tracking_uri, run_dir)
    with open_or_update_run(
        uri,
        experiment,
        key=key,
        run_name=run_name,
        tags=tags,
        artifact_dir=run_dir / "mlartifacts",
    ) as run:
        run.log_params(params)
        run.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(v)})
        for path, artifact_path in artifacts:
            if path.is_dir():
                run.log_artifacts(path, artifact_path)
            elif path.is_file():
                run.log_artifact(path, artifact_path)
        return str(run.run_id)
