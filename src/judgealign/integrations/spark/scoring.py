"""Scoring a Spark DataFrame of items with a judge, on every executor at once.

The driver turns the judge into its file's JSON (memory, embeddings and search graph
included) and broadcasts it once. Each Python worker process (one per task slot) loads it
once and keeps it, with one provider stack of its own (``concurrency`` calls in flight, the
response cache in ``cache_dir``), an event loop on a thread of its own, and the judge's
retrieval index built or restored before the first item; items stream through
``mapInPandas`` a few chunks at a time, so a worker keeps its calls in flight across batches.

Results are rows (``RESULT_SCHEMA``): the item, the dimension, the score, the rationale, the
error (``None`` when the judgement succeeded), provenance (which judge, model, guidelines
and examples), usage and when. A judgement that fails, an item that cannot be read and a
worker that cannot start become rows with their reason: the job itself does not fail.

Rows are appended to ``out`` (Parquet, or Delta where the session has it) one wave of items
at a time, so an interrupted run keeps every finished wave; the response cache keeps the
answers of the wave it was in. A rerun skips what ``out`` already holds, asking again for
judgements that failed on the provider's or the worker's side (and, with ``retry_failed``,
for unreadable answers and items too), as ``judgealign score`` does with its JSONL file.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from judgealign.errors import ConfigError, DataError
from judgealign.integrations.spark.items import count_items, item_from_record, items_frame
from judgealign.integrations.spark.session import (
    broadcast,
    broadcast_value,
    failure_reason,
    require_pyspark,
)
from judgealign.judge.judge import Judge, clone, provider_spec
from judgealign.judge.judgement import Judgement
from judgealign.judge.persistence import judge_from_dict, judge_to_dict, load_judge
from judgealign.progress import NoProgress, Progress
from judgealign.providers.types import Usage

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from judgealign.data.item import Item

OutputFormat = Literal["auto", "parquet", "delta"]

USAGE_FIELDS = tuple(f for f in Usage.model_fields)
_LONG = {f: "bigint" for f in USAGE_FIELDS if f != "seconds"}
# What the workers return (flat: nested columns are built by Spark, not by pandas).
FLAT_SCHEMA = (
    "item_id string, dimension string, score double, rationale string, error string, "
    "attempts int, raw string, judge string, model string, guidelines array<string>, "
    "episodes array<string>, "
    + ", ".join(f"{f} {_LONG.get(f, 'double')}" for f in USAGE_FIELDS)
    + ", run_id string, scored_at timestamp"
)
RESULT_SCHEMA = (
    "item_id string, dimension string, score double, rationale string, error string, "
    "attempts int, raw string, provenance struct<judge: string, model: string, "
    "guidelines: array<string>, episodes: array<string>>, usage struct<"
    + ", ".join(f"{f}: {_LONG.get(f, 'double')}" for f in USAGE_FIELDS)
    + ">, run_id string, scored_at timestamp"
)

# Items per wave: what an interruption can lose (the response cache keeps its answers).
WAVE_ITEMS = 20_000
# Chunks of items a worker keeps in flight: enough that its provider slots never wait for
# the next chunk to be read and rendered.
WINDOW = 3
FLUSH_ROWS = 512
ARROW_BATCH_ROWS = 256


# -- the judge as it travels -------------------------------------------------------------------
def _strip_graphs(memory: Any) -> Any:
    if isinstance(memory, dict):
        dims = memory.get("dimensions") or {}
        return {
            **memory,
            "dimensions": {
                n: {k: v for k, v in d.items() if k != "episode_graph"} for n, d in dims.items()
            },
        }
    return memory


def judge_payload(judge: Judge) -> tuple[str, str]:
    """(the judge file's JSON with its providers named, the judge's key).

    The key hashes what decides a judgement (rubric, parameters, memory) and leaves out the
    judgealign version and the saved search graph, so a resumed run after an upgrade, or
    with a graph saved meanwhile, is still the same judge.
    """
    from judgealign.providers.defaults import default_embedder, default_model

    data = judge_to_dict(judge)
    params = data["params"]
    params["model"] = provider_spec(judge.model) or default_model()
    params["reflection_model"] = None  # scoring never reflects
    if judge.memory_ is not None and judge.params.reads_memory:
        params["embedder"] = provider_spec(judge.embedder) or default_embedder()
    decisive = {k: v for k, v in data.items() if k != "judgealign_version"}
    decisive["memory"] = _strip_graphs(decisive.get("memory"))
    key = hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]
    return json.dumps(data), key


# -- executor side -----------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSettings:
    """What every task needs besides the judge (small: it travels with each task)."""

    judge_key: str
    cache_dir: str | None
    concurrency: int
    run_id: str


class Worker:
    """One Python worker process's judge, providers and event loop (kept across tasks)."""

    def __init__(self, judge_json: str, settings: WorkerSettings) -> None:
        self.settings = settings
        self.error: str | None = None
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="judgealign-spark", daemon=True).start()
        self.judge: Judge | None = None
        self.providers: dict[str, Any] = {}
        try:
            self._load(judge_json)
        except Exception as exc:  # recorded on every row of this worker, never a failed job
            self.error = f"worker setup failed: {failure_reason(exc)}"

    def _load(self, judge_json: str) -> None:
        from judgealign.providers.registry import resolve_embedder, resolve_llm

        data = json.loads(judge_json)
        params = data["params"]
        s = self.settings
        self.providers["model"] = resolve_llm(
            params["model"], cache_dir=s.cache_dir, concurrency=s.concurrency
        )
        if params.get("embedder") and data.get("memory") is not None:
            self.providers["embedder"] = resolve_embedder(params["embedder"], cache_dir=s.cache_dir)
        judge = judge_from_dict(data, source="the broadcast judge", **self.providers)
        if judge.memory_ is not None:
            judge.memory_.prepare_retrieval()  # restore (or build) the graph before any item
        self.judge = judge

    def close(self) -> None:
        """Stop the event loop's thread (the worker is not used again)."""
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _fresh(self) -> Judge:
        """A judge sharing the providers and memory, with its own item-text cache: a worker
        sees every item of its tasks once, and must not keep them all."""
        assert self.judge is not None
        other = clone(self.judge, **self.providers)
        other.memory_ = self.judge.memory_
        return other

    def _row(self, j: Judgement) -> dict[str, Any]:
        return {
            "item_id": j.item,
            "dimension": j.dimension,
            "score": j.score,
            "rationale": j.rationale,
            "error": j.error,
            "attempts": j.attempts,
            "raw": j.raw,
            "judge": self.settings.judge_key,
            "model": j.model,
            "guidelines": list(j.guidelines),
            "episodes": list(j.episodes),
            **j.usage.model_dump(),
            "run_id": self.settings.run_id,
            "scored_at": datetime.now(UTC),
        }

    def _failed(self, item_id: str, dims: Sequence[str], error: str) -> list[dict[str, Any]]:
        model = str(self.providers["model"].name) if "model" in self.providers else ""
        return [
            self._row(Judgement(item=item_id, dimension=d, score=None, error=error, model=model))
            for d in dims
        ]

    async def _judge_chunk(self, chunk: list[tuple[Item, list[str]]]) -> list[dict[str, Any]]:
        order = {d: n for n, d in enumerate(self.judge.rubric.dimension_ids)} if self.judge else {}
        dims = sorted({d for _, ds in chunk for d in ds}, key=lambda d: order.get(d, len(order)))
        skip = {(it.id, d) for it, ds in chunk for d in dims if d not in ds}
        try:
            found = await self._fresh().apredict([it for it, _ in chunk], dims, skip=skip)
            return [self._row(j) for j in found]
        except Exception:
            pass  # one bad item (or one failed embedding call) must not sink its neighbours
        rows: list[dict[str, Any]] = []
        for item, ds in chunk:
            try:
                rows.extend(self._row(j) for j in await self._fresh().apredict([item], ds))
            except Exception as exc:
                rows.extend(self._failed(item.id, ds, failure_reason(exc)))
        return rows

    def run(self, batches: Iterator[pd.DataFrame], dims_total: int) -> Iterator[pd.DataFrame]:
        """Judge every row of ``batches`` (the layout plus ``dims``, the dimensions wanted),
        yielding result frames as chunks finish."""
        import pandas as pd

        columns = FLAT_SCHEMA_COLUMNS
        chunk_items = max(1, math.ceil(self.settings.concurrency / max(1, dims_total)))
        inflight: set[Future[list[dict[str, Any]]]] = set()
        ready: list[dict[str, Any]] = []
        chunk: list[tuple[Item, list[str]]] = []

        def collect(block: bool) -> None:
            nonlocal inflight
            if not inflight:
                return
            done, pending = wait(
                inflight, timeout=None if block else 0, return_when=FIRST_COMPLETED
            )
            inflight = set(pending)
            for future in done:
                ready.extend(future.result())

        def submit() -> None:
            nonlocal chunk
            inflight.add(asyncio.run_coroutine_threadsafe(self._judge_chunk(chunk), self.loop))
            chunk = []
            while len(inflight) >= WINDOW:
                collect(block=True)

        for frame in batches:
            for record in frame.to_dict(orient="records"):
                dims = [str(d) for d in record["dims"]]
                item_id = str(record.get("id"))
                if self.error is not None:
                    ready.extend(self._failed(item_id, dims, self.error))
                    continue
                try:
                    item = item_from_record({str(k): v for k, v in record.items()})
                except Exception as exc:
                    ready.extend(
                        self._failed(item_id, dims, f"unreadable item: {failure_reason(exc)}")
                    )
                    continue
                chunk.append((item, dims))
                if len(chunk) >= chunk_items:
                    submit()
                collect(block=False)
                if len(ready) >= FLUSH_ROWS:
                    yield pd.DataFrame(ready, columns=columns)
                    ready = []
        if chunk:
            submit()
        while inflight:
            collect(block=True)
        if ready:
            yield pd.DataFrame(ready, columns=columns)


