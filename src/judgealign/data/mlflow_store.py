"""Reaching an MLflow tracking store: which one, whether it answers, and its errors in one line.

Every MLflow path in judgealign (labels from traces, judge files at ``runs:/...``, logged
runs, verdicts written back) resolves its store here, the way MLflow users expect:
``--tracking-uri`` when given, else ``MLFLOW_TRACKING_URI``, else (for logging) an SQLite
store in the run folder, so that offline runs still work. A plain ``./mlruns`` or ``file://``
store is refused with the fix (MLflow 3 keeps it read-only, and it has no traces), a server
that is down or refuses access is one line naming it, and nothing global (the process's
tracking URI, an active run) is changed: every call goes through an explicit client.

MLflow is imported lazily (extra ``mlflow``). This module sits in ``data`` because reading
expert labels from traces needs it and ``data`` is below everything that logs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from judgealign.errors import ConfigError, DataError
from judgealign.redaction import redact

INSTALL_HINT = "pip install 'judgealign[mlflow]'"
ENV_URI = "MLFLOW_TRACKING_URI"
# Artifact URIs MLflow resolves through the tracking store (``runs:/<id>/judge.json``).
_ARTIFACT_URI = re.compile(r"^(runs|models|mlflow-artifacts):/", re.IGNORECASE)
_PROBE_SECONDS = 10.0


def require_mlflow(what: str) -> None:
    """ConfigError naming the extra when MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError(f"{what} needs MLflow: {INSTALL_HINT}") from None


def default_tracking_uri(run_dir: Path) -> str:
    """``sqlite:///RUN/mlflow.db``: an offline store next to the report.

    >>> default_tracking_uri(Path("/tmp/run"))
    'sqlite:////tmp/run/mlflow.db'
    """
    return f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"


def shown_uri(uri: str) -> str:
    """A tracking URI fit to print: no user:password, no token in the query.

    >>> shown_uri("https://bob:s3cret@mlflow.example.com/")
    'https://***@mlflow.example.com/'
    >>> shown_uri("sqlite:////runs/x/mlflow.db")
    'sqlite:////runs/x/mlflow.db'
    """
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return redact(uri)  # unsplitting would lose the slashes of sqlite:////abs/path
    netloc = "***@" + parts.netloc.rsplit("@", 1)[1]
    return redact(urlunsplit(parts._replace(netloc=netloc)))


def check_tracking_uri(uri: str, where: str = "tracking URI") -> str:
    """``uri`` if MLflow can keep runs and traces there; ConfigError with the fix otherwise.

    >>> check_tracking_uri("sqlite:///runs/x/mlflow.db")
    'sqlite:///runs/x/mlflow.db'
    >>> check_tracking_uri("file:///tmp/mlruns")
    Traceback (most recent call last):
    judgealign.errors.ConfigError: tracking URI file:///tmp/mlruns is MLflow's file store, ...
    """
    text = uri.strip()
    if not text:
        raise ConfigError(f"{where} is empty; give sqlite:///PATH/mlflow.db or an http(s) server")
    scheme = urlsplit(text).scheme.lower()
    # No scheme (a path such as ./mlruns), a one-letter one (C:\...) or file://: the file store.
    file_store = scheme == "file" or (len(scheme) <= 1 and text.lower() != "databricks")
    if not file_store or os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").strip().lower() == "true":
        return text
    raise ConfigError(
        f"{where} {shown_uri(text)} is MLflow's file store, which MLflow 3 no longer writes "
        "(and which holds no traces); use sqlite:///PATH/mlflow.db or an http(s) tracking "
        "server (`mlflow migrate-filestore` converts an old one)"
    )


def resolve_tracking_uri(explicit: str | None = None, run_dir: Path | None = None) -> str:
    """The tracking store to use: ``explicit`` (``--tracking-uri``), else the
    ``MLFLOW_TRACKING_URI`` environment variable, else ``sqlite:///RUN_DIR/mlflow.db``.

    Checked (a file store is refused with the fix); ConfigError when there is none to use.

    >>> resolve_tracking_uri("http://127.0.0.1:5000")
    'http://127.0.0.1:5000'
    """
    if explicit:
        return check_tracking_uri(explicit, "--tracking-uri")
    env = os.environ.get(ENV_URI, "").strip()
    if env:
        return check_tracking_uri(env, ENV_URI)
    if run_dir is not None:
        return default_tracking_uri(run_dir)
    raise ConfigError(
        f"no MLflow tracking store: set {ENV_URI} (e.g. http://127.0.0.1:5000 or "
        "sqlite:///runs/NAME/mlflow.db) or pass --tracking-uri"
    )


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow's own REST client would send (the same environment variables)."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = (
        os.environ.get("MLFLOW_TRACKING_USERNAME"),
        os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    if user and password:
        import base64

        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}
    return {}


