"""An agent run: cases -> notebooks (-> executed notebooks) -> judgements -> scoreboard.

Each notebook goes through its steps as soon as the previous one is done (a notebook is judged
while the agent writes the next), with at most ``concurrency`` generations and executions at a
time and the judges' providers limiting their own calls. Every finished step is stored in the
run folder (``agent.store``); a run started again skips what is there, so an interrupted run
(Ctrl-C, kill -9, a crashed machine) resumes without asking the agent or the judges twice. An
agent failure (crash, timeout, no valid notebook) and a failed judgement are recorded with
their reasons, never raised.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from judgealign.agent.adapters import AgentFunction, resolve_agent
from judgealign.agent.board import (
    GapSettings,
    ScoreboardModel,
    SuiteInfo,
    case_summaries,
    dimension_summaries,
    failure_counts,
    notebook_results,
    tag_summaries,
)
from judgealign.agent.execution import check_available, execute_notebook
from judgealign.agent.gaps import DEFAULT_SIMILARITY, default_threshold, find_gaps
from judgealign.agent.judges import JudgeLike, JudgeSet
from judgealign.agent.notebook_file import coerce_notebook, notebook_json
from judgealign.agent.records import Execution, Generation, ScoredJudgement, notebook_id
from judgealign.agent.store import RunStore, sha256_text, write_atomic
from judgealign.agent.suite import AgentCase, AgentSuite, load_suite
from judgealign.agent.task import Agent, AgentError, AgentTask
from judgealign.data.item import Item
from judgealign.errors import ConfigError
from judgealign.evaluation.store import check_run_settings
from judgealign.judge.judgement import Judgement
from judgealign.progress import NoProgress, Progress
from judgealign.providers.types import Usage

DEFAULT_TIMEOUT = 1800.0
DEFAULT_EXECUTE_TIMEOUT = 600.0


class AgentRun:
    """One agent version on one suite, scored by one set of judges, in one run folder.

    Constructing it checks everything (suite, agent, judges, dimensions, the run folder's
    settings) and does no work; ``arun``/``run`` generate, execute, judge and return the
    ``ScoreboardModel`` (also written as ``scoreboard.json``). ``judgealign.run_agent`` wraps
    this and adds the views.
    """

    def __init__(
        self,
        suite: AgentSuite | str | Path,
        agent: Agent | AgentFunction | str,
        judges: JudgeLike | Sequence[JudgeLike],
        run_dir: str | Path,
        *,
        version: str | None = None,
        dimensions: Sequence[str] | None = None,
        execute: bool = False,
        execute_timeout: float = DEFAULT_EXECUTE_TIMEOUT,
        kernel: str = "python3",
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = 4,
        retry_failed: bool = False,
        seed: int = 0,
        gap_thresholds: Mapping[str, float] | None = None,
        gap_similarity: float = DEFAULT_SIMILARITY,
        n_resamples: int = 10_000,
        progress: Progress | None = None,
    ) -> None:
        self.suite = suite if isinstance(suite, AgentSuite) else load_suite(suite)
        self.agent = resolve_agent(agent)
        given = (
            [judges]
            if isinstance(judges, str | Path) or not isinstance(judges, Sequence)
            else judges
        )
        self.judges = JudgeSet(list(given))  # type: ignore[arg-type]
        self.run_dir = Path(run_dir)
        self.version = version or self.agent.name
        if timeout <= 0 or execute_timeout <= 0:
            raise ConfigError("timeouts must be positive (seconds)")
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        if not 0.0 < gap_similarity <= 1.0:
            raise ConfigError(f"gap similarity must lie in (0, 1], got {gap_similarity}")
        self.execute = execute
        if execute:
            check_available()
        self.execute_timeout = execute_timeout
        self.kernel = kernel
        self.timeout = timeout
        self.concurrency = concurrency
        self.retry_failed = retry_failed
        self.seed = seed
        self.gap_similarity = gap_similarity
        self.n_resamples = n_resamples
        self.progress: Progress = progress or NoProgress()
        rubric = self.judges.rubric
        served = self.judges.dimensions
        for d in dimensions or ():
            if d not in served:
                raise ConfigError(
                    f"dimension {d!r} has no judge; the judges serve {', '.join(served)}"
                )
        wanted = [d for d in served if dimensions is None or d in dimensions]
        self.dimensions = tuple(wanted)
        named = self.suite.rubric
        if named is not None and not named.endswith((".yaml", ".yml")) and named != rubric.id:
            raise ConfigError(
                f"{self.suite.source or self.suite.name} is written for rubric "
                f"{named!r}, the judges score {rubric.id!r}; give judges of that rubric"
            )
        self.dims_of: dict[str, tuple[str, ...]] = {}
        for case in self.suite.cases:
            applicable = case.dimensions if case.dimensions is not None else served
            self.dims_of[case.id] = tuple(d for d in wanted if d in applicable)
        thresholds = dict(gap_thresholds or {})
        self.gap_thresholds = {
            d: thresholds.get(d, default_threshold(rubric.dimension(d).scale))
            for d in self.dimensions
        }
        self._rubric = rubric

    def settings(self) -> dict[str, Any]:
        return {
            "suite": {
                "name": self.suite.name,
                "digest": self.suite.loaded_digest or self.suite.digest(),
            },
            "agent": self.agent.name,
            "version": self.version,
            "judges": self.judges.settings(),
            "execute": self.execute,
            "seed": self.seed,
        }

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> ScoreboardModel:
        from judgealign.sync import run_sync

        return run_sync(self.arun())

    async def arun(self) -> ScoreboardModel:
        started = time.perf_counter()
        check_run_settings(self.run_dir, self.settings())
        self.judges.save_copies(self.run_dir / "judges")
        store = RunStore(self.run_dir, retry_failed=self.retry_failed)
        self._gen_gate = asyncio.Semaphore(self.concurrency)
        self._exec_gate = asyncio.Semaphore(self.concurrency)
        tasks = [(c, i) for c in self.suite.cases for i in range(1, c.notebooks + 1)]
        total = sum(1 + len(self.dims_of[c.id]) for c, _ in tasks)
        self.progress.start(
            f"agent {self.version}: {len(tasks)} notebooks, {total - len(tasks)} judgements", total
        )
        try:
            await asyncio.gather(*(self._notebook(store, c, i) for c, i in tasks))
        finally:
            store.close()  # every finished step on disk, also when interrupted
        board = await self._scoreboard(store, time.perf_counter() - started)
        board.save(self.run_dir / "scoreboard.json")
        return board

    async def _notebook(self, store: RunStore, case: AgentCase, index: int) -> None:
        dims = self.dims_of[case.id]
        g = store.finished_generation(case.id, index)
        if g is None:
            g = await self._generate(store, case, index)
        self.progress.advance()
        if not g.ok or g.notebook is None:
            self.progress.advance(len(dims))
            return
        text = (self.run_dir / g.notebook).read_text(encoding="utf-8")
        if self.execute:
            e = store.finished_execution(case.id, index, g.sha256)
            if e is None:
                e = await self._execute(store, case, index, g)
            executed = self.run_dir / e.result.executed if e.result.executed else None
            if executed is not None and executed.is_file():
                text = executed.read_text(encoding="utf-8")
        nid = notebook_id(case.id, index)
        # The id carries the text's hash: judges cache renders and embeddings by item id, and
        # one judge may score another version's (or an executed) notebook of the same case.
        item = Item(
            id=f"{nid}@{sha256_text(text)[:12]}",
            kind="notebook",
            output=text,
            inputs={"task": case.task_text},
            group=case.id,
            path=str(self.run_dir / g.notebook),
        )
        done = store.judged(case.id, index, g.sha256)
        self.progress.advance(sum(1 for d in dims if d in done))
        by_entry: dict[int, list[str]] = {}
        for d in dims:
            if d not in done:
                by_entry.setdefault(id(self.judges.entry(d)), []).append(d)

        async def judge_with(dimensions: list[str]) -> None:
            entry = self.judges.entry(dimensions[0])

            def record(j: Judgement) -> None:
                store.add_judgement(
                    ScoredJudgement(
                        case=case.id, index=index, sha256=g.sha256, judge=entry.file, judgement=j
                    )
                )
                self.progress.advance()
                if not j.ok:
                    self.progress.status(f"{nid} {j.dimension}: {j.error}")

            await entry.judge.apredict([item], dimensions, on_judgement=record)

        await asyncio.gather(*(judge_with(ds) for ds in by_entry.values()))

    def _workdir(self, store: RunStore, case: AgentCase, index: int) -> tuple[Path, list[Path]]:
        workdir = store.workdir(case.id, index)
        if workdir.exists():
            shutil.rmtree(workdir)
        (workdir / "data").mkdir(parents=True)
        files = []
        for src in self.suite.data_files(case):
            dst = workdir / "data" / src.name
            shutil.copy2(src, dst)  # a copy: an agent may write into its data folder
            files.append(dst)
        return workdir, files

    async def _generate(self, store: RunStore, case: AgentCase, index: int) -> Generation:
        target = store.notebook_path(case.id, index)
        recorded = store.generations.get(notebook_id(case.id, index))
        if recorded is None and target.is_file():
            adopted = self._adopt(store, case, index, target)
            if adopted is not None:
                return adopted
        async with self._gen_gate:
            # File work off the event loop: other notebooks' calls keep going meanwhile.
            workdir, files = await asyncio.to_thread(self._workdir, store, case, index)
            task = AgentTask(
                case=case,
                index=index,
                prompt=self.suite.prompt_for(case),
                workdir=workdir,
                notebook_path=workdir / "notebook.ipynb",
                data_files=tuple(files),
                seed=self.seed + index - 1,
            )
            limit = case.timeout or self.timeout
            started = time.perf_counter()
            fields: dict[str, Any] = {"case": case.id, "index": index, "agent": self.agent.name}
            try:
                out = await asyncio.wait_for(self.agent.generate(task), limit)
                value = out.notebook if out.notebook is not None else task.notebook_path
                if out.notebook is None and not task.notebook_path.is_file():
                    raise AgentError(f"wrote no notebook to {task.notebook_path}", "invalid")
                text = notebook_json(coerce_notebook(value, where=f"{case.id} #{index}"))
                await asyncio.to_thread(write_atomic, target, text)
                g = Generation(
                    **fields,
                    notebook=store.relative(target),
                    sha256=sha256_text(text),
                    seconds=time.perf_counter() - started,
                    usage=out.usage,
                )
            except TimeoutError:
                g = Generation(
                    **fields,
                    status="failed",
                    failure="timeout",
                    reason=f"no notebook within {limit:g} s",
                    seconds=time.perf_counter() - started,
                )
            except AgentError as exc:
                g = Generation(
                    **fields,
                    status="failed",
                    failure=exc.kind,
                    reason=str(exc)[:1000],
                    seconds=time.perf_counter() - started,
                )
            except Exception as exc:  # an agent's own bug is its failure, not the run's
                g = Generation(
                    **fields,
                    status="failed",
                    failure="crash",
                    reason=f"{type(exc).__name__}: {exc}"[:1000],
                    seconds=time.perf_counter() - started,
                )
        store.add_generation(g)
        if not g.ok:
            self.progress.status(f"{g.id}: {g.failure}: {g.reason}")
        return g

    def _adopt(
        self, store: RunStore, case: AgentCase, index: int, target: Path
    ) -> Generation | None:
        """A notebook a killed run wrote but never recorded: keep it rather than ask again."""
        try:
            text = notebook_json(coerce_notebook(target, where=str(target)))
        except AgentError:
            return None
        g = Generation(
            case=case.id,
            index=index,
            notebook=store.relative(target),
            sha256=sha256_text(text),
            agent=self.agent.name,
            recovered=True,
        )
        if target.read_text(encoding="utf-8") != text:
            write_atomic(target, text)
        store.add_generation(g)
        return g

    async def _execute(
        self, store: RunStore, case: AgentCase, index: int, g: Generation
    ) -> Execution:
        async with self._exec_gate:
            workdir = store.workdir(case.id, index)
            if not (workdir / "data").is_dir():
                workdir, _ = self._workdir(store, case, index)
            result = await execute_notebook(
                self.run_dir / (g.notebook or ""),
                store.executed_path(case.id, index),
                workdir,
                timeout=self.execute_timeout,
                kernel=self.kernel,
            )
        if result.executed:  # stored relative: a run folder may be moved or archived
            result = result.model_copy(update={"executed": store.relative(Path(result.executed))})
        e = Execution(case=case.id, index=index, sha256=g.sha256, result=result)
        store.add_execution(e)
        if result.status != "ok":
            self.progress.status(f"{e.id}: execution {result.status}: {result.reason}")
        return e

    # -- the scoreboard ---------------------------------------------------------------------
    async def _scoreboard(self, store: RunStore, wall: float) -> ScoreboardModel:
        cases = list(self.suite.cases)
        notebooks = notebook_results(
            cases,
            store.generations,
            store.executions,
            store.judgements.values(),
            self.dims_of,
        )
        rubric = self._rubric.subset(list(self.dimensions))
        embedder = self.judges.embedder()
        gaps = []
        notes = []
        if embedder is not None:
            gaps = await find_gaps(
                notebooks,
                rubric,
                self.dimensions,
                embedder,
                thresholds=self.gap_thresholds,
                similarity=self.gap_similarity,
            )
        else:
            notes.append("No judge has an embedder, so low-score reasons were not grouped.")
        ids = {g for nb in notebooks for j in nb.judgements for g in j.guidelines}
        scoring = Usage()
        for nb in notebooks:
            for j in nb.judgements:
                scoring = scoring + j.usage
        generation = Usage()
        for nb in notebooks:
            generation = generation + nb.usage
        failed_cases = sum(
            1 for c in cases if not any(nb.case == c.id and nb.status == "ok" for nb in notebooks)
        )
        return ScoreboardModel(
            version=self.version,
            agent=self.agent.name,
            suite=SuiteInfo(
                name=self.suite.name,
                digest=self.suite.digest(),
                source=self.suite.source,
                cases=len(cases),
            ),
            rubric=rubric,
            dimensions=self.dimensions,
            judges=tuple(self.judges.info()),
            execute=self.execute,
            cases_total=len(cases),
            cases_failed=failed_cases,
            notebooks_total=len(notebooks),
            notebooks_failed=sum(1 for nb in notebooks if nb.status != "ok"),
            failures=failure_counts(notebooks),
            execution_errors=sum(
                1 for nb in notebooks if nb.execution is not None and nb.execution.status != "ok"
            ),
            dims=tuple(
                dimension_summaries(
                    notebooks,
                    rubric,
                    self.dimensions,
                    n_resamples=self.n_resamples,
                    seed=self.seed,
                )
            ),
            cases=tuple(case_summaries(cases, notebooks, rubric, self.dims_of)),
            tags=tuple(tag_summaries(cases, notebooks, rubric, self.dimensions)),
            notebooks=tuple(notebooks),
            gaps=tuple(gaps),
            gap_settings=GapSettings(
                thresholds=self.gap_thresholds,
                similarity=self.gap_similarity,
                embedder=getattr(embedder, "name", None),
            ),
            guidelines=self.judges.guideline_texts(ids),
            usage_generation=generation,
            usage_scoring=scoring,
            wall_seconds=wall,
            n_resamples=self.n_resamples,
            seed=self.seed,
            notes=tuple(notes),
        )
