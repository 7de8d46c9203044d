"""Items and expert labels from MLflow traces: the trace is the item, HUMAN feedback the label.

An agent's outputs are logged as traces; experts leave feedback on them (the Review App, the
UI, ``mlflow.log_feedback``). ``mlflow:`` references name such a set of traces::

    mlflow:experiment=NAME                   every trace of an experiment (or experiment_id=ID)
    mlflow:NAME                              the same, shorter
    ...&filter=tags.stage = 'review'         MLflow's trace filter syntax
    ...&map=imputation:data_imputation       assessment name -> rubric dimension (repeatable;
                                             default: assessments named like a dimension)
    ...&tracking_uri=http://host:5000        default: --tracking-uri, else MLFLOW_TRACKING_URI
    ...&max_results=500                      at most this many traces

``&`` separates the parts, so a filter cannot contain one. A trace becomes an ``Item`` (id: the
trace id; ``inputs``: the root span's inputs; ``output``: its outputs, a notebook when they are
one; ``group``: a digest of the inputs, so cross-validation keeps traces of one input together).
Its labels are the valid HUMAN-source ``Feedback`` assessments whose name maps to a dimension:
one per rater (the source id) and dimension, the latest edit winning; an overridden assessment
is not valid and a deleted one is gone, so neither counts. Scores are checked against the
rubric like a labels file's, and a bad one is a one-line error naming the trace and assessment.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from judgealign.data.item import Item
from judgealign.data.items_io import as_text
from judgealign.data.label import Label
from judgealign.data.labels_io import DEFAULT_RATER
from judgealign.data.mlflow_store import connect, resolve_tracking_uri, store_errors
from judgealign.errors import DataError
from judgealign.rubric.model import Rubric

PREFIX = "mlflow:"
_KEYS = ("experiment", "experiment_id", "filter", "map", "tracking_uri", "max_results")
_NA_WORDS = frozenset({"na", "n/a", "not applicable", "not_applicable"})
_PAGE = 200


def is_mlflow_ref(ref: object) -> bool:
    """Whether a labels or items argument names MLflow traces.

    >>> is_mlflow_ref("mlflow:experiment=agent"), is_mlflow_ref("labels.jsonl")
    (True, False)
    """
    return isinstance(ref, str) and ref.strip().lower().startswith(PREFIX)


@dataclass(frozen=True)
class TraceQuery:
    """A parsed ``mlflow:`` reference.

    >>> q = TraceQuery.parse("mlflow:experiment=agent&filter=tags.stage = 'review'"
    ...                      "&map=imputation:data_imputation")
    >>> (q.experiment, q.filter, q.names)
    ('agent', "tags.stage = 'review'", {'imputation': 'data_imputation'})
    >>> TraceQuery.parse("mlflow:agent").experiment
    'agent'
    """

    experiment: str | None = None
    experiment_id: str | None = None
    filter: str | None = None
    names: Mapping[str, str] = field(default_factory=dict)
    tracking_uri: str | None = None
    max_results: int | None = None
    ref: str = ""

    @classmethod
    def parse(cls, ref: str) -> TraceQuery:
        text = ref.strip()
        if not is_mlflow_ref(text):
            raise DataError(f"{ref!r}: not an mlflow: reference; write mlflow:experiment=NAME")
        body = text[len(PREFIX) :].strip()
        values: dict[str, str] = {}
        names: dict[str, str] = {}
        if body and "=" not in body.split("&", 1)[0]:
            first, _, body = body.partition("&")
            values["experiment"] = first.strip()
        for part in (p for p in body.split("&") if p.strip()):
            key, eq, value = part.partition("=")
            key = key.strip().lower()
            if not eq or key not in _KEYS:
                raise DataError(
                    f"{ref}: unknown part {part.strip()!r}; use key=value with keys "
                    f"{', '.join(_KEYS)}, joined by '&'"
                )
            value = value.strip()
            if key == "map":
                for pair in (p for p in value.split(",") if p.strip()):
                    name, colon, dim = pair.rpartition(":")
                    if not colon or not name.strip() or not dim.strip():
                        raise DataError(
                            f"{ref}: map {pair.strip()!r} must be ASSESSMENT_NAME:DIMENSION"
                        )
                    names[name.strip()] = dim.strip()
            elif key in values:
                raise DataError(f"{ref}: {key} given twice; give it once")
            else:
                values[key] = value
        if not values.get("experiment") and not values.get("experiment_id"):
            raise DataError(f"{ref}: name the traces' experiment: mlflow:experiment=NAME")
        limit: int | None = None
        if "max_results" in values:
            if not values["max_results"].isdigit() or int(values["max_results"]) < 1:
                raise DataError(f"{ref}: max_results must be a positive whole number")
            limit = int(values["max_results"])
        return cls(
            experiment=values.get("experiment") or None,
            experiment_id=values.get("experiment_id") or None,
            filter=values.get("filter") or None,
            names=names,
            tracking_uri=values.get("tracking_uri") or None,
            max_results=limit,
            ref=text,
        )

    def dimension_of(self, name: str, rubric: Rubric) -> str | None:
        """The dimension an assessment name labels (None: not a label of this rubric)."""
        if self.names:
            return self.names.get(name)
        return name if name in rubric.dimension_ids else None


@dataclass
class TraceSet:
    """What an ``mlflow:`` reference read: items, every rater's labels, and what was left out."""

    query: TraceQuery
    tracking_uri: str
    experiment_id: str
    items: list[Item]
    labels: list[Label]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def multi_rated(self) -> bool:
        """Some item has two raters or more on one dimension (a human-human level exists)."""
        seen: dict[tuple[str, str], int] = {}
        for lb in self.labels:
            seen[(lb.item, lb.dimension)] = seen.get((lb.item, lb.dimension), 0) + 1
        return any(n > 1 for n in seen.values())

    def summary(self) -> str:
        """One line: how many traces and labels, and what was not used (and why)."""
        raters = len({lb.rater for lb in self.labels})
        line = (
            f"{len(self.items)} traces, {len(self.labels)} expert labels from {raters} "
            f"rater(s) in experiment {self.query.experiment or self.experiment_id}"
        )
        left = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()) if n)
        return line + (f" (not used: {left})" if left else "")


