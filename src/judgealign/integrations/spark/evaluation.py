"""Cross-validation with each fold a Spark task: fits and held-out scoring run in parallel.

Each task runs the real ``Evaluator`` restricted to its fold (``only_folds``: the same
splits, label draws and leak guard as a one-process run) in a scratch run folder seeded with
what the run folder already holds for that fold, and hands back what it added: its
judgements (the run folder's JSONL lines) and its fitted judges. The driver appends them to
the run folder and then calls ``judgealign.evaluate`` on it, which finds every judgement and
fit in place (so it asks nothing again) and builds the report: statistics, reference lines
and files are those of a one-process run. A fold whose task failed is simply left to that
last call, which runs it on the driver.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgealign.data.item import Item
from judgealign.data.jsonl import repair_torn_tail
from judgealign.data.label import Label
from judgealign.evaluation.store import SETTINGS_FILE
from judgealign.integrations.spark.session import (
    broadcast,
    broadcast_value,
    failure_reason,
    require_pyspark,
)
from judgealign.judge.judge import Judge, clone, provider_spec
from judgealign.judge.params import VARIANTS, Variant
from judgealign.judge.persistence import judge_from_dict, judge_to_dict

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

    from judgealign.report.views import Report

JUDGEMENTS_FILE = "judgements.jsonl"
JUDGES_DIR = "judges"
FOLD_RESULT_SCHEMA = "fold int, settings string, lines string, judges string, error string"


def _template_payload(judge: Judge) -> str:
    """The unfitted judge every fold clones, its providers named (executors resolve them)."""
    from judgealign.providers.defaults import default_embedder, default_model

    data = judge_to_dict(clone(judge))
    params = data["params"]
    params["model"] = provider_spec(judge.model) or default_model()
    params["reflection_model"] = provider_spec(judge.reflection_model)
    params["embedder"] = provider_spec(judge.embedder) or default_embedder()
    return json.dumps(data)


def _run_state(run_dir: Path) -> dict[str, str]:
    """What a resumed run already holds, by relative path (settings, judgements, judges)."""
    state: dict[str, str] = {}
    for rel in (SETTINGS_FILE, JUDGEMENTS_FILE):
        path = run_dir / rel
        if path.exists():
            state[rel] = path.read_text(encoding="utf-8")
    judges = run_dir / JUDGES_DIR
    if judges.is_dir():
        for path in sorted(judges.iterdir()):
            if path.is_file():
                state[f"{JUDGES_DIR}/{path.name}"] = path.read_text(encoding="utf-8")
    return state


def run_fold(
    fold: int,
    payload: dict[str, Any],
    *,
    cache_dir: str | None,
    concurrency: int,
) -> dict[str, Any]:
    """One fold in a scratch run folder (on an executor); what it added, or its error."""
    from judgealign.evaluation.runner import Evaluator
    from judgealign.providers.registry import resolve_embedder, resolve_llm

    result: dict[str, Any] = {
        "fold": fold,
        "settings": None,
        "lines": "",
        "judges": "{}",
        "error": None,
    }
    try:
        with tempfile.TemporaryDirectory(prefix=f"judgealign-fold{fold}-") as tmp:
            scratch = Path(tmp)
            before = 0
            for rel, text in payload["state"].items():
                own = (f"{JUDGES_DIR}/fold-{fold}.", f"{JUDGES_DIR}/fold-{fold}-")
                if rel.startswith(f"{JUDGES_DIR}/") and not rel.startswith(own):
                    continue  # other folds' fits are theirs
                target = scratch / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            lines_file = scratch / JUDGEMENTS_FILE
            if lines_file.exists():
                before = len(lines_file.read_text(encoding="utf-8").splitlines())
            data = json.loads(payload["judge"])
            params = data["params"]
            llm = resolve_llm(params["model"], cache_dir=cache_dir, concurrency=concurrency)
            providers: dict[str, Any] = {
                "model": llm,
                "embedder": resolve_embedder(params["embedder"], cache_dir=cache_dir),
            }
            if params.get("reflection_model") not in (None, params["model"]):
                providers["reflection_model"] = resolve_llm(
                    params["reflection_model"], cache_dir=cache_dir, concurrency=concurrency
                )
            judge = judge_from_dict(data, source="the broadcast judge", **providers)
            items = [Item.model_validate_json(t) for t in payload["items"]]
            labels = [Label.model_validate_json(t) for t in payload["labels"]]
            Evaluator(
                judge,
                folds=payload["folds"],
                variants=payload["variants"],
                seed=payload["seed"],
                run_dir=scratch,
                concurrency=concurrency,
                learning_curve=payload["learning_curve"],
                retry_failed=payload["retry_failed"],
                repeats=payload.get("repeats", 1),
                only_folds={fold},
            ).run(items, labels)
            result["settings"] = (scratch / SETTINGS_FILE).read_text(encoding="utf-8")
            if lines_file.exists():
                lines = lines_file.read_text(encoding="utf-8").splitlines()[before:]
                result["lines"] = "\n".join(lines)
            judges_dir = scratch / JUDGES_DIR
            fitted = {
                p.name: p.read_text(encoding="utf-8")
                for p in (sorted(judges_dir.iterdir()) if judges_dir.is_dir() else [])
                if p.is_file()
            }
            result["judges"] = json.dumps(fitted)
    except Exception as exc:  # the driver runs this fold itself
        result["error"] = failure_reason(exc)
    return result


def _fold_runner(
    payload: Any, cache_dir: str | None, concurrency: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        shipped = json.loads(broadcast_value(payload))
        for frame in batches:
            rows = [
                run_fold(int(f), shipped, cache_dir=cache_dir, concurrency=concurrency)
                for f in frame["id"].tolist()
            ]
            yield pd.DataFrame(rows, columns=["fold", "settings", "lines", "judges", "error"])

    return run


def _merge(run_dir: Path, results: Sequence[dict[str, Any]]) -> None:
    """Append the tasks' judgements and write their fitted judges into the run folder."""
    done = [r for r in results if not r.get("error")]
    if not done:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = run_dir / SETTINGS_FILE
    if not settings.exists():
        settings.write_text(done[0]["settings"], encoding="utf-8")
    lines = [line for r in done for line in (r["lines"] or "").splitlines() if line.strip()]
    if lines:
        store = run_dir / JUDGEMENTS_FILE
        repair_torn_tail(store)
        with store.open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    for r in done:
        for name, text in json.loads(r["judges"] or "{}").items():
            target = run_dir / JUDGES_DIR / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)


