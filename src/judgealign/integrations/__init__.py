"""Integrations with the platforms judgealign's users work on (MLflow, Spark).

Each imports its platform lazily, behind its extra, so importing judgealign never needs them.
"""