def _loads(value: Any) -> Any:
    """Span inputs/outputs are stored as JSON text; plain text stays text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _notebook(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str) and '"nbformat"' in value[:20000]:
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and "cells" in value and "nbformat" in value:
        return value
    return None


def _output_text(value: Any) -> str:
    """An app's output as the text a judge reads: a string as is, a chat completion's
    message content, anything else as JSON."""
    choices = value.get("choices") if isinstance(value, dict) else None
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return str(message["content"])
    return as_text(value)


def _digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def item_from_io(
    inputs: Any, outputs: Any, *, item_id: str | None = None, metadata: dict[str, Any] | None = None
) -> Item:
    """The item a judge scores for one call of an app: ``inputs`` as context, ``outputs``
    judged (a notebook when they are one). ``item_id`` defaults to a digest of both.

    >>> it = item_from_io({"question": "2+2?"}, "4")
    >>> (it.inputs, it.output, it.id.startswith("io-"), it.group.startswith("in-"))
    ({'question': '2+2?'}, '4', True, True)
    """
    inputs, outputs = _loads(inputs), _loads(outputs)
    if inputs is None:
        context: dict[str, str] = {}
    elif isinstance(inputs, dict):
        context = {str(k): as_text(v) for k, v in inputs.items()}
    else:
        context = {"input": as_text(inputs)}
    notebook = _notebook(outputs)
    ident = item_id or f"io-{_digest(context, outputs)[:16]}"
    # Traces of one input are not independent: cross-validation keeps them in one fold.
    group = f"in-{_digest(context)[:12]}" if context else None
    if notebook is not None:
        return Item(
            id=ident,
            kind="notebook",
            output=json.dumps(notebook, ensure_ascii=False),
            inputs=context,
            group=group,
            metadata=metadata or {},
        )
    return Item(
        id=ident, output=_output_text(outputs), inputs=context, group=group, metadata=metadata or {}
    )


def item_from_trace(trace: Any) -> Item:
    """A trace as an item: its id, the root span's inputs and outputs."""
    info = trace.info
    data = getattr(trace, "data", None)
    request = getattr(data, "request", None) if data is not None else None
    response = getattr(data, "response", None) if data is not None else None
    if request is None:
        request = getattr(info, "request_preview", None)
    if response is None:
        response = getattr(info, "response_preview", None)
    metadata = {"mlflow_trace_id": info.trace_id}
    experiment = getattr(info, "experiment_id", None)
    if experiment:
        metadata["mlflow_experiment_id"] = str(experiment)
    return item_from_io(request, response, item_id=info.trace_id, metadata=metadata)