def evaluate_on_spark(
    spark: SparkSession,
    judge: Judge,
    items: Sequence[Item],
    labels: Sequence[Label],
    *,
    run_dir: str | Path,
    variants: Sequence[Variant] = VARIANTS,
    folds: int = 4,
    seed: int = 0,
    concurrency: int = 4,
    learning_curve: Sequence[int] = (),
    retry_failed: bool = False,
    repeats: int = 1,
    cache_dir: str | Path | None = None,
    **report_options: Any,
) -> Report:
    """``judgealign.evaluate`` with the folds as parallel Spark tasks (one per fold).

    Each task fits its fold's judge (in every one of ``repeats`` cross-validations: task f
    runs fold f of each) and scores its held-out items with ``concurrency``
    calls in flight, through a response cache in ``cache_dir`` (a path every executor
    reaches); the run folder (on the driver) gathers their judgements and fits, and the
    report is then built exactly as ``evaluate(..., run_dir=run_dir)`` builds it, which the
    same call after an interruption resumes. ``report_options`` go to ``evaluate``
    (``rater_labels``, ``n_resamples``, ``progress``, ``name``, ...).

    >>> report = evaluate_on_spark(spark, judge, items, labels, run_dir="runs/cv",
    ...                            folds=8, cache_dir="/dbfs/judgealign-cache")  # doctest: +SKIP
    """
    require_pyspark()
    from judgealign.evaluation.experiment import evaluate

    run_path = Path(run_dir)
    cache = None if cache_dir is None else str(Path(cache_dir).resolve())
    shipped = json.dumps(
        {
            "judge": _template_payload(judge),
            "items": [it.model_dump_json() for it in items],
            "labels": [lb.model_dump_json() for lb in labels],
            "folds": folds,
            "variants": list(variants),
            "seed": seed,
            "learning_curve": list(learning_curve),
            "retry_failed": retry_failed,
            "repeats": repeats,
            "state": _run_state(run_path),
        }
    )
    tasks = spark.range(0, folds, 1, numPartitions=folds)
    rows = tasks.mapInPandas(
        _fold_runner(broadcast(spark, shipped), cache, concurrency), FOLD_RESULT_SCHEMA
    ).collect()
    results = [r.asDict() for r in rows]
    for r in results:
        if r.get("error"):
            warnings.warn(
                f"fold {r['fold']} failed on Spark ({r['error']}); it runs on the driver",
                RuntimeWarning,
                stacklevel=2,
            )
    _merge(run_path, results)
    return evaluate(
        judge,
        items,
        labels,
        variants=variants,
        folds=folds,
        seed=seed,
        run_dir=run_path,
        concurrency=concurrency,
        learning_curve=learning_curve,
        retry_failed=retry_failed,
        repeats=repeats,
        **report_options,
    )
