"""What a user holds: ``Scoreboard`` and ``AgentComparison`` (data plus views), and the two
entry points ``run_agent`` and ``compare_agents``.

>>> board = run_agent("example", "replay:example/v1", "judge.json", "runs/v1")  # doctest: +SKIP
>>> print(board.summary())  # doctest: +SKIP
>>> cmp = compare_agents("runs/v1", "runs/v2", out="runs/v1-vs-v2")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

from pydantic import PrivateAttr

from judgealign.agent.adapters import AgentFunction
from judgealign.agent.board import ScoreboardModel
from judgealign.agent.comparison import ComparisonModel, compare_scoreboards
from judgealign.agent.gaps import DEFAULT_SIMILARITY
from judgealign.agent.judges import JudgeLike
from judgealign.agent.runner import DEFAULT_EXECUTE_TIMEOUT, DEFAULT_TIMEOUT, AgentRun
from judgealign.agent.store import REPORT, SCOREBOARD
from judgealign.agent.suite import AgentSuite
from judgealign.agent.task import Agent
from judgealign.progress import Progress, progress_for
from judgealign.sync import run_sync


def _text(render: Any, obj: Any, width: int) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    render(obj, console)
    return console.export_text()


class Scoreboard(ScoreboardModel):
    """One agent version's scoreboard on a suite, with its views.

    >>> board = Scoreboard.load("runs/v1")  # doctest: +SKIP
    >>> board.dimension("data_imputation").mean.estimate  # doctest: +SKIP
    """

    _run_dir: Path | None = PrivateAttr(default=None)

    @classmethod
    def of(cls, model: ScoreboardModel, run_dir: str | Path | None) -> Scoreboard:
        """The scoreboard of a run's data, reading notebooks from ``run_dir``."""
        board = cls.model_validate(model.model_dump())
        board._run_dir = Path(run_dir) if run_dir is not None else None
        return board

    @classmethod
    def load(cls, path: str | Path) -> Scoreboard:
        """Read ``scoreboard.json`` (or a run folder holding one)."""
        board: Scoreboard = super().load(path)
        folder = Path(path)
        board._run_dir = folder if folder.is_dir() else folder.parent
        return board

    @property
    def run_dir(self) -> Path | None:
        return self._run_dir

    def summary(self, width: int = 120) -> str:
        """The console view as plain text: per dimension the mean score with its interval,
        the share of lowest scores, N/A and failures, per tag, and the top gaps."""
        from judgealign.agent.console import render_scoreboard

        return _text(render_scoreboard, self, width)

    def to_html(self, path: str | Path | None = None) -> str:
        """The self-contained HTML report (notebooks read from the run folder); written to
        ``path`` when given."""
        from judgealign.agent.html import render_scoreboard_html, write_page

        page = render_scoreboard_html(self, self._run_dir)
        if path is not None:
            write_page(page, Path(path))
        return page

    def log_mlflow(self, *, tracking_uri: str | None = None, experiment: str | None = None) -> str:
        """Log this version as an MLflow run (``judgealign[mlflow]``); returns the run id.
        Without ``tracking_uri``: an SQLite store in the run folder."""
        from judgealign.agent.mlflow_log import log_scoreboard

        return log_scoreboard(
            self, self._run_dir or Path("."), tracking_uri=tracking_uri, experiment=experiment
        )


class AgentComparison(ComparisonModel):
    """Two versions compared on one suite, with its views (``summary``, ``to_html``,
    ``log_mlflow``); made by ``compare_agents``.

    >>> cmp = AgentComparison.load("runs/v1-vs-v2")  # doctest: +SKIP
    >>> [(d.dimension, d.test.delta, d.p_holm) for d in cmp.dims]  # doctest: +SKIP
    """

    _out_dir: Path | None = PrivateAttr(default=None)

    @classmethod
    def load(cls, path: str | Path) -> AgentComparison:
        cmp: AgentComparison = super().load(path)
        folder = Path(path)
        cmp._out_dir = folder if folder.is_dir() else folder.parent
        return cmp

    def summary(self, width: int = 120) -> str:
        from judgealign.agent.console import render_comparison

        return _text(render_comparison, self, width)

    def to_html(self, path: str | Path | None = None) -> str:
        from judgealign.agent.html import render_comparison_html, write_page

        page = render_comparison_html(self)
        if path is not None:
            write_page(page, Path(path))
        return page

    def log_mlflow(self, *, tracking_uri: str | None = None, experiment: str | None = None) -> str:
        from judgealign.agent.mlflow_log import log_comparison

        return log_comparison(
            self, self._out_dir or Path("."), tracking_uri=tracking_uri, experiment=experiment
        )


