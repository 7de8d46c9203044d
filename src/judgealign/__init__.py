"""judgealign: align LLM judges with human experts, and measure it honestly.

The public API lives here; deeper modules are internals.

>>> import judgealign as ja
>>> rubric = ja.load_rubric("ml-notebook")
>>> judge = ja.Judge(rubric, model="fake:lenient")
>>> ja.clone(judge, variant="baseline").get_params()["variant"]
'baseline'
"""

__version__ = "0.2.0"

from judgealign.agent import (
    Agent,
    AgentCase,
    AgentComparison,
    AgentError,
    AgentOutput,
    AgentSuite,
    AgentTask,
    CallableAgent,
    ChatAgent,
    CommandAgent,
    ReplayAgent,
    Scoreboard,
    arun_agent,
    compare_agents,
    load_suite,
    resolve_agent,
    run_agent,
)
from judgealign.data.item import Item
from judgealign.data.items_io import load_items
from judgealign.data.label import Label
from judgealign.data.loading import load_labels
from judgealign.data.ratings import load_ratings
from judgealign.demo.dataset import load_demo, load_demo_judge
from judgealign.errors import ConfigError, DataError, JudgeAlignError, NotFittedError
from judgealign.evaluation.experiment import evaluate
from judgealign.evaluation.planning import plan_sample_size
from judgealign.integrations.mlflow import log_verdicts as log_mlflow_feedback
from judgealign.integrations.mlflow import scorer as mlflow_scorer
from judgealign.integrations.mlflow import scorers as mlflow_scorers
from judgealign.integrations.spark import evaluate_on_spark, score_dataframe
from judgealign.integrations.spark import read_items as read_spark_items
from judgealign.integrations.spark import read_judgements as read_spark_judgements
from judgealign.judge.judge import Judge, clone
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import VARIANTS, JudgeParams, Variant
from judgealign.judge.persistence import load_judge, save_judge
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.store import AlignmentMemory
from judgealign.progress import LineProgress, Progress
from judgealign.providers.registry import resolve_embedder, resolve_llm
from judgealign.render.notebook_html import notebook_css, notebook_to_html
from judgealign.report.model import SampleSizePlan
from judgealign.report.views import Report as EvaluationReport
from judgealign.rubric.loader import load_rubric
from judgealign.rubric.model import Dimension, Rubric, Scale
from judgealign.stress import PROBES, StressReport, StressTest, stress_test

__all__ = [
    "PROBES",
    "VARIANTS",
    "Agent",
    "AgentCase",
    "AgentComparison",
    "AgentError",
    "AgentOutput",
    "AgentSuite",
    "AgentTask",
    "AlignmentMemory",
    "CallableAgent",
    "ChatAgent",
    "CommandAgent",
    "ConfigError",
    "DataError",
    "Dimension",
    "Episode",
    "EvaluationReport",
    "Guideline",
    "Item",
    "Judge",
    "JudgeAlignError",
    "JudgeParams",
    "Judgement",
    "Label",
    "LineProgress",
    "NotFittedError",
    "Progress",
    "ReplayAgent",
    "Rubric",
    "SampleSizePlan",
    "Scale",
    "Scoreboard",
    "StressReport",
    "StressTest",
    "Variant",
    "__version__",
    "arun_agent",
    "clone",
    "compare_agents",
    "evaluate",
    "evaluate_on_spark",
    "load_demo",
    "load_demo_judge",
    "load_items",
    "load_judge",
    "load_labels",
    "load_ratings",
    "load_rubric",
    "load_suite",
    "log_mlflow_feedback",
    "mlflow_scorer",
    "mlflow_scorers",
    "notebook_css",
    "notebook_to_html",
    "plan_sample_size",
    "read_spark_items",
    "read_spark_judgements",
    "resolve_agent",
    "resolve_embedder",
    "resolve_llm",
    "run_agent",
    "save_judge",
    "score_dataframe",
    "stress_test",
]
