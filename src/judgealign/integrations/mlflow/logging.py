"""Evaluation reports and aligned judges as MLflow runs, logged the way MLflow users expect.

An evaluation run holds: parameters (the run's settings, judge parameters as ``judge.*``),
metrics (per variant and dimension: MAE with its CI bounds, bias, agreement; paired changes;
reference lines; usage), learning curves as metric steps (``curve.VARIANT.DIM.mae`` at step =
labels per dimension), the items and labels as dataset inputs, every out-of-fold judgement as
a table (``judgements.json``), the reports and each fold's judge file as artifacts, and tags
naming the rubric, judgealign's version, the source's git commit and each judge file's digest.

An alignment run holds the aligned judge file as ``judge.json`` (so ``runs:/RUN_ID/judge.json``
loads it anywhere a judge file is accepted), its guidelines as a table, what it was fitted on
as a dataset, and per dimension how many guidelines and examples it keeps.

Both are keyed by what they log (the report's identity, the judge file's digest): logging the
same thing again updates its run. Everything goes through an explicit client; nothing global
in the caller's process (tracking URI, active run) changes.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from judgealign import __version__
from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.integrations.mlflow.tracking import MlflowRun, open_or_update_run
from judgealign.judge.judge import Judge
from judgealign.judge.persistence import judge_to_dict
from judgealign.report.model import EvaluationReport

INPUTS_FILE = "inputs.json"  # a run folder's record of where its items and labels came from
_LABEL_COLUMNS = {"item": "string", "dimension": "string", "score": "double", "rater": "string"}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(value: Any) -> str:
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def default_experiment(rubric_id: str) -> str:
    """``judgealign-RUBRIC``: one experiment per rubric collects comparable runs."""
    return f"judgealign-{rubric_id}"


def source_tags(command: str) -> dict[str, str]:
    """MLflow's source tags (what ran, the git commit of the working directory when it is a
    repository) and judgealign's version."""
    tags = {
        "mlflow.source.name": command,
        "mlflow.source.type": "LOCAL",
        "judgealign.version": __version__,
    }
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    if len(commit) == 40:
        tags["mlflow.source.git.commit"] = commit
    return tags


# -- evaluation reports --------------------------------------------------------------------
def report_key(report: EvaluationReport) -> str:
    """What identifies a report across re-logs: when it was made and with what settings."""
    return "report-" + _digest([report.created, report.config.model_dump(mode="json")])[:20]