FLAT_SCHEMA_COLUMNS = [part.strip().split(" ", 1)[0] for part in FLAT_SCHEMA.split(", ")]
# Loaded judges kept per Python worker process: a notebook session that scores with a new
# judge now and then must not pile up memories.
KEEP_WORKERS = 2
_WORKERS: dict[tuple[str, str | None, int], Worker] = {}
_WORKERS_LOCK = threading.Lock()


@contextmanager
def worker_for(judge_json: Callable[[], str], settings: WorkerSettings) -> Iterator[Worker]:
    """This process's worker for the judge and settings, made on first use and kept; one
    that could not start is not kept (the next task tries again, as a rerun would)."""
    key = (settings.judge_key, settings.cache_dir, settings.concurrency)
    with _WORKERS_LOCK:
        worker = _WORKERS.pop(key, None)
        if worker is None:
            worker = Worker(judge_json(), settings)
        if worker.error is None:
            _WORKERS[key] = worker  # newest last
            while len(_WORKERS) > KEEP_WORKERS:
                _WORKERS.pop(next(iter(_WORKERS))).close()
        # A new run reuses the loaded judge and stacks; its rows carry its own run id.
        worker.settings = settings
    try:
        yield worker
    finally:
        if worker.error is not None:
            worker.close()


def _scorer(
    payload: Any, settings: WorkerSettings, dims_total: int
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The function ``mapInPandas`` runs; ``payload`` is a Broadcast of the judge's JSON, or
    the JSON itself where broadcasts do not exist (Spark Connect)."""

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        def judge_json() -> str:
            return broadcast_value(payload)

        with worker_for(judge_json, settings) as worker:
            yield from worker.run(batches, dims_total)

    return score_partition


# -- driver side -------------------------------------------------------------------------------
def _is_remote(path: str) -> bool:
    return "://" in path or path.startswith("dbfs:")


def _delta_available(spark: SparkSession) -> bool:
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    return "DeltaSparkSessionExtension" in (spark.conf.get("spark.sql.extensions", "") or "")


def output_format(spark: SparkSession, out: str, fmt: OutputFormat = "auto") -> str:
    """``parquet`` or ``delta`` for ``out``: what an existing local output already is, else
    Delta where the session can write it (Databricks, delta-spark configured), else Parquet."""
    if fmt not in ("auto", "parquet", "delta"):
        raise ConfigError(f"output format {fmt!r}: choose auto, parquet or delta")
    if fmt != "auto":
        return fmt
    if not _is_remote(out):
        local = Path(out)
        if (local / "_delta_log").is_dir():
            return "delta"
        if local.exists():
            return "parquet"
    return "delta" if _delta_available(spark) else "parquet"


def _read(spark: SparkSession, out: str, fmt: str) -> DataFrame | None:
    from pyspark.errors import AnalysisException

    if not _is_remote(out):
        local = Path(out)
        if local.exists() and not local.is_dir():
            raise DataError(f"--out {out} is a file; Spark writes a folder ({fmt} dataset)")
        if not local.exists():
            return None
    try:
        return spark.read.format(fmt).load(out)
    except AnalysisException:
        return None  # nothing written there yet (an empty folder, a new table)


def latest_judgements(rows: DataFrame) -> DataFrame:
    """One row per (item, dimension): the latest written (a rerun's answer replaces a
    failed one; a success is never asked again)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    newest = Window.partitionBy("item_id", "dimension").orderBy(
        F.col("scored_at").desc(), F.col("run_id").desc()
    )
    return rows.withColumn("_n", F.row_number().over(newest)).where("_n = 1").drop("_n")


def read_judgements(
    spark: SparkSession, out: str | Path, *, format: OutputFormat = "auto"
) -> DataFrame:
    """The judgements a Spark scoring run wrote to ``out``, one row per (item, dimension).

    >>> df = read_judgements(spark, "runs/scores")  # doctest: +SKIP
    """
    require_pyspark()
    fmt = output_format(spark, str(out), format)
    rows = _read(spark, str(out), fmt)
    if rows is None:
        raise DataError(f"{out}: no judgements there; run `judgealign score --engine spark` first")
    return latest_judgements(rows)


def collect_judgements(rows: DataFrame) -> list[Judgement]:
    """Result rows as ``Judgement`` objects, on the driver (for a few thousand, not 10M).

    >>> judgements = collect_judgements(read_judgements(spark, "runs/scores"))  # doctest: +SKIP
    """
    out = []
    for r in rows.collect():
        prov, usage = r["provenance"], r["usage"]
        out.append(
            Judgement(
                item=r["item_id"],
                dimension=r["dimension"],
                score=r["score"],
                rationale=r["rationale"] or "",
                raw=r["raw"] or "",
                error=r["error"],
                model=prov["model"] or "",
                usage=Usage(**{f: usage[f] or 0 for f in USAGE_FIELDS}),
                guidelines=tuple(prov["guidelines"] or ()),
                episodes=tuple(prov["episodes"] or ()),
                attempts=r["attempts"] or 1,
            )
        )
    return out


def _nested(flat: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return flat.select(
        "item_id",
        "dimension",
        "score",
        "rationale",
        "error",
        "attempts",
        "raw",
        F.struct("judge", "model", "guidelines", "episodes").alias("provenance"),
        F.struct(*USAGE_FIELDS).alias("usage"),
        "run_id",
        "scored_at",
    )


def _kept(existing: DataFrame, judge_key: str, retry_failed: bool, out: str) -> DataFrame:
    """The (item, dimension) pairs a rerun keeps; DataError when ``out`` holds another
    judge's rows (mixing two judges' scores in one table would go unnoticed)."""
    from pyspark.sql import functions as F

    other = existing.where(F.col("provenance.judge") != judge_key).select("provenance").first()
    if other is not None:
        raise DataError(
            f"{out} holds judgements of another judge (model {other['provenance']['model']!r}, "
            f"key {other['provenance']['judge']}; this one is {judge_key}): pass a new --out, "
            "or delete that one to start over"
        )
    latest = latest_judgements(existing)
    ok = F.col("error").isNull() & F.col("score").isNotNull()
    # As judge.failures.redo_on_resume: an unreadable answer (or item) says something about
    # the judge (or the data) and is kept unless retry_failed; a provider or worker failure
    # says nothing and is asked again.
    error = F.coalesce(F.col("error"), F.lit(""))
    verdict = error.startswith("unparseable") | error.startswith("unreadable item")
    keep = ok if retry_failed else ok | verdict
    return latest.where(keep).select(F.col("item_id").alias("id"), "dimension")


def _parallelism(spark: SparkSession) -> int:
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        return int(spark.conf.get("spark.default.parallelism", "8") or 8)


def score_dataframe(
    judge: Judge | str | Path,
    items: DataFrame,
    *,
    out: str | Path,
    dimensions: Sequence[str] | None = None,
    concurrency: int = 4,
    cache_dir: str | Path | None = None,
    retry_failed: bool = False,
    format: OutputFormat = "auto",
    partitions: int | None = None,
    wave_items: int = WAVE_ITEMS,
    progress: Progress | None = None,
) -> DataFrame:
    """Score a DataFrame of items on Spark and append the judgements to ``out``.

    ``judge``: a ``Judge`` (aligned or zero-shot) or a judge file. ``items``: a DataFrame
    with ``id`` and ``output`` columns (text items; optional ``inputs``, ``group``,
    ``kind``), a ``binaryFile`` frame of notebooks, or ``read_items``' result.
    ``concurrency``: model calls in flight per Python worker (one per task slot), so a
    cluster has slots x ``concurrency`` in flight. ``cache_dir``: the response cache, on a
    path every executor can reach (local disk in local mode; a shared mount such as /dbfs on
    a cluster). Returns the judgements of these items, one row per (item, dimension), in the
    layout ``RESULT_SCHEMA``; failures are rows with their reason in ``error``.

    >>> scores = score_dataframe("judge.json", spark.read.parquet("items/"),
    ...                          out="runs/scores", concurrency=16)  # doctest: +SKIP
    """
    require_pyspark()
    from pyspark.sql import functions as F

    if isinstance(judge, str | Path):
        judge = load_judge(judge)
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    dims = list(dimensions) if dimensions else list(judge.rubric.dimension_ids)
    for d in dims:
        judge.rubric.dimension(d)
    judge_json, key = judge_payload(judge)
    _check_providers(json.loads(judge_json)["params"])
    spark = items.sparkSession
    out_s = str(out)
    fmt = output_format(spark, out_s, format)
    frame = items_frame(items)
    total = count_items(frame) * len(dims)
    wanted = frame.select("id").crossJoin(
        spark.createDataFrame([(d,) for d in dims], "dimension string")
    )
    existing = _read(spark, out_s, fmt)
    if existing is not None:
        wanted = wanted.join(
            _kept(existing, key, retry_failed, out_s), ["id", "dimension"], "left_anti"
        )
    todo = wanted.groupBy("id").agg(F.collect_list("dimension").alias("dims")).cache()
    bar = progress or NoProgress()
    try:
        counts = todo.agg(F.count("*").alias("items"), F.sum(F.size("dims")).alias("pairs")).first()
        n_items = int(counts["items"] or 0) if counts else 0
        n_pairs = int(counts["pairs"] or 0) if counts else 0
        bar.start(f"scoring on Spark with {judge.params.model}", total)
        bar.advance(total - n_pairs)
        if n_items:
            _run_waves(
                spark,
                frame.join(todo, "id"),
                _scorer(
                    broadcast(spark, judge_json), _settings(key, cache_dir, concurrency), len(dims)
                ),
                out=out_s,
                fmt=fmt,
                n_items=n_items,
                wave_items=wave_items,
                partitions=partitions or _parallelism(spark),
                progress=bar,
                n_pairs=n_pairs,
            )
    finally:
        todo.unpersist()
    rows = _read(spark, out_s, fmt)
    assert rows is not None
    ids = frame.select(F.col("id").alias("item_id"))
    mine = latest_judgements(rows.where(F.col("provenance.judge") == key))
    return mine.join(ids, "item_id", "left_semi").where(F.col("dimension").isin(dims))


def _settings(key: str, cache_dir: str | Path | None, concurrency: int) -> WorkerSettings:
    # Absolute, so local-mode workers (started elsewhere) share the driver's cache.
    cache = None if cache_dir is None else str(cache_dir)
    if cache is not None and not _is_remote(cache):
        cache = str(Path(cache).resolve())
    return WorkerSettings(
        judge_key=key,
        cache_dir=cache,
        concurrency=concurrency,
        run_id=f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
    )


def _check_providers(params: Mapping[str, Any]) -> None:
    """Check the provider names on the driver: a misspelt provider fails here, in one line,
    not as a row on every item (without building one: a local model would load here)."""
    from judgealign.providers.registry import default_registry, parse_model_name

    names = [("model", params["model"], default_registry.llm_providers())]
    if params.get("embedder"):
        embedder = str(params["embedder"])
        spec = embedder if ":" in embedder else f"{embedder}:"
        names.append(("embedder", spec, default_registry.embedder_providers()))
    for role, name, known in names:
        provider, _, _ = parse_model_name(name)
        if provider not in known:
            raise ConfigError(
                f"{role} {name!r}: unknown provider {provider!r}; known: {', '.join(known)}"
            )


def _run_waves(
    spark: SparkSession,
    pending: DataFrame,
    scorer: Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]],
    *,
    out: str,
    fmt: str,
    n_items: int,
    wave_items: int,
    partitions: int,
    progress: Progress,
    n_pairs: int,
) -> None:
    from pyspark.sql import functions as F

    waves = max(1, math.ceil(n_items / max(1, wave_items)))
    per_wave = math.ceil(n_items / waves)
    slices = max(1, min(partitions, per_wave))
    # Small Arrow batches: items stream into the workers' pipelines instead of arriving
    # 10,000 notebooks at a time (Spark's default batch).
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key, None)
    spark.conf.set(key, str(ARROW_BATCH_ROWS))
    advanced = 0
    try:
        for w in range(waves):
            part = (
                pending
                if waves == 1
                else pending.where(F.pmod(F.xxhash64("id"), F.lit(waves)) == w)
            )
            if waves > 1:
                progress.status(f"wave {w + 1}/{waves}")
            flat = part.repartition(slices).mapInPandas(scorer, FLAT_SCHEMA)
            _nested(flat).write.format(fmt).mode("append").save(out)
            # Waves split items by hash: about an equal share of the pairs each.
            step = n_pairs - advanced if w == waves - 1 else n_pairs // waves
            progress.advance(step)
            advanced += step
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
