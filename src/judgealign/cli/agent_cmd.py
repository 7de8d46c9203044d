"""``judgealign agent``: run an agent on a test-case suite and score it, compare two versions,
and the offline example (two synthetic agent versions replayed, scored by the local model)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from judgealign.cli.common import check_failures, err_console, fail, one_line_errors
from judgealign.cli.options import DEFAULT_CACHE, CacheDirOption, JudgeOptions, MaxFailedOption
from judgealign.errors import DataError

if TYPE_CHECKING:
    from judgealign.agent.scoreboard import Scoreboard
    from judgealign.judge.judge import Judge

agent_app = typer.Typer(
    help="Evaluate a coding agent: suites of test cases, scoreboards, version comparisons.",
    no_args_is_help=True,
)

# The offline example, sized like `judgealign demo` (a 1.5B judgement takes 12-33 s on 2
# cores): 6 one-notebook cases x 2 dimensions x 2 versions = 24 judgements. Two cases have
# complete data, so data_imputation's N/A shows; --full runs every case and dimension.
EXAMPLE_CASES = (
    "churn-missing",
    "churn-complete",
    "flights-missing",
    "houses-missing",
    "sales-missing",
    "sales-complete",
)
EXAMPLE_DIMENSIONS = ("data_imputation", "model_training")
EXAMPLE_VERSIONS = ("v1", "v2")

EXAMPLE_NEXT_STEPS = """
Next, with your agent and your suite (suite.yaml, see README "Evaluating a coding agent"):
  run a version     judgealign agent run --cases suite.yaml --judge judge.json --out runs/v3 \\
                        --agent 'cmd:my-agent --prompt-file {prompt} --data {data} --out {notebook}'
  or a chat model   ... --agent chat:openai:gpt-4.1-mini
  compare versions  judgealign agent compare runs/v2 runs/v3"""

JudgeFilesOption = Annotated[
    list[Path],
    typer.Option(
        "--judge",
        help="Aligned judge file from `judgealign align` (repeat: one per dimension).",
    ),
]
MlflowOption = Annotated[bool, typer.Option(help="Log to MLflow (judgealign[mlflow]).")]
TrackingUriOption = Annotated[
    str | None, typer.Option(help="MLflow tracking URI (default: SQLite in the output folder).")
]
ExperimentOption = Annotated[
    str | None, typer.Option(help="MLflow experiment (default: judgealign-agent-SUITE).")
]


def load_judges(paths: Sequence[Path], opts: JudgeOptions) -> list[Judge]:
    """Judge files with the command's model, cache and concurrency applied."""
    from judgealign.judge.persistence import load_judge

    judges = []
    for path in paths:
        judge = load_judge(path)
        opts.apply(judge)
        judges.append(judge)
    return judges


def _run(
    *,
    suite_path: str,
    agent_spec: str,
    judges: Sequence[Judge],
    out: Path,
    version: str | None,
    dimensions: Sequence[str] | None,
    cases: Sequence[str],
    limit: int | None,
    execute: bool,
    execute_timeout: float,
    kernel: str,
    timeout: float,
    concurrency: int,
    agent_max_tokens: int | None,
    cache_dir: Path | None,
    retry_failed: bool,
    seed: int,
    console: Console,
) -> Scoreboard:
    from judgealign.agent.adapters import resolve_agent
    from judgealign.agent.console import render_scoreboard
    from judgealign.agent.runner import AgentRun
    from judgealign.agent.scoreboard import Scoreboard
    from judgealign.agent.suite import load_suite
    from judgealign.progress import progress_for
    from judgealign.sync import run_sync

    suite = load_suite(suite_path).select(cases, limit)
    agent = resolve_agent(
        agent_spec, cache_dir=cache_dir, concurrency=concurrency, max_tokens=agent_max_tokens
    )
    with progress_for() as progress:
        run = AgentRun(
            suite,
            agent,
            judges,
            out,
            version=version,
            dimensions=dimensions,
            execute=execute,
            execute_timeout=execute_timeout,
            kernel=kernel,
            timeout=timeout,
            concurrency=concurrency,
            retry_failed=retry_failed,
            seed=seed,
            progress=progress,
        )
        board = Scoreboard.of(run_sync(run.arun()), out)
    board.to_html(out / "report.html")
    render_scoreboard(board, console)
    console.print(f"scoreboard: {out / 'scoreboard.json'}\nreport:     {out / 'report.html'}")
    return board


