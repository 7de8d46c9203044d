"""Agent evaluation: test-case suites, agents that write notebooks, scoreboards per agent
version, version comparisons and the gaps they reveal.

>>> from judgealign.agent import load_suite, resolve_agent
>>> suite = load_suite("example")
>>> resolve_agent("replay:example/v1").name, len(suite.cases)
('v1', 12)
"""

from judgealign.agent.adapters import (
    CallableAgent,
    ChatAgent,
    CommandAgent,
    ReplayAgent,
    resolve_agent,
)
from judgealign.agent.scoreboard import (
    AgentComparison,
    Scoreboard,
    arun_agent,
    compare_agents,
    run_agent,
)
from judgealign.agent.suite import AgentCase, AgentSuite, Dataset, example_suite_path, load_suite
from judgealign.agent.task import Agent, AgentError, AgentOutput, AgentTask

__all__ = [
    "Agent",
    "AgentCase",
    "AgentComparison",
    "AgentError",
    "AgentOutput",
    "AgentSuite",
    "AgentTask",
    "CallableAgent",
    "ChatAgent",
    "CommandAgent",
    "Dataset",
    "ReplayAgent",
    "Scoreboard",
    "arun_agent",
    "compare_agents",
    "example_suite_path",
    "load_suite",
    "resolve_agent",
    "run_agent",
]
