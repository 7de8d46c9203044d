"""Stress tests for judges: plant known flaws in notebooks and measure whether a judge notices."""
