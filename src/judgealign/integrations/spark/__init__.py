"""Spark: score a DataFrame of items with a judge on a cluster, and run evaluation folds as
Spark tasks. Needs the ``spark`` extra (``pip install 'judgealign[spark]'``) and Java 17+;
PySpark is imported only when these functions run.

>>> from judgealign.integrations.spark import read_items, score_dataframe
>>> items = read_items(spark, ["notebooks/"])                       # doctest: +SKIP
>>> scores = score_dataframe("judge.json", items, out="runs/scores")  # doctest: +SKIP
"""

from judgealign.integrations.spark.evaluation import evaluate_on_spark
from judgealign.integrations.spark.items import ITEM_COLUMNS, items_frame, read_items
from judgealign.integrations.spark.scoring import (
    RESULT_SCHEMA,
    collect_judgements,
    read_judgements,
    score_dataframe,
)
from judgealign.integrations.spark.session import local_session

__all__ = [
    "ITEM_COLUMNS",
    "RESULT_SCHEMA",
    "collect_judgements",
    "evaluate_on_spark",
    "items_frame",
    "local_session",
    "read_items",
    "read_judgements",
    "score_dataframe",
]
