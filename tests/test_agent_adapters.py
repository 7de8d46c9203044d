"""Each agent adapter writes (or fails to write) a notebook the way its docstring says."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest

from agent_fixtures import notebook_text
from judgealign.agent.adapters import (
    CallableAgent,
    ChatAgent,
    CommandAgent,
    ReplayAgent,
    resolve_agent,
)
from judgealign.agent.notebook_file import coerce_notebook, notebook_from_markdown
from judgealign.agent.suite import AgentCase
from judgealign.agent.task import AgentError, AgentOutput, AgentTask
from judgealign.errors import ConfigError
from judgealign.testing.fake import FakeLLM, failing

CASE = AgentCase(
    id="c1", prompt="Predict y.", task="classification", dataset={"name": "warehouse.t"}
)


def make_task(tmp_path: Path, index: int = 1) -> AgentTask:
    work = tmp_path / f"work{index}"
    (work / "data").mkdir(parents=True)
    (work / "data" / "t.csv").write_text("a,y\n1,0\n", encoding="utf-8")
    return AgentTask(
        case=CASE,
        index=index,
        prompt="Predict y from data/t.csv.",
        workdir=work,
        notebook_path=work / "notebook.ipynb",
        data_files=(work / "data" / "t.csv",),
        seed=7,
    )


AGENT_SCRIPT = """
import json, os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
prompt = open(args["--prompt-file"]).read()
mode = args.get("--mode", "ok")
if mode == "crash":
    print("something broke: no GPU", file=sys.stderr)
    sys.exit(3)
if mode == "sleep":
    pid = os.fork()
    if pid == 0:  # a grandchild that must die with the agent
        open(args["--pidfile"], "w").write(str(os.getpid()))
        time.sleep(60)
        sys.exit(0)
    time.sleep(60)
cells = [{"cell_type": "code", "source": "print(%r)" % prompt[:20], "metadata": {},
          "outputs": [], "execution_count": None}]
nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
open(args["--out"], "w").write(json.dumps(nb))
json.dump({"calls": 2, "prompt_tokens": 100, "completion_tokens": 50}, open("usage.json", "w"))
print("done", sorted(os.listdir(args["--data"])))
"""


def command(tmp_path: Path, mode: str) -> CommandAgent:
    script = tmp_path / "agent.py"
    script.write_text(AGENT_SCRIPT, encoding="utf-8")
    return CommandAgent(
        f"{sys.executable} {script} --prompt-file {{prompt}} --data {{data}} --out {{notebook}} "
        f"--mode {mode} --pidfile {tmp_path / 'child.pid'}"
    )


async def test_command_agent_writes_the_notebook_and_reports_usage(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    out = await command(tmp_path, "ok").generate(task)
    assert out.notebook is None and task.notebook_path.is_file()
    assert out.usage.calls == 2 and out.usage.prompt_tokens == 100
    assert "done ['t.csv']" in out.log
    assert (task.workdir / "prompt.md").read_text() == task.prompt


async def test_command_agent_crash_names_the_exit_code_and_last_line(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match=r"exit code 3: something broke: no GPU") as err:
        await command(tmp_path, "crash").generate(make_task(tmp_path))
    assert err.value.kind == "crash"


async def test_command_agent_timeout_kills_its_whole_process_group(tmp_path: Path) -> None:
    agent = command(tmp_path, "sleep")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(agent.generate(make_task(tmp_path)), 1.5)
    pid = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0:
            break  # a zombie: killed, waiting for init to reap it
        time.sleep(0.1)
    else:
        pytest.fail("the agent's child process survived the timeout")


def test_command_template_is_checked_and_never_shell_split_on_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown placeholder"):
        CommandAgent("agent {prompt_file}")
    with pytest.raises(ConfigError, match="empty"):
        CommandAgent("  ")
    task = make_task(tmp_path)
    argv = CommandAgent("agent --case {case} --out {out}").command(task)
    assert argv == ["agent", "--case", "c1", "--out", str(task.notebook_path)]


async def test_chat_agent_turns_markdown_into_a_notebook(tmp_path: Path) -> None:
    answer = "# Churn model\nLoad the data.\n```python\nimport pandas as pd\n```\nDone.\n"
    llm = FakeLLM(handler=lambda req: answer)
    agent = ChatAgent(llm, max_tokens=500, temperature=0.0)
    out = await agent.generate(make_task(tmp_path))
    nb = nbformat.reads(out.notebook, as_version=4)
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "markdown"]
    assert nb.cells[1].source == "import pandas as pd"
    assert out.usage.calls == 1
    request = llm.calls[0]
    assert request.seed == 7 and request.tag == "agent-notebook-1"
    assert "Predict y from data/t.csv." in request.messages[-1].content


async def test_chat_agent_without_code_or_with_a_failing_provider_fails(tmp_path: Path) -> None:
    agent = ChatAgent(FakeLLM(handler=lambda req: "I cannot do that."))
    with pytest.raises(AgentError, match="no ```python code block") as err:
        await agent.generate(make_task(tmp_path))
    assert err.value.kind == "invalid"
    broken = ChatAgent(FakeLLM(handler=lambda req: failing(401, transient=False)))
    with pytest.raises(AgentError, match="provider error") as err:
        await broken.generate(make_task(tmp_path, 2))
    assert err.value.kind == "provider"


async def test_callable_agent_accepts_text_mappings_paths_and_async(tmp_path: Path) -> None:
    task = make_task(tmp_path)
    text = notebook_text()
    for value in (text, json.loads(text), "```python\nx = 1\n```"):
        out = await CallableAgent(lambda t, v=value: v).generate(task)
        assert nbformat.reads(out.notebook, as_version=4).cells

    def writes_file(t: AgentTask) -> None:
        t.notebook_path.write_text(text, encoding="utf-8")

    assert (await CallableAgent(writes_file).generate(task)).notebook is None

    async def async_agent(t: AgentTask) -> AgentOutput:
        return AgentOutput(notebook=text, log="async")

    assert (await CallableAgent(async_agent).generate(task)).log == "async"

    def broken(t: AgentTask) -> str:
        raise RuntimeError("model quota exceeded")

    with pytest.raises(RuntimeError, match="quota"):
        await CallableAgent(broken).generate(task)
    with pytest.raises(AgentError, match="returned int"):
        await CallableAgent(lambda t: 42).generate(task)


def test_notebooks_are_checked() -> None:
    with pytest.raises(AgentError, match="not notebook JSON"):
        coerce_notebook("{not json", where="x")
    with pytest.raises(AgentError, match="no nbformat/cells"):
        coerce_notebook({"cells": []}, where="x")
    with pytest.raises(AgentError, match="no non-empty cell"):
        coerce_notebook(json.loads(notebook_text("   ")) | {"cells": []}, where="x")
    with pytest.raises(AgentError, match="invalid notebook"):
        coerce_notebook(
            {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [1]}, where="x"
        )
    nb = notebook_from_markdown("~~~py\na = 1\n~~~\n```text\noutput sample\n```\n")
    assert [c.cell_type for c in nb.cells] == ["code", "markdown"]


async def test_replay_agent_reads_cases_and_run_folders(tmp_path: Path) -> None:
    agent = ReplayAgent("example/v1")
    case = AgentCase(
        id="churn-brief", prompt="p", task="classification", dataset={"name": "x"}, notebooks=2
    )
    task = make_task(tmp_path, 2)
    task = AgentTask(**{**task.__dict__, "case": case})
    out = await agent.generate(task)
    assert "customer" in out.notebook
    missing = AgentTask(**{**task.__dict__, "case": CASE})
    with pytest.raises(AgentError, match=r"no notebook c1/2\.ipynb") as err:
        await agent.generate(missing)
    assert err.value.kind == "invalid"
    run = tmp_path / "runs" / "v7"
    (run / "notebooks" / "c1").mkdir(parents=True)
    (run / "notebooks" / "c1" / "1.ipynb").write_text(notebook_text(), encoding="utf-8")
    replay = ReplayAgent(run)
    assert replay.name == "v7"
    assert replay.notebook_for("c1", 1) is not None and replay.notebook_for("c1", 2) is None
    with pytest.raises(ConfigError, match="no such folder"):
        ReplayAgent(tmp_path / "nowhere")


def test_resolve_agent_specs(tmp_path: Path) -> None:
    assert isinstance(resolve_agent("cmd:my-agent --out {notebook}"), CommandAgent)
    assert isinstance(resolve_agent("chat:fake:constant"), ChatAgent)
    assert isinstance(resolve_agent("replay:example/v2"), ReplayAgent)
    fn = resolve_agent("python:agent_fixtures:notebook_text")
    assert isinstance(fn, CallableAgent) and fn.name == "agent_fixtures:notebook_text"
    assert isinstance(resolve_agent(lambda t: notebook_text()), CallableAgent)
    for bad in ("my-agent", "ftp:x", "chat:", "python:nope_module:f"):
        with pytest.raises(ConfigError):
            resolve_agent(bad)
