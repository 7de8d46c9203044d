"""Four ways to plug an agent in, behind the one ``Agent`` protocol, and agent specs.

- ``CommandAgent``: any program, run as a command template
  (``my-agent --prompt-file {prompt} --data {data} --out {notebook}``);
- ``ChatAgent``: a chat model (any judgealign provider: hosted, LiteLLM, the embedded local
  model) that writes the notebook as Markdown with code blocks;
- ``CallableAgent``: a Python function ``task -> notebook`` (sync or async);
- ``ReplayAgent``: notebooks generated earlier, from a folder (``CASE/N.ipynb``) or a run.

``resolve_agent`` turns a spec string (``cmd:...``, ``chat:local:default``,
``python:pkg.mod:fn``, ``replay:DIR``) into one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import shlex
import signal
import string
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from judgealign.agent.notebook_file import coerce_notebook, notebook_from_markdown, notebook_json
from judgealign.agent.task import Agent, AgentError, AgentOutput, AgentTask
from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.protocol import LLM
from judgealign.providers.types import ChatRequest, Message, Usage

# Placeholders a command template may use.
COMMAND_FIELDS = ("prompt", "data", "data_file", "notebook", "out", "workdir", "case", "index",
                  "seed", "task", "dataset")  # fmt: skip
LOG_TAIL_CHARS = 4000
# A complete notebook for a small task runs 1,000-2,500 tokens of Markdown and code.
DEFAULT_MAX_TOKENS = 3000
USAGE_FILE = "usage.json"


def _tail(text: str, n: int = LOG_TAIL_CHARS) -> str:
    return text if len(text) <= n else "..." + text[-n:]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


class CommandAgent:
    """Runs a command per notebook. Placeholders: ``{prompt}`` (a file holding the prompt),
    ``{data}`` (the data folder), ``{data_file}`` (its first file), ``{notebook}``/``{out}``
    (where to write the ``.ipynb``), ``{workdir}``, ``{case}``, ``{index}``, ``{seed}``,
    ``{task}``, ``{dataset}`` (the dataset's name). The template is split like a shell line but
    never run by a shell, so nothing in a case can inject a command; ``shell=True`` opts in.

    The command runs in the task's folder; stdout and stderr are kept there (``agent.log``). A
    non-zero exit is a crash, a timeout kills the command's whole process group. If the
    command writes ``usage.json`` (``{"calls", "prompt_tokens", "completion_tokens"}``) its
    model usage is recorded.

    >>> CommandAgent("my-agent --prompt-file {prompt} --out {notebook}").name
    'my-agent'
    >>> CommandAgent("my-agent {nope}")
    Traceback (most recent call last):
    judgealign.errors.ConfigError: command template: unknown placeholder {nope}; use ...
    """

    def __init__(
        self,
        template: str,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        shell: bool = False,
    ) -> None:
        self.template = template
        self.env = dict(env or {})
        self.shell = shell
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        unknown = [f for f in fields if f.split(".")[0].split("[")[0] not in COMMAND_FIELDS]
        if unknown:
            raise ConfigError(
                f"command template: unknown placeholder {{{unknown[0]}}}; use "
                + ", ".join(f"{{{f}}}" for f in COMMAND_FIELDS)
            )
        try:
            parts = shlex.split(template)
        except ValueError as exc:
            raise ConfigError(f"command template: {exc}; check its quotes") from None
        if not parts:
            raise ConfigError("command template is empty; give the agent's command line")
        self._name = name or Path(parts[0]).name

    @property
    def name(self) -> str:
        return self._name

    def command(self, task: AgentTask) -> list[str]:
        """The command line for ``task`` (one argument per template word)."""
        prompt = task.workdir / "prompt.md"
        values = {
            "prompt": str(prompt),
            "data": str(task.data_dir),
            "data_file": str(task.data_files[0]) if task.data_files else "",
            "notebook": str(task.notebook_path),
            "out": str(task.notebook_path),
            "workdir": str(task.workdir),
            "case": task.case.id,
            "index": str(task.index),
            "seed": str(task.seed),
            "task": task.case.task,
            "dataset": task.case.dataset.name or "",
        }
        if self.shell:
            quoted = {k: shlex.quote(v) for k, v in values.items()}
            return ["/bin/sh", "-c", self.template.format(**quoted)]
        return [word.format(**values) for word in shlex.split(self.template)]

    async def generate(self, task: AgentTask) -> AgentOutput:
        (task.workdir / "prompt.md").write_text(task.prompt, encoding="utf-8")
        log_path = task.workdir / "agent.log"
        argv = self.command(task)
        with log_path.open("wb") as log:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=str(task.workdir),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env={**os.environ, **self.env},
                    start_new_session=True,  # its own process group: a timeout kills it all
                )
            except OSError as exc:
                raise AgentError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
            try:
                code = await proc.wait()
            except BaseException:
                _kill_group(proc.pid)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(proc.wait(), 5)
                raise
        text = log_path.read_text(encoding="utf-8", errors="replace")
        if code != 0:
            why = _last_line(text)
            raise AgentError(f"exit code {code}" + (f": {why}" if why else ""))
        return AgentOutput(notebook=None, usage=_usage_file(task.workdir), log=_tail(text))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _usage_file(workdir: Path) -> Usage:
    path = workdir / USAGE_FILE
    if not path.is_file():
        return Usage()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Usage(
            calls=int(raw.get("calls", 0)),
            prompt_tokens=int(raw.get("prompt_tokens", 0)),
            completion_tokens=int(raw.get("completion_tokens", 0)),
        )
    except (ValueError, TypeError, AttributeError):
        return Usage()  # a malformed usage file loses the accounting, not the notebook


NOTEBOOK_SYSTEM_PROMPT = (
    "You are an expert machine-learning engineer. You write complete, runnable Jupyter "
    "notebooks that solve the user's task on the data described. Write the notebook as "
    "Markdown: explanations as plain Markdown text, and every code cell as a fenced ```python "
    "block. Read the data files from the paths given (data/...). Answer with the notebook "
    "only."
)


class ChatAgent:
    """A chat model writes each notebook in one call (Markdown with ```python blocks,
    converted to ``.ipynb``).

    ``model`` is a provider name (``openai:gpt-4.1-mini``, ``litellm:...``, ``local:default``)
    or an LLM object; names are resolved with a response cache in ``cache_dir`` (a rerun asks
    nothing again), retries and ``concurrency`` parallel calls. Several notebooks of one case
    are separate samples (their own seed and cache key).

    >>> agent = ChatAgent("fake:constant")
    >>> agent.name
    'fake:constant'
    """

    def __init__(
        self,
        model: str | LLM,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.2,
        system_prompt: str = NOTEBOOK_SYSTEM_PROMPT,
        cache_dir: str | Path | None = None,
        concurrency: int = 4,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.system_prompt = system_prompt
        self.cache_dir = cache_dir
        self.concurrency = concurrency
        self._llm: LLM | None = None

    @property
    def name(self) -> str:
        if isinstance(self.model, str):
            return self.model
        spec = getattr(self.model, "spec", None)
        return spec if isinstance(spec, str) else str(self.model.name)

    @property
    def llm_(self) -> LLM:
        """The model, resolved (cache, retries, limits and accounting around it)."""
        if self._llm is None:
            from judgealign.providers.registry import resolve_llm

            self._llm = resolve_llm(
                self.model, cache_dir=self.cache_dir, concurrency=self.concurrency
            )
        return self._llm

    def request(self, task: AgentTask) -> ChatRequest:
        return ChatRequest(
            model=self.llm_.name,
            messages=(
                Message(role="system", content=self.system_prompt),
                Message(role="user", content=task.prompt),
            ),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=task.seed,
            tag=f"agent-notebook-{task.index}",
        )

    async def generate(self, task: AgentTask) -> AgentOutput:
        (task.workdir / "prompt.md").write_text(task.prompt, encoding="utf-8")
        try:
            response = await self.llm_.complete(self.request(task))
        except ProviderError as exc:
            raise AgentError(f"provider error: {exc}", "provider") from None
        (task.workdir / "answer.md").write_text(response.text, encoding="utf-8")
        nb = notebook_from_markdown(response.text)
        if not any(c.cell_type == "code" for c in nb.cells):
            raise AgentError("the model's answer holds no ```python code block", "invalid")
        return AgentOutput(
            notebook=notebook_json(nb), usage=response.usage, log=_tail(response.text)
        )


AgentFunction = Callable[[AgentTask], Any] | Callable[[AgentTask], Awaitable[Any]]


class CallableAgent:
    """A Python function as an agent: ``fn(task)`` returns the notebook (JSON or Markdown
    text, a mapping, an nbformat node, a path, or an ``AgentOutput``) or writes
    ``task.notebook_path`` and returns ``None``. Sync functions run in a worker thread (a
    timeout records the case as failed but cannot stop the thread); async ones are awaited.

    >>> CallableAgent(lambda task: "```python\\nprint(1)\\n```", name="echo").name
    'echo'
    """

    def __init__(self, fn: AgentFunction, *, name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError(f"CallableAgent needs a callable, got {type(fn).__name__}")
        self.fn = fn
        self._name: str = name or str(getattr(fn, "__name__", type(fn).__name__))

    @property
    def name(self) -> str:
        return self._name

    async def generate(self, task: AgentTask) -> AgentOutput:
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(task)
        else:
            result = await _in_daemon_thread(self.fn, task)
            if inspect.isawaitable(result):
                result = await result
        if isinstance(result, AgentOutput):
            return result
        if result is None:
            return AgentOutput()
        nb = coerce_notebook(result, where=f"{self.name} ({task.case.id} #{task.index})")
        return AgentOutput(notebook=notebook_json(nb))


async def _in_daemon_thread(fn: Callable[[AgentTask], Any], task: AgentTask) -> Any:
    """``fn(task)`` in a thread of its own. Not the loop's default executor: a function that
    never returns would keep ``asyncio.run`` from finishing after its timeout, while a daemon
    thread is simply left behind (and ends with the process)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():  # timed out meanwhile: nobody waits for this answer
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def target() -> None:
        value, error = None, None
        try:
            value = fn(task)
        except BaseException as exc:  # handed to the awaiting coroutine, like to_thread does
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=target, daemon=True, name=f"agent-{task.case.id}").start()
    return await future


class ReplayAgent:
    """Notebooks written earlier: ``FOLDER/CASE/N.ipynb`` (N from 1), or ``FOLDER/CASE.ipynb``
    for a case's only notebook. A run folder replays its ``notebooks/``. A missing notebook
    is a failed (invalid) case, as if the agent wrote nothing.

    ``example/v1`` and ``example/v2`` name the example suite's two synthetic agent versions.

    >>> ReplayAgent("example/v1").name
    'v1'
    """

    def __init__(self, folder: str | Path, *, name: str | None = None) -> None:
        self.folder = resolve_replay_folder(folder)
        self._name = name or self.folder.name
        if self._name == "notebooks":  # a run folder's: name it after the run
            self._name = self.folder.parent.name

    @property
    def name(self) -> str:
        return self._name

    def notebook_for(self, case: str, index: int) -> Path | None:
        for path in (self.folder / case / f"{index}.ipynb", self.folder / f"{case}.ipynb"):
            if path.is_file() and (index == 1 or path.parent.name == case):
                return path
        return None

    async def generate(self, task: AgentTask) -> AgentOutput:
        path = self.notebook_for(task.case.id, task.index)
        if path is None:
            raise AgentError(
                f"no notebook {task.case.id}/{task.index}.ipynb in {self.folder}", "invalid"
            )
        return AgentOutput(notebook=path.read_text(encoding="utf-8"))


def resolve_replay_folder(folder: str | Path) -> Path:
    """The folder of a replay spec: as given, a run folder's ``notebooks/``, or a shipped
    example version (``example/v1``)."""
    path = Path(folder)
    if not path.exists() and path.parts[:1] == ("example",) and len(path.parts) == 2:
        from judgealign.agent.example_set import EXAMPLES_DIR

        path = EXAMPLES_DIR / "replay" / path.parts[1]
    if (path / "notebooks").is_dir():
        path = path / "notebooks"
    if not path.is_dir():
        raise ConfigError(f"replay:{folder}: no such folder of notebooks; check the path")
    return path


def _import_function(target: str) -> AgentFunction:
    module, sep, attr = target.partition(":")
    if not sep:
        module, _, attr = target.rpartition(".")
    if not module or not attr:
        raise ConfigError(f"python:{target}: write python:package.module:function")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"python:{target}: cannot import {module} ({exc})") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ConfigError(f"python:{target}: {module} has no function {attr}")
    return fn  # type: ignore[no-any-return]


AGENT_KINDS = ("cmd", "chat", "python", "replay")


def resolve_agent(
    spec: str | Agent | AgentFunction,
    *,
    cache_dir: str | Path | None = None,
    concurrency: int = 4,
    max_tokens: int | None = None,
) -> Agent:
    """An agent from a spec: ``cmd:TEMPLATE``, ``chat:PROVIDER:MODEL``,
    ``python:package.module:function``, ``replay:FOLDER``; an ``Agent`` is returned as is and
    a plain function becomes a ``CallableAgent``.

    >>> resolve_agent("replay:example/v2").name
    'v2'
    >>> resolve_agent("chat:local:default").name
    'local:default'
    """
    if isinstance(spec, Agent):
        return spec
    if not isinstance(spec, str):
        if callable(spec):
            return CallableAgent(spec)
        raise ConfigError(f"an agent spec must be a string or an Agent, got {type(spec).__name__}")
    kind, sep, rest = spec.partition(":")
    kind = {"command": "cmd"}.get(kind.strip().lower(), kind.strip().lower())
    if not sep or kind not in AGENT_KINDS or not rest.strip():
        raise ConfigError(
            f"agent {spec!r}: write cmd:'my-agent --out {{notebook}} ...', "
            "chat:PROVIDER:MODEL, python:package.module:function or replay:FOLDER"
        )
    rest = rest.strip()
    if kind == "cmd":
        return CommandAgent(rest)
    if kind == "chat":
        return ChatAgent(
            rest,
            cache_dir=cache_dir,
            concurrency=concurrency,
            max_tokens=max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
        )
    if kind == "python":
        return CallableAgent(_import_function(rest), name=rest)
    return ReplayAgent(rest)