def _check(board: Scoreboard, max_failed: float) -> None:
    judgements = [j for nb in board.notebooks for j in nb.judgements]
    total, failed = board.notebooks_total, board.notebooks_failed
    if total and (failed == total or failed / total > max_failed):
        fail(
            f"{failed} of {total} notebooks failed ({', '.join(board.failures)}); the "
            f"scoreboard is not usable (threshold --max-failed {max_failed:g})"
        )
    check_failures(judgements, max_failed)


@agent_app.command("run")
@one_line_errors
def run_cmd(
    cases: Annotated[str, typer.Option(help="Suite file (.yaml/.jsonl) or 'example'.")],
    agent: Annotated[
        str,
        typer.Option(
            help="cmd:'my-agent --prompt-file {prompt} --data {data} --out {notebook}', "
            "chat:PROVIDER:MODEL, python:module:function or replay:FOLDER."
        ),
    ],
    judge: JudgeFilesOption,
    out: Annotated[Path, typer.Option(help="Run folder (a rerun resumes it).")],
    version: Annotated[
        str | None, typer.Option(help="Name of this agent version (default: the agent's name).")
    ] = None,
    dimension: Annotated[
        list[str] | None, typer.Option(help="Only these dimensions (default: all judged).")
    ] = None,
    case: Annotated[list[str] | None, typer.Option(help="Only these cases.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.")] = None,
    execute: Annotated[
        bool, typer.Option(help="Execute notebooks (nbclient) before judging them.")
    ] = False,
    execute_timeout: Annotated[float, typer.Option(help="Seconds per notebook execution.")] = 600.0,
    kernel: Annotated[str, typer.Option(help="Jupyter kernel for --execute.")] = "python3",
    timeout: Annotated[float, typer.Option(help="Seconds per notebook generation.")] = 1800.0,
    concurrency: Annotated[int, typer.Option(help="Notebooks generated at once.")] = 4,
    judge_concurrency: Annotated[int, typer.Option(help="Parallel judge calls.")] = 4,
    model: Annotated[
        str | None, typer.Option(help="Score with this model instead of the judge file's.")
    ] = None,
    agent_max_tokens: Annotated[
        int | None, typer.Option(help="Answer budget of a chat: agent (default 3000).")
    ] = None,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    retry_failed: Annotated[
        bool, typer.Option(help="Redo failed notebooks and unreadable judgements.")
    ] = False,
    max_failed: MaxFailedOption = 0.5,
    seed: Annotated[int, typer.Option(help="Seed (agent samples, bootstrap).")] = 0,
    mlflow: MlflowOption = False,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
) -> None:
    """Generate a notebook per case (and per requested sample), score every applicable
    dimension with the aligned judges, and write scoreboard.json and report.html."""
    opts = JudgeOptions(model=model, cache_dir=cache_dir, concurrency=judge_concurrency)
    judges = load_judges(judge, opts)
    console = Console()
    board = _run(
        suite_path=cases,
        agent_spec=agent,
        judges=judges,
        out=out,
        version=version,
        dimensions=dimension,
        cases=case or (),
        limit=limit,
        execute=execute,
        execute_timeout=execute_timeout,
        kernel=kernel,
        timeout=timeout,
        concurrency=concurrency,
        agent_max_tokens=agent_max_tokens,
        cache_dir=cache_dir,
        retry_failed=retry_failed,
        seed=seed,
        console=console,
    )
    if mlflow:
        run_id = board.log_mlflow(tracking_uri=tracking_uri, experiment=experiment)
        console.print(f"MLflow run {run_id}")
    _check(board, max_failed)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "version"


