"""Integrations with the tools users already run: MLflow (``integrations.mlflow``)."""
