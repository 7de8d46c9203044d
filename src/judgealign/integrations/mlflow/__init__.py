"""judgealign where MLflow users work: runs, GenAI scorers, expert labels from traces.

- **Tracking** (``tracking``): ``resolve_tracking_uri(explicit, run_dir)`` (``--tracking-uri``,
  else ``MLFLOW_TRACKING_URI``, else SQLite in the run folder) and ``open_or_update_run(...)``,
  the one way judgealign's commands log a run (one experiment collects comparable runs; the
  same result logged again updates its run).
- **Logging** (``logging``): ``log_report`` (an evaluation report: parameters, metrics with
  CIs, learning curves as steps, datasets, judgements as a table, reports and judge files) and
  ``log_alignment`` (an aligned judge as ``runs:/RUN_ID/judge.json``).
- **Scorers** (``scorer``): ``scorers(judge)`` gives one ``mlflow.genai`` scorer per dimension.
- **Assessments** (``assessments``): ``feedback_from_judgement`` and ``log_verdicts`` (judge
  verdicts written back to traces as ``LLM_JUDGE`` feedback). Expert labels are read from
  traces by ``judgealign.load_labels("mlflow:experiment=NAME")`` (``data.mlflow_traces``).

MLflow is imported lazily: install it with ``pip install 'judgealign[mlflow]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgealign.data.mlflow_store import require_mlflow
from judgealign.integrations.mlflow.assessments import feedback_from_judgement, log_verdicts
from judgealign.integrations.mlflow.logging import log_alignment, log_report
from judgealign.integrations.mlflow.tracking import (
    MlflowRun,
    default_tracking_uri,
    log_run,
    open_or_update_run,
    resolve_tracking_uri,
    run_key,
)
from judgealign.judge.judge import Judge

if TYPE_CHECKING:
    from judgealign.integrations.mlflow.scorer import JudgeScorer

__all__ = [
    "MlflowRun",
    "default_tracking_uri",
    "feedback_from_judgement",
    "log_alignment",
    "log_report",
    "log_run",
    "log_verdicts",
    "open_or_update_run",
    "resolve_tracking_uri",
    "run_key",
    "scorer",
    "scorers",
]


def scorers(
    judge: Judge | str | Path,
    dimensions: Sequence[str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    **params: Any,
) -> list[JudgeScorer]:
    """One MLflow GenAI scorer per dimension of ``judge`` (a ``Judge``, a judge file or
    ``runs:/RUN_ID/judge.json``), for ``mlflow.genai.evaluate(data=..., scorers=...)``;
    ``names`` maps dimensions to scorer (assessment) names. See ``scorer.scorers``.

    >>> import judgealign as ja
    >>> judge = ja.Judge(ja.load_rubric("ml-notebook"), model="fake:constant")
    >>> [s.name for s in ja.mlflow_scorers(judge, ["model_use", "data_imputation"],
    ...                                    names={"model_use": "model use"})]
    ['model use', 'data_imputation']
    """
    require_mlflow("an MLflow scorer")
    from judgealign.integrations.mlflow.scorer import scorers as build

    return build(judge, dimensions, names=names, **params)


def scorer(
    judge: Judge | str | Path, dimension: str, *, name: str | None = None, **params: Any
) -> JudgeScorer:
    """The MLflow GenAI scorer of one dimension of ``judge`` (see ``scorers``); called
    directly it returns one ``mlflow.entities.Feedback``.

    >>> import judgealign as ja
    >>> judge = ja.Judge(ja.load_rubric("ml-notebook"), model="fake:constant")
    >>> feedback = ja.mlflow_scorer(judge, "model_use")(inputs={"task": "fit"}, outputs="print(1)")
    >>> (feedback.value, feedback.source.source_type)
    (2, 'LLM_JUDGE')
    """
    require_mlflow("an MLflow scorer")
    from judgealign.integrations.mlflow.scorer import scorer as build

    return build(judge, dimension, name=name, **params)
