"""Items as a Spark DataFrame: reading Parquet, JSONL and notebook folders, and the one
column layout the scorer reads.

The layout (``ITEM_COLUMNS``): ``id``, ``kind`` (``text`` or ``notebook``), ``output`` (the
judged text; a notebook's ``.ipynb`` JSON), ``inputs`` (a JSON object of name -> text, or
null), ``group``, ``path`` and ``source`` (the file a row came from, for messages). Item ids
follow ``judgealign.load_items``: a file's id is its path relative to the common root of the
paths given, a JSONL line's its ``id`` field, so the same items get the same ids (and the
same judgements, cache entries and labels) whichever engine scores them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgealign.data.item import Item
from judgealign.data.items_io import (
    JSONL_SUFFIXES,
    NOTEBOOK_SUFFIX,
    TEXT_SUFFIXES,
    as_text,
)
from judgealign.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

ITEM_COLUMNS = ("id", "kind", "output", "inputs", "group", "path", "source")
PARQUET_SUFFIX = ".parquet"


def _is_remote(path: str) -> bool:
    return "://" in path or (":" in path.split("/", 1)[0] and not os.path.isabs(path))


def _kind_of(path: str) -> str:
    """parquet, delta, jsonl, notebooks (a folder of them) or file (one .ipynb/.txt/.md)."""
    lower = path.lower().rstrip("/")
    if lower.endswith(PARQUET_SUFFIX):
        return "parquet"
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lower.endswith((NOTEBOOK_SUFFIX, *TEXT_SUFFIXES)):
        return "file"
    if _is_remote(path):
        return "notebooks"  # a folder we cannot look into from here
    local = Path(path)
    if not local.exists():
        raise DataError(f"{path}: no such file or folder; check the path")
    if local.is_file():
        raise DataError(
            f"{path}: unsupported item file; give .parquet, .jsonl, .ipynb, .txt, .md files "
            "or a folder (of notebooks, or a Parquet/Delta table)"
        )
    if (local / "_delta_log").is_dir():
        return "delta"
    if any(local.glob(f"*{PARQUET_SUFFIX}")) or (local / "_SUCCESS").exists():
        return "parquet"
    if not any(
        p for p in local.rglob(f"*{NOTEBOOK_SUFFIX}") if ".ipynb_checkpoints" not in p.parts
    ):
        raise DataError(f"{path}: no {NOTEBOOK_SUFFIX} files in this folder; check the path")
    return "notebooks"


def _root(paths: Sequence[tuple[str, str]]) -> str | None:
    """The common root of the files and folders given (``load_items``' rule), local only."""
    roots = []
    for path, kind in paths:
        if kind not in ("notebooks", "file"):
            continue
        if _is_remote(path):
            return None
        p = Path(path).resolve()
        roots.append(p if kind == "notebooks" else p.parent)
    return os.path.commonpath(roots) if roots else None


def read_items(spark: SparkSession, paths: Sequence[str | Path]) -> DataFrame:
    """Items from Parquet files or tables, Delta tables, JSONL files (``load_items``'
    layout), folders of notebooks (read with Spark's ``binaryFile`` source) and single
    ``.ipynb``/``.txt``/``.md`` files, in the layout ``ITEM_COLUMNS``.

    A Parquet or Delta table needs an ``id`` column and an ``output`` column (or the
    ``content`` of the ``binaryFile`` source); ``inputs`` (a map, struct or JSON text),
    ``group`` and ``kind`` are optional.

    >>> items = read_items(spark, ["notebooks/", "more.jsonl"])  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    given = [(str(p), _kind_of(str(p))) for p in paths]
    if not given:
        raise DataError("give the items to judge (notebooks, folders, .parquet or .jsonl files)")
    root = _root(given)
    frames: list[DataFrame] = []
    for path, kind in given:
        if kind in ("parquet", "delta"):
            frames.append(items_frame(spark.read.format(kind).load(path), source=path))
        elif kind == "jsonl":
            lines = spark.read.text(path).where(F.trim("value") != "")

            def field(name: str) -> Column:
                return F.get_json_object("value", f"$.{name}")

            frames.append(
                lines.select(
                    field("id").alias("id"),
                    F.coalesce(field("kind"), F.lit("text")).alias("kind"),
                    field("output").alias("output"),
                    field("inputs").alias("inputs"),
                    field("group").alias("group"),
                    field("path").alias("path"),
                    F.lit(path).alias("source"),
                )
            )
        else:
            reader = spark.read.format("binaryFile")
            if kind == "notebooks":
                reader = reader.option("recursiveFileLookup", "true").option(
                    "pathGlobFilter", f"*{NOTEBOOK_SUFFIX}"
                )
            # Resolved like load_items' ids (a symlinked folder gives the same ids).
            where = path if _is_remote(path) else str(Path(path).resolve())
            files = reader.load(where).where(~F.col("path").contains("/.ipynb_checkpoints/"))
            frames.append(_files_frame(files, path if root is None else root, kind))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def _local_path(col: Column) -> Column:
    from pyspark.sql import functions as F

    # Spark writes local files as file:/abs/path (or file:///abs/path).
    return F.regexp_replace(col, r"^file:(//)?", "")


def _files_frame(files: DataFrame, root: str, kind: str) -> DataFrame:
    from pyspark.sql import functions as F

    local = _local_path(F.col("path"))
    if kind == "file" and root.lower().endswith((NOTEBOOK_SUFFIX, *TEXT_SUFFIXES)):
        root = root.rsplit("/", 1)[0]  # a remote single file: ids relative to its folder
    prefix = root.rstrip("/") + "/"
    item_id = F.when(
        local.startswith(prefix), F.substring(local, len(prefix) + 1, 1 << 30)
    ).otherwise(local)
    return files.select(
        item_id.alias("id"),
        F.when(F.lower(F.col("path")).endswith(NOTEBOOK_SUFFIX), F.lit("notebook"))
        .otherwise(F.lit("text"))
        .alias("kind"),
        F.decode(F.col("content"), "UTF-8").alias("output"),
        F.lit(None).cast("string").alias("inputs"),
        F.lit(None).cast("string").alias("group"),
        local.alias("path"),
        local.alias("source"),
    )


def items_frame(df: DataFrame, *, source: str = "DataFrame") -> DataFrame:
    """Any DataFrame of items in the layout ``ITEM_COLUMNS``: ``id`` (else a ``binaryFile``
    frame's ``path``), ``output`` (else its ``content``), optional ``inputs`` (map, struct or
    JSON text), ``group``, ``kind``, ``path``. A frame already in the layout is unchanged.

    >>> df = spark.createDataFrame([("a", "A cat.")], "id string, output string")  # doctest: +SKIP
    >>> frame = items_frame(df)  # doctest: +SKIP
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType, StringType, StructType

    cols = set(df.columns)
    if set(ITEM_COLUMNS) <= cols:
        return df.select(*ITEM_COLUMNS)
    if "output" in cols:
        output = F.col("output").cast("string")
    elif "content" in cols:
        output = F.decode(F.col("content"), "UTF-8")
    else:
        raise DataError(f"{source}: items need an 'output' column (the text to judge)")
    path = _local_path(F.col("path").cast("string")) if "path" in cols else F.lit(None)
    if "id" in cols:
        item_id = F.col("id").cast("string")
    elif "path" in cols:
        item_id = path
    else:
        raise DataError(f"{source}: items need an 'id' column")
    if "inputs" in cols:
        dtype = df.schema["inputs"].dataType
        if isinstance(dtype, MapType | StructType):
            inputs = F.to_json(F.col("inputs"))
        elif isinstance(dtype, StringType):
            inputs = F.col("inputs")
        else:
            raise DataError(f"{source}: 'inputs' must be a map, a struct or JSON text")
    else:
        inputs = F.lit(None).cast("string")
    if "kind" in cols:
        kind = F.coalesce(F.col("kind").cast("string"), F.lit("text"))
    else:
        kind = F.when(F.lower(path).endswith(NOTEBOOK_SUFFIX), F.lit("notebook")).otherwise(
            F.lit("text")
        )
    group = F.col("group").cast("string") if "group" in cols else F.lit(None).cast("string")
    return df.select(
        item_id.alias("id"),
        kind.alias("kind"),
        output.alias("output"),
        inputs.alias("inputs"),
        group.alias("group"),
        path.cast("string").alias("path"),
        F.lit(source).alias("source"),
    )


def count_items(frame: DataFrame) -> int:
    """How many items ``frame`` holds; DataError when an item has no id or two items share
    one (their judgements would be indistinguishable), naming the file and an example."""
    from pyspark.sql import functions as F

    per_id = frame.groupBy("id").agg(F.count("*").alias("n"), F.first("source").alias("source"))
    bad = F.col("id").isNull() | (F.col("id") == "") | (F.col("n") > 1)
    row = per_id.agg(
        F.count("*").alias("items"),
        F.first(F.when(bad, F.struct("id", "n", "source")), ignorenulls=True).alias("bad"),
    ).first()
    if row is None:
        return 0
    example = row["bad"]
    if example is not None and not example["id"]:
        raise DataError(f"{example['source']}: an item has no 'id'; give every item an id")
    if example is not None:
        raise DataError(
            f"{example['source']}: duplicate item id {example['id']!r} ({example['n']} items); "
            "give every item a unique id"
        )
    return int(row["items"])


def item_from_record(record: Mapping[str, Any]) -> Item:
    """One row of the layout as an ``Item`` (on an executor); DataError says what is wrong."""
    item_id = record.get("id")
    output = record.get("output")
    if output is None:
        raise DataError(f"item {item_id!r} has no output (nothing to judge)")
    kind = record.get("kind") or "text"
    if kind not in ("text", "notebook"):
        raise DataError(f"item {item_id!r}: kind {kind!r} is neither 'text' nor 'notebook'")
    inputs: dict[str, str] = {}
    raw_inputs = record.get("inputs")
    if raw_inputs:
        try:
            parsed = json.loads(raw_inputs)
        except ValueError as exc:
            raise DataError(f"item {item_id!r}: inputs are not JSON ({exc})") from None
        if not isinstance(parsed, dict):
            raise DataError(f"item {item_id!r}: inputs must be an object of name -> text")
        inputs = {str(k): as_text(v) for k, v in parsed.items() if v is not None}
    if kind == "notebook":
        try:
            nb = json.loads(output)
        except ValueError:
            nb = None
        if not isinstance(nb, dict) or "nbformat" not in nb:
            raise DataError(f"item {item_id!r}: not a Jupyter notebook (no 'nbformat' field)")
    return Item(
        id=str(item_id),
        kind=kind,
        output=str(output),
        inputs=inputs,
        group=record.get("group") or None,
        path=record.get("path") or None,
    )
