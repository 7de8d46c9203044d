"""What a judge runs on when no model is named: the embedded local model, or a clear stop.

A forgotten ``--model`` must never fall back to a fake provider (a meaningless report that
looks real); fakes run only when named (``fake:mimic``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from judgealign.errors import ConfigError
from judgealign.providers.local_embedder import MODEL_DIST, TOKENIZER_DIST
from judgealign.providers.model_files import MODELS, installed_part_files

LOCAL_MODEL = "local:default"
LOCAL_EMBEDDER = "local"
_HINT = "install the embedded local model with `make demo` (or `scripts/install-local.sh .venv`)"

Probe = Callable[[], bool]


def local_model_installed() -> bool:
    """llama-cpp-python and every package of the default GGUF are installed (no import)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    return all(installed_part_files(d) for d in MODELS["default"].dists)


def local_embedder_installed() -> bool:
    """onnxruntime, tokenizers and the packaged MiniLM files are installed (no import)."""
    if any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "tokenizers")):
        return False
    return all(installed_part_files(d) is not None for d in (MODEL_DIST, TOKENIZER_DIST))


def default_model(installed: Probe = local_model_installed) -> str:
    """``local:default`` when the embedded model is installed, else a ConfigError naming
    ``--model``.

    >>> default_model(installed=lambda: True)
    'local:default'
    """
    if installed():
        return LOCAL_MODEL
    raise ConfigError(
        "no judge model given: pass --model (Python: model=), e.g. openai:gpt-4.1-mini, "
        f"or {_HINT}; fake models run only when named (fake:mimic)"
    )


def default_embedder(installed: Probe = local_embedder_installed) -> str:
    """``local`` when the embedded embedder is installed, else a ConfigError naming
    ``--embedder``.

    >>> default_embedder(installed=lambda: True)
    'local'
    """
    if installed():
        return LOCAL_EMBEDDER
    raise ConfigError(
        "no embedder given: pass --embedder (Python: embedder=), e.g. "
        f"openai:text-embedding-3-small, or {_HINT}"
    )
