"""Integrations with the platforms judgealign's users work on: MLflow (``integrations.mlflow``)
and Spark (``integrations.spark``).

Each imports its platform lazily, behind its extra, so importing judgealign never needs them.
"""
