"""judgealign: align LLM judges with human experts, and measure it honestly.

The public API lives here; deeper modules are internals.

>>> import judgealign as ja
>>> rubric = ja.load_rubric("ml-notebook")
>>> judge = ja.Judge(rubric, model="fake:lenient")
>>> ja.clone(judge, variant="baseline").get_params()["variant"]
'baseline'
"""

__version__ = "0.2.0"

from judgealign.data.item import Item
from judgealign.data.items_io import load_items
from judgealign.data.label import Label
from judgealign.data.loading import load_labels
from judgealign.data.ratings import load_ratings
from judgealign.demo.dataset import load_demo
from judgealign.errors import ConfigError, DataError, JudgeAlignError, NotFittedError
from judgealign.evaluation.experiment import evaluate
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
from judgealign.report.views import Report as EvaluationReport
from judgealign.rubric.loader import load_rubric
from judgealign.rubric.model import Dimension, Rubric, Scale

__all__ = [
    "VARIANTS",
    "AlignmentMemory",
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
    "Rubric",
    "Scale",
    "Variant",
    "__version__",
    "clone",
    "evaluate",
    "evaluate_on_spark",
    "load_demo",
    "load_items",
    "load_judge",
    "load_labels",
    "load_ratings",
    "load_rubric",
    "read_spark_items",
    "read_spark_judgements",
    "resolve_embedder",
    "resolve_llm",
    "save_judge",
    "score_dataframe",
]
