"""Agent scoreboards and comparisons as MLflow runs: one run per agent version, one per
comparison, in the experiment ``judgealign-agent-<suite>``.

Everything goes through ``integrations.mlflow.log_run``: the store is ``--tracking-uri``,
else ``MLFLOW_TRACKING_URI``, else SQLite in the run folder, and logging the same run
folder again updates its MLflow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from judgealign.agent.board import ScoreboardModel
from judgealign.agent.comparison import ComparisonModel
from judgealign.integrations.mlflow import log_run, run_key


def scoreboard_metrics(board: ScoreboardModel) -> dict[str, float]:
    out: dict[str, float] = {
        "cases_total": board.cases_total,
        "cases_failed": board.cases_failed,
        "notebooks_total": board.notebooks_total,
        "notebooks_failed": board.notebooks_failed,
        "execution_errors": board.execution_errors,
        "wall_seconds": board.wall_seconds,
    }
    for d in board.dims:
        key = d.dimension
        if d.mean is not None:
            out[f"{key}.mean"] = d.mean.estimate
            out[f"{key}.mean_low"] = d.mean.low
            out[f"{key}.mean_high"] = d.mean.high
        if d.lowest is not None:
            out[f"{key}.lowest_share"] = d.lowest
        if d.na_rate is not None:
            out[f"{key}.na_rate"] = d.na_rate
        out[f"{key}.scored"] = d.scored
        out[f"{key}.failed"] = d.failed
    for phase, u in (("generation", board.usage_generation), ("scoring", board.usage_scoring)):
        out[f"usage.{phase}.calls"] = u.calls
        out[f"usage.{phase}.prompt_tokens"] = u.prompt_tokens
        out[f"usage.{phase}.completion_tokens"] = u.completion_tokens
    return out


def log_scoreboard(
    board: ScoreboardModel,
    run_dir: Path,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """One MLflow run for one agent version: metrics per dimension, the scoreboard, the
    report, the notebooks and the judge copies as artifacts."""
    params = {
        "version": board.version,
        "agent": board.agent,
        "suite": board.suite.name,
        "suite_digest": board.suite.digest,
        "rubric": board.rubric.id,
        "dimensions": ",".join(board.dimensions),
        "execute": str(board.execute),
        "judges": ";".join(f"{j.file}={j.model}" for j in board.judges),
        "judgealign_version": board.judgealign_version,
    }
    artifacts: list[tuple[Path, str | None]] = [
        (run_dir / "scoreboard.json", None),
        (run_dir / "report.html", None),
        (run_dir / "notebooks", "notebooks"),
        (run_dir / "executed", "executed"),
        (run_dir / "judges", "judges"),
    ]
    return log_run(
        experiment=experiment or f"judgealign-agent-{board.suite.name}",
        run_name=board.version,
        key=run_key("agent-version", board.suite.digest, board.version, str(run_dir.resolve())),
        params=params,
        metrics=scoreboard_metrics(board),
        tags={"judgealign.kind": "agent-version", "judgealign.agent_version": board.version},
        artifacts=artifacts,
        run_dir=run_dir,
        tracking_uri=tracking_uri,
    )


def comparison_metrics(cmp: ComparisonModel) -> dict[str, float]:
    out: dict[str, float] = {
        "cases_compared": cmp.cases_compared,
        "cases_better": len(cmp.better_cases),
        "cases_worse": len(cmp.worse_cases),
        "failures_fixed": len(cmp.failures_fixed),
        "failures_new": len(cmp.failures_new),
    }
    for d in cmp.dims:
        if d.test is None:
            continue
        key = d.dimension
        out[f"{key}.mean_a"] = d.test.mean_a
        out[f"{key}.mean_b"] = d.test.mean_b
        out[f"{key}.delta"] = d.test.delta
        out[f"{key}.delta_low"] = d.test.low
        out[f"{key}.delta_high"] = d.test.high
        out[f"{key}.p"] = d.test.p_value
        if d.p_holm is not None:
            out[f"{key}.p_holm"] = d.p_holm
    return out


def log_comparison(
    cmp: ComparisonModel,
    out_dir: Path,
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """The comparison as one MLflow run (metrics per dimension, the page and JSON)."""
    params: dict[str, Any] = {
        "version_a": cmp.version_a,
        "version_b": cmp.version_b,
        "suite": cmp.suite,
        "dimensions": ",".join(cmp.dimensions),
        "n_resamples": cmp.n_resamples,
        "judgealign_version": cmp.judgealign_version,
    }
    return log_run(
        experiment=experiment or f"judgealign-agent-{cmp.suite}",
        run_name=f"{cmp.version_a} vs {cmp.version_b}",
        key=run_key(
            "agent-comparison", cmp.suite, cmp.version_a, cmp.version_b, str(out_dir.resolve())
        ),
        params={k: str(v) for k, v in params.items()},
        metrics=comparison_metrics(cmp),
        tags={
            "judgealign.kind": "agent-comparison",
            "judgealign.version_a": cmp.version_a,
            "judgealign.version_b": cmp.version_b,
        },
        artifacts=[(out_dir / "comparison.json", None), (out_dir / "comparison.html", None)],
        run_dir=out_dir,
        tracking_uri=tracking_uri,
    )