def _score(value: Any, rubric: Rubric, dim: str, where: str) -> float:
    scale = rubric.dimension(dim).scale
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _NA_WORDS:
            if scale.na_value is None:
                raise DataError(f"{where}: dimension {dim!r} has no N/A value; give a score")
            return float(scale.na_value)
        try:
            value = float(text)
        except ValueError:
            raise DataError(
                f"{where}: value {value!r} is not a score; give a number on the {dim} scale"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(f"{where}: value {value!r} is not a score; give a number on its scale")
    score = float(value)
    scale.check(score, where=f"{where}: ")
    return score


def labels_from_trace(
    trace: Any, query: TraceQuery, rubric: Rubric, skipped: dict[str, int] | None = None
) -> list[Label]:
    """The expert labels on one trace: valid HUMAN feedback, latest edit per rater and
    dimension. ``skipped`` counts what was left out, by reason."""
    from mlflow.entities import AssessmentSourceType, Feedback

    counts = skipped if skipped is not None else {}
    trace_id = trace.info.trace_id
    latest: dict[tuple[str, str], tuple[int, Label]] = {}
    for a in getattr(trace.info, "assessments", None) or []:
        if not isinstance(a, Feedback):
            continue
        if a.source is None or a.source.source_type != AssessmentSourceType.HUMAN:
            counts["judge or code feedback"] = counts.get("judge or code feedback", 0) + 1
            continue
        if a.valid is False:
            counts["overridden"] = counts.get("overridden", 0) + 1
            continue
        dim = query.dimension_of(a.name, rubric)
        if dim is None:
            counts["unmapped names"] = counts.get("unmapped names", 0) + 1
            continue
        if dim not in rubric.dimension_ids:
            raise DataError(
                f"{query.ref}: map names dimension {dim!r}, not in rubric {rubric.id!r}; "
                f"use one of {', '.join(rubric.dimension_ids)}"
            )
        where = f"trace {trace_id} assessment {a.assessment_id} ({a.name!r})"
        if a.error is not None or a.value is None:
            counts["empty or errored"] = counts.get("empty or errored", 0) + 1
            continue
        rater = (a.source.source_id or DEFAULT_RATER).strip() or DEFAULT_RATER
        if "::" in rater:
            raise DataError(f"{where}: rater {rater!r} must not contain '::'; rename the source")
        label = Label(
            item=trace_id,
            dimension=dim,
            score=_score(a.value, rubric, dim, where),
            rationale=a.rationale or "",
            rater=rater,
        )
        when = max(a.last_update_time_ms or 0, a.create_time_ms or 0)
        key = (dim, rater)
        if key in latest:
            counts["older edits"] = counts.get("older edits", 0) + 1
            if latest[key][0] > when:
                continue
        latest[key] = (when, label)
    return [label for _, label in latest.values()]


def _experiment_id(client: Any, query: TraceQuery, uri: str) -> str:
    if query.experiment_id:
        return query.experiment_id
    name = query.experiment or ""
    with store_errors(uri, f"look up experiment {name!r}"):
        found = client.get_experiment_by_name(name)
    if found is None:
        raise DataError(
            f"{query.ref}: no experiment named {name!r} in the MLflow store; check the name "
            "(or give experiment_id=ID)"
        )
    return str(found.experiment_id)


def read_traces(
    ref: str | TraceQuery, rubric: Rubric | None, *, tracking_uri: str | None = None
) -> TraceSet:
    """Read the traces an ``mlflow:`` reference names, as items and expert labels (none
    without a rubric).

    The store is the reference's ``tracking_uri``, else ``tracking_uri``, else
    ``MLFLOW_TRACKING_URI``.

    >>> ts = read_traces("mlflow:experiment=agent", rubric)  # doctest: +SKIP
    >>> print(ts.summary())  # doctest: +SKIP
    24 traces, 61 expert labels from 3 rater(s) in experiment agent
    """
    query = ref if isinstance(ref, TraceQuery) else TraceQuery.parse(ref)
    uri = resolve_tracking_uri(query.tracking_uri or tracking_uri)
    client = connect(uri)
    experiment_id = _experiment_id(client, query, uri)
    items: list[Item] = []
    labels: list[Label] = []
    skipped: dict[str, int] = {}
    token: str | None = None
    while True:
        remaining = None if query.max_results is None else query.max_results - len(items)
        if remaining is not None and remaining <= 0:
            break
        with store_errors(uri, f"search the traces of experiment {experiment_id}"):
            page = client.search_traces(
                locations=[experiment_id],
                filter_string=query.filter,
                max_results=min(_PAGE, remaining) if remaining is not None else _PAGE,
                page_token=token,
                include_spans=True,
            )
        for trace in page:
            items.append(item_from_trace(trace))
            if rubric is not None:
                labels.extend(labels_from_trace(trace, query, rubric, skipped))
        token = getattr(page, "token", None)
        if not token:
            break
    return TraceSet(
        query=query,
        tracking_uri=uri,
        experiment_id=experiment_id,
        items=items,
        labels=labels,
        skipped=skipped,
    )