def probe(uri: str) -> None:
    """One quick request to an http(s) tracking server, so that a server that is down or
    refuses us is one line now rather than minutes of MLflow's retries and a traceback."""
    if urlsplit(uri).scheme.lower() not in ("http", "https"):
        return
    import httpx

    insecure = os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search"
    try:
        resp = httpx.get(
            url,
            params={"max_results": 1},
            headers=_auth_headers(),
            timeout=_PROBE_SECONDS,
            verify=not insecure,
        )
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"MLflow tracking server {shown_uri(uri)} is unreachable ({redact(reason)}); "
            f"start it, or fix --tracking-uri / {ENV_URI}"
        ) from None
    if resp.status_code in (401, 403):
        raise ConfigError(
            f"MLflow tracking server {shown_uri(uri)} refused access (HTTP {resp.status_code}); "
            "set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD"
        )
    if resp.status_code >= 400:
        raise ConfigError(
            f"{shown_uri(uri)} answered HTTP {resp.status_code} to an MLflow API call; is it an "
            f"MLflow tracking server? fix --tracking-uri / {ENV_URI}"
        )


def mlflow_error_line(exc: BaseException) -> str:
    """The first line of an MLflow error, without secrets, short enough for one line."""
    text = str(getattr(exc, "message", "") or exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return redact(first[:300])


@contextlib.contextmanager
def store_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn an MLflow or connection error raised inside into one line naming the store.

    A missing resource (a run, an experiment, a trace) is a DataError, anything else the
    store refused a ConfigError: both exit 2 from the CLI, with nothing stored lost.
    """
    try:
        yield
    except (ConfigError, DataError):
        raise
    except Exception as exc:
        module = type(exc).__module__
        if not (module.startswith(("mlflow", "requests", "urllib3", "sqlalchemy"))):
            raise
        line = mlflow_error_line(exc)
        code = str(getattr(exc, "error_code", ""))
        if "RESOURCE_DOES_NOT_EXIST" in code or "RESOURCE_DOES_NOT_EXIST" in line:
            raise DataError(f"MLflow ({shown_uri(uri)}): {doing}: {line}") from None
        raise ConfigError(
            f"MLflow ({shown_uri(uri)}) refused to {doing}: {line}; check the store and "
            f"--tracking-uri / {ENV_URI}"
        ) from None


def connect(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri``, after checking that the store answers."""
    require_mlflow("MLflow tracking")
    check_tracking_uri(uri)
    probe(uri)
    from mlflow.tracking import MlflowClient

    with store_errors(uri, "open the store"):
        return MlflowClient(tracking_uri=uri)


def is_artifact_uri(ref: str | Path) -> bool:
    """Whether ``ref`` names an MLflow artifact (``runs:/ID/judge.json``) rather than a path.

    >>> is_artifact_uri("runs:/0123abcd/judge.json"), is_artifact_uri("judge.json")
    (True, False)
    """
    return bool(_ARTIFACT_URI.match(str(ref)))


@contextlib.contextmanager
def downloaded_artifact(uri: str, tracking_uri: str | None = None) -> Iterator[Path]:
    """The artifact at ``uri`` (``runs:/ID/path``) downloaded to a temporary folder, removed
    on exit. The store is ``tracking_uri``, else ``MLFLOW_TRACKING_URI``."""
    require_mlflow(f"loading {uri}")
    store = resolve_tracking_uri(tracking_uri)
    probe(store)
    import mlflow.artifacts

    tmp = Path(tempfile.mkdtemp(prefix="judgealign-artifact-"))
    try:
        with store_errors(store, f"download {uri}"):
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=str(tmp), tracking_uri=store
            )
        yield Path(local)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
