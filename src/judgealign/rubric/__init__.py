"""Rubrics: dimensions, scales and anchors."""

from judgealign.rubric.loader import builtin_rubrics, load_rubric, rubric_from_dict, rubric_to_yaml
from judgealign.rubric.model import Dimension, Rubric, Scale

__all__ = [
    "Dimension",
    "Rubric",
    "Scale",
    "builtin_rubrics",
    "load_rubric",
    "rubric_from_dict",
    "rubric_to_yaml",
]
