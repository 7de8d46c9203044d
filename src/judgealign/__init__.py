"""judgealign: align LLM judges with human experts, and measure it honestly."""

__version__ = "0.1.0"