@agent_app.command("compare")
@one_line_errors
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="Run folder of the earlier version.")],
    run_b: Annotated[Path, typer.Argument(help="Run folder of the later version.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for comparison.json/.html (default: beside RUN_B)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    mlflow: MlflowOption = False,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
) -> None:
    """Compare two versions on the same suite: paired per case and dimension, bootstrap
    p-values with Holm's correction, the cases that got better or worse."""
    from judgealign.agent.console import render_comparison
    from judgealign.agent.scoreboard import Scoreboard, compare_agents

    a, b = Scoreboard.load(run_a), Scoreboard.load(run_b)
    target = out or run_b.parent / f"compare-{_slug(a.version)}-vs-{_slug(b.version)}"
    cmp = compare_agents(a, b, out=target, seed=seed)
    console = Console()
    render_comparison(cmp, console)
    console.print(
        f"comparison: {target / 'comparison.json'}\nreport:     {target / 'comparison.html'}"
    )
    if mlflow:
        console.print(
            f"MLflow run {cmp.log_mlflow(tracking_uri=tracking_uri, experiment=experiment)}"
        )


@agent_app.command("report")
@one_line_errors
def report_cmd(
    run: Annotated[Path, typer.Argument(help="An agent run folder (with scoreboard.json).")],
    write: Annotated[bool, typer.Option(help="Rewrite report.html.")] = False,
    mlflow: MlflowOption = False,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
) -> None:
    """Show a finished run's scoreboard again (no model calls); rewrite or log it."""
    from judgealign.agent.console import render_scoreboard
    from judgealign.agent.scoreboard import Scoreboard

    board = Scoreboard.load(run)
    console = Console()
    render_scoreboard(board, console)
    if write and board.run_dir is not None:
        board.to_html(board.run_dir / "report.html")
        console.print(f"wrote {board.run_dir / 'report.html'}")
    if mlflow:
        console.print(
            f"MLflow run {board.log_mlflow(tracking_uri=tracking_uri, experiment=experiment)}"
        )


def shipped_judge_path() -> Path:
    """Where the shipped aligned judge lives (the demo labels, local model, nine dimensions)."""
    from judgealign.demo.dataset import DATA_DIR

    return DATA_DIR / "aligned-judge.json"


@agent_app.command("example")
@one_line_errors
def example_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the two runs and the comparison.")] = Path(
        "runs/agent-example"
    ),
    judge: Annotated[
        list[Path] | None,
        typer.Option(help="Judge file(s) (default: the shipped aligned judge)."),
    ] = None,
    full: Annotated[bool, typer.Option(help="All 12 cases and every judged dimension.")] = False,
    model: Annotated[
        str | None, typer.Option(help="Judge model (default: the judge file's).")
    ] = None,
    dimension: Annotated[
        list[str] | None,
        typer.Option(help="Dimensions (default: data_imputation, model_training)."),
    ] = None,
    case: Annotated[list[str] | None, typer.Option(help="Cases (default: six of the 12).")] = None,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    mlflow: MlflowOption = False,
) -> None:
    """The example suite end to end, offline: two synthetic agent versions (replayed
    notebooks shipped with judgealign) scored by an aligned judge, then compared."""
    from judgealign.agent.console import render_comparison
    from judgealign.agent.scoreboard import compare_agents

    paths = list(judge or [shipped_judge_path()])
    for p in paths:
        if not p.is_file():
            raise DataError(
                f"{p}: judge file not found"
                + (
                    " (the shipped aligned judge is not in this install)"
                    if p == shipped_judge_path()
                    else ""
                )
                + "; give --judge FILE from `judgealign align`"
            )
    # Short rationales bound a CPU model's answer time, as in `judgealign demo`.
    opts = JudgeOptions(model=model, max_tokens=150, cache_dir=cache_dir, concurrency=1)
    console = Console()
    dims = None if full and not dimension else list(dimension or EXAMPLE_DIMENSIONS)
    cases = list(case or ()) if (full or case) else list(EXAMPLE_CASES)
    judges = load_judges(paths, opts)  # once: both versions share the loaded model
    boards = []
    for version in EXAMPLE_VERSIONS:
        console.print(f"\n[bold]agent version {version}[/bold] (replayed, synthetic)")
        boards.append(
            _run(
                suite_path="example",
                agent_spec=f"replay:example/{version}",
                judges=judges,
                out=out / version,
                version=version,
                dimensions=dims,
                cases=cases,
                limit=None,
                execute=False,
                execute_timeout=600.0,
                kernel="python3",
                timeout=1800.0,
                concurrency=1,
                agent_max_tokens=None,
                cache_dir=cache_dir,
                retry_failed=False,
                seed=0,
                console=console,
            )
        )
    cmp = compare_agents(boards[0], boards[1], out=out / "comparison")
    console.print()
    render_comparison(cmp, console)
    console.print(f"\ncomparison report: {(out / 'comparison' / 'comparison.html').resolve()}")
    if mlflow:
        for b in boards:
            b.log_mlflow()
        console.print(f"MLflow run {cmp.log_mlflow()}")
    err_console.print(
        "The two versions are synthetic: the demo's notebook templates with flaws planted per "
        "version (see judgealign/agent/example_set.py), not notebooks a model wrote.",
        style="dim",
        highlight=False,
    )
    console.print(EXAMPLE_NEXT_STEPS, highlight=False, soft_wrap=True)
    for b in boards:
        _check(b, 0.5)
