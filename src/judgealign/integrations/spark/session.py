"""Getting PySpark and a SparkSession: one import check, one way to start local mode."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from judgealign.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

INSTALL = "pip install 'judgealign[spark]' (PySpark needs a Java 17+ runtime: java -version)"


def require_pyspark() -> None:
    """Raise a ConfigError naming the extra when PySpark (or pandas/pyarrow) is missing."""
    try:
        import pandas  # noqa: F401
        import pyarrow  # type: ignore[import-untyped]  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"Spark scoring needs PySpark ({exc}); {INSTALL}") from None


def local_session(cores: int = 2, *, app_name: str = "judgealign") -> SparkSession:
    """A SparkSession in local mode with ``cores`` task slots (the active one when it has
    them; an active session of another size is stopped first): for tests, benchmarks and a
    laptop. On a cluster use the session you have.

    Python workers run this interpreter (``PYSPARK_PYTHON``, unless already set), so they
    see the same judgealign, providers and extras as the driver.

    >>> spark = local_session(2)  # doctest: +SKIP
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    active = SparkSession.getActiveSession()
    if active is not None and active.conf.get("spark.master", "") == f"local[{cores}]":
        return active
    if active is not None:
        active.stop()
    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # judgealign shows its own
        .config("spark.sql.shuffle.partitions", str(max(2, 2 * cores)))
        .config("spark.default.parallelism", str(cores))
        # Small JVM: local mode shares the machine with the Python workers doing the work.
        .config("spark.driver.memory", "1g")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def session_for(master: str | None) -> SparkSession:
    """The active SparkSession (spark-submit, Databricks, a notebook's ``spark``), else one
    for ``master`` (default ``local[*]``)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("judgealign").config(
        "spark.ui.showConsoleProgress",
        "false",  # judgealign shows its own
    )
    if master is not None:
        builder = builder.master(master)  # else spark-submit's, or its default local[*]
    return builder.getOrCreate()


def broadcast(spark: SparkSession, text: str) -> Any:
    """A Broadcast of ``text``, or ``text`` itself where broadcasts do not exist (Spark
    Connect: it then travels with each task); a task reads either with ``broadcast_value``."""
    try:
        return spark.sparkContext.broadcast(text)
    except Exception:  # Spark Connect has no SparkContext
        return text


def broadcast_value(shipped: Any) -> str:
    return shipped if isinstance(shipped, str) else str(shipped.value)


def failure_reason(exc: BaseException) -> str:
    """An exception as a row's error; provider failures keep the prefix that makes a resumed
    run ask them again (``judge.failures.redo_on_resume``)."""
    text = f"{type(exc).__name__}: {exc}".strip()
    return f"provider error: {text}" if isinstance(exc, ProviderError) else text
