"""Dual memory: distilled guidelines (semantic) and retrieved expert examples (episodic)."""

from judgealign.memory.builder import MemoryBuilder
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.store import AlignmentMemory, DistillFailure, MemoryContext

__all__ = [
    "AlignmentMemory",
    "DistillFailure",
    "Episode",
    "Guideline",
    "MemoryBuilder",
    "MemoryContext",
]
