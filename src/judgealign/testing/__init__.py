"""Public test doubles: fake providers usable from tests and from the CLI (``fake:...``)."""

from judgealign.testing.fake import FakeEmbedder, FakeLLM, failing

__all__ = ["FakeEmbedder", "FakeLLM", "failing"]