async def arun_agent(
    suite: AgentSuite | str | Path,
    agent: Agent | AgentFunction | str,
    judges: JudgeLike | Sequence[JudgeLike],
    run_dir: str | Path,
    *,
    version: str | None = None,
    dimensions: Sequence[str] | None = None,
    execute: bool = False,
    execute_timeout: float = DEFAULT_EXECUTE_TIMEOUT,
    timeout: float = DEFAULT_TIMEOUT,
    concurrency: int = 4,
    retry_failed: bool = False,
    seed: int = 0,
    gap_thresholds: Mapping[str, float] | None = None,
    gap_similarity: float = DEFAULT_SIMILARITY,
    progress: Progress | Literal["auto"] | None = "auto",
) -> Scoreboard:
    """Async twin of ``run_agent``.

    >>> board = await arun_agent("example", "replay:example/v2", "j.json", "v2")  # doctest: +SKIP
    """
    shown = progress_for(sys.stderr) if progress == "auto" else nullcontext(progress)
    with shown as bar:
        run = AgentRun(
            suite,
            agent,
            judges,
            run_dir,
            version=version,
            dimensions=dimensions,
            execute=execute,
            execute_timeout=execute_timeout,
            timeout=timeout,
            concurrency=concurrency,
            retry_failed=retry_failed,
            seed=seed,
            gap_thresholds=gap_thresholds,
            gap_similarity=gap_similarity,
            progress=bar,
        )
        model = await run.arun()
    board = Scoreboard.of(model, run_dir)
    board.to_html(Path(run_dir) / REPORT)
    return board


def run_agent(
    suite: AgentSuite | str | Path,
    agent: Agent | AgentFunction | str,
    judges: JudgeLike | Sequence[JudgeLike],
    run_dir: str | Path,
    **options: Any,
) -> Scoreboard:
    """Run an agent on a suite and score every notebook with aligned judges.

    ``suite``: a suite file or ``"example"``; ``agent``: an ``Agent``, a function
    ``task -> notebook`` or a spec (``replay:DIR``, ``chat:PROVIDER:MODEL``, ``cmd:TEMPLATE``,
    ``python:module:fn``); ``judges``: judge files or ``Judge`` objects (one for all
    dimensions or one per dimension). Everything lands in ``run_dir`` (resumable: a rerun
    reuses every finished notebook and judgement), including ``scoreboard.json`` and
    ``report.html``. Options: ``version`` (default: the agent's name), ``dimensions``,
    ``execute`` (run notebooks with nbclient first), ``execute_timeout``, ``timeout`` (seconds
    per notebook generation), ``concurrency``, ``retry_failed``, ``seed``, ``gap_thresholds``,
    ``gap_similarity``, ``progress`` (``"auto"``: a bar on a terminal, timestamped lines
    elsewhere; ``None``: silent). Works inside a running event loop (Jupyter).

    >>> board = run_agent("example", "replay:example/v1", "judge.json", "runs/v1")  # doctest: +SKIP
    """
    return run_sync(arun_agent(suite, agent, judges, run_dir, **options))


def _board(value: Scoreboard | ScoreboardModel | str | Path) -> Scoreboard:
    if isinstance(value, Scoreboard):
        return value
    if isinstance(value, ScoreboardModel):
        return Scoreboard.of(value, None)
    return Scoreboard.load(value)


def compare_agents(
    a: Scoreboard | str | Path,
    b: Scoreboard | str | Path,
    *,
    out: str | Path | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> AgentComparison:
    """Compare version ``a`` (before) with ``b`` (after): scoreboards or run folders. With
    ``out``, ``comparison.json`` and ``comparison.html`` are written there.

    >>> cmp = compare_agents("runs/v1", "runs/v2", out="runs/v1-vs-v2")  # doctest: +SKIP
    >>> cmp.better_cases  # doctest: +SKIP
    """
    board_a, board_b = _board(a), _board(b)
    model = compare_scoreboards(board_a, board_b, n_resamples=n_resamples, seed=seed)
    cmp = AgentComparison.model_validate(model.model_dump())
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        reports = {}
        for name, board in ((board_a.version, board_a), (board_b.version, board_b)):
            if board.run_dir is not None and (board.run_dir / REPORT).is_file():
                reports[name] = Path(os.path.relpath(board.run_dir / REPORT, folder)).as_posix()
        cmp = AgentComparison.model_validate({**cmp.model_dump(), "reports": reports})
        cmp._out_dir = folder
        cmp.save(folder / "comparison.json")
        cmp.to_html(folder / "comparison.html")
    return cmp


__all__ = [
    "SCOREBOARD",
    "AgentComparison",
    "Scoreboard",
    "arun_agent",
    "compare_agents",
    "run_agent",
]
