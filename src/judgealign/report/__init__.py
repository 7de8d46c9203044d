"""Evaluation reports and their renderers."""
