"""An aligned judge as MLflow GenAI scorers, one per rubric dimension.

::

    import judgealign as ja, mlflow

    scorers = ja.mlflow_scorers("judge.json")            # or a Judge, or runs:/ID/judge.json
    mlflow.genai.evaluate(data=mlflow.search_traces(locations=[exp_id]), scorers=scorers)
    scorers[0](inputs={"question": "..."}, outputs="...")  # one Feedback, outside evaluate too
    scorers[0](trace=mlflow.get_trace(trace_id))

Each call scores with ``Judge.apredict`` (the one scoring path: same retrieval, context cap,
prompt and parsing as ``judge.predict``) and returns the ``Feedback`` described in
``assessments``. The item is built like an ``mlflow:`` label source builds it (its id is the
trace id when there is a trace), so a trace the judge learned from never sees its own expert
label as an example.

``mlflow.genai.evaluate`` calls scorers from its thread pool. The judge's providers are async
and bound to the event loop that uses them, so every scorer of one judge submits its work to
one event loop on a background thread: calls from many threads share one set of connections,
one response cache and the providers' concurrency limits, as ``predict`` over the same items
would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from mlflow.genai.scorers import Scorer
from pydantic import PrivateAttr

from judgealign.data.mlflow_traces import item_from_io
from judgealign.errors import ConfigError
from judgealign.integrations.mlflow.assessments import feedback_from_judgement
from judgealign.judge.judge import Judge
from judgealign.judge.judgement import Judgement
from judgealign.judge.persistence import load_judge

T = TypeVar("T")


class JudgeLoop:
    """One event loop on a daemon thread that runs a judge's coroutines for any caller thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="judgealign-scorer-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coro: Awaitable[T]) -> T:
        """Run ``coro`` on the loop thread and wait for its result (from any other thread)."""
        loop = self._start()
        if threading.current_thread() is self._thread:
            raise RuntimeError("a judgealign scorer cannot be called from its own event loop")
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), loop)
        return future.result()

    def close(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=10)
            loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


class JudgeScorer(Scorer):  # type: ignore[misc]
    """An MLflow GenAI scorer scoring one rubric dimension with a judgealign ``Judge``.

    Build it with ``judgealign.mlflow_scorers`` / ``judgealign.mlflow_scorer``. It runs in the
    process that holds the judge (its memory is not serialized): use it in
    ``mlflow.genai.evaluate`` or call it directly; it cannot be registered for MLflow's
    server-side monitoring.
    """

    name: str
    dimension: str
    _judge: Judge = PrivateAttr()
    _loop: JudgeLoop = PrivateAttr()
    _digest: str = PrivateAttr(default="")

    def bind(self, judge: Judge, loop: JudgeLoop, digest: str) -> JudgeScorer:
        self._judge, self._loop, self._digest = judge, loop, digest
        return self

    @property
    def judge(self) -> Judge:
        return self._judge

    def judgement(self, *, inputs: Any = None, outputs: Any = None, trace: Any = None) -> Judgement:
        """The judgealign ``Judgement`` behind a call (what ``__call__`` turns into Feedback)."""
        trace_id = None
        if trace is not None:
            trace_id = trace.info.trace_id
            data = getattr(trace, "data", None)
            if inputs is None and data is not None:
                inputs = data.request
            if outputs is None and data is not None:
                outputs = data.response
        item = item_from_io(inputs, outputs, item_id=trace_id)
        judge = self._judge
        return self._loop.run(judge.apredict([item], [self.dimension]))[0]

    # Only the arguments MLflow should pass: it reads the signature to choose them.
    def __call__(  # type: ignore[override]
        self, *, inputs: Any = None, outputs: Any = None, trace: Any = None
    ) -> Any:
        judgement = self.judgement(inputs=inputs, outputs=outputs, trace=trace)
        return feedback_from_judgement(judgement, self._judge, name=self.name, digest=self._digest)

    def register(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            f"scorer {self.name!r} runs in this process (it holds the judge's memory) and "
            "cannot be registered for server-side monitoring; use mlflow.genai.evaluate, or "
            "`judgealign score mlflow:... --judge FILE --mlflow-feedback` on new traces"
        )


def scorers(
    judge: Judge | str | Path,
    dimensions: Sequence[str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    **params: Any,
) -> list[JudgeScorer]:
    """One MLflow GenAI scorer per dimension of ``judge`` (a ``Judge``, a judge file, or
    ``runs:/RUN_ID/judge.json``); ``params`` replace the file's parameters (``model=...``).

    ``names`` maps dimensions to scorer names: name a scorer like the experts' assessment so
    that MLflow shows the judge's verdict beside theirs (default: the dimension id).

    >>> import judgealign as ja
    >>> [s.name for s in ja.mlflow_scorers(ja.Judge(ja.load_rubric("ml-notebook"),
    ...     model="fake:constant"), ["model_use"])]
    ['model_use']
    """
    from judgealign.integrations.mlflow.logging import judge_digest

    if isinstance(judge, Judge):
        if params:
            raise ConfigError(
                f"parameters {', '.join(sorted(params))} are for a judge file; "
                "set them on the Judge (judge.set_params) instead"
            )
        loaded = judge
    else:
        loaded = load_judge(judge, **params)
    dims = list(dimensions) if dimensions is not None else list(loaded.rubric.dimension_ids)
    for d in dims:
        loaded.rubric.dimension(d)
    loop = JudgeLoop()
    digest = judge_digest(loaded)
    out = []
    for d in dims:
        dim = loaded.rubric.dimension(d)
        scorer = JudgeScorer(
            name=(names or {}).get(d, d),
            dimension=d,
            description=f"judgealign {loaded.rubric.id} judge: {dim.name}",
        )
        out.append(scorer.bind(loaded, loop, digest))
    return out


def scorer(
    judge: Judge | str | Path, dimension: str, *, name: str | None = None, **params: Any
) -> JudgeScorer:
    """The MLflow GenAI scorer of one dimension (see ``scorers``)."""
    return scorers(judge, [dimension], names={dimension: name} if name else None, **params)[0]
