"""Stress tests for judges: plant known flaws in notebooks and measure whether a judge notices.

Probes (``PROBES``) are flaw mutations tied to the rubric dimension they hurt, invariance
probes that must not move any score, and injection probes that speak to the judge from inside
the notebook. ``stress_test`` scores every notebook and each of its mutants with one judge or
several side by side and reports detection, false alarms and injection shift per dimension.
"""

from judgealign.stress.catalog import PROBES, select_probes
from judgealign.stress.model import StressReport
from judgealign.stress.probe import NotApplicable, Probe, ProbeOutcome, ProbeSpec
from judgealign.stress.runner import StressTest, plant, stress_test

__all__ = [
    "PROBES",
    "NotApplicable",
    "Probe",
    "ProbeOutcome",
    "ProbeSpec",
    "StressReport",
    "StressTest",
    "plant",
    "select_probes",
    "stress_test",
]