def report_params(report: EvaluationReport) -> dict[str, str]:
    """Flat string parameters for the run (config, then judge params prefixed ``judge.``)."""
    cfg = report.config
    out: dict[str, str] = {}
    for key, value in cfg.model_dump(exclude={"params"}).items():
        out[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    for key, value in cfg.params.items():
        out[f"judge.{key}"] = str(value)
    out["judgealign_version"] = report.judgealign_version
    from judgealign.report.table import describe_statistics

    out["statistics"] = "; ".join(describe_statistics(report))
    return out


def report_metrics(report: EvaluationReport) -> dict[str, float]:
    """Per variant and dimension: MAE with CI bounds, bias, agreement; paired changes."""
    out: dict[str, float] = {}
    for r in report.results:
        key = f"{r.variant}.{r.dimension}"
        for name, iv in (("mae", r.mae), ("bias", r.bias)):
            if iv is not None:
                out[f"{key}.{name}"] = iv.estimate
                out[f"{key}.{name}_low"] = iv.low
                out[f"{key}.{name}_high"] = iv.high
        for name in ("exact_agreement", "within_one", "qwk", "spearman", "na_agreement"):
            value = getattr(r, name)
            if value is not None:
                out[f"{key}.{name}"] = float(value)
        out[f"{key}.n_scored"] = float(r.n_scored)
        out[f"{key}.failed"] = float(r.failed)
        if len(r.mae_repeats) > 1:
            out[f"{key}.mae_sd_repeats"] = float(np.std(r.mae_repeats, ddof=1))
    for c in report.comparisons:
        key = f"{c.variant}_vs_{c.reference}.{c.dimension}"
        out[f"{key}.delta"] = c.delta.estimate
        out[f"{key}.delta_low"] = c.delta.low
        out[f"{key}.delta_high"] = c.delta.high
        out[f"{key}.p"] = c.p_value
        out[f"{key}.p_holm"] = c.p_holm
    for ref in report.references:
        if ref.median_predictor_mae is not None:
            out[f"median_predictor.{ref.dimension}.mae"] = ref.median_predictor_mae
        if ref.calibrated_baseline_mae is not None:
            out[f"calibrated_baseline.{ref.dimension}.mae"] = ref.calibrated_baseline_mae
        if ref.human_human_mae is not None:
            out[f"human_human.{ref.dimension}.mae"] = ref.human_human_mae
        if ref.human_human is not None:
            out[f"human_human.{ref.dimension}.mae_low"] = ref.human_human.low
            out[f"human_human.{ref.dimension}.mae_high"] = ref.human_human.high
        if ref.human_alpha is not None:
            out[f"human_human.{ref.dimension}.alpha"] = ref.human_alpha
    if report.plan is not None:
        for d in report.plan.dimensions:
            key = f"plan.{d.dimension}"
            out[f"{key}.width_now"] = d.width_now
            if d.labels_for_width is not None:
                out[f"{key}.labels_for_width"] = float(d.labels_for_width)
            if d.power_now is not None:
                out[f"{key}.power_now"] = d.power_now
            if d.labels_for_power is not None:
                out[f"{key}.labels_for_power"] = float(d.labels_for_power)
    for phase, usage in (("alignment", report.usage_alignment), ("scoring", report.usage_scoring)):
        out[f"usage.{phase}.calls"] = float(usage.calls)
        out[f"usage.{phase}.prompt_tokens"] = float(usage.prompt_tokens)
        out[f"usage.{phase}.completion_tokens"] = float(usage.completion_tokens)
    out["wall_seconds"] = report.wall_seconds
    return out


def curve_metrics(report: EvaluationReport) -> dict[int, dict[str, float]]:
    """Learning curves as metric steps: step = labels per dimension used to align."""
    steps: dict[int, dict[str, float]] = {}
    for p in report.learning_curve:
        if p.mae is None:
            continue
        row = steps.setdefault(p.n_labels, {})
        key = f"curve.{p.variant}.{p.dimension}.mae"
        row[key], row[key + "_low"], row[key + "_high"] = p.mae.estimate, p.mae.low, p.mae.high
    return steps


def judgement_rows(report: EvaluationReport) -> list[dict[str, Any]]:
    """Every out-of-fold judgement as one table row."""
    rows = []
    for rec in report.judgements:
        j = rec.judgement
        rows.append(
            {
                "item": j.item,
                "dimension": j.dimension,
                "variant": rec.variant,
                "fold": rec.fold,
                "expert": rec.expert,
                "score": j.score,
                "error": j.error or "",
                "rationale": j.rationale,
                "guidelines": ";".join(j.guidelines),
                "episodes": ";".join(j.episodes),
                "prompt_tokens": j.usage.prompt_tokens,
                "completion_tokens": j.usage.completion_tokens,
            }
        )
    return rows


def _inputs_record(run_dir: Path) -> dict[str, Any]:
    path = run_dir / INPUTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_inputs_record(run_dir: Path, *, items: Sequence[str], labels: str | None) -> Path:
    """Record where a run's items and labels came from (read when the run is logged)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / INPUTS_FILE
    record = {"items": [str(i) for i in items], "labels": labels}
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return path


def _log_report_datasets(run: MlflowRun, report: EvaluationReport, run_dir: Path) -> None:
    record = _inputs_record(run_dir)
    expert: dict[tuple[str, str], float | None] = {}
    for rec in report.judgements:
        expert.setdefault((rec.judgement.item, rec.judgement.dimension), rec.expert)
    items = sorted({item for item, _ in expert})
    item_source = ", ".join(record.get("items") or []) or str(run_dir.resolve())
    run.log_dataset(
        "items",
        digest=_digest(items),
        source=item_source,
        source_type="mlflow_traces" if item_source.startswith("mlflow:") else "local",
        profile={"num_items": report.config.n_items, "num_groups": report.config.n_groups},
        columns={"item": "string"},
    )
    label_source = str(record.get("labels") or item_source)
    run.log_dataset(
        "labels",
        digest=_digest(sorted(expert.items())),
        source=label_source,
        source_type="mlflow_traces" if label_source.startswith("mlflow:") else "local",
        profile={"num_labels": report.config.n_labels, "dimensions": report.config.dimensions},
        columns=_LABEL_COLUMNS,
    )


def log_report(
    report: EvaluationReport,
    run_dir: Path,
    *,
    tracking_uri: str,
    experiment: str | None = None,
    run_name: str | None = None,
) -> MlflowRun:
    """Log ``report`` and the files of ``run_dir`` as one run of ``experiment`` (default
    ``judgealign-RUBRIC``); logging the same report again updates that run.

    >>> run = log_report(report, Path("runs/demo"), tracking_uri=uri)  # doctest: +SKIP
    """
    tags = {
        "judgealign.kind": "evaluation",
        "judgealign.rubric": report.config.rubric_id,
        **source_tags("judgealign evaluate"),
    }
    judges = sorted((run_dir / "judges").glob("*.judge.json")) if run_dir.is_dir() else []
    for path in judges:
        tags[f"judgealign.judge_sha256.{path.name.removesuffix('.judge.json')}"] = sha256_file(path)
    with open_or_update_run(
        tracking_uri,
        experiment or default_experiment(report.config.rubric_id),
        key=report_key(report),
        run_name=run_name or report.config.name or None,
        tags=tags,
        artifact_dir=run_dir,
    ) as run:
        run.log_params(report_params(report))
        run.log_metrics(report_metrics(report))
        for step, metrics in sorted(curve_metrics(report).items()):
            run.log_metrics(metrics, step=step)
        _log_report_datasets(run, report, run_dir)
        run.log_table(judgement_rows(report), "judgements.json")
        for fname in ("report.html", "report.json", "report.md"):
            if (run_dir / fname).is_file():
                run.log_artifact(run_dir / fname)
        if judges:
            run.log_artifacts(run_dir / "judges", "judges")
    return run


# -- aligned judges ------------------------------------------------------------------------
def judge_digest(judge: Judge) -> str:
    """sha256 of the judge file's content (without the judgealign version that wrote it)."""
    data = judge_to_dict(judge)
    data.pop("judgealign_version", None)
    return _digest(data)


def guideline_rows(judge: Judge) -> list[dict[str, Any]]:
    memory = judge.memory_
    if memory is None:
        return []
    return [
        {
            "dimension": d,
            "id": g.id,
            "guideline": g.text,
            "support": g.support,
            "sources": ";".join(g.sources),
        }
        for d in judge.rubric.dimension_ids
        for g in memory.guidelines(d)
    ]


def log_alignment(
    judge: Judge,
    judge_file: Path,
    labels: Sequence[Label],
    items: Sequence[Item],
    *,
    tracking_uri: str,
    experiment: str | None = None,
    run_name: str | None = None,
    labels_source: str = "",
) -> MlflowRun:
    """Log an aligned judge as a run: ``judge.json`` (loadable as ``runs:/RUN_ID/judge.json``),
    its guidelines as a table, the labels it learned from as a dataset, per dimension its
    guideline and example counts. The same judge file logged again updates its run.

    >>> run = log_alignment(judge, Path("judge.json"), labels, items,  # doctest: +SKIP
    ...                     tracking_uri=uri)
    >>> judge = ja.load_judge(f"runs:/{run.run_id}/judge.json")  # doctest: +SKIP
    """
    digest = judge_digest(judge)
    tags = {
        "judgealign.kind": "alignment",
        "judgealign.rubric": judge.rubric.id,
        "judgealign.judge_sha256": sha256_file(judge_file),
        **source_tags("judgealign align"),
    }
    params: dict[str, Any] = {"rubric_id": judge.rubric.id}
    params.update({f"judge.{k}": v for k, v in judge.params.model_dump(mode="json").items()})
    params["dimensions"] = ",".join(sorted({lb.dimension for lb in labels}))
    params["n_labels"] = len(labels)
    params["n_items"] = len({lb.item for lb in labels})
    metrics: dict[str, float] = {"labels": float(len(labels))}
    if judge.memory_ is not None:
        for dim, row in judge.memory_.summary().items():
            for name, value in row.items():
                metrics[f"memory.{dim}.{name}"] = float(value)
    usage = judge.usage()
    metrics.update(
        {
            "usage.alignment.calls": float(usage.calls),
            "usage.alignment.prompt_tokens": float(usage.prompt_tokens),
            "usage.alignment.completion_tokens": float(usage.completion_tokens),
        }
    )
    label_rows = sorted((lb.item, lb.dimension, lb.rater, lb.score) for lb in labels)
    source = labels_source or str(judge_file.resolve())
    with open_or_update_run(
        tracking_uri,
        experiment or default_experiment(judge.rubric.id),
        key="judge-" + digest[:20],
        run_name=run_name or judge_file.stem,
        tags=tags,
        artifact_dir=judge_file.resolve().parent,
    ) as run:
        run.log_params(params)
        run.log_metrics(metrics)
        run.log_dataset(
            "labels",
            digest=_digest(label_rows),
            source=source,
            source_type="mlflow_traces" if source.startswith("mlflow:") else "local",
            context="training",
            profile={
                "num_labels": len(labels),
                "num_items": len({it.id for it in items} & {lb.item for lb in labels}),
                "raters": len({lb.rater for lb in labels}),
            },
            columns=_LABEL_COLUMNS,
        )
        run.log_table(guideline_rows(judge), "guidelines.json")
        if judge_file.name == "judge.json":
            run.log_artifact(judge_file)
        else:
            # Always ``judge.json`` in the run, so its URI does not depend on a local name.
            run.log_text(judge_file.read_text(encoding="utf-8"), "judge.json")
    return run
