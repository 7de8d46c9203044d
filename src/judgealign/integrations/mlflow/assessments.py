"""Judge verdicts as MLflow assessments: ``Feedback`` from a judgement, and written back to traces.

MLflow's conventions: a verdict is ``Feedback`` from an ``LLM_JUDGE`` source (the judge's
model) with the score as its value and the judge's justification as its rationale. Not
applicable (the rubric's N/A) is a value of ``None`` with ``judgealign.not_applicable`` in the
metadata, so MLflow's aggregates (the mean) leave it out instead of counting it as a score. A
failed judgement is ``Feedback`` with an ``error`` (code ``JUDGEALIGN_PROVIDER_ERROR`` or
``JUDGEALIGN_UNREADABLE_ANSWER``) and no value, which MLflow counts as a failed scorer call.

The metadata names what the judgement saw: the guidelines (ids and texts) and the expert
examples (their label ids, ``TRACE::DIMENSION::RATER`` for labels read from traces), the
model, the judge file's digest and the tokens used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from judgealign.data.mlflow_store import connect, resolve_tracking_uri, store_errors
from judgealign.judge.judge import Judge, provider_spec
from judgealign.judge.judgement import Judgement

NA_KEY = "judgealign.not_applicable"
DIGEST_KEY = "judgealign.judge_sha256"
_MAX_META = 4000  # keep metadata values well inside MLflow's limits


def source_id(judge: Judge) -> str:
    """The assessment source id of a judge's verdicts: ``judgealign:MODEL``."""
    return f"judgealign:{provider_spec(judge.model) or 'local:default'}"


def judgement_metadata(judgement: Judgement, judge: Judge, digest: str) -> dict[str, str]:
    """What the judgement saw and cost, as MLflow assessment metadata (string values)."""
    memory = judge.memory_
    texts = {}
    if memory is not None:
        texts = {g.id: g.text for g in memory.guidelines(judgement.dimension)}
    meta = {
        "judgealign.dimension": judgement.dimension,
        "judgealign.model": judgement.model,
        "judgealign.variant": judge.variant,
        DIGEST_KEY: digest,
        "judgealign.guideline_ids": ",".join(judgement.guidelines),
        "judgealign.guidelines": "\n".join(f"- {texts.get(g, g)}" for g in judgement.guidelines),
        "judgealign.examples": ",".join(judgement.episodes),
        "judgealign.prompt_tokens": str(judgement.usage.prompt_tokens),
        "judgealign.completion_tokens": str(judgement.usage.completion_tokens),
        "judgealign.attempts": str(judgement.attempts),
    }
    return {k: v[:_MAX_META] for k, v in meta.items()}


def _value(score: float) -> int | float:
    return int(score) if float(score).is_integer() else float(score)


def feedback_from_judgement(
    judgement: Judgement, judge: Judge, *, name: str | None = None, digest: str = ""
) -> Any:
    """The ``mlflow.entities.Feedback`` for one judgement (see the module docstring).

    >>> fb = feedback_from_judgement(judgement, judge)  # doctest: +SKIP
    >>> (fb.value, fb.source.source_type)  # doctest: +SKIP
    (2, 'LLM_JUDGE')
    """
    from mlflow.entities import AssessmentError, AssessmentSource, AssessmentSourceType, Feedback

    if not digest:
        from judgealign.integrations.mlflow.logging import judge_digest

        digest = judge_digest(judge)
    source = AssessmentSource(
        source_type=AssessmentSourceType.LLM_JUDGE, source_id=source_id(judge)
    )
    meta = judgement_metadata(judgement, judge, digest)
    label = name or judgement.dimension
    if not judgement.ok or judgement.score is None:
        error = judgement.error or "no score"
        code = (
            "JUDGEALIGN_UNREADABLE_ANSWER"
            if error.startswith("unparseable")
            else "JUDGEALIGN_PROVIDER_ERROR"
        )
        return Feedback(
            name=label,
            error=AssessmentError(error_code=code, error_message=error[:_MAX_META]),
            rationale=judgement.rationale or None,
            source=source,
            metadata=meta,
        )
    scale = judge.rubric.dimension(judgement.dimension).scale
    if scale.is_na(judgement.score):
        meta[NA_KEY] = "true"
        return Feedback(
            name=label,
            value=None,
            rationale=judgement.rationale or scale.na_description,
            source=source,
            metadata=meta,
        )
    return Feedback(
        name=label,
        value=_value(judgement.score),
        rationale=judgement.rationale,
        source=source,
        metadata=meta,
    )


def _same(existing: Any, new: Any) -> bool:
    return bool(
        existing.value == new.value
        and (existing.rationale or "") == (new.rationale or "")
        and (existing.error is None) == (new.error is None)
    )


def log_verdicts(
    judgements: Sequence[Judgement],
    judge: Judge,
    *,
    tracking_uri: str | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Write judgements of trace items back to their traces as ``LLM_JUDGE`` feedback.

    Item ids are trace ids (as ``mlflow:`` items have); the store is ``tracking_uri``, else
    ``MLFLOW_TRACKING_URI``. A trace that already holds this
    judge's verdict (same judge digest and name) gets it updated in place, not a second one;
    the same verdict again is left alone. ``names`` maps dimensions to assessment names
    (default: the dimension id). Returns counts: ``logged``, ``updated``, ``unchanged``.

    >>> log_verdicts(judge.predict(ja.load_items(["mlflow:agent"])), judge,  # doctest: +SKIP
    ...              tracking_uri="http://127.0.0.1:5000")
    {'logged': 24, 'updated': 0, 'unchanged': 0}
    """
    from mlflow.tracing.client import TracingClient

    from judgealign.integrations.mlflow.logging import judge_digest

    uri = resolve_tracking_uri(tracking_uri)
    connect(uri)
    tracing = TracingClient(uri)
    digest = judge_digest(judge)
    source = source_id(judge)
    counts = {"logged": 0, "updated": 0, "unchanged": 0}
    by_trace: dict[str, list[Judgement]] = {}
    for j in judgements:
        by_trace.setdefault(j.item, []).append(j)
    for trace_id, items in by_trace.items():
        with store_errors(uri, f"read trace {trace_id}"):
            info = tracing.get_trace_info(trace_id)
        mine: dict[str, Any] = {}
        for a in getattr(info, "assessments", None) or []:
            meta = a.metadata or {}
            if (
                getattr(a.source, "source_id", None) == source
                and meta.get(DIGEST_KEY) == digest
                and a.valid is not False
            ):
                mine[a.name] = a
        for j in items:
            name = (names or {}).get(j.dimension, j.dimension)
            feedback = feedback_from_judgement(j, judge, name=name, digest=digest)
            old = mine.get(name)
            with store_errors(uri, f"write a verdict to trace {trace_id}"):
                if old is None:
                    tracing.log_assessment(trace_id, feedback)
                    counts["logged"] += 1
                elif _same(old, feedback):
                    counts["unchanged"] += 1
                else:
                    tracing.update_assessment(trace_id, old.assessment_id, feedback)
                    counts["updated"] += 1
    return counts
